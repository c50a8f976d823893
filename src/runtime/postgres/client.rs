//! A stage's PostgreSQL through tokio-postgres, reached at its container's address. The
//! agent's own queries (readiness, counts, the console roles) run with a statement and lock
//! timeout, so a tenant holding a lock delays them seconds, never forever.

use crate::core::interfaces::{
    AppRole, ConsoleRoles, DbTarget, SqlRequest, SqlResult, StageDatabase,
};
use crate::core::{Error, Result};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

pub struct Postgres;

/// The server-side bounds of every agent session, and the client-side guard past them.
const AGENT_OPTIONS: &str = "-c statement_timeout=10000 -c lock_timeout=5000";
pub const AGENT_QUERY_LIMIT: Duration = Duration::from_secs(15);

/// A session of the agent's own: bounded by `AGENT_OPTIONS`.
pub(super) async fn connect(
    t: &DbTarget,
    db: &str,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    connect_with(t, db, Some(AGENT_OPTIONS)).await
}

/// A console session: the call sets its own timeout.
pub(super) async fn connect_console(
    t: &DbTarget,
    db: &str,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    connect_with(t, db, None).await
}

async fn connect_with(
    t: &DbTarget,
    db: &str,
    options: Option<&str>,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(t.host.to_string())
        .port(t.port)
        .user(&t.user)
        .password(&t.password)
        .dbname(db)
        .connect_timeout(Duration::from_secs(5));
    if let Some(o) = options {
        config.options(o);
    }
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// An identifier quoted for SQL: names here are DNS labels, but quote anyway.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[async_trait::async_trait]
impl StageDatabase for Postgres {
    async fn wait_ready(&self, t: &DbTarget, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match connect(t, "postgres").await {
                Ok(c) if c.simple_query("SELECT 1").await.is_ok() => return Ok(()),
                Ok(_) => {}
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::Database(format!(
                        "PostgreSQL at {}:{} did not accept connections within {timeout:?}: {e}",
                        t.host, t.port
                    )))
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::Database(format!(
                    "PostgreSQL at {}:{} not ready within {timeout:?}",
                    t.host, t.port
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn create_database(&self, t: &DbTarget, name: &str) -> Result<()> {
        let c = connect(t, "postgres")
            .await
            .map_err(|e| Error::Database(e.to_string()))?;
        let exists = c
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| Error::Database(e.to_string()))?
            .is_some();
        if !exists {
            c.batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
                .await
                .map_err(|e| Error::Database(format!("creating database {name}: {e}")))?;
        }
        Ok(())
    }

    async fn count(&self, t: &DbTarget, db: &str, query: &str) -> Result<i64> {
        let c = connect(t, db)
            .await
            .map_err(|e| Error::Database(format!("connecting to {db}: {e}")))?;
        // The profile's query, in a read-only transaction so it can change nothing.
        let wrapped = format!("BEGIN READ ONLY; {query}; ROLLBACK");
        let messages = tokio::time::timeout(AGENT_QUERY_LIMIT, c.simple_query(&wrapped))
            .await
            .map_err(|_| Error::Database(format!("{db}: no answer within {AGENT_QUERY_LIMIT:?}")))?
            .map_err(|e| super::console::db_error(&e))?;
        let value = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        });
        value
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::Database(format!("{db}: the query returned no number")))
    }

    async fn sql(&self, t: &DbTarget, db: &str, req: &SqlRequest) -> Result<SqlResult> {
        super::console::connect_and_run(t, db, req).await
    }

    async fn ensure_console_roles(
        &self,
        admin: &DbTarget,
        db: &str,
        roles: &ConsoleRoles,
    ) -> Result<()> {
        super::roles::ensure(admin, db, roles).await
    }

    async fn ensure_app_role(&self, admin: &DbTarget, db: &str, role: &AppRole) -> Result<()> {
        super::app_role::ensure(admin, db, role).await
    }

    async fn each(&self, t: &DbTarget, db: &str, statements: &[String]) -> Result<()> {
        let c = connect_with(t, db, None)
            .await
            .map_err(|e| Error::Database(format!("connecting to {db}: {e}")))?;
        for s in statements {
            c.batch_execute(s)
                .await
                .map_err(|e| super::console::db_error(&e))?;
        }
        Ok(())
    }

    async fn execute(&self, t: &DbTarget, db: &str, sql: &str) -> Result<()> {
        let c = connect_with(t, db, None)
            .await
            .map_err(|e| Error::Database(format!("connecting to {db}: {e}")))?;
        c.batch_execute(&format!("BEGIN; {sql}; COMMIT"))
            .await
            .map_err(|e| super::console::db_error(&e))
    }

    async fn execute_count(&self, t: &DbTarget, db: &str, sql: &str) -> Result<i64> {
        let c = connect(t, db)
            .await
            .map_err(|e| Error::Database(format!("connecting to {db}: {e}")))?;
        let wrapped = format!("BEGIN; {sql}; COMMIT");
        let messages = tokio::time::timeout(AGENT_QUERY_LIMIT, c.simple_query(&wrapped))
            .await
            .map_err(|_| Error::Database(format!("{db}: no answer within {AGENT_QUERY_LIMIT:?}")))?
            .map_err(|e| super::console::db_error(&e))?;
        let value = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        });
        value
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::Database(format!("{db}: the statement returned no number")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes() {
        assert_eq!(super::quote_ident("qa"), "\"qa\"");
        assert_eq!(super::quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
