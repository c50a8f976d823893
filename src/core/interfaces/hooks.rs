//! The test hooks' inputs (debug builds): how long a failpoint pauses and how far the
//! scheduler's clock runs ahead. Read from files by `runtime::test_hooks`.

use std::time::Duration;

pub trait TestHooks: Send + Sync {
    /// How long the point `name` pauses, if at all (asked at every hit).
    fn pause(&self, name: &str) -> Option<Duration>;
    /// How far the scheduler's clock runs ahead, if a test says so.
    fn clock_shift(&self) -> Option<Duration>;
}
