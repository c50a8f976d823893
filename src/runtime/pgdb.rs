//! A stage's PostgreSQL through tokio-postgres, reached at its container's address.

use crate::core::stage::interfaces::{DbTarget, SqlRequest, SqlResult, StageDatabase};
use crate::core::{Error, Result};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

pub struct Postgres;

pub(super) async fn connect(
    t: &DbTarget,
    db: &str,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(t.host.to_string())
        .port(t.port)
        .user(&t.user)
        .password(&t.password)
        .dbname(db)
        .connect_timeout(Duration::from_secs(5));
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
        let messages = c
            .simple_query(&wrapped)
            .await
            .map_err(|e| Error::Database(format!("{db}: {e}")))?;
        let value = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        });
        value
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::Database(format!("{db}: the query returned no number")))
    }

    async fn sql(&self, t: &DbTarget, db: &str, req: &SqlRequest) -> Result<SqlResult> {
        super::sql_console::connect_and_run(t, db, req).await
    }

    async fn each(&self, t: &DbTarget, db: &str, statements: &[String]) -> Result<()> {
        let c = connect(t, db)
            .await
            .map_err(|e| Error::Database(format!("connecting to {db}: {e}")))?;
        for s in statements {
            c.batch_execute(s)
                .await
                .map_err(|e| super::sql_console::db_error(&e))?;
        }
        Ok(())
    }

    async fn execute(&self, t: &DbTarget, db: &str, sql: &str) -> Result<()> {
        let c = connect(t, db)
            .await
            .map_err(|e| Error::Database(format!("connecting to {db}: {e}")))?;
        c.batch_execute(&format!("BEGIN; {sql}; COMMIT"))
            .await
            .map_err(|e| super::sql_console::db_error(&e))
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
