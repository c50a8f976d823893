//! A child process's output read as it comes, never held whole: stdout record by record to a
//! callback that may stop it (the child is then killed), stderr's head kept up to a cap, all
//! within one timeout.

use crate::core::{Error, Result};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

/// The longest stdout record read; a longer one stops the child.
pub const MAX_RECORD: usize = 64 << 10;
/// What is kept of stderr, for the error message.
pub const STDERR_CAP: usize = 64 << 10;
/// What `collect` keeps of stdout at most.
pub const OUTPUT_CAP: usize = 1 << 20;

/// What a failed run reports: timeout, spawn failure, the callback's error, or a non-zero exit
/// with stderr's text.
#[derive(Debug)]
pub enum Failure {
    TimedOut,
    Spawn(std::io::Error),
    Stopped(Error),
    Exit(String),
}

/// Reads at most `cap` bytes of `r` and drains the rest, so the child never blocks on a full pipe.
async fn head_of(mut r: impl AsyncRead + Unpin, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// Runs `cmd` and hands every stdout record (split at `sep`, without it) to `record`. An error
/// from `record`, an over-long record or the timeout kills the child at once.
pub async fn stream(
    mut cmd: Command,
    timeout: Duration,
    sep: u8,
    mut record: impl FnMut(&[u8]) -> Result<()> + Send,
) -> std::result::Result<(), Failure> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(Failure::Spawn)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    // Its own task: it must keep draining while stdout is read, and is dropped with us.
    let err_task = tokio::spawn(head_of(stderr, STDERR_CAP));
    let _abort = AbortOnDrop(err_task.abort_handle());
    let work = async {
        let mut out = BufReader::new(stdout);
        let mut buf = Vec::new();
        let read: Result<()> = loop {
            buf.clear();
            let n = match (&mut out)
                .take(MAX_RECORD as u64 + 1)
                .read_until(sep, &mut buf)
                .await
            {
                Ok(n) => n,
                Err(e) => break Err(Error::internal("reading a child's output", e)),
            };
            if n == 0 {
                break Ok(());
            }
            if buf.last() == Some(&sep) {
                buf.pop();
            } else if buf.len() > MAX_RECORD {
                break Err(Error::Git(format!(
                    "an output line is longer than {MAX_RECORD} bytes"
                )));
            }
            if let Err(e) = record(&buf) {
                break Err(e);
            }
        };
        if let Err(e) = read {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(Failure::Stopped(e));
        }
        let status = child.wait().await.map_err(Failure::Spawn)?;
        if status.success() {
            return Ok(());
        }
        // The child is gone; a grandchild holding stderr open gets a moment, not forever.
        let text = tokio::time::timeout(Duration::from_secs(2), err_task)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        Err(Failure::Exit(String::from_utf8_lossy(&text).into_owned()))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Failure::TimedOut)?
}

/// Runs `cmd` and returns its stdout, refused past `cap` bytes (the child is killed there).
pub async fn collect(
    cmd: Command,
    timeout: Duration,
    cap: usize,
) -> std::result::Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    stream(cmd, timeout, b'\n', |line| {
        if out.len() + line.len() + 1 > cap {
            return Err(Error::Git(format!("more than {cap} bytes of output")));
        }
        out.extend_from_slice(line);
        out.push(b'\n');
        Ok(())
    })
    .await?;
    Ok(out)
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[tokio::test]
    async fn a_flood_is_cut_and_the_child_killed() {
        let started = std::time::Instant::now();
        let r = collect(sh("yes"), Duration::from_secs(20), 1 << 16).await;
        assert!(matches!(r, Err(Failure::Stopped(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let r = collect(
            sh("head -c 200000 /dev/zero"),
            Duration::from_secs(20),
            1 << 20,
        )
        .await;
        assert!(
            matches!(r, Err(Failure::Stopped(_))),
            "one endless line: {r:?}"
        );
    }

    #[tokio::test]
    async fn output_exit_and_timeout() {
        let out = collect(sh("echo a; echo b"), Duration::from_secs(5), 100)
            .await
            .unwrap();
        assert_eq!(out, b"a\nb\n");
        match collect(sh("echo oops >&2; exit 3"), Duration::from_secs(5), 100).await {
            Err(Failure::Exit(e)) => assert_eq!(e.trim(), "oops"),
            other => panic!("{other:?}"),
        }
        let r = collect(sh("sleep 30"), Duration::from_millis(200), 100).await;
        assert!(matches!(r, Err(Failure::TimedOut)), "{r:?}");
    }
}
