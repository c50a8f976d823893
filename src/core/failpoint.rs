//! Test hooks, in debug builds only (release builds ignore them):
//! - `STAGELET_FAILPOINT=<name>` makes the daemon kill itself with SIGKILL at that point;
//! - `STAGELET_FAILPOINT_PAUSE=<file>`: each point named on a line `<name> <ms>` of that file
//!   (read at every hit, so a test can change it while the daemon runs) pauses there;
//! - `STAGELET_TEST_CLOCK=<file>`: the scheduler's clock runs ahead by the seconds in that file.

/// A named point in an operation. Every event a stage operation emits is one, as
/// `<operation>.<step>`.
pub fn hit(name: &str) {
    #[cfg(debug_assertions)]
    {
        if std::env::var("STAGELET_FAILPOINT").as_deref() == Ok(name) {
            tracing::warn!(failpoint = name, "failpoint: killing the daemon");
            let _ =
                nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
        }
        if let Some(pause) = pause_of(name) {
            tracing::warn!(failpoint = name, ?pause, "failpoint: pausing");
            // Points sit in synchronous code; let the runtime move other tasks off this worker.
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(|| std::thread::sleep(pause))
                }
                _ => std::thread::sleep(pause),
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(debug_assertions)]
fn pause_of(name: &str) -> Option<std::time::Duration> {
    let file = std::env::var_os("STAGELET_FAILPOINT_PAUSE")?;
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let (point, ms) = line.trim().split_once(' ')?;
        (point == name)
            .then(|| ms.trim().parse().ok())
            .flatten()
            .map(std::time::Duration::from_millis)
    })
}

/// How far the scheduler's clock runs ahead of the wall clock (zero unless a test says so).
pub fn clock_shift() -> std::time::Duration {
    #[cfg(debug_assertions)]
    if let Some(file) = std::env::var_os("STAGELET_TEST_CLOCK") {
        if let Some(s) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            return std::time::Duration::from_secs(s);
        }
    }
    std::time::Duration::ZERO
}
