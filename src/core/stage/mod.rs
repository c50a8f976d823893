//! Stages: the registry of stage records and the lifecycle operations on them. Operations on
//! one stage are serialised by its lock; different stages run in parallel.

pub mod admin_password;
mod adopt;
pub mod app_config;
pub mod backup;
mod clone;
mod common;

pub mod code_server;
pub mod console;
pub mod containers;
mod create;
pub mod deploy;
pub mod deploy_plan;
mod deploy_update;
pub mod events;
mod teardown;

mod lifecycle;
pub mod model;
pub mod neutralize;
mod ownership;
pub mod ports;
pub mod pull;
mod readiness;
mod reconcile;
mod recover;
mod retire;
pub mod scheduler;
mod stats;
pub mod tls;
pub mod transitions;
pub mod usage;
mod view;

use crate::core::interfaces::ProxySites;
use crate::core::interfaces::{
    BackupStore, DatabaseDumps, Engine, Git, HostFiles, PortProbe, StageDatabase, StageDirs,
    UsageMeter,
};
use crate::core::interfaces::{RecordKind, RecordStore};
use crate::core::settings::Settings;
use crate::core::{Error, Result};
use containers::Naming;
use events::{Event, Events};
use model::{Stage, StageState};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use uuid::Uuid;

pub use create::NewStage;
pub use lifecycle::StagePatch;

/// Everything the stage operations are written against.
pub struct StageDeps {
    pub store: Arc<dyn RecordStore>,
    pub engine: Arc<dyn Engine>,
    pub db: Arc<dyn StageDatabase>,
    pub dirs: Arc<dyn StageDirs>,
    pub proxy: Arc<dyn ProxySites>,
    pub ports: Arc<dyn PortProbe>,
    pub meter: Arc<dyn UsageMeter>,
    pub git: Arc<dyn Git>,
    pub backups: Arc<dyn BackupStore>,
    pub dumps: Arc<dyn DatabaseDumps>,
    pub files: Arc<dyn HostFiles>,
}

pub struct Stages {
    deps: StageDeps,
    /// Every record, tombstones included, with the key it is stored under.
    records: RwLock<BTreeMap<Uuid, (String, Stage)>>,
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Serialises what must be checked and taken together: limit, name, domain, port.
    admission: tokio::sync::Mutex<()>,
    /// Measures under way, one per stage, joined by concurrent refreshes.
    inflight: Mutex<HashMap<Uuid, Arc<tokio::sync::OnceCell<usage::Measured>>>>,
    pub events: Events,
}

impl Stages {
    pub fn load(deps: StageDeps) -> Result<Self> {
        let mut records = BTreeMap::new();
        let all = deps
            .store
            .load_all(RecordKind::Stage)
            .map_err(|e| Error::internal("loading stage records", e))?;
        for (key, bytes) in all {
            match serde_json::from_slice::<Stage>(&bytes) {
                Ok(s) => {
                    records.insert(s.uuid, (key, s));
                }
                Err(e) => {
                    tracing::error!(record = %key, error = %e, "unreadable stage record; skipped")
                }
            }
        }
        Ok(Stages {
            deps,
            records: RwLock::new(records),
            locks: Mutex::new(HashMap::new()),
            admission: tokio::sync::Mutex::new(()),
            inflight: Mutex::new(HashMap::new()),
            events: Events::new(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Uuid, (String, Stage)>> {
        self.records.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Uuid, (String, Stage)>> {
        self.records.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn all(&self) -> Vec<Stage> {
        self.read().values().map(|(_, s)| s.clone()).collect()
    }

    /// Stages that hold a name, a domain, a port and a place in the limit.
    pub fn live(&self) -> Vec<Stage> {
        self.read()
            .values()
            .map(|(_, s)| s)
            .filter(|s| s.state != StageState::Cancelled)
            .cloned()
            .collect()
    }

    /// `"SUBSCRIPTION/NAME"` or a UUID. A name finds the live stage, else its latest tombstone.
    pub fn find(&self, reference: &str) -> Result<Stage> {
        let not_found = || Error::NotFound {
            what: "stage",
            id: reference.to_string(),
        };
        if let Ok(uuid) = Uuid::parse_str(reference) {
            return self
                .read()
                .get(&uuid)
                .map(|(_, s)| s.clone())
                .ok_or_else(not_found);
        }
        let (sub, name) = reference.split_once('/').ok_or_else(|| {
            Error::invalid(
                "stage",
                format!("{reference:?} is neither SUBSCRIPTION/NAME nor a UUID"),
            )
        })?;
        let records = self.read();
        let mut matches: Vec<&Stage> = records
            .values()
            .map(|(_, s)| s)
            .filter(|s| s.subscription.as_str() == sub && s.name.as_str() == name)
            .collect();
        matches.sort_by_key(|s| (s.state != StageState::Cancelled, s.created_at));
        matches.last().map(|s| (*s).clone()).ok_or_else(not_found)
    }

    /// The stage's lock. Locks nobody holds or waits for are dropped on the way, so the map
    /// holds only stages in use, not every stage ever made.
    fn lock_of(&self, uuid: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds it: nobody holds the guard, nobody waits. A later caller makes a
        // new one, which is the same as the idle old one.
        locks.retain(|u, l| *u == uuid || Arc::strong_count(l) > 1);
        locks.entry(uuid).or_default().clone()
    }

    /// The stage's lock if nobody holds it; `None` when an operation is under way on it.
    fn try_lock_stage(&self, uuid: Uuid) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.lock_of(uuid).try_lock_owned().ok()
    }

    /// Puts a record in the registry without persisting it: a reservation made under
    /// `admission`, persisted after (see create and restore).
    fn reserve(&self, key: &str, stage: &Stage) {
        self.write()
            .insert(stage.uuid, (key.to_string(), stage.clone()));
    }

    /// Takes back a reservation that could not be persisted.
    fn unreserve(&self, uuid: Uuid) {
        self.write().remove(&uuid);
    }

    /// Persists a record under its key, then updates the registry.
    async fn save(&self, stage: &Stage) -> Result<()> {
        self.save_as(&self.key_of(stage), stage).await
    }

    /// The key the record is stored under (a retired tombstone keeps its own).
    fn key_of(&self, stage: &Stage) -> String {
        self.read()
            .get(&stage.uuid)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| stage.key())
    }

    async fn save_as(&self, key: &str, stage: &Stage) -> Result<()> {
        let mut stage = stage.clone();
        stage.updated_at = crate::core::time::now();
        let bytes = serde_json::to_vec_pretty(&stage)
            .map_err(|e| Error::internal("encoding a stage record", e))?;
        let store = self.deps.store.clone();
        let k = key.to_string();
        tokio::task::spawn_blocking(move || store.put(RecordKind::Stage, &k, &bytes))
            .await
            .map_err(|e| Error::internal("writing a stage record", e))?
            .map_err(|e| Error::internal(format!("writing stage record {key}"), e))?;
        self.write().insert(stage.uuid, (key.to_string(), stage));
        Ok(())
    }

    /// Every step an operation announces is also a failpoint, `<operation>.<step>`.
    fn emit(&self, stage: &Stage, operation: &str, step: &str, message: impl Into<String>) {
        self.events
            .send(Event::new(stage, operation, step, message));
        crate::core::failpoint::hit(&format!("{operation}.{step}"));
    }

    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> = StageState::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        for (_, s) in self.read().values() {
            *counts.entry(s.state.as_str().to_string()).or_default() += 1;
        }
        counts
    }
}

pub fn naming(config: &Settings) -> Naming {
    Naming {
        label_prefix: config.docker.label_prefix.clone(),
        name_prefix: config.docker.name_prefix.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fakes;

    /// Admission holds the checks only: the engine is asked before it is taken, the record
    /// written after it is let go.
    #[tokio::test]
    async fn admission_calls_no_engine_and_writes_no_record() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let store = fakes::store_with(&[]);
        let engine = Arc::new(fakes::GatedEngine::default());
        let mut deps = fakes::deps(store.clone(), Arc::new(fakes::SlowMeter::default()));
        deps.engine = engine.clone();
        let stages = Arc::new(Stages::load(deps).unwrap());
        let written_under_admission = Arc::new(AtomicBool::new(false));
        let (weak, flag) = (Arc::downgrade(&stages), written_under_admission.clone());
        *store.on_put.lock().unwrap() = Some(Box::new(move || {
            if weak
                .upgrade()
                .is_some_and(|s| s.admission.try_lock().is_err())
            {
                flag.store(true, Ordering::SeqCst);
            }
        }));
        let sub = fakes::subscription("acme");
        let req = NewStage {
            name: "qa".into(),
            stage_type: "qa".into(),
            domain: "qa.acme.example.com".into(),
            ..Default::default()
        };
        let creating = tokio::spawn({
            let stages = stages.clone();
            async move {
                stages
                    .create(&Settings::default(), &sub, req, &|| Ok(()))
                    .await
            }
        });
        engine.reached.notified().await;
        assert!(
            stages.admission.try_lock().is_ok(),
            "the engine was asked under admission"
        );
        engine.release.notify_one();
        // The fake engine has no db container to reach: the create rolls back, after admission.
        let _ = creating.await.unwrap();
        assert!(stages.find("acme/qa").is_ok(), "the record was written");
        assert!(
            !written_under_admission.load(Ordering::SeqCst),
            "a record was written under admission"
        );
    }

    /// The lock map holds the stages in use, not every stage ever locked.
    #[tokio::test]
    async fn idle_locks_are_dropped() {
        let all: Vec<Stage> = (0..50)
            .map(|i| fakes::stage("acme", &format!("s{i}"), StageState::Stopped))
            .collect();
        let meter = Arc::new(fakes::SlowMeter::default());
        let stages = Stages::load(fakes::deps(fakes::store_with(&all), meter)).unwrap();
        let config = Settings::default();
        for s in &all {
            stages
                .update(&config, &s.reference(), Default::default())
                .await
                .unwrap();
        }
        let (held, _) = stages.lock_stage("acme/s0").await.unwrap();
        stages
            .update(&config, "acme/s1", Default::default())
            .await
            .unwrap();
        let len = stages.locks.lock().unwrap().len();
        assert!(len <= 2, "{len} locks kept");
        drop(held);
    }
}
