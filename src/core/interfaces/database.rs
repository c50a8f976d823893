//! A stage's PostgreSQL as the core drives it: readiness, databases, the SQL console and its
//! roles. Implemented in `runtime::postgres`.

use crate::core::Result;
use std::net::IpAddr;
use std::time::Duration;

/// The PostgreSQL of a stage, reached at its container's address.
#[derive(Debug, Clone)]
pub struct DbTarget {
    pub host: IpAddr,
    pub port: u16,
    pub user: String,
    pub password: String,
}

#[async_trait::async_trait]
pub trait StageDatabase: Send + Sync {
    /// Waits until PostgreSQL accepts connections with these credentials.
    async fn wait_ready(&self, target: &DbTarget, timeout: Duration) -> Result<()>;
    /// Creates `name` unless it exists.
    async fn create_database(&self, target: &DbTarget, name: &str) -> Result<()>;
    /// Runs a query returning one number (first column of the first row) on database `db`.
    async fn count(&self, target: &DbTarget, db: &str, query: &str) -> Result<i64>;
    /// The SQL console: one statement, in a read-only transaction unless `read_only` is false.
    async fn sql(&self, target: &DbTarget, db: &str, req: &SqlRequest) -> Result<SqlResult>;
    /// Makes (or puts back in shape) the console's two roles, neither a superuser: `reader`
    /// reads every table, `writer` also changes rows; both log in with `password`.
    async fn ensure_console_roles(
        &self,
        admin: &DbTarget,
        db: &str,
        roles: &ConsoleRoles,
    ) -> Result<()>;
    /// Makes (or puts back in shape) the app's login role, neither a superuser nor able to
    /// create databases or roles, with its password, and makes it the owner of `db`.
    async fn ensure_app_role(&self, admin: &DbTarget, db: &str, role: &AppRole) -> Result<()>;
    /// Runs `sql` (several statements allowed: it comes from the configuration) in one
    /// transaction.
    async fn execute(&self, target: &DbTarget, db: &str, sql: &str) -> Result<()>;
    /// Runs `sql` (from the configuration) in one transaction, which commits, and returns the
    /// number in the first column of the first row it returned (what it says it changed).
    async fn execute_count(&self, target: &DbTarget, db: &str, sql: &str) -> Result<i64>;
    /// Runs each statement on its own, outside any transaction (CREATE and DROP DATABASE).
    async fn each(&self, target: &DbTarget, db: &str, statements: &[String]) -> Result<()>;
}

#[derive(Debug, Clone)]
pub struct SqlRequest {
    pub query: String,
    pub read_only: bool,
    pub timeout: Duration,
    pub max_rows: usize,
    /// Rows stop before their values' text adds up to more.
    pub max_bytes: usize,
}

/// The role the app connects as (the profile's `app_db_user`) and its password.
#[derive(Debug, Clone)]
pub struct AppRole {
    pub user: String,
    pub password: String,
}

/// The SQL console's login roles on a stage's PostgreSQL.
#[derive(Debug, Clone)]
pub struct ConsoleRoles {
    pub reader: String,
    pub writer: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SqlResult {
    pub columns: Vec<SqlColumn>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows sent (after `max_rows`), or rows changed by a statement that returns none.
    pub row_count: u64,
    /// More rows were there than `max_rows`, or than fit in `max_bytes`.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SqlColumn {
    pub name: String,
    /// PostgreSQL's type name.
    #[serde(rename = "type")]
    pub type_name: String,
}
