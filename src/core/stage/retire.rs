//! What a deleted subscription leaves behind. Its backups (customer data) and its stages'
//! records go to the archive, out of the API's reach; its deploy key and whatever its
//! cancelled stages left on disk are removed. A new subscription of the same id starts empty.

use super::model::StageState;
use super::Stages;
use crate::core::interfaces::RecordKind;
use crate::core::subscription::Subscription;
use crate::core::{time, Error, Result};
use std::path::PathBuf;

/// `<id>@<deleted at, UTC>-<8 random hex>`: sorts by time, never meets an earlier archive.
pub fn archive_label(id: &str, at: time::Timestamp) -> String {
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{id}@{stamp}-{}", &tag[..8])
}

impl Stages {
    /// Admission held: no stage is admitted until the guard drops.
    pub async fn hold_admission(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.admission.lock().await
    }

    /// References of the subscription's stages that are not cancelled.
    pub fn live_of(&self, subscription: &str) -> Vec<String> {
        self.live()
            .iter()
            .filter(|s| s.subscription.as_str() == subscription)
            .map(|s| s.reference())
            .collect()
    }

    /// Puts away everything stored under `sub`'s id; returns the archive, if anything was
    /// kept. The caller holds admission and has checked that no stage of `sub` is live.
    pub async fn retire_subscription(&self, sub: &Subscription) -> Result<Option<PathBuf>> {
        let id = sub.id.to_string();
        let tombstones: Vec<(String, super::model::Stage)> = self
            .read()
            .values()
            .filter(|(_, s)| s.subscription == sub.id)
            .cloned()
            .collect();
        if let Some((_, s)) = tombstones
            .iter()
            .find(|(_, s)| s.state != StageState::Cancelled)
        {
            return Err(Error::internal(
                "retiring a subscription",
                format!("stage {} is {}", s.reference(), s.state.as_str()),
            ));
        }
        let mut records = vec![("subscription".to_string(), json("the subscription", sub)?)];
        for (key, stage) in &tombstones {
            records.push((format!("stage-{key}"), json("a stage record", stage)?));
        }
        let label = archive_label(&id, time::now());
        let archive = self.deps.backups.archive(&id, &label, &records).await?;
        for (key, stage) in &tombstones {
            let store = self.deps.store.clone();
            let k = key.clone();
            tokio::task::spawn_blocking(move || store.delete(RecordKind::Stage, &k))
                .await
                .map_err(|e| Error::internal("removing a stage record", e))?
                .map_err(|e| Error::internal(format!("removing stage record {key}"), e))?;
            self.write().remove(&stage.uuid);
            self.locks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&stage.uuid);
            // Cancel removed these; a crash mid-cancel may have left some.
            self.deps
                .dirs
                .remove(stage.subscription.as_str(), stage.name.as_str())
                .await?;
        }
        self.deps.git.remove_deploy_key(&id).await?;
        match &archive {
            Some(dir) => {
                tracing::info!(subscription = %id, archive = %dir.display(), "subscription retired; backups archived")
            }
            None => tracing::info!(subscription = %id, "subscription retired; nothing to archive"),
        }
        Ok(archive)
    }
}

fn json(what: &str, v: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v)
        .map_err(|e| Error::internal(format!("encoding {what} for the archive"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fakes;
    use crate::core::interfaces::RecordStore;
    use crate::core::stage::StageDeps;
    use std::sync::Arc;

    #[test]
    fn labels_sort_by_time_and_differ() {
        let t = ::time::macros::datetime!(2026-12-02 04:05:06 UTC);
        let a = archive_label("old", t);
        assert!(a.starts_with("old@20261202T040506Z-"), "{a}");
        assert_ne!(a, archive_label("old", t));
    }

    #[tokio::test]
    async fn tombstones_go_and_live_stages_block() {
        let gone = fakes::stage("old", "qa", StageState::Cancelled);
        let other = fakes::stage("new", "qa", StageState::Running);
        let store = fakes::store_with(&[gone.clone(), other.clone()]);
        let deps: StageDeps = fakes::deps(store.clone(), Arc::new(fakes::SlowMeter::default()));
        let stages = Stages::load(deps).unwrap();
        assert!(stages.live_of("old").is_empty());
        assert_eq!(stages.live_of("new"), vec!["new/qa".to_string()]);
        let sub = fakes::subscription("old");
        stages.retire_subscription(&sub).await.unwrap();
        assert!(stages.find("old/qa").is_err(), "the tombstone is gone");
        assert!(stages.find("new/qa").is_ok());
        let keys: Vec<String> = store
            .load_all(RecordKind::Stage)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![other.key()]);
        // A live stage is never retired.
        let live = fakes::subscription("new");
        assert!(stages.retire_subscription(&live).await.is_err());
        assert!(stages.find("new/qa").is_ok());
    }

    struct Host;
    impl crate::core::interfaces::HostProbe for Host {
        fn stats(&self) -> crate::core::interfaces::HostStats {
            unreachable!("not asked")
        }
        fn hostname(&self) -> String {
            "test".into()
        }
    }

    struct Deps;
    #[async_trait::async_trait]
    impl crate::core::interfaces::DependencyProbe for Deps {
        async fn docker(&self) -> crate::core::interfaces::DependencyStatus {
            unreachable!("not asked")
        }
        async fn nginx(&self) -> crate::core::interfaces::DependencyStatus {
            unreachable!("not asked")
        }
    }

    /// A create racing the delete of its subscription: one of them is refused, and no live
    /// stage is ever left without its subscription.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_create_racing_a_delete_never_leaves_a_stage_without_its_subscription() {
        use crate::core::agent::Agent;
        use crate::core::stage::NewStage;
        use crate::core::subscription::NewSubscription;
        let store = Arc::new(fakes::MemStore::default());
        let deps = fakes::deps(store.clone(), Arc::new(fakes::SlowMeter::default()));
        let config = crate::core::settings::shared(crate::core::settings::Settings::default());
        let agent =
            Arc::new(Agent::new(config, store, deps, Arc::new(Host), Arc::new(Deps)).unwrap());
        let (mut created, mut deleted) = (0, 0);
        for i in 0..40 {
            let new = NewSubscription {
                id: "race".into(),
                stage_limit: 100,
                ..Default::default()
            };
            agent.create_subscription(new).await.unwrap();
            let req = NewStage {
                name: format!("s{i}"),
                stage_type: "qa".into(),
                domain: format!("s{i}.race.example.com"),
                ..Default::default()
            };
            let (a, b) = (agent.clone(), agent.clone());
            let create = tokio::spawn(async move { a.create_stage("race", req).await });
            let delete = tokio::spawn(async move { b.delete_subscription("race").await });
            let (create, delete) = (create.await.unwrap(), delete.await.unwrap());
            // The fake engine fails a build after admission: what counts is the record.
            let admitted = agent.stages().find(&format!("race/s{i}")).is_ok();
            match delete {
                Ok(()) => {
                    // Refused at admission, or admitted, failed and rolled back before the
                    // delete came: then its tombstone went with the subscription.
                    deleted += 1;
                    assert!(!admitted, "a stage admitted for a deleted subscription");
                    assert!(create.is_err());
                }
                Err(e) => {
                    created += 1;
                    assert!(matches!(e, Error::InvalidState { .. }), "{e:?}");
                    assert!(admitted);
                    if !agent.stages().live_of("race").is_empty() {
                        agent.cancel_stage(&format!("race/s{i}")).await.unwrap();
                    }
                    agent.delete_subscription("race").await.unwrap();
                }
            }
            assert!(agent.stages().live_of("race").is_empty());
        }
        eprintln!("create won {created}, delete won {deleted}");
    }
}
