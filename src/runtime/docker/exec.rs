//! Commands in containers and their logs, through the engine: exec with every standard stream
//! wired (so dumps stream in and out without touching the disk twice), a kill at the timeout,
//! and logs with the engine's timestamps.

use super::client::DockerEngine;
use crate::core::interfaces::{ExecRequest, ExecStatus, LogLine};
use crate::core::{Error, Result};
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::LogsOptions;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// (at, line) from a line the engine stamped: `2026-11-23T17:00:00.123456789Z text`.
pub fn split_stamp(raw: &str) -> (String, String) {
    let raw = raw.strip_suffix('\n').unwrap_or(raw);
    match raw.split_once(' ') {
        Some((at, line)) if at.contains('T') => (at.to_string(), line.to_string()),
        _ => (String::new(), raw.to_string()),
    }
}

/// The engine copies stdout and stderr in separate goroutines, so its log can hold two close
/// lines out of order: order by the stamps themselves. Stamps drop trailing zeros, so they
/// are compared as times, not as text; the sort is stable for equal or missing stamps.
pub fn sort_by_stamp(lines: &mut [LogLine]) {
    let rfc = &::time::format_description::well_known::Rfc3339;
    lines.sort_by_cached_key(|l| ::time::OffsetDateTime::parse(&l.at, rfc).ok());
}

fn log_line(chunk: LogOutput) -> Option<LogLine> {
    let (stream, bytes) = match chunk {
        LogOutput::StdOut { message } => ("stdout", message),
        LogOutput::StdErr { message } => ("stderr", message),
        LogOutput::Console { message } => ("stdout", message),
        LogOutput::StdIn { .. } => return None,
    };
    let (at, line) = split_stamp(&String::from_utf8_lossy(&bytes));
    Some(LogLine {
        at,
        stream: stream.into(),
        line,
    })
}

impl DockerEngine {
    pub(super) async fn exec_in(&self, name: &str, mut req: ExecRequest) -> Result<ExecStatus> {
        let d = self.docker().await?;
        let what = format!(
            "running {:?} in {name}",
            req.argv.first().map(String::as_str).unwrap_or("")
        );
        let opts = CreateExecOptions {
            attach_stdin: Some(req.stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(req.argv.clone()),
            env: Some(req.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            ..Default::default()
        };
        let r = d.create_exec(name, opts).await;
        let id = self.call(&what, r).await?.id;
        let opts = StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: None,
        };
        let r = d.start_exec(&id, Some(opts)).await;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = self.call(&what, r).await?
        else {
            return Err(self.err(&what, "the engine detached the command"));
        };
        let stdin = req.stdin.take();
        let feed = async move {
            if let Some(mut from) = stdin {
                // The command may stop reading early (it failed): its exit code tells.
                if let Err(e) = tokio::io::copy(&mut from, &mut input).await {
                    tracing::debug!(error = %e, "stdin of a command closed early");
                }
                let _ = input.shutdown().await;
            }
        };
        let (stdout, stderr) = (&mut req.stdout, &mut req.stderr);
        let drain = async move {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(|e| Error::Docker(format!("reading output: {e}")))? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        stdout.write_all(&message).await
                    }
                    LogOutput::StdErr { message } => stderr.write_all(&message).await,
                    LogOutput::StdIn { .. } => Ok(()),
                }
                .map_err(|e| Error::internal("writing a command's output", e))?;
            }
            stdout
                .flush()
                .await
                .and(stderr.flush().await)
                .map_err(|e| Error::internal("writing a command's output", e))
        };
        let both = async {
            let ((), drained) = tokio::join!(feed, drain);
            drained
        };
        match tokio::time::timeout(req.timeout, both).await {
            Ok(r) => r?,
            Err(_) => {
                self.kill_exec(&d, &id).await;
                return Ok(ExecStatus {
                    exit_code: None,
                    timed_out: true,
                });
            }
        }
        // The stream ends as the process exits; the engine may take a moment to record it.
        for _ in 0..50 {
            let r = d.inspect_exec(&id).await;
            let info = self.call(&what, r).await?;
            if info.running != Some(true) {
                return Ok(ExecStatus {
                    exit_code: info.exit_code,
                    timed_out: false,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.err(&what, "the command's exit was not recorded"))
    }

    /// The engine has no call to stop one exec: kill its process by the host pid it reports,
    /// but only where that pid is ours to read. With a tcp:// engine the pid is another host's,
    /// and a local process of that number is someone else's: it is left running (logged).
    /// Locally the pid must still be in the container's cgroup, so a pid reused meanwhile, or
    /// seen from another pid namespace, is not killed either.
    async fn kill_exec(&self, d: &bollard::Docker, id: &str) {
        let Ok(info) = d.inspect_exec(id).await else {
            return;
        };
        let (Some(pid), Some(container)) = (info.pid.filter(|p| *p > 0), info.container_id) else {
            return;
        };
        if !self.endpoint.starts_with("unix://") {
            tracing::warn!(exec = %id, "a timed-out command runs on: the engine is remote");
            return;
        }
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if !in_container(&cgroup, &container) {
            tracing::warn!(exec = %id, pid, "a timed-out command runs on: its pid is not in the container here");
            return;
        }
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }

    fn logs_stream(
        d: &bollard::Docker,
        name: &str,
        tail: usize,
        since: Option<i64>,
        follow: bool,
    ) -> BoxStream<'static, std::result::Result<LogOutput, bollard::errors::Error>> {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps: true,
            follow,
            tail: tail.to_string(),
            // The engine API takes an i32: a time past 2038 is clamped, still in the future.
            since: since.unwrap_or(0).clamp(0, i64::from(i32::MAX)) as i32,
            ..Default::default()
        };
        d.logs(name, Some(opts)).boxed()
    }

    pub(super) async fn logs_of(
        &self,
        name: &str,
        tail: usize,
        since: Option<i64>,
    ) -> Result<Vec<LogLine>> {
        let d = self.docker().await?;
        let mut stream = Self::logs_stream(&d, name, tail, since, false);
        let mut lines = vec![];
        while let Some(chunk) = stream.next().await {
            let chunk = self
                .call(&format!("reading the logs of {name}"), chunk)
                .await?;
            lines.extend(log_line(chunk));
        }
        sort_by_stamp(&mut lines);
        Ok(lines)
    }

    pub(super) async fn follow_logs_of(
        &self,
        name: &str,
        tail: usize,
    ) -> Result<BoxStream<'static, Result<LogLine>>> {
        let d = self.docker().await?;
        let what = format!("following the logs of {name}");
        let stream = Self::logs_stream(&d, name, tail, None, true).filter_map(move |chunk| {
            let r = match chunk {
                Ok(c) => log_line(c).map(Ok),
                Err(e) => Some(Err(Error::Docker(format!("{what}: {e}")))),
            };
            futures::future::ready(r)
        });
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_split_from_lines() {
        assert_eq!(
            super::split_stamp("2026-11-23T17:00:00.123456789Z app: ready\n"),
            ("2026-11-23T17:00:00.123456789Z".into(), "app: ready".into())
        );
        assert_eq!(
            super::split_stamp("no stamp"),
            ("".into(), "no stamp".into())
        );
    }

    #[test]
    fn lines_sort_by_time_not_by_text() {
        let line = |at: &str, text: &str| super::LogLine {
            at: at.into(),
            stream: "stdout".into(),
            line: text.into(),
        };
        // ".92Z" sorts after ".921Z" as text, yet it is the earlier time.
        let mut lines = vec![
            line("2026-11-23T18:02:24.921Z", "second"),
            line("2026-11-23T18:02:24.92Z", "first"),
            line("2026-11-23T18:02:25Z", "third"),
        ];
        super::sort_by_stamp(&mut lines);
        let order: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(order, ["first", "second", "third"]);
    }
}

/// Whether a `/proc/<pid>/cgroup` text puts the process in the container with the full id
/// `container` (cgroup v1 `/docker/<id>`, v2 `docker-<id>.scope`, or a nested path).
fn in_container(cgroup: &str, container: &str) -> bool {
    container.len() >= 64
        && cgroup.lines().any(|l| {
            l.rsplit(':')
                .next()
                .is_some_and(|path| path.split('/').any(|part| part.contains(container)))
        })
}

#[cfg(test)]
mod kill_tests {
    use super::in_container;

    #[test]
    fn only_a_process_of_that_container_is_killed() {
        let id = "a".repeat(64);
        let v2 = format!("0::/system.slice/docker-{id}.scope\n");
        let v1 = format!("12:pids:/docker/{id}\n1:name=systemd:/docker/{id}\n");
        assert!(in_container(&v2, &id));
        assert!(in_container(&v1, &id));
        assert!(!in_container("0::/user.slice/session-1.scope\n", &id));
        assert!(!in_container(&v2, &"b".repeat(64)));
        assert!(!in_container("", &id));
        // A short id would match too much.
        assert!(!in_container(&v2, "aaaa"));
    }
}
