//! Fakes of the core's interfaces for unit tests: in memory, with counters where a test
//! needs to see what was called. The engines are in `engine`, the files in `files`.

mod copies;
pub mod deploy;
mod engine;
mod files;
mod running;

pub use copies::{CopyDb, CopyEngine};
pub use engine::{GatedEngine, NullEngine};
pub use files::{AnyFile, NoBackups, NullDirs, SlowMeter};
pub use running::{RecordingDb, UpEngine};

use super::interfaces::ProxySites;
use super::site::SiteSpec;
use super::stage::StageDeps;
use super::Result;
use crate::core::interfaces::{
    AppRole, Commit, ConsoleRoles, DbTarget, FetchRequest, Git, PortProbe, SqlRequest, SqlResult,
    StageDatabase, UsageMeter,
};
use crate::core::interfaces::{RecordKind, RecordStore};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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
    async fn ensure_app_role(&self, _: &DbTarget, _: &str, _: &AppRole) -> Result<()> {
        Ok(())
    }
    async fn execute(&self, _: &DbTarget, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn execute_count(&self, _: &DbTarget, _: &str, _: &str) -> Result<i64> {
        Ok(1)
    }
    async fn each(&self, _: &DbTarget, _: &str, _: &[String]) -> Result<()> {
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

#[async_trait::async_trait]
impl PortProbe for FreePorts {
    fn in_use(&self, _: IpAddr, _: u16) -> bool {
        false
    }
    fn accepts(&self, _: IpAddr, _: u16) -> bool {
        true
    }
    async fn http_get(
        &self,
        _: IpAddr,
        _: u16,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<u16, String> {
        Ok(200)
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
    async fn changed_top_level(
        &self,
        _: &FetchRequest,
        _: &str,
        _: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>> {
        Ok(None)
    }
    async fn deploy_key(&self, subscription: &str) -> Result<String> {
        Ok(format!("ssh-ed25519 AAAA stagelet-deploy-{subscription}"))
    }
    async fn remove_deploy_key(&self, _: &str) -> Result<()> {
        Ok(())
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
        dumps: Arc::new(NoBackups),
        files: Arc::new(AnyFile),
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
        longpolling_port: None,
        grace_period_s: None,
        last_error: None,
        profile: "odoo".into(),
        settings: Default::default(),
        db_password: "pw".into(),
        console_password: None,
        app_db_password: None,
        master_password_hash: None,
        neutralized: false,
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
