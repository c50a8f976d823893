//! Readiness before traffic: once the app container runs, its profile's `readiness.http` path
//! is asked through the app's published port until it answers 2xx or 3xx. Only then does
//! nginx proxy to it (create, start, the restart of a deploy). The container is watched
//! meanwhile, so an app that exits fails the wait at once instead of at its end.

use super::containers::APP;
use super::model::Stage;
use super::{naming, Stages};
use crate::core::settings::{Profile, Settings};
use crate::core::{Error, Result};
use std::time::Duration;
use tokio::time::Instant;

/// How often the path is asked.
const POLL: Duration = Duration::from_millis(300);
/// How long one request may take (within what is left of the timeout).
const ATTEMPT: Duration = Duration::from_secs(10);

/// Whether an answer says the app serves: 2xx or 3xx (a login redirect serves too).
pub fn passes(status: u16) -> bool {
    (200..400).contains(&status)
}

impl Stages {
    /// Waits until the app answers its readiness path, when its profile has one. Fails with
    /// `docker` naming the path, the last answer (or why none came) and the container's state:
    /// at once when the container exits or crash-loops, else when the timeout runs out.
    pub(super) async fn wait_ready(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
    ) -> Result<()> {
        let Some(readiness) = &profile.app.readiness else {
            return Ok(());
        };
        let port = stage
            .http_port
            .ok_or_else(|| Error::Docker(format!("stage {} holds no port", stage.reference())))?;
        let (path, timeout) = (readiness.http.as_str(), readiness.timeout.0);
        let name = naming(config).container(stage, APP);
        let bind = config.ports.bind_address;
        let within = humantime::format_duration(timeout);
        self.emit(
            stage,
            "readiness",
            "waiting",
            format!("GET {path}, up to {within}"),
        );
        let deadline = Instant::now() + timeout;
        let mut last = "no answer".to_string();
        loop {
            // The last attempt is the one that had time left: its answer is the one told.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let state = match self.deps.engine.inspect_container(&name, "").await {
                    Ok(Some(info)) => info.status,
                    Ok(None) => "gone".into(),
                    Err(e) => format!("unknown ({e})"),
                };
                return Err(Error::Docker(format!(
                    "the app did not pass its readiness check: GET {path} on port {port} gave \
                     no 2xx or 3xx within {within} (last: {last}); the app container {name} \
                     is {state}"
                )));
            }
            let host = stage.domain.as_str();
            last = match self
                .deps
                .ports
                .http_get(bind, port, host, path, left.min(ATTEMPT))
                .await
            {
                Ok(status) if passes(status) => {
                    self.emit(stage, "readiness", "ready", format!("GET {path}: {status}"));
                    return Ok(());
                }
                Ok(status) => format!("HTTP {status}"),
                Err(why) => why,
            };
            if let Some(state) = self.app_exited(&name).await? {
                return Err(Error::Docker(format!(
                    "the app container {name} is {state} before GET {path} answered \
                     (last: {last}); its last lines: {}",
                    self.last_lines(&name).await
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(POLL.min(left)).await;
        }
    }

    /// `Some(state)` once the app container is not running: exited (with its code),
    /// restarting (a crash loop reports Running while it restarts: go by the status), gone.
    async fn app_exited(&self, name: &str) -> Result<Option<String>> {
        Ok(match self.deps.engine.inspect_container(name, "").await? {
            Some(i) if i.status == "running" => None,
            Some(i) => Some(match i.exit_code {
                Some(code) => format!("{} (exit code {code})", i.status),
                None => i.status,
            }),
            None => Some("gone".into()),
        })
    }

    /// The container's last ten lines, on one line, for an error message.
    async fn last_lines(&self, name: &str) -> String {
        match self.deps.engine.logs(name, 10, None).await {
            Ok(lines) => lines
                .iter()
                .map(|l| l.line.trim_end())
                .collect::<Vec<_>>()
                .join(" | "),
            Err(e) => format!("(no logs: {e})"),
        }
    }
}

#[cfg(test)]
#[path = "readiness_tests.rs"]
mod tests;
