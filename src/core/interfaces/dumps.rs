//! A stage database's dump and restore (`pg_dump -Fc`, `pg_restore`), streamed through the
//! core. Implemented in `runtime::postgres::dump` by running the tools in the db container.

use super::database::DbTarget;
use super::engine::{ByteReader, ByteWriter};
use crate::core::Result;

/// Where the tools run and what they reach: the stage's db container, its server and the
/// database; `label` (the stage's reference) names it in errors.
#[derive(Debug, Clone)]
pub struct DumpJob {
    pub container: String,
    pub target: DbTarget,
    pub db: String,
    pub label: String,
    /// The app's own role, when the stage has one: a restore creates everything as it, so the
    /// app owns its tables.
    pub role: Option<String>,
}

#[async_trait::async_trait]
pub trait DatabaseDumps: Send + Sync {
    /// `pg_dump -Fc` of `job.db`, streamed into `to`.
    async fn dump(&self, job: DumpJob, to: ByteWriter) -> Result<()>;
    /// `pg_restore` of a custom-format dump read from `from` into `job.db`.
    async fn restore(&self, job: DumpJob, from: ByteReader) -> Result<()>;
}
