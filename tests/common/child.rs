//! Parts of a test run as another user: the test binary runs a copy of itself as uid nobody,
//! selecting its `child` test, with the part to play in `STAGELET_TEST_CHILD`. A binary that
//! uses this declares `#[test] fn child() { common::child::run_if_asked() }`.

use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NOBODY: u32 = 65534;
pub const USERS_GID: u32 = 100;
const VAR: &str = "STAGELET_TEST_CHILD";

/// Makes `cmd` run as uid and gid nobody with the supplementary `groups`.
pub fn as_nobody(cmd: &mut Command, groups: &[u32]) {
    let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            setgroups(&groups)?;
            setgid(Gid::from_raw(NOBODY))?;
            setuid(Uid::from_raw(NOBODY))?;
            Ok(())
        });
    }
}

/// A running child, with the copy of the binary it runs from.
pub struct Spawned {
    pub child: Child,
    _dir: tempfile::TempDir,
}

/// Starts `part` with `args` as nobody in `groups`; its stdout is piped.
pub fn spawn(groups: &[u32], part: &str, args: &[String]) -> Spawned {
    use std::os::unix::fs::PermissionsExt;
    // The build may sit under a directory nobody cannot enter: run a copy.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("test-child");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, part)
        .env("STAGELET_TEST_CHILD_ARGS", args.join("\n"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    as_nobody(&mut cmd, groups);
    Spawned {
        child: cmd.spawn().unwrap(),
        _dir: dir,
    }
}

/// Plays the part asked for, if any; a normal test run asks for none.
pub fn run_if_asked() {
    let Ok(part) = std::env::var(VAR) else {
        return;
    };
    let args: Vec<String> = std::env::var("STAGELET_TEST_CHILD_ARGS")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    match part.as_str() {
        "hold" => hold(
            Path::new(&args[0]),
            args[1].parse().unwrap(),
            Duration::from_millis(args[2].parse().unwrap()),
        ),
        "unfollow" => unfollow(Path::new(&args[0]), &args[1]),
        other => panic!("no child part {other}"),
    }
}

/// How many of `conns` are still open: nothing to read yet, and no end of file.
fn still_open(conns: &mut [UnixStream]) -> usize {
    let mut open = 0;
    for c in conns {
        let mut buf = [0u8; 256];
        if matches!(c.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
            open += 1;
        }
    }
    open
}

/// Opens `n` connections that send nothing; prints how many stay open once the daemon has
/// accepted or refused them all (the count holds still for 300 ms), then again at `later`
/// after the start.
fn hold(socket: &Path, n: usize, later: Duration) {
    let start = Instant::now();
    let mut conns: Vec<UnixStream> = (0..n)
        .filter_map(|_| UnixStream::connect(socket).ok())
        .collect();
    for c in &conns {
        c.set_nonblocking(true).unwrap();
    }
    println!("connected={}", conns.len());
    let (mut last, mut same) = (usize::MAX, 0);
    while same < 3 && start.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(100));
        let open = still_open(&mut conns);
        same = if open == last { same + 1 } else { 0 };
        last = open;
    }
    println!("first_open={last}");
    std::thread::sleep(later.saturating_sub(start.elapsed()));
    println!("later_open={}", still_open(&mut conns));
}

/// Follows a stage's logs over WebSocket and ends the stream with `stage.unfollow_logs`.
fn unfollow(socket: &Path, stage: &str) {
    use jsonrpsee::core::client::{ClientT, SubscriptionKind};
    use stagelet::api::rpc::StageApiClient;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = stagelet::api::client::connect(socket).await.unwrap();
        let sub = StageApiClient::follow_logs(&c, stage.into(), None, Some(0))
            .await
            .expect("a reader may follow logs");
        let SubscriptionKind::Subscription(id) = sub.kind().clone() else {
            panic!("not a subscription");
        };
        let ended: Result<bool, _> = c
            .request("stage.unfollow_logs", jsonrpsee::rpc_params![id])
            .await;
        // `false` when the stream had already ended on the daemon's side: still allowed.
        println!("unfollow={ended:?}");
        ended.expect("a reader may end its stream");
    });
}
