//! The test registries (tests/images/registry.sh): images pushed under unique names and
//! removed from the engine, so a pull is real; the registry's log shows each pull.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub const OPEN: &str = "127.0.0.1:5000";
pub const PRIVATE: &str = "127.0.0.1:5001";
pub const USER: &str = "stagelet";
const DIR: &str = "/var/lib/stagelet-test-registry";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The private registry's password.
pub fn password() -> String {
    std::fs::read_to_string(Path::new(DIR).join("password"))
        .expect("tests/images/registry.sh wrote the registry password")
        .trim()
        .to_string()
}

fn answers(host: &str) -> bool {
    Command::new("curl")
        .args(["-s", "-o", "/dev/null", &format!("http://{host}/v2/")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether both registries answer; with STAGELET_TEST_REQUIRE_ENGINE set they must.
pub fn require(test: &str) -> bool {
    let up = answers(OPEN) && answers(PRIVATE);
    if !up {
        assert!(
            std::env::var_os("STAGELET_TEST_REQUIRE_ENGINE").is_none(),
            "{test}: the test registries do not answer (run tests/images/registry.sh)"
        );
        eprintln!("{test}: skipped, no test registry");
    }
    up
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A docker CLI configuration of its own, logged in to the private registry: the root
/// user's config.json is never touched.
pub fn cli_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut login = Command::new("docker");
    login
        .arg("--config")
        .arg(dir.path())
        .args(["login", "-u", USER, "--password-stdin", PRIVATE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = login.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "docker login to {PRIVATE}");
    dir
}

/// Pushes `base` plus a unique 1 MB layer as `<registry>/stagelet-pull/<name>-<pid>-<n>:1`
/// and removes it from the engine; returns that reference.
pub fn push_unique(registry: &str, base: &str, name: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let reference = format!(
        "{registry}/stagelet-pull/{name}-{}-{n}:1",
        std::process::id()
    );
    let ctx = tempfile::tempdir().unwrap();
    let unique: Vec<u8> = (0..1024 * 1024).map(|_| rand::random::<u8>()).collect();
    std::fs::write(ctx.path().join("unique.bin"), unique).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY unique.bin /unique.bin\n"),
    )
    .unwrap();
    run(Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &reference])
        .arg(ctx.path()));
    let config = cli_config();
    run(Command::new("docker")
        .arg("--config")
        .arg(config.path())
        .args(["push", "-q", &reference]));
    remove(&reference);
    reference
}

/// Removes an image from the engine (nothing when it is not there).
pub fn remove(reference: &str) {
    let _ = Command::new("docker")
        .args(["rmi", "-f", reference])
        .output();
}

/// How many pulls of `reference` the registry's log shows (one manifest HEAD each).
pub fn pulls(reference: &str) -> usize {
    let (host, rest) = reference.split_once('/').unwrap();
    let (repo, tag) = rest.rsplit_once(':').unwrap();
    let port = host.rsplit(':').next().unwrap();
    let log = std::fs::read_to_string(log_path(port)).unwrap_or_default();
    let line = format!("\"HEAD /v2/{repo}/manifests/{tag} ");
    log.lines().filter(|l| l.contains(&line)).count()
}

fn log_path(port: &str) -> PathBuf {
    Path::new(DIR).join(format!("{port}.log"))
}

/// A Docker `config.json` holding `user:password` for `registry`, mode 0600.
pub fn auth_config(dir: &Path, registry: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("docker-config.json");
    std::fs::write(
        &path,
        format!(r#"{{"auths": {{"{registry}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
