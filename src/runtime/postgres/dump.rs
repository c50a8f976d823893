//! `pg_dump` and `pg_restore` run in a stage's db container against its own server, with the
//! password in their environment only; the dump streams through the engine's exec.

use crate::core::interfaces::{
    ByteReader, ByteWriter, DatabaseDumps, DbTarget, DumpJob, Engine, ExecRequest,
};
use crate::core::stage::console::Capped;
use crate::core::{Error, Result};
use std::sync::Arc;
use std::time::Duration;

/// A dump or a restore may take this long.
const DUMP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// What of a tool's stderr an error keeps.
const STDERR_CAP: usize = 64 << 10;

pub struct PgDumps {
    pub engine: Arc<dyn Engine>,
}

/// How pg_dump and pg_restore reach the database from inside its container.
fn pg_args(target: &DbTarget) -> (Vec<String>, Vec<(String, String)>) {
    (
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            target.port.to_string(),
            "-U".into(),
            target.user.clone(),
        ],
        vec![("PGPASSWORD".into(), target.password.clone())],
    )
}

impl PgDumps {
    /// Runs `tool` with `args`; its stderr becomes the error when it fails.
    async fn run(
        &self,
        job: &DumpJob,
        tool: &str,
        args: &[&str],
        stdin: Option<ByteReader>,
        stdout: ByteWriter,
    ) -> Result<()> {
        let (mut argv, env) = pg_args(&job.target);
        argv.insert(0, tool.into());
        argv.extend(args.iter().map(|a| a.to_string()));
        let stderr = Capped::new(STDERR_CAP);
        let req = ExecRequest {
            argv,
            env,
            stdin,
            stdout,
            stderr: Box::new(stderr.clone()),
            timeout: DUMP_TIMEOUT,
        };
        match self.engine.exec(&job.container, req).await?.exit_code {
            Some(0) => Ok(()),
            _ => Err(Error::Database(format!(
                "{tool} for {}: {}",
                job.label,
                stderr.take().0.trim()
            ))),
        }
    }
}

#[async_trait::async_trait]
impl DatabaseDumps for PgDumps {
    async fn dump(&self, job: DumpJob, to: ByteWriter) -> Result<()> {
        let args = ["-Fc", "-d", &job.db];
        self.run(&job, "pg_dump", &args, None, to).await
    }

    async fn restore(&self, job: DumpJob, from: ByteReader) -> Result<()> {
        let mut args = vec!["--no-owner", "--no-privileges", "--exit-on-error"];
        // SET ROLE after connecting: what the restore creates is the app's.
        let role = job.role.as_ref().map(|r| format!("--role={r}"));
        args.extend(role.as_deref());
        args.extend(["-d", job.db.as_str()]);
        let sink = Box::new(tokio::io::sink());
        self.run(&job, "pg_restore", &args, Some(from), sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_to_the_environment_only() {
        let t = DbTarget {
            host: "10.0.0.2".parse().unwrap(),
            port: 5432,
            user: "odoo".into(),
            password: "s3cret".into(),
        };
        let (argv, env) = pg_args(&t);
        assert_eq!(argv, ["-h", "127.0.0.1", "-p", "5432", "-U", "odoo"]);
        assert_eq!(env, [("PGPASSWORD".to_string(), "s3cret".to_string())]);
    }
}
