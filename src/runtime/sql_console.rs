//! The SQL console: one statement on a stage database, as its user, with a statement timeout,
//! in a read-only transaction unless asked otherwise, rows beyond `max_rows` not sent, values
//! turned into JSON faithfully from PostgreSQL's own text form.

use crate::core::stage::interfaces::{DbTarget, SqlColumn, SqlRequest, SqlResult};
use crate::core::{Error, Result};
use base64::Engine as _;
use futures::{pin_mut, TryStreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

/// A PostgreSQL error with its SQLSTATE, as the API reports it.
pub fn db_error(e: &tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(d) => Error::Database(format!("{} (SQLSTATE {})", d.message(), d.code().code())),
        None => Error::Database(e.to_string()),
    }
}

/// One value, from its text form and its column's type: numbers, bool and null as themselves;
/// numeric and times as their exact text; bytea as base64; anything else as text.
pub fn to_json(text: Option<&str>, ty: &Type) -> Value {
    let Some(t) = text else { return Value::Null };
    match *ty {
        Type::BOOL => Value::Bool(t == "t"),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => t
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(t.into())),
        // NaN and infinities have no JSON number: text.
        Type::FLOAT4 | Type::FLOAT8 => t
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(t.into()), Value::Number),
        Type::BYTEA => match t.strip_prefix("\\x").map(hex) {
            Some(Some(bytes)) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            _ => Value::String(t.into()),
        },
        _ => Value::String(t.into()),
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub async fn run(client: &tokio_postgres::Client, req: &SqlRequest) -> Result<SqlResult> {
    if req.query.trim().is_empty() {
        return Err(Error::invalid("query", "is empty"));
    }
    let mode = if req.read_only {
        "READ ONLY"
    } else {
        "READ WRITE"
    };
    let ms = req.timeout.as_millis().max(1);
    client
        .batch_execute(&format!("BEGIN {mode}; SET LOCAL statement_timeout = {ms}"))
        .await
        .map_err(|e| db_error(&e))?;
    let result = statement(client, req).await;
    let end = if result.is_ok() && !req.read_only {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = client.batch_execute(end).await.map_err(|e| db_error(&e));
    let result = result?;
    ended?;
    Ok(result)
}

async fn statement(client: &tokio_postgres::Client, req: &SqlRequest) -> Result<SqlResult> {
    // Preparing parses without running: it yields the column types, and PostgreSQL refuses
    // to prepare more than one statement.
    let prepared = client.prepare(&req.query).await.map_err(|e| {
        let several = e
            .as_db_error()
            .is_some_and(|d| d.message().contains("multiple commands"));
        if several {
            Error::invalid(
                "query",
                "holds several statements; send exactly one per call",
            )
        } else {
            db_error(&e)
        }
    })?;
    let types: Vec<Type> = prepared
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let columns = prepared
        .columns()
        .iter()
        .map(|c| SqlColumn {
            name: c.name().to_string(),
            type_name: c.type_().name().to_string(),
        })
        .collect();
    let stream = client
        .simple_query_raw(&req.query)
        .await
        .map_err(|e| db_error(&e))?;
    pin_mut!(stream);
    let (mut rows, mut truncated, mut changed) = (vec![], false, 0);
    while let Some(message) = stream.try_next().await.map_err(|e| db_error(&e))? {
        match message {
            SimpleQueryMessage::Row(row) if rows.len() < req.max_rows => rows.push(
                (0..row.len())
                    .map(|i| to_json(row.get(i), types.get(i).unwrap_or(&Type::TEXT)))
                    .collect(),
            ),
            // Rows beyond the cap are read off the connection, never sent.
            SimpleQueryMessage::Row(_) => truncated = true,
            SimpleQueryMessage::CommandComplete(n) => changed = n,
            _ => {}
        }
    }
    // A statement without columns (UPDATE, INSERT) reports the rows it changed.
    let row_count = if types.is_empty() {
        changed
    } else {
        rows.len() as u64
    };
    Ok(SqlResult {
        columns,
        rows,
        row_count,
        truncated,
    })
}

/// Client-side guard past the server's statement timeout.
pub const SLACK: Duration = Duration::from_secs(5);

pub async fn connect_and_run(t: &DbTarget, db: &str, req: &SqlRequest) -> Result<SqlResult> {
    let client = super::pgdb::connect(t, db)
        .await
        .map_err(|e| Error::Database(format!("connecting to {db}: {e}")))?;
    tokio::time::timeout(req.timeout + SLACK, run(&client, req))
        .await
        .map_err(|_| Error::Database(format!("no answer within {:?}", req.timeout + SLACK)))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_become_json_faithfully() {
        assert_eq!(to_json(None, &Type::INT4), Value::Null);
        assert_eq!(to_json(Some("t"), &Type::BOOL), json!(true));
        assert_eq!(to_json(Some("-42"), &Type::INT8), json!(-42));
        assert_eq!(to_json(Some("1.5"), &Type::FLOAT8), json!(1.5));
        assert_eq!(to_json(Some("NaN"), &Type::FLOAT8), json!("NaN"));
        assert_eq!(
            to_json(Some("12345678901234567890.000000000001"), &Type::NUMERIC),
            json!("12345678901234567890.000000000001")
        );
        assert_eq!(
            to_json(Some("2026-11-23 17:00:00.123456+00"), &Type::TIMESTAMPTZ),
            json!("2026-11-23 17:00:00.123456+00")
        );
        assert_eq!(to_json(Some("\\x00ff41"), &Type::BYTEA), json!("AP9B"));
        assert_eq!(to_json(Some("{1,2}"), &Type::INT4_ARRAY), json!("{1,2}"));
    }
}
