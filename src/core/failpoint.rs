//! Test hooks, in debug builds only (release builds ignore them):
//! - `STAGELET_FAILPOINT=<name>` makes the daemon kill itself with SIGKILL at that point;
//! - `STAGELET_FAILPOINT_PAUSE=<file>`: each point named on a line `<name> <ms>` of that file
//!   pauses there;
//! - `STAGELET_TEST_CLOCK=<file>`: the scheduler's clock runs ahead by the seconds in that file.
//!
//! The files are read by the runtime's [`TestHooks`] (installed at start-up), never here.

use crate::core::interfaces::TestHooks;
use std::sync::OnceLock;
use std::time::Duration;

static HOOKS: OnceLock<Box<dyn TestHooks>> = OnceLock::new();

/// Installs the hooks that read the pause and clock files; the first call wins.
pub fn install(hooks: Box<dyn TestHooks>) {
    let _ = HOOKS.set(hooks);
}

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
        if let Some(pause) = HOOKS.get().and_then(|h| h.pause(name)) {
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

/// How far the scheduler's clock runs ahead of the wall clock (zero unless a test says so).
pub fn clock_shift() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(shift) = HOOKS.get().and_then(|h| h.clock_shift()) {
        return shift;
    }
    Duration::ZERO
}
