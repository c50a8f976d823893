//! Subscription operations: create, update, get, list, delete. Records are persisted before the
//! in-memory view changes, so a failed write leaves both as they were.

use super::record::{
    check_stage_limit, storage_limit, template_error, Settings, Subscription, SCHEMA_VERSION,
};
use crate::core::interfaces::{HostFiles, RecordKind, RecordStore};
use crate::core::names::SubscriptionId;
use crate::core::{time, Error, Result};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// `subscription.create` as the core takes it: raw values, validated here.
#[derive(Debug, Clone, Default)]
pub struct NewSubscription {
    pub id: String,
    pub stage_limit: u32,
    pub storage_limit_mb: Option<u64>,
    pub profile: Option<String>,
    pub settings: Option<Settings>,
}

/// `subscription.update`: absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPatch {
    pub id: String,
    pub stage_limit: Option<u32>,
    pub storage_limit_mb: Option<u64>,
    pub settings: Option<Settings>,
}

pub struct Subscriptions {
    store: Arc<dyn RecordStore>,
    files: Arc<dyn HostFiles>,
    by_id: RwLock<BTreeMap<SubscriptionId, Subscription>>,
    /// Serialises writers so that read-modify-write of one record never interleaves.
    write: tokio::sync::Mutex<()>,
}

impl Subscriptions {
    /// [`Settings::validate`], then whether the `db_template` is a file on this host.
    async fn validate(&self, settings: &Settings) -> Result<()> {
        settings.validate()?;
        if let Some(t) = &settings.db_template {
            if !self.files.is_file(std::path::Path::new(t)).await {
                return Err(template_error(t));
            }
        }
        Ok(())
    }
}

fn parse_id(field: &str, id: &str) -> Result<SubscriptionId> {
    SubscriptionId::parse(id).map_err(|m| Error::invalid(field, m))
}

impl Subscriptions {
    /// Loads every record. A record that does not parse is reported and left on disk untouched.
    pub fn load(store: Arc<dyn RecordStore>, files: Arc<dyn HostFiles>) -> Result<Self> {
        let mut by_id = BTreeMap::new();
        let records = store
            .load_all(RecordKind::Subscription)
            .map_err(|e| Error::internal("loading subscription records", e))?;
        for (key, bytes) in records {
            match serde_json::from_slice::<Subscription>(&bytes) {
                Ok(s) if s.id.as_str() == key => {
                    by_id.insert(s.id.clone(), s);
                }
                Ok(s) => {
                    tracing::error!(record = %key, id = %s.id, "subscription record names another id; skipped")
                }
                Err(e) => {
                    tracing::error!(record = %key, error = %e, "unreadable subscription record; skipped")
                }
            }
        }
        Ok(Subscriptions {
            store,
            files,
            by_id: RwLock::new(by_id),
            write: tokio::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, id: &str) -> Result<Subscription> {
        let id = parse_id("id", id)?;
        self.read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "subscription",
                id: id.to_string(),
            })
    }

    pub fn list(&self) -> Vec<Subscription> {
        self.read().values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.read().len()
    }

    pub async fn create(
        &self,
        req: NewSubscription,
        profiles: &[String],
        default_profile: &str,
    ) -> Result<Subscription> {
        let id = parse_id("id", &req.id)?;
        let stage_limit = check_stage_limit(req.stage_limit)?;
        let profile = req.profile.unwrap_or_else(|| default_profile.to_string());
        if !profiles.contains(&profile) {
            return Err(Error::invalid(
                "profile",
                format!(
                    "no profile {profile:?} in the configuration (known: {})",
                    profiles.join(", ")
                ),
            ));
        }
        let settings = req.settings.unwrap_or_default();
        self.validate(&settings).await?;
        let _w = self.write.lock().await;
        if self.read().contains_key(&id) {
            return Err(Error::Conflict {
                what: "subscription",
                id: id.to_string(),
            });
        }
        let now = time::now();
        let sub = Subscription {
            schema_version: SCHEMA_VERSION,
            id,
            stage_limit,
            storage_limit_mb: req.storage_limit_mb.and_then(storage_limit),
            profile,
            settings,
            created_at: now,
            updated_at: now,
        };
        self.persist(&sub).await?;
        self.by_id_mut().insert(sub.id.clone(), sub.clone());
        Ok(sub)
    }

    pub async fn update(&self, patch: SubscriptionPatch) -> Result<Subscription> {
        let id = parse_id("id", &patch.id)?;
        let stage_limit = patch.stage_limit.map(check_stage_limit).transpose()?;
        if let Some(s) = &patch.settings {
            self.validate(s).await?;
        }
        let _w = self.write.lock().await;
        let mut sub = self.get(id.as_str())?;
        if let Some(l) = stage_limit {
            sub.stage_limit = l;
        }
        if let Some(mb) = patch.storage_limit_mb {
            sub.storage_limit_mb = storage_limit(mb);
        }
        if let Some(s) = patch.settings {
            sub.settings = s;
        }
        sub.updated_at = time::now();
        self.persist(&sub).await?;
        self.by_id_mut().insert(sub.id.clone(), sub.clone());
        Ok(sub)
    }

    /// Removes the record. The caller checks first that no stage still needs it.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.delete_with(id, |_| async { Ok(()) }).await
    }

    /// Runs `retire` on the record (to put away what is stored under its id), then removes
    /// the record; a `retire` that fails leaves it. No subscription of the same id can be
    /// created until both are done.
    pub async fn delete_with<F, Fut>(&self, id: &str, retire: F) -> Result<()>
    where
        F: FnOnce(Subscription) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let id = parse_id("id", id)?;
        let _w = self.write.lock().await;
        retire(self.get(id.as_str())?).await?;
        let store = self.store.clone();
        let key = id.to_string();
        tokio::task::spawn_blocking(move || store.delete(RecordKind::Subscription, &key))
            .await
            .map_err(|e| Error::internal("deleting a subscription record", e))?
            .map_err(|e| Error::internal(format!("deleting subscription record {id}"), e))?;
        self.by_id_mut().remove(&id);
        Ok(())
    }

    async fn persist(&self, sub: &Subscription) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(sub)
            .map_err(|e| Error::internal("encoding a subscription record", e))?;
        let store = self.store.clone();
        let key = sub.id.to_string();
        tokio::task::spawn_blocking(move || store.put(RecordKind::Subscription, &key, &bytes))
            .await
            .map_err(|e| Error::internal("writing a subscription record", e))?
            .map_err(|e| Error::internal(format!("writing subscription record {}", sub.id), e))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<SubscriptionId, Subscription>> {
        self.by_id.read().unwrap_or_else(|p| p.into_inner())
    }

    fn by_id_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<SubscriptionId, Subscription>> {
        self.by_id.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fakes::{AnyFile, MemStore};

    fn profiles() -> Vec<String> {
        vec!["odoo".into()]
    }

    fn new(id: &str) -> NewSubscription {
        NewSubscription {
            id: id.into(),
            stage_limit: 3,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn create_get_update_delete_roundtrip_through_the_store() {
        let store = Arc::new(MemStore::default());
        let subs = Subscriptions::load(store.clone(), Arc::new(AnyFile)).unwrap();
        let s = subs.create(new("acme"), &profiles(), "odoo").await.unwrap();
        assert_eq!(s.profile, "odoo");
        let err = subs
            .create(new("acme"), &profiles(), "odoo")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }));
        let s = subs
            .update(SubscriptionPatch {
                id: "acme".into(),
                stage_limit: Some(5),
                storage_limit_mb: Some(0),
                settings: None,
            })
            .await
            .unwrap();
        assert_eq!((s.stage_limit, s.storage_limit_mb), (5, None));
        // A fresh load sees what was persisted.
        let again = Subscriptions::load(store.clone(), Arc::new(AnyFile)).unwrap();
        assert_eq!(again.get("acme").unwrap().stage_limit, 5);
        subs.delete("acme").await.unwrap();
        assert!(matches!(subs.get("acme"), Err(Error::NotFound { .. })));
        assert!(Subscriptions::load(store, Arc::new(AnyFile))
            .unwrap()
            .list()
            .is_empty());
    }

    #[tokio::test]
    async fn bad_input_names_the_field() {
        let subs = Subscriptions::load(Arc::new(MemStore::default()), Arc::new(AnyFile)).unwrap();
        let field = |e: Error| match e {
            Error::InvalidParams { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(
                subs.create(new("Bad Id"), &profiles(), "odoo")
                    .await
                    .unwrap_err()
            ),
            "id"
        );
        let mut r = new("ok");
        r.profile = Some("nope".into());
        assert_eq!(
            field(subs.create(r, &profiles(), "odoo").await.unwrap_err()),
            "profile"
        );
        let mut r = new("ok");
        r.stage_limit = 1_000_000;
        assert_eq!(
            field(subs.create(r, &profiles(), "odoo").await.unwrap_err()),
            "stage_limit"
        );
        assert!(subs.list().is_empty());
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing() {
        let store = Arc::new(MemStore::default());
        let subs = Subscriptions::load(store.clone(), Arc::new(AnyFile)).unwrap();
        subs.create(new("acme"), &profiles(), "odoo").await.unwrap();
        store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let patch = SubscriptionPatch {
            id: "acme".into(),
            stage_limit: Some(9),
            ..Default::default()
        };
        assert!(matches!(
            subs.update(patch).await,
            Err(Error::Internal { .. })
        ));
        assert_eq!(subs.get("acme").unwrap().stage_limit, 3);
        assert!(subs.create(new("beta"), &profiles(), "odoo").await.is_err());
        assert!(subs.get("beta").is_err());
    }
}
