//! Access control by the caller's uid and groups, read from the socket.

mod common;

use common::child::USERS_GID;
use common::{Daemon, CTL};
use nix::sys::signal::Signal;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs stagectl as uid nobody with the given supplementary groups.
fn ctl_as_nobody(d: &Daemon, groups: &[u32], args: &[&str]) -> Output {
    let mut cmd = Command::new(CTL);
    cmd.arg("--socket").arg(&d.socket).args(args);
    common::child::as_nobody(&mut cmd, groups);
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The socket mode lets anyone connect; the daemon still refuses.
const OPEN_SOCKET: &str =
    "[agent]\nsocket_mode = \"0666\"\n[access]\nadmin_groups = []\nreader_groups = [\"users\"]\n";

#[tokio::test]
async fn a_stranger_is_refused_even_when_the_mode_lets_them_in() {
    let d = Daemon::start(OPEN_SOCKET);
    let out = ctl_as_nobody(&d, &[], &["info"]);
    assert_eq!(out.status.code(), Some(15), "{out:?}");
    assert!(
        stderr(&out).contains("uid 65534 may not call agent.info"),
        "{}",
        stderr(&out)
    );
    let out = ctl_as_nobody(
        &d,
        &[],
        &["subscription", "create", "x", "--stage-limit", "1"],
    );
    assert_eq!(out.status.code(), Some(15));
    assert!(!d.state_dir().join("subscriptions/x.json").exists());
    // root is always admin.
    assert!(d.ctl(&["info"]).status.success());
}

#[tokio::test]
async fn a_reader_reads_and_cannot_write() {
    let d = Daemon::start(OPEN_SOCKET);
    assert!(d
        .ctl(&["subscription", "create", "acme", "--stage-limit", "1"])
        .status
        .success());
    for args in [
        &["info"][..],
        &["host"],
        &["subscription", "list"],
        &["subscription", "get", "acme"],
    ] {
        let out = ctl_as_nobody(&d, &[USERS_GID], args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    for args in [
        &["subscription", "create", "x", "--stage-limit", "1"][..],
        &["subscription", "update", "acme", "--stage-limit", "9"],
        &["subscription", "delete", "acme"],
        &["subscription", "deploy-key", "acme"],
        &["stage", "exec", "acme/qa", "--", "ls"],
        &["stage", "sql", "acme/qa", "select 1"],
        &["stage", "backup", "acme/qa"],
        &["stage", "usage", "acme/qa", "--refresh"],
        &[
            "stage",
            "deploy",
            "acme/qa",
            "--repo",
            "https://h/r.git",
            "--branch",
            "main",
        ],
        &[
            "codeserver",
            "create",
            "acme/qa",
            "--domain",
            "c.acme.example.com",
        ],
    ] {
        let out = ctl_as_nobody(&d, &[USERS_GID], args);
        assert_eq!(out.status.code(), Some(15), "{args:?}: {}", stderr(&out));
    }
    let out = d.ctl(&["--json", "subscription", "get", "acme"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["stage_limit"], 1,
        "the reader's update must not have landed"
    );
}

#[tokio::test]
async fn admin_group_may_write_and_sighup_applies_access_changes() {
    let mut d = Daemon::start(OPEN_SOCKET);
    let out = ctl_as_nobody(
        &d,
        &[USERS_GID],
        &["subscription", "create", "a", "--stage-limit", "1"],
    );
    assert_eq!(out.status.code(), Some(15));
    // Make `users` an admin group and move the socket (which needs a restart), then SIGHUP.
    let text = std::fs::read_to_string(&d.config_path).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    table["access"]["admin_groups"] = toml::Value::Array(vec!["users".into()]);
    table["agent"]["socket"] =
        toml::Value::String(d.dir.path().join("elsewhere.sock").display().to_string());
    std::fs::write(&d.config_path, toml::to_string(&table).unwrap()).unwrap();
    d.signal(Signal::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !d.log().contains("configuration reloaded") {
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        d.log().contains("takes effect after a restart"),
        "{}",
        d.log()
    );
    let out = ctl_as_nobody(
        &d,
        &[USERS_GID],
        &["subscription", "create", "a", "--stage-limit", "1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn child() {
    common::child::run_if_asked();
}

#[tokio::test]
async fn a_reader_follows_logs_and_ends_the_stream() {
    let Some(env) = common::StageEnv::with_stages(
        "a_reader_follows_logs_and_ends_the_stream",
        OPEN_SOCKET,
        None,
        &["qa"],
    )
    .await
    else {
        return;
    };
    let d = &env.daemon;
    let reader = common::child::spawn(
        &[USERS_GID],
        "unfollow",
        &[d.socket.display().to_string(), "acme/qa".into()],
    );
    let out = reader.child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("unfollow=Ok("), "{text}");
}
