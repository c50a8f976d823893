//! The SQL console: one statement on a stage database, as the console role it is given, on a
//! fresh session, with a statement timeout, in a read-only transaction unless asked otherwise;
//! rows read as they come and kept up to `max_rows` and `max_bytes`, values turned into JSON
//! faithfully from PostgreSQL's own text form.

use crate::core::interfaces::{DbTarget, SqlColumn, SqlRequest, SqlResult};
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

/// What a row's values count toward `max_bytes`: their text as JSON escapes it, and a
/// little for each value's quotes and separator.
pub fn row_bytes(row: &tokio_postgres::SimpleQueryRow) -> usize {
    (0..row.len())
        .map(|i| row.get(i).map_or(4, json_len) + 8)
        .sum()
}

/// The length of `s` as a JSON string's contents.
fn json_len(s: &str) -> usize {
    s.len()
        + s.bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 1,
                0..=0x1f => 5,
                _ => 0,
            })
            .sum::<usize>()
}

/// One statement in its transaction. A read-only one cut short by `max_rows` or `max_bytes`
/// is cancelled on the server rather than read to its end; the caller then drops the session,
/// which rolls it back.
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
    let (result, complete) = match statement(client, req).await {
        Ok((r, complete)) => (Ok(r), complete),
        Err(e) => (Err(e), true),
    };
    if !complete {
        let token = client.cancel_token();
        let _ = tokio::time::timeout(SLACK, token.cancel_query(tokio_postgres::NoTls)).await;
        return result;
    }
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

/// The statement's result, and whether its rows were read to the end.
async fn statement(client: &tokio_postgres::Client, req: &SqlRequest) -> Result<(SqlResult, bool)> {
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
    // Rows come as the server sends them (the connection reads no further than we do).
    let stream = client
        .simple_query_raw(&req.query)
        .await
        .map_err(|e| db_error(&e))?;
    pin_mut!(stream);
    let (mut rows, mut truncated, mut changed, mut bytes) = (vec![], false, 0, 0usize);
    while let Some(message) = stream.try_next().await.map_err(|e| db_error(&e))? {
        match message {
            SimpleQueryMessage::Row(row) if !truncated => {
                let size = row_bytes(&row);
                if rows.len() >= req.max_rows || bytes + size > req.max_bytes {
                    truncated = true;
                    // Nothing to commit: stop here. A write must run to its end.
                    if req.read_only {
                        return Ok((result(columns, rows, 0, &types, true), false));
                    }
                    continue;
                }
                bytes += size;
                rows.push(
                    (0..row.len())
                        .map(|i| to_json(row.get(i), types.get(i).unwrap_or(&Type::TEXT)))
                        .collect(),
                );
            }
            SimpleQueryMessage::CommandComplete(n) => changed = n,
            _ => {}
        }
    }
    Ok((result(columns, rows, changed, &types, truncated), true))
}

fn result(
    columns: Vec<SqlColumn>,
    rows: Vec<Vec<Value>>,
    changed: u64,
    types: &[Type],
    truncated: bool,
) -> SqlResult {
    // A statement without columns (UPDATE, INSERT) reports the rows it changed.
    let row_count = if types.is_empty() {
        changed
    } else {
        rows.len() as u64
    };
    SqlResult {
        columns,
        rows,
        row_count,
        truncated,
    }
}

/// Client-side guard past the server's statement timeout.
pub const SLACK: Duration = Duration::from_secs(5);

/// Runs `req` on a session of its own, dropped afterwards: nothing a call sets outlives it.
pub async fn connect_and_run(t: &DbTarget, db: &str, req: &SqlRequest) -> Result<SqlResult> {
    let client = super::client::connect_console(t, db)
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
    fn sizes_count_json_escapes() {
        for s in ["abc", "a\"b\\c", "\u{1}\n", "héllo"] {
            assert_eq!(
                json_len(s) + 2,
                serde_json::to_string(s).unwrap().len(),
                "{s:?}"
            );
        }
    }

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
