//! The daemon process: start-up, the socket's life, signals and configuration errors.

mod common;

use common::{Daemon, DAEMON};
use nix::sys::signal::Signal;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn socket_has_the_configured_mode_and_group() {
    let d = Daemon::start("[agent]\nsocket_mode = \"0640\"\nsocket_group = \"users\"\n");
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.gid(), 100);
}

#[tokio::test]
async fn sigterm_exits_zero_and_removes_the_socket() {
    let mut d = Daemon::start("");
    assert!(d.ctl(&["info"]).status.success());
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", d.log());
    assert!(!d.socket.exists(), "socket left behind");
    assert!(d.log().contains("stopping"), "{}", d.log());
}

#[tokio::test]
async fn sigint_also_stops_cleanly() {
    let mut d = Daemon::start("");
    d.signal(Signal::SIGINT);
    assert!(d.wait_exit(Duration::from_secs(10)).success());
    assert!(!d.socket.exists());
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_is_not_stolen() {
    let mut d = Daemon::start("");
    assert!(d
        .ctl(&["subscription", "create", "acme", "--stage-limit", "1"])
        .status
        .success());
    // A second daemon on the same configuration must leave the live one alone.
    let out = d.command().output().unwrap();
    assert_eq!(out.status.code(), Some(71), "{out:?}");
    let log = d.log();
    assert!(log.contains("another stagelet holds"), "{log}");
    assert!(
        d.ctl(&["info"]).status.success(),
        "the first daemon must still serve"
    );
    // A crash leaves the socket file; the next start replaces it.
    d.kill9();
    assert!(d.socket.exists());
    d.spawn();
    let out = d.ctl(&["subscription", "get", "acme"]);
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn a_socket_from_systemd_is_used_as_it_is() {
    // Only its directory and config are used: stop it first.
    let mut d = Daemon::start("");
    d.signal(Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
    let sock = d.dir.path().join("activated.sock");
    // systemd-socket-activate binds the socket and starts the daemon with LISTEN_FDS on the
    // first connection.
    let mut child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&sock)
        .arg(DAEMON)
        .arg("--config")
        .arg(&d.config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.dir.path().join("activated.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Whatever fails below, the activated daemon must not outlive the test.
    struct KillOnDrop(nix::unistd::Pid);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(self.0, Signal::SIGKILL);
        }
    }
    let _guard = KillOnDrop(pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(common::CTL)
        .arg("--socket")
        .arg(&sock)
        .args(["--json", "info"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = std::fs::read_to_string(d.dir.path().join("activated.log")).unwrap();
    assert!(log.contains("systemd=true"), "{log}");
    assert!(
        !d.socket.exists(),
        "the configured socket must not be bound when systemd passes one"
    );
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        sock.exists(),
        "systemd owns its socket file; the daemon must leave it"
    );
}

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("bad.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_reports_every_error_with_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(
        dir.path(),
        "[agent]\nsocket_mode = \"rw\"\nlog_fromat = \"json\"\n\n[ports]\nhttp = \"25000-20000\"\nbind_address = \"localhost\"\n",
    );
    let out = Command::new(DAEMON)
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    let path = p.display().to_string();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].starts_with(&format!("{path}:2:1: agent.socket_mode: ")),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!("{path}:3:1: agent.log_fromat: unknown key")),
        "{err}"
    );
    assert!(
        lines[2].starts_with(&format!("{path}:6:1: ports.http: ")),
        "{err}"
    );
    assert!(
        lines[3].starts_with(&format!("{path}:7:1: ports.bind_address: ")),
        "{err}"
    );
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[agent]\nsocket_mode = \"0600\"\n").unwrap();
    let out = Command::new(DAEMON)
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_shipped_config_file_checks_clean_and_equals_the_defaults() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/etc/stagelet.toml");
    let out = Command::new(DAEMON)
        .arg("check-config")
        .arg(shipped)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let parsed = stagelet::config::load_file(std::path::Path::new(shipped)).unwrap();
    assert_eq!(parsed, stagelet::config::Config::default());
}

#[test]
fn serve_refuses_a_bad_config_with_the_config_status() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), "[agent]\ndefault_profile = \"nope\"\n");
    let out = Command::new(DAEMON)
        .arg("serve")
        .arg("--config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(":2:1: agent.default_profile: names no profile"),
        "{err}"
    );
}

#[test]
fn embedded_defaults_put_state_and_socket_under_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let child = Command::new(DAEMON)
        .env("STAGELET_HOME", &home)
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sock = home.join("stagelet.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no socket at {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(home.join("state/subscriptions").is_dir());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("socket: {}", sock.display())),
        "{err}"
    );
    assert!(!sock.exists());
}

#[test]
fn tells_systemd_ready_watchdog_and_stopping() {
    let mut d = Daemon::start("");
    d.signal(Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
    let notify_path = d.dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // systemd sets WATCHDOG_PID to the service's pid; `exec` keeps the shell's pid.
    let log = std::fs::File::create(d.dir.path().join("notify.log")).unwrap();
    let child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\""])
        .arg(DAEMON)
        .arg("--config")
        .arg(&d.config_path)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut child = child;
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    // READY=1, then watchdog pings every 100 ms.
    while seen.matches("WATCHDOG=1").count() < 2 {
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{e}; seen so far: {seen:?}\n{}", d.log()));
        seen += &String::from_utf8_lossy(&buf[..n]);
        seen.push('\n');
    }
    assert!(
        seen.find("READY=1").unwrap() < seen.find("WATCHDOG=1").unwrap(),
        "{seen}"
    );
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    while !seen.contains("STOPPING=1") {
        let n = notify.recv(&mut buf).unwrap();
        seen += &String::from_utf8_lossy(&buf[..n]);
    }
    assert!(child.wait().unwrap().success());
}
