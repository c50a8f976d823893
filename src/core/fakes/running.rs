//! Fakes of a stage whose containers run: an engine where every container exists, runs and
//! has an address, and a database that records the SQL the agent ran and answers a count.

use super::engine::NullEngine;
use crate::core::interfaces::{
    ConsoleRoles, ContainerInfo, ContainerSpec, ContainerStats, DbTarget, Engine, ExecRequest,
    ExecStatus, LogLine, NetworkInfo, Owner, SqlRequest, SqlResult, StageDatabase, StopOutcome,
};
use crate::core::Result;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A [`NullEngine`] where every container is there and running at 10.0.0.2.
#[derive(Default)]
pub struct UpEngine;

#[async_trait::async_trait]
impl Engine for UpEngine {
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
    async fn inspect_container(&self, name: &str, _: &str) -> Result<Option<ContainerInfo>> {
        Ok(Some(ContainerInfo {
            id: format!("id-{name}"),
            status: "running".into(),
            running: true,
            exit_code: None,
            ip: Some([10, 0, 0, 2].into()),
            labels: BTreeMap::new(),
            name: name.into(),
            image: String::new(),
            image_id: String::new(),
        }))
    }
    async fn run_to_completion(
        &self,
        s: &ContainerSpec,
        o: &Owner,
        t: Duration,
    ) -> Result<(i64, String)> {
        NullEngine.run_to_completion(s, o, t).await
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

/// A database where everything succeeds; `execute_count` records `(user, db, sql)` and
/// answers `changed` (default 1).
pub struct RecordingDb {
    pub counted: Mutex<Vec<(String, String, String)>>,
    pub changed: AtomicI64,
}

impl Default for RecordingDb {
    fn default() -> Self {
        RecordingDb {
            counted: Mutex::new(vec![]),
            changed: AtomicI64::new(1),
        }
    }
}

impl RecordingDb {
    pub fn counted(&self) -> Vec<(String, String, String)> {
        self.counted.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl StageDatabase for RecordingDb {
    async fn wait_ready(&self, _: &DbTarget, _: Duration) -> Result<()> {
        Ok(())
    }
    async fn create_database(&self, _: &DbTarget, _: &str) -> Result<()> {
        Ok(())
    }
    async fn count(&self, _: &DbTarget, _: &str, _: &str) -> Result<i64> {
        Ok(0)
    }
    async fn sql(&self, _: &DbTarget, _: &str, _: &SqlRequest) -> Result<SqlResult> {
        Err(crate::core::Error::Database("no database here".into()))
    }
    async fn ensure_console_roles(&self, _: &DbTarget, _: &str, _: &ConsoleRoles) -> Result<()> {
        Ok(())
    }
    async fn ensure_app_role(
        &self,
        _: &DbTarget,
        _: &str,
        _: &crate::core::interfaces::AppRole,
    ) -> Result<()> {
        Ok(())
    }
    async fn execute(&self, _: &DbTarget, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn execute_count(&self, t: &DbTarget, db: &str, sql: &str) -> Result<i64> {
        self.counted
            .lock()
            .unwrap()
            .push((t.user.clone(), db.into(), sql.into()));
        Ok(self.changed.load(Ordering::SeqCst))
    }
    async fn each(&self, _: &DbTarget, _: &str, _: &[String]) -> Result<()> {
        Ok(())
    }
}
