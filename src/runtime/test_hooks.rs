//! The files behind `core::failpoint` in debug builds: `STAGELET_FAILPOINT_PAUSE` (lines
//! `<name> <ms>`, read at every hit so a test can change it while the daemon runs) and
//! `STAGELET_TEST_CLOCK` (seconds the scheduler's clock runs ahead).

use crate::core::interfaces::TestHooks;
use std::time::Duration;

pub struct FileHooks;

/// Installs the file-reading hooks; a no-op in release builds.
pub fn install() {
    #[cfg(debug_assertions)]
    crate::core::failpoint::install(Box::new(FileHooks));
}

fn read_env_file(var: &str) -> Option<String> {
    std::fs::read_to_string(std::env::var_os(var)?).ok()
}

/// The pause of `name` in the text of a pause file.
fn pause_in(text: &str, name: &str) -> Option<Duration> {
    text.lines().find_map(|line| {
        let (point, ms) = line.trim().split_once(' ')?;
        (point == name)
            .then(|| ms.trim().parse().ok())
            .flatten()
            .map(Duration::from_millis)
    })
}

impl TestHooks for FileHooks {
    fn pause(&self, name: &str) -> Option<Duration> {
        pause_in(&read_env_file("STAGELET_FAILPOINT_PAUSE")?, name)
    }

    fn clock_shift(&self) -> Option<Duration> {
        let text = read_env_file("STAGELET_TEST_CLOCK")?;
        text.trim().parse::<u64>().ok().map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_file_names_points_and_milliseconds() {
        let text = "create.start 250\n  deploy.fetch 1000 \nbad\n";
        assert_eq!(
            pause_in(text, "create.start"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(pause_in(text, "deploy.fetch"), Some(Duration::from_secs(1)));
        assert_eq!(pause_in(text, "create"), None);
        assert_eq!(pause_in(text, "bad"), None);
    }
}
