//! The SQL console's roles on a stage's PostgreSQL, made idempotently by the superuser before
//! each console call: logins without superuser, role creation, replication or RLS bypass, and
//! without the server-side roles that run programs, read files or signal backends. The reader
//! reads every table (pg_read_all_data) and starts read-only; the writer also changes rows
//! (pg_write_all_data) but creates nothing the superuser could run. Settings a call left on
//! either role are reset. The password goes as a SCRAM verifier.

use crate::core::interfaces::{ConsoleRoles, DbTarget};
use crate::core::{Error, Result};

/// Memberships no console role may hold.
pub(super) const FORBIDDEN: &str =
    "pg_execute_server_program, pg_read_server_files, pg_write_server_files, pg_signal_backend";

pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The statements, in one transaction under an advisory lock (concurrent calls would race on
/// the same catalog rows).
pub fn statements(db: &str, roles: &ConsoleRoles) -> Result<String> {
    // Made by the agent as 32 letters and digits: nothing to escape, checked anyway.
    if roles.password.is_empty() || !roles.password.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::internal(
            "the console password",
            "it is not letters and digits",
        ));
    }
    // A SCRAM verifier, not the password: a statement PostgreSQL logs (on an error, say) shows
    // nothing that logs in. Letters, digits and `$:=+/`: nothing to escape.
    let verifier = postgres_protocol::password::scram_sha_256(roles.password.as_bytes());
    let mut sql = vec![
        "BEGIN".to_string(),
        // The tenant owns this database and may plant functions and operators in public (or
        // set the database's search_path): as the superuser, resolve only the catalog's.
        "SET LOCAL search_path = pg_catalog, pg_temp".into(),
        "SET LOCAL statement_timeout = 10000".into(),
        "SET LOCAL lock_timeout = 5000".into(),
        "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('stagelet console roles'))"
            .into(),
    ];
    for (role, read_only) in [(&roles.reader, true), (&roles.writer, false)] {
        let (lit, id) = (role.replace('\'', "''"), ident(role));
        sql.extend([
            format!(
                "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{lit}') \
                 THEN CREATE ROLE {id}; END IF; END$$"
            ),
            format!(
                "ALTER ROLE {id} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE \
                 NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20 PASSWORD '{verifier}'"
            ),
            format!("ALTER ROLE {id} RESET ALL"),
            format!("ALTER ROLE {id} IN DATABASE {} RESET ALL", ident(db)),
            format!("REVOKE {FORBIDDEN} FROM {id}"),
            format!(
                "GRANT pg_read_all_data{} TO {id}",
                if read_only { "" } else { ", pg_write_all_data" }
            ),
        ]);
        if read_only {
            sql.push(format!(
                "ALTER ROLE {id} SET default_transaction_read_only = on"
            ));
        } else {
            sql.push(format!(
                "REVOKE pg_write_all_data FROM {}",
                ident(&roles.reader)
            ));
        }
    }
    sql.push("COMMIT".into());
    Ok(sql.join(";\n"))
}

/// Runs `statements` as the stage's superuser.
pub async fn ensure(admin: &DbTarget, db: &str, roles: &ConsoleRoles) -> Result<()> {
    let sql = statements(db, roles)?;
    let c = super::client::connect(admin, db)
        .await
        .map_err(|e| Error::Database(format!("connecting to {db}: {e}")))?;
    tokio::time::timeout(super::client::AGENT_QUERY_LIMIT, c.batch_execute(&sql))
        .await
        .map_err(|_| Error::Database("making the console roles: no answer".into()))?
        .map_err(|e| {
            // Report the server's words only, never the statement.
            match e.as_db_error() {
                Some(d) => Error::Database(format!(
                    "making the console roles: {} (SQLSTATE {})",
                    d.message(),
                    d.code().code()
                )),
                None => Error::Database("making the console roles: the connection failed".into()),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_never_privileged() {
        let roles = ConsoleRoles {
            reader: "stagelet_console".into(),
            writer: "stagelet_console_rw".into(),
            password: "abc123".into(),
        };
        let sql = statements("qa", &roles).unwrap();
        assert!(sql.contains("NOSUPERUSER"));
        assert!(sql.contains("PASSWORD 'SCRAM-SHA-256$"), "{sql}");
        assert!(!sql.contains("abc123"), "the password itself is never sent");
        assert!(sql.contains(r#"REVOKE pg_execute_server_program, pg_read_server_files, pg_write_server_files, pg_signal_backend FROM "stagelet_console""#));
        assert!(sql.contains(r#"GRANT pg_read_all_data TO "stagelet_console";"#));
        assert!(
            sql.contains(r#"GRANT pg_read_all_data, pg_write_all_data TO "stagelet_console_rw""#)
        );
        assert!(sql.contains(r#"ALTER ROLE "stagelet_console" IN DATABASE "qa" RESET ALL"#));
        assert!(!sql.contains("CREATE ON"), "the writer creates nothing");
        let bad = ConsoleRoles {
            password: "a'; DROP ROLE x; --".into(),
            ..roles
        };
        assert!(statements("qa", &bad).is_err());
    }
}
