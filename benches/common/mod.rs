//! What the benches share: the daemon started on its own directory with a given configuration.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Waits until something accepts connections on `sock` (at most 10 s).
pub fn wait_for(sock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not come up",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `config` (whose agent socket is `<dir>/d.sock`) to `<dir>/stagelet.toml`, starts the
/// daemon on it and waits for its socket.
pub fn start_daemon(dir: &Path, config: &str) -> Child {
    let path = dir.join("stagelet.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_stagelet"))
        .args(["serve", "--config"])
        .arg(&path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("d.sock"));
    child
}
