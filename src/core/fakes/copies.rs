//! Fakes that record what a copy's steps ran: an engine whose containers have an address and
//! whose one-off runs exit as told, and a database that keeps every statement it was given.

use super::{NullDb, NullEngine};
use crate::core::interfaces::{
    AppRole, ConsoleRoles, ContainerInfo, ContainerSpec, ContainerStats, DbTarget, Engine,
    ExecRequest, ExecStatus, LogLine, NetworkInfo, Owner, SqlRequest, SqlResult, StageDatabase,
    StopOutcome,
};
use crate::core::Result;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Every container exists at 10.0.0.2; `run_to_completion` records the spec and exits with
/// `exit`.
#[derive(Default)]
pub struct CopyEngine {
    pub runs: Mutex<Vec<ContainerSpec>>,
    pub exit: AtomicI64,
}

#[async_trait::async_trait]
impl Engine for CopyEngine {
    async fn create_network(
        &self,
        n: &str,
        l: &BTreeMap<String, String>,
        s: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()> {
        NullEngine.create_network(n, l, s).await
    }
    async fn remove_network(&self, n: &str, o: &Owner) -> Result<()> {
        NullEngine.remove_network(n, o).await
    }
    async fn list_labelled_networks(&self, l: &str) -> Result<Vec<NetworkInfo>> {
        NullEngine.list_labelled_networks(l).await
    }
    async fn connect_network(&self, n: &str, c: &str, a: &[String]) -> Result<()> {
        NullEngine.connect_network(n, c, a).await
    }
    async fn disconnect_network(&self, n: &str, c: &str) -> Result<()> {
        NullEngine.disconnect_network(n, c).await
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        NullEngine.create_container(spec).await
    }
    async fn start_container(&self, n: &str) -> Result<()> {
        NullEngine.start_container(n).await
    }
    async fn stop_container(&self, n: &str, s: &str, g: Duration) -> Result<StopOutcome> {
        NullEngine.stop_container(n, s, g).await
    }
    async fn remove_container(&self, n: &str, o: &Owner) -> Result<()> {
        NullEngine.remove_container(n, o).await
    }
    async fn rename_container(&self, id: &str, n: &str) -> Result<()> {
        NullEngine.rename_container(id, n).await
    }
    async fn inspect_container(&self, n: &str, _: &str) -> Result<Option<ContainerInfo>> {
        Ok(Some(ContainerInfo {
            id: n.into(),
            status: "running".into(),
            running: true,
            exit_code: None,
            ip: Some([10, 0, 0, 2].into()),
            labels: BTreeMap::new(),
            name: n.into(),
            image: String::new(),
            image_id: String::new(),
        }))
    }
    async fn run_to_completion(
        &self,
        s: &ContainerSpec,
        _: &Owner,
        _: Duration,
    ) -> Result<(i64, String)> {
        self.runs.lock().unwrap().push(s.clone());
        Ok((self.exit.load(Ordering::SeqCst), "last line\n".into()))
    }
    async fn list_labelled(&self, l: &str) -> Result<Vec<ContainerInfo>> {
        NullEngine.list_labelled(l).await
    }
    async fn published_ports(&self) -> Result<Vec<u16>> {
        NullEngine.published_ports().await
    }
    async fn stats(&self, n: &str) -> Result<Option<ContainerStats>> {
        NullEngine.stats(n).await
    }
    async fn exec(&self, n: &str, r: ExecRequest) -> Result<ExecStatus> {
        NullEngine.exec(n, r).await
    }
    async fn logs(&self, n: &str, t: usize, s: Option<i64>) -> Result<Vec<LogLine>> {
        NullEngine.logs(n, t, s).await
    }
    async fn follow_logs(
        &self,
        n: &str,
        t: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        NullEngine.follow_logs(n, t).await
    }
}

/// Keeps `(database, sql)` of every `execute` and `count`; `count` answers `left`.
#[derive(Default)]
pub struct CopyDb {
    pub executed: Mutex<Vec<(String, String)>>,
    pub counted: Mutex<Vec<(String, String)>>,
    pub left: AtomicI64,
}

#[async_trait::async_trait]
impl StageDatabase for CopyDb {
    async fn wait_ready(&self, t: &DbTarget, d: Duration) -> Result<()> {
        NullDb.wait_ready(t, d).await
    }
    async fn create_database(&self, t: &DbTarget, n: &str) -> Result<()> {
        NullDb.create_database(t, n).await
    }
    async fn count(&self, _: &DbTarget, db: &str, query: &str) -> Result<i64> {
        self.counted.lock().unwrap().push((db.into(), query.into()));
        Ok(self.left.load(Ordering::SeqCst))
    }
    async fn sql(&self, t: &DbTarget, db: &str, r: &SqlRequest) -> Result<SqlResult> {
        NullDb.sql(t, db, r).await
    }
    async fn ensure_console_roles(&self, t: &DbTarget, db: &str, r: &ConsoleRoles) -> Result<()> {
        NullDb.ensure_console_roles(t, db, r).await
    }
    async fn ensure_app_role(&self, t: &DbTarget, db: &str, r: &AppRole) -> Result<()> {
        NullDb.ensure_app_role(t, db, r).await
    }
    async fn execute(&self, _: &DbTarget, db: &str, sql: &str) -> Result<()> {
        self.executed.lock().unwrap().push((db.into(), sql.into()));
        Ok(())
    }
    async fn execute_count(&self, t: &DbTarget, db: &str, sql: &str) -> Result<i64> {
        NullDb.execute_count(t, db, sql).await
    }
    async fn each(&self, t: &DbTarget, db: &str, s: &[String]) -> Result<()> {
        NullDb.each(t, db, s).await
    }
}
