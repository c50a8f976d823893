//! The stage's consoles: `stage.sql` on its database, `stage.logs` and `stage.exec` on its
//! containers. Bounds are checked here, before anything reaches the engine or PostgreSQL.

use super::common::profile_of;
use super::containers::{APP, CODE_SERVER, DB};
use super::model::Stage;
use super::transitions::Operation;
use super::{naming, Stages};
use crate::core::interfaces::{
    ConsoleRoles, DbTarget, ExecRequest, LogLine, SqlRequest, SqlResult,
};
use crate::core::settings::Settings;
use crate::core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

pub const MAX_TAIL: usize = 1000;
/// What `stage.exec` returns of each stream at most.
pub const OUTPUT_CAP: usize = 1 << 20;
pub const MAX_TIMEOUT_S: u64 = 3600;
pub const MAX_ROWS: usize = 100_000;
/// `stage.sql`'s `max_bytes`, default and bound: the API answers at most 10 MiB, and the
/// rest of the answer (columns, brackets) needs room beside the values.
pub const DEFAULT_MAX_BYTES: usize = 8 << 20;
pub const MAX_BYTES: usize = 8 << 20;
/// The console's login roles: never the superuser the app and the agent use.
pub const CONSOLE_READER: &str = "stagelet_console";
pub const CONSOLE_WRITER: &str = "stagelet_console_rw";

/// `stage.exec`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    /// `None` when the command was killed at its timeout.
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub timed_out: bool,
}

/// Keeps the first `cap` bytes written and drops the rest, remembering that it did.
#[derive(Clone)]
pub struct Capped {
    inner: Arc<Mutex<(Vec<u8>, bool)>>,
    cap: usize,
}

impl Capped {
    pub fn new(cap: usize) -> Self {
        Capped {
            inner: Arc::new(Mutex::new((vec![], false))),
            cap,
        }
    }

    /// The kept text (invalid UTF-8 replaced) and whether anything was dropped.
    pub fn take(&self) -> (String, bool) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (String::from_utf8_lossy(&g.0).into_owned(), g.1)
    }
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.cap.saturating_sub(g.0.len());
        g.0.extend_from_slice(&buf[..buf.len().min(room)]);
        if buf.len() > room {
            g.1 = true;
        }
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `stage.sql` as the API takes it: what is absent takes its default here (read-only, 30 s,
/// 1000 rows, [`DEFAULT_MAX_BYTES`]).
#[derive(Debug, Clone, Default)]
pub struct SqlCall {
    pub query: String,
    pub read_only: Option<bool>,
    pub timeout_s: Option<u64>,
    pub max_rows: Option<usize>,
    pub max_bytes: Option<usize>,
}

/// `stage.logs` and `stage.follow_logs`: `component` defaults to the app, `tail` to 100 (10
/// when following, which the API says), `since` to the start.
#[derive(Debug, Clone, Default)]
pub struct LogsCall {
    pub component: Option<String>,
    pub tail: Option<usize>,
    pub since: Option<String>,
}

/// `stage.exec`: `component` defaults to the app, `timeout_s` to 60.
#[derive(Debug, Clone, Default)]
pub struct ExecCall {
    pub component: Option<String>,
    pub command: Vec<String>,
    pub timeout_s: Option<u64>,
}

/// `component` (default app) as a container role of this stage.
fn role(stage: &Stage, component: Option<&str>) -> Result<&'static str> {
    match component.unwrap_or(APP) {
        "app" => Ok(APP),
        "db" => Ok(DB),
        "code_server" if stage.code_server.is_some() => Ok(CODE_SERVER),
        other => Err(Error::invalid(
            "component",
            format!(
                "{other:?} is not one of app, db{}",
                if stage.code_server.is_some() {
                    ", code_server"
                } else {
                    ""
                }
            ),
        )),
    }
}

pub fn check_timeout(field: &str, s: u64) -> Result<Duration> {
    if !(1..=MAX_TIMEOUT_S).contains(&s) {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_TIMEOUT_S} seconds"),
        ));
    }
    Ok(Duration::from_secs(s))
}

/// `tail` (`default` when absent), refused above [`MAX_TAIL`].
fn check_tail(tail: Option<usize>, default: usize) -> Result<usize> {
    let tail = tail.unwrap_or(default);
    if tail > MAX_TAIL {
        return Err(Error::invalid(
            "tail",
            format!("must be at most {MAX_TAIL}"),
        ));
    }
    Ok(tail)
}

impl Stages {
    pub async fn sql(
        &self,
        config: &Settings,
        reference: &str,
        call: SqlCall,
    ) -> Result<SqlResult> {
        let SqlCall {
            query,
            read_only,
            timeout_s,
            max_rows,
            max_bytes,
        } = call;
        let read_only = read_only.unwrap_or(true);
        let timeout_s = timeout_s.unwrap_or(30);
        let max_rows = max_rows.unwrap_or(1000);
        let max_bytes = max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        let timeout = check_timeout("timeout_s", timeout_s)?;
        if !(1..=MAX_ROWS).contains(&max_rows) {
            return Err(Error::invalid(
                "max_rows",
                format!("must be 1 to {MAX_ROWS}"),
            ));
        }
        if !(1..=MAX_BYTES).contains(&max_bytes) {
            return Err(Error::invalid(
                "max_bytes",
                format!("must be 1 to {MAX_BYTES}"),
            ));
        }
        let stage = self.find(reference)?;
        Operation::Console.check(&stage.reference(), stage.state)?;
        let profile = profile_of(config, &stage.profile)?;
        let admin = self.db_target(&naming(config), &stage, profile).await?;
        let roles = ConsoleRoles {
            reader: CONSOLE_READER.into(),
            writer: CONSOLE_WRITER.into(),
            password: match &stage.console_password {
                Some(p) => p.clone(),
                None => self.console_password(stage.uuid).await?,
            },
        };
        // Every call: a role a previous call could have altered is put back first.
        self.deps
            .db
            .ensure_console_roles(&admin, stage.db_name(), &roles)
            .await?;
        let target = DbTarget {
            user: if read_only {
                roles.reader
            } else {
                roles.writer
            },
            password: roles.password,
            ..admin
        };
        let req = SqlRequest {
            query,
            read_only,
            timeout,
            max_rows,
            max_bytes,
        };
        self.deps.db.sql(&target, stage.db_name(), &req).await
    }

    /// The console roles' password, made and saved at the first use (under the stage's lock,
    /// so two first calls agree on one).
    async fn console_password(&self, uuid: uuid::Uuid) -> Result<String> {
        let lock = self.lock_of(uuid);
        let _g = lock.lock().await;
        let mut stage = self.find(&uuid.to_string())?;
        if let Some(p) = &stage.console_password {
            return Ok(p.clone());
        }
        use rand::distr::{Alphanumeric, SampleString};
        let password = Alphanumeric.sample_string(&mut rand::rng(), 32);
        stage.console_password = Some(password.clone());
        self.save(&stage).await?;
        Ok(password)
    }

    /// The container of `component`, which must exist.
    async fn container_of(
        &self,
        config: &Settings,
        stage: &Stage,
        component: Option<&str>,
    ) -> Result<String> {
        let name = naming(config).container(stage, role(stage, component)?);
        match self.deps.engine.inspect_container(&name, "").await? {
            Some(_) => Ok(name),
            None => Err(Error::NotFound {
                what: "container",
                id: name,
            }),
        }
    }

    pub async fn logs(
        &self,
        config: &Settings,
        reference: &str,
        call: LogsCall,
    ) -> Result<Vec<LogLine>> {
        let tail = check_tail(call.tail, 100)?;
        let since = call
            .since
            .as_deref()
            .map(super::common::parse_since)
            .transpose()?;
        let stage = self.find(reference)?;
        let name = self
            .container_of(config, &stage, call.component.as_deref())
            .await?;
        self.deps.engine.logs(&name, tail, since).await
    }

    /// `call.since` plays no part: following starts from the tail.
    pub async fn follow_logs(
        &self,
        config: &Settings,
        reference: &str,
        call: LogsCall,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        let tail = check_tail(call.tail, 10)?;
        let stage = self.find(reference)?;
        let name = self
            .container_of(config, &stage, call.component.as_deref())
            .await?;
        self.deps.engine.follow_logs(&name, tail).await
    }

    pub async fn exec(
        &self,
        config: &Settings,
        reference: &str,
        call: ExecCall,
    ) -> Result<ExecResult> {
        let ExecCall {
            component,
            command,
            timeout_s,
        } = call;
        let component = component.as_deref();
        let timeout = check_timeout("timeout_s", timeout_s.unwrap_or(60))?;
        if command.is_empty() || command[0].is_empty() {
            return Err(Error::invalid(
                "command",
                "needs at least the program to run",
            ));
        }
        if command.iter().any(|a| a.contains('\0')) {
            return Err(Error::invalid("command", "an argument holds a NUL byte"));
        }
        let stage = self.find(reference)?;
        Operation::Console.check(&stage.reference(), stage.state)?;
        let name = self.container_of(config, &stage, component).await?;
        let (stdout, stderr) = (Capped::new(OUTPUT_CAP), Capped::new(OUTPUT_CAP));
        let status = self
            .deps
            .engine
            .exec(
                &name,
                ExecRequest {
                    argv: command,
                    env: vec![],
                    stdin: None,
                    stdout: Box::new(stdout.clone()),
                    stderr: Box::new(stderr.clone()),
                    timeout,
                },
            )
            .await?;
        let ((out, out_cut), (err, err_cut)) = (stdout.take(), stderr.take());
        Ok(ExecResult {
            exit_code: status.exit_code,
            stdout: out,
            stderr: err,
            stdout_truncated: out_cut,
            stderr_truncated: err_cut,
            timed_out: status.timed_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn capped_keeps_the_head_and_says_it_cut() {
        let c = Capped::new(5);
        let mut w = c.clone();
        w.write_all(b"abc").await.unwrap();
        assert_eq!(c.take(), ("abc".into(), false));
        w.write_all(b"defgh").await.unwrap();
        assert_eq!(c.take(), ("abcde".into(), true));
    }

    #[test]
    fn bounds_name_their_field() {
        assert!(check_timeout("timeout_s", 0).is_err());
        assert!(check_timeout("timeout_s", 3601).is_err());
        assert_eq!(
            check_timeout("timeout_s", 30).unwrap(),
            Duration::from_secs(30)
        );
    }
}
