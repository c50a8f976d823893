//! The app's own role on a stage's PostgreSQL, made idempotently by the superuser: a login
//! without superuser, database or role creation, replication or RLS bypass, and the owner of
//! the stage database (so of what the app creates in it). The password goes as a SCRAM
//! verifier, as the console roles' does.

use super::roles::{ident, FORBIDDEN};
use crate::core::interfaces::{AppRole, DbTarget};
use crate::core::{Error, Result};

/// The statements, in one transaction.
pub fn statements(db: &str, role: &AppRole) -> Result<String> {
    // Made by the agent as 32 letters and digits: checked anyway.
    if role.password.is_empty() || !role.password.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::internal(
            "the app role's password",
            "it is not letters and digits",
        ));
    }
    let verifier = postgres_protocol::password::scram_sha_256(role.password.as_bytes());
    let (lit, id) = (role.user.replace('\'', "''"), ident(&role.user));
    Ok([
        "BEGIN".to_string(),
        "SET LOCAL search_path = pg_catalog, pg_temp".into(),
        "SET LOCAL statement_timeout = 10000".into(),
        "SET LOCAL lock_timeout = 5000".into(),
        format!(
            "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{lit}') \
             THEN CREATE ROLE {id}; END IF; END$$"
        ),
        format!(
            "ALTER ROLE {id} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE \
             NOREPLICATION NOBYPASSRLS PASSWORD '{verifier}'"
        ),
        format!("REVOKE {FORBIDDEN} FROM {id}"),
        format!("ALTER DATABASE {} OWNER TO {id}", ident(db)),
        "COMMIT".into(),
    ]
    .join(";\n"))
}

/// Runs `statements` as the stage's superuser.
pub async fn ensure(admin: &DbTarget, db: &str, role: &AppRole) -> Result<()> {
    let sql = statements(db, role)?;
    let c = super::client::connect(admin, "postgres")
        .await
        .map_err(|e| Error::Database(format!("connecting to postgres: {e}")))?;
    tokio::time::timeout(super::client::AGENT_QUERY_LIMIT, c.batch_execute(&sql))
        .await
        .map_err(|_| Error::Database("making the app's role: no answer".into()))?
        .map_err(|e| match e.as_db_error() {
            // The server's words only, never the statement.
            Some(d) => Error::Database(format!(
                "making the app's role: {} (SQLSTATE {})",
                d.message(),
                d.code().code()
            )),
            None => Error::Database("making the app's role: the connection failed".into()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_role_owns_its_database_and_nothing_more() {
        let role = AppRole {
            user: "odoo_app".into(),
            password: "abc123".into(),
        };
        let sql = statements("qa", &role).unwrap();
        assert!(sql.contains(
            r#"ALTER ROLE "odoo_app" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE"#
        ));
        assert!(sql.contains("PASSWORD 'SCRAM-SHA-256$"), "{sql}");
        assert!(!sql.contains("abc123"), "the password itself is never sent");
        assert!(sql.contains(r#"ALTER DATABASE "qa" OWNER TO "odoo_app""#));
        let bad = AppRole {
            password: "x'; DROP ROLE y; --".into(),
            ..role
        };
        assert!(statements("qa", &bad).is_err());
    }
}
