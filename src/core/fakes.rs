//! Fakes of the core's interfaces for unit tests: in memory, with counters where a test
//! needs to see what was called.

use super::interfaces::{RecordKind, RecordStore};
use super::site::{ProxySites, SiteSpec};
use super::stage::interfaces::{
    BackupStore, ByteReader, ByteWriter, Commit, ConsoleRoles, ContainerInfo, ContainerSpec,
    ContainerStats, DbTarget, DirUsage, Engine, ExecRequest, ExecStatus, FetchRequest, Git,
    LogLine, MeasurePriority, NetworkInfo, Owner, PortProbe, SqlRequest, SqlResult, StageDatabase,
    StageDirs, StopOutcome, UsageMeter,
};
use super::stage::StageDeps;
use super::Result;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Called on every write, before it.
pub type PutHook = Box<dyn Fn() + Send + Sync>;

/// Records in memory; `fail` makes every write fail.
#[derive(Default)]
pub struct MemStore {
    pub recs: Mutex<HashMap<String, Vec<u8>>>,
    pub fail: AtomicBool,
    pub on_put: Mutex<Option<PutHook>>,
}

impl RecordStore for MemStore {
    fn put(&self, _: RecordKind, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(hook) = self.on_put.lock().unwrap().as_ref() {
            hook();
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("disk full"));
        }
        self.recs.lock().unwrap().insert(key.into(), bytes.to_vec());
        Ok(())
    }
    fn delete(&self, _: RecordKind, key: &str) -> std::io::Result<()> {
        self.recs.lock().unwrap().remove(key);
        Ok(())
    }
    fn load_all(&self, _: RecordKind) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        Ok(self
            .recs
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// An engine where everything succeeds and no container exists.
#[derive(Default)]
pub struct NullEngine;

#[async_trait::async_trait]
impl Engine for NullEngine {
    async fn create_network(
        &self,
        _: &str,
        _: &BTreeMap<String, String>,
        _: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()> {
        Ok(())
    }
    async fn remove_network(&self, _: &str, _: &Owner) -> Result<()> {
        Ok(())
    }
    async fn list_labelled_networks(&self, _: &str) -> Result<Vec<NetworkInfo>> {
        Ok(vec![])
    }
    async fn connect_network(&self, _: &str, _: &str, _: &[String]) -> Result<()> {
        Ok(())
    }
    async fn disconnect_network(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        Ok(spec.name.clone())
    }
    async fn start_container(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn stop_container(&self, _: &str, _: &str, _: Duration) -> Result<StopOutcome> {
        Ok(StopOutcome::AlreadyStopped)
    }
    async fn remove_container(&self, _: &str, _: &Owner) -> Result<()> {
        Ok(())
    }
    async fn rename_container(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn inspect_container(&self, _: &str, _: &str) -> Result<Option<ContainerInfo>> {
        Ok(None)
    }
    async fn run_to_completion(
        &self,
        _: &ContainerSpec,
        _: &Owner,
        _: Duration,
    ) -> Result<(i64, String)> {
        Ok((0, String::new()))
    }
    async fn list_labelled(&self, _: &str) -> Result<Vec<ContainerInfo>> {
        Ok(vec![])
    }
    async fn published_ports(&self) -> Result<Vec<u16>> {
        Ok(vec![])
    }
    async fn stats(&self, _: &str) -> Result<Option<ContainerStats>> {
        Ok(None)
    }
    async fn exec(&self, _: &str, _: ExecRequest) -> Result<ExecStatus> {
        Ok(ExecStatus {
            exit_code: Some(0),
            timed_out: false,
        })
    }
    async fn logs(&self, _: &str, _: usize, _: Option<i64>) -> Result<Vec<LogLine>> {
        Ok(vec![])
    }
    async fn follow_logs(
        &self,
        _: &str,
        _: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        Ok(Box::pin(futures::stream::empty()))
    }
}

/// A [`NullEngine`] whose `published_ports` says it was reached, then waits to be released.
#[derive(Default)]
pub struct GatedEngine {
    pub reached: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl Engine for GatedEngine {
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
    async fn inspect_container(&self, n: &str, net: &str) -> Result<Option<ContainerInfo>> {
        NullEngine.inspect_container(n, net).await
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
        self.reached.notify_one();
        self.release.notified().await;
        Ok(vec![])
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

pub struct NullDb;

#[async_trait::async_trait]
impl StageDatabase for NullDb {
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
    async fn execute(&self, _: &DbTarget, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn each(&self, _: &DbTarget, _: &str, _: &[String]) -> Result<()> {
        Ok(())
    }
}

pub struct NullDirs;

impl StageDirs for NullDirs {
    fn root(&self, subscription: &str, name: &str) -> PathBuf {
        PathBuf::from("/nonexistent").join(subscription).join(name)
    }
    fn create(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn remove(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn git_cache(&self, subscription: &str, name: &str) -> PathBuf {
        self.root(subscription, name).join("git")
    }
    fn scratch(&self, subscription: &str, name: &str) -> Result<PathBuf> {
        Ok(self.root(subscription, name).join("scratch"))
    }
    fn drop_scratch(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn copy_dir(&self, _: (&str, &str), _: (&str, &str), _: &str) -> Result<()> {
        Ok(())
    }
    fn lay_out_dir(&self, _: &str, _: &str, _: &str, _: &Path, _: bool) -> Result<()> {
        Ok(())
    }
}

pub struct NullProxy;

#[async_trait::async_trait]
impl ProxySites for NullProxy {
    async fn apply(&self, _: SiteSpec) -> Result<()> {
        Ok(())
    }
    async fn remove(
        &self,
        _: crate::core::names::SubscriptionId,
        _: crate::core::names::StageName,
    ) -> Result<()> {
        Ok(())
    }
}

pub struct FreePorts;

impl PortProbe for FreePorts {
    fn in_use(&self, _: IpAddr, _: u16) -> bool {
        false
    }
    fn accepts(&self, _: IpAddr, _: u16) -> bool {
        true
    }
}

/// A meter that takes `delay` per directory and counts its calls.
#[derive(Default)]
pub struct SlowMeter {
    pub delay: Duration,
    pub calls: AtomicUsize,
}

impl UsageMeter for SlowMeter {
    fn measure(&self, _: &Path, _: MeasurePriority) -> DirUsage {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        DirUsage {
            apparent_bytes: 100,
            allocated_bytes: 4096,
            files: 1,
            dirs: 1,
            unreadable: 0,
        }
    }
}

/// Git that has nothing to fetch.
pub struct NoGit;

#[async_trait::async_trait]
impl Git for NoGit {
    async fn fetch(&self, req: &FetchRequest) -> Result<Commit> {
        Err(crate::core::Error::Git(format!(
            "no such repository {}",
            req.url
        )))
    }
    async fn export(&self, _: &FetchRequest, _: &str, _: &Path) -> Result<()> {
        Ok(())
    }
    async fn deploy_key(&self, subscription: &str) -> Result<String> {
        Ok(format!("ssh-ed25519 AAAA stagelet-deploy-{subscription}"))
    }
    async fn remove_deploy_key(&self, _: &str) -> Result<()> {
        Ok(())
    }
}

/// A backup store that holds nothing and refuses to write.
pub struct NoBackups;

impl BackupStore for NoBackups {
    fn create(&self, _: &str, _: &str, _: &str) -> Result<PathBuf> {
        Err(crate::core::Error::internal(
            "backups",
            "none in unit tests",
        ))
    }
    fn dir(&self, s: &str, n: &str, id: &str) -> PathBuf {
        PathBuf::from("/nonexistent").join(s).join(n).join(id)
    }
    fn write_manifest(&self, _: &Path, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn manifests(&self, _: &str, _: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![])
    }
    fn remove(&self, _: &str, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn remove_file(&self, _: &Path) -> Result<()> {
        Ok(())
    }
    fn sha256(&self, _: &Path) -> Result<(u64, String)> {
        Ok((0, String::new()))
    }
    fn pack(&self, _: &Path, _: &Path) -> Result<()> {
        Ok(())
    }
    fn unpack(&self, _: &Path, _: &Path) -> Result<()> {
        Ok(())
    }
    fn writer(&self, _: &Path) -> Result<ByteWriter> {
        Ok(Box::new(tokio::io::sink()))
    }
    fn reader(&self, _: &Path) -> Result<ByteReader> {
        Ok(Box::new(tokio::io::empty()))
    }
    fn archive(&self, _: &str, _: &str, _: &[(String, Vec<u8>)]) -> Result<Option<PathBuf>> {
        Ok(None)
    }
}

/// Dependencies where nothing fails, over `store` and `meter`.
pub fn deps(store: Arc<MemStore>, meter: Arc<dyn UsageMeter>) -> StageDeps {
    StageDeps {
        store,
        engine: Arc::new(NullEngine),
        db: Arc::new(NullDb),
        dirs: Arc::new(NullDirs),
        proxy: Arc::new(NullProxy),
        ports: Arc::new(FreePorts),
        meter,
        git: Arc::new(NoGit),
        backups: Arc::new(NoBackups),
    }
}

/// A stage record in `state`, as the store would hold it.
pub fn stage(
    subscription: &str,
    name: &str,
    state: super::stage::model::StageState,
) -> super::stage::model::Stage {
    use super::names::{Domain, StageName, SubscriptionId};
    use super::stage::model::{Stage, StageType, SCHEMA_VERSION};
    let now = super::time::now();
    Stage {
        schema_version: SCHEMA_VERSION,
        uuid: uuid::Uuid::new_v4(),
        subscription: SubscriptionId::parse(subscription).unwrap(),
        name: StageName::parse(name).unwrap(),
        stage_type: StageType::Qa,
        domain: Domain::parse(&format!("{name}.{subscription}.example.com")).unwrap(),
        state,
        created_at: now,
        updated_at: now,
        end_date: None,
        stop_reason: None,
        purge_at: None,
        cancelled_at: None,
        http_port: Some(20000),
        grace_period_s: None,
        last_error: None,
        profile: "odoo".into(),
        settings: Default::default(),
        db_password: "pw".into(),
        console_password: None,
        step: None,
        storage: None,
        active_users: None,
        code_server: None,
        git: Default::default(),
    }
}

/// A store holding `stages`.
pub fn store_with(stages: &[super::stage::model::Stage]) -> Arc<MemStore> {
    let store = Arc::new(MemStore::default());
    for s in stages {
        store
            .put(RecordKind::Stage, &s.key(), &serde_json::to_vec(s).unwrap())
            .unwrap();
    }
    store
}

/// A subscription record of `id` with room for five stages.
pub fn subscription(id: &str) -> super::subscription::Subscription {
    let now = super::time::now();
    super::subscription::Subscription {
        schema_version: super::subscription::SCHEMA_VERSION,
        id: super::names::SubscriptionId::parse(id).unwrap(),
        stage_limit: 5,
        storage_limit_mb: None,
        profile: "odoo".into(),
        settings: Default::default(),
        created_at: now,
        updated_at: now,
    }
}
