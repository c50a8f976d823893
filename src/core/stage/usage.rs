//! A stage's storage: measuring its db, filestore and addons directories, one walk shared by
//! concurrent refreshes, the periodic background pass, and the subscription's storage limit.

use super::model::{Stage, StageState};
use super::transitions::Operation;
use super::{naming, Stages};
use crate::core::interfaces::{DirUsage, MeasurePriority};
use crate::core::names::SubscriptionId;
use crate::core::settings::Settings;
use crate::core::time::{self, Timestamp};
use crate::core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The active-users count may take this long (the database side bounds its own statements
/// and locks well below): a tenant holding a lock delays its own figure, nothing else.
const ACTIVE_USERS_TIMEOUT: Duration = Duration::from_secs(20);
/// One stage's measure in the background pass; past it the pass moves on to the next.
const BACKGROUND_STAGE_TIMEOUT: Duration = Duration::from_secs(300);

/// Allocated sizes (what `du -sB1` prints): what the stage takes from the disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Storage {
    pub database_bytes: u64,
    pub filestore_bytes: u64,
    pub addons_bytes: u64,
    pub used_bytes: u64,
    /// The same figures as apparent sizes (what `du -sb` prints).
    pub apparent: Sizes,
    pub files: u64,
    /// Entries the walk could not read; counted, never fatal.
    pub unreadable: u64,
    #[serde(with = "::time::serde::rfc3339")]
    pub measured_at: Timestamp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    pub database_bytes: u64,
    pub filestore_bytes: u64,
    pub addons_bytes: u64,
    pub used_bytes: u64,
}

impl Storage {
    pub fn from_dirs(db: DirUsage, filestore: DirUsage, addons: DirUsage, at: Timestamp) -> Self {
        let all = [db, filestore, addons];
        Storage {
            database_bytes: db.allocated_bytes,
            filestore_bytes: filestore.allocated_bytes,
            addons_bytes: addons.allocated_bytes,
            used_bytes: all.iter().map(|u| u.allocated_bytes).sum(),
            apparent: Sizes {
                database_bytes: db.apparent_bytes,
                filestore_bytes: filestore.apparent_bytes,
                addons_bytes: addons.apparent_bytes,
                used_bytes: all.iter().map(|u| u.apparent_bytes).sum(),
            },
            files: all.iter().map(|u| u.files).sum(),
            unreadable: all.iter().map(|u| u.unreadable).sum(),
            measured_at: at,
        }
    }
}

/// `stage.usage`: the last measure (none before the first), with the subscription's limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageUsage {
    pub stage: String,
    pub storage: Option<Storage>,
    pub active_users: Option<u64>,
    /// The stage's subscription uses more than its `storage_limit_mb`.
    pub over_limit: bool,
}

/// What one walk found; shared by every caller that joined it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub storage: Storage,
    pub active_users: Option<u64>,
}

/// Bytes the subscription's stages use, by their last measures (cancelled stages hold none).
pub fn used_by(stages: &[Stage], subscription: &SubscriptionId) -> u64 {
    stages
        .iter()
        .filter(|s| &s.subscription == subscription && s.state != StageState::Cancelled)
        .filter_map(|s| s.storage.as_ref())
        .map(|s| s.used_bytes)
        .sum()
}

pub fn over_limit(limit_mb: Option<u64>, used_bytes: u64) -> bool {
    limit_mb.is_some_and(|mb| used_bytes > mb.saturating_mul(1024 * 1024))
}

/// Stages the background pass should measure now: never measured, or longer ago than
/// `interval`; oldest first.
pub fn stale(stages: &[Stage], interval: std::time::Duration, now: Timestamp) -> Vec<uuid::Uuid> {
    let mut due: Vec<&Stage> = stages
        .iter()
        .filter(|s| Operation::Measure.allowed_from().contains(&s.state))
        .filter(|s| {
            s.storage
                .as_ref()
                .is_none_or(|m| m.measured_at + interval <= now)
        })
        .collect();
    due.sort_by_key(|s| s.storage.as_ref().map(|m| m.measured_at));
    due.into_iter().map(|s| s.uuid).collect()
}

impl Stages {
    /// Measures now, or joins the walk already running for this stage.
    pub async fn measure(
        &self,
        config: &Settings,
        reference: &str,
        priority: MeasurePriority,
    ) -> Result<Measured> {
        let stage = self.find(reference)?;
        Operation::Measure.check(&stage.reference(), stage.state)?;
        let cell = self
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(stage.uuid)
            .or_default()
            .clone();
        let mut led = false;
        let measured = cell
            .get_or_init(|| {
                led = true;
                self.walk(config, stage.clone(), priority)
            })
            .await
            .clone();
        if led {
            {
                let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
                if inflight
                    .get(&stage.uuid)
                    .is_some_and(|c| Arc::ptr_eq(c, &cell))
                {
                    inflight.remove(&stage.uuid);
                }
            }
            self.record_usage(stage.uuid, &measured).await?;
        }
        Ok(measured)
    }

    async fn walk(&self, config: &Settings, stage: Stage, priority: MeasurePriority) -> Measured {
        let root = self
            .deps
            .dirs
            .root(stage.subscription.as_str(), stage.name.as_str());
        let mut dirs = [DirUsage::default(); 3];
        for (usage, d) in dirs.iter_mut().zip(["db", "filestore", "addons"]) {
            *usage = self.deps.meter.measure(&root.join(d), priority).await;
        }
        let storage = Storage::from_dirs(dirs[0], dirs[1], dirs[2], time::now());
        let counted = tokio::time::timeout(ACTIVE_USERS_TIMEOUT, self.active_users(config, &stage))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Database(format!(
                    "no count within {ACTIVE_USERS_TIMEOUT:?}"
                )))
            });
        let active_users = match counted {
            Ok(Some(n)) => Some(n),
            // Stopped, or no query in the profile: the last count still holds.
            Ok(None) => stage.active_users,
            Err(e) => {
                tracing::warn!(stage = %stage.reference(), error = %e, "active users not counted");
                stage.active_users
            }
        };
        Measured {
            storage,
            active_users,
        }
    }

    /// The profile's `active_users_query` on the stage database, when the stage runs.
    async fn active_users(&self, config: &Settings, stage: &Stage) -> Result<Option<u64>> {
        let profile = super::common::profile_of(config, &stage.profile)?;
        if stage.state != StageState::Running || profile.active_users_query.trim().is_empty() {
            return Ok(None);
        }
        let target = self.app_target(&naming(config), stage, profile).await?;
        let n = self
            .deps
            .db
            .count(&target, stage.db_name(), &profile.active_users_query)
            .await?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }

    /// Writes the figures into the record, under the stage's lock so that no operation's
    /// save overwrites them with an older copy.
    async fn record_usage(&self, uuid: uuid::Uuid, m: &Measured) -> Result<()> {
        let lock = self.lock_of(uuid);
        let _g = lock.lock().await;
        let mut stage = self.find(&uuid.to_string())?;
        if stage.state == StageState::Cancelled {
            return Ok(());
        }
        stage.storage = Some(m.storage.clone());
        stage.active_users = m.active_users;
        self.save(&stage).await
    }

    /// The background pass: stale stages one at a time, at idle priority, each within
    /// `BACKGROUND_STAGE_TIMEOUT` so that one stage never holds up the others.
    pub async fn measure_stale(&self, config: &Settings, now: Timestamp) {
        for uuid in stale(&self.all(), config.usage.interval.0, now) {
            // A stage an operation holds waits for a later pass rather than hold up the others.
            if self.try_lock_stage(uuid).is_none() {
                continue;
            }
            let id = uuid.to_string();
            let one = self.measure(config, &id, MeasurePriority::Background);
            let Ok(measured) = tokio::time::timeout(BACKGROUND_STAGE_TIMEOUT, one).await else {
                tracing::warn!(%uuid, "background measure took too long; next stage");
                continue;
            };
            match measured {
                Ok(m) => tracing::debug!(%uuid, used_bytes = m.storage.used_bytes, "measured"),
                // Cancelled or terminated meanwhile: nothing to do.
                Err(Error::InvalidState { .. } | Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(%uuid, error = %e, "background measure failed"),
            }
        }
    }

    /// Refused while the subscription is already over its storage limit.
    pub(super) fn check_storage(
        &self,
        live: &[Stage],
        sub: &crate::core::subscription::Subscription,
    ) -> Result<()> {
        let used = used_by(live, &sub.id);
        if over_limit(sub.storage_limit_mb, used) {
            return Err(Error::LimitExceeded(format!(
                "subscription {} uses {} MB, over its storage limit of {} MB",
                sub.id,
                used / (1024 * 1024),
                sub.storage_limit_mb.unwrap_or(0)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fakes::{self, SlowMeter};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_refreshes_share_one_walk_and_land_in_the_record() {
        let stopped = fakes::stage("acme", "qa", StageState::Stopped);
        let store = fakes::store_with(std::slice::from_ref(&stopped));
        let meter = Arc::new(SlowMeter {
            delay: Duration::from_millis(100),
            ..Default::default()
        });
        let stages = Stages::load(fakes::deps(store.clone(), meter.clone())).unwrap();
        let config = Settings::default();
        let refresh = || stages.measure(&config, "acme/qa", MeasurePriority::Interactive);
        let all = futures::future::join_all((0..5).map(|_| refresh())).await;
        // One walk: three directories measured once, and every caller got its figures.
        assert_eq!(meter.calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        let first = all[0].as_ref().unwrap().clone();
        for m in &all {
            assert_eq!(m.as_ref().unwrap(), &first);
        }
        assert_eq!(first.storage.used_bytes, 3 * 4096);
        // Persisted: a fresh load sees it.
        let again = Stages::load(fakes::deps(store, meter.clone())).unwrap();
        let rec = again.find("acme/qa").unwrap();
        assert_eq!(rec.storage, Some(first.storage));
        // The next refresh walks again.
        stages
            .measure(&config, "acme/qa", MeasurePriority::Interactive)
            .await
            .unwrap();
        assert_eq!(meter.calls.load(std::sync::atomic::Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn a_cancelled_stage_has_nothing_to_measure() {
        let gone = fakes::stage("acme", "old", StageState::Cancelled);
        let meter = Arc::new(SlowMeter::default());
        let stages = Stages::load(fakes::deps(fakes::store_with(&[gone]), meter.clone())).unwrap();
        let err = stages
            .measure(
                &Settings::default(),
                "acme/old",
                MeasurePriority::Interactive,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidState { .. }), "{err}");
        assert_eq!(meter.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn stale_stages_oldest_first() {
        let now = time::now();
        let hour = std::time::Duration::from_secs(3600);
        let mut fresh = fakes::stage("a", "fresh", StageState::Running);
        fresh.storage = Some(Storage::from_dirs(
            DirUsage::default(),
            DirUsage::default(),
            DirUsage::default(),
            now,
        ));
        let mut old = fakes::stage("a", "old", StageState::Stopped);
        old.storage = Some(Storage::from_dirs(
            DirUsage::default(),
            DirUsage::default(),
            DirUsage::default(),
            now - hour * 2,
        ));
        let never = fakes::stage("a", "never", StageState::Terminated);
        let gone = fakes::stage("a", "gone", StageState::Cancelled);
        let building = fakes::stage("a", "building", StageState::Build);
        let all = [fresh, old.clone(), never.clone(), gone, building];
        assert_eq!(stale(&all, hour, now), vec![never.uuid, old.uuid]);
    }

    fn u(apparent: u64, allocated: u64, files: u64) -> DirUsage {
        DirUsage {
            apparent_bytes: apparent,
            allocated_bytes: allocated,
            files,
            dirs: 1,
            unreadable: 0,
        }
    }

    #[test]
    fn storage_sums_the_three_directories() {
        let at = time::now();
        let s = Storage::from_dirs(u(10, 4096, 1), u(20, 8192, 2), u(5, 0, 3), at);
        assert_eq!(
            (s.database_bytes, s.filestore_bytes, s.addons_bytes),
            (4096, 8192, 0)
        );
        assert_eq!(s.used_bytes, 12288);
        assert_eq!(s.apparent.used_bytes, 35);
        assert_eq!(s.files, 6);
    }

    #[test]
    fn the_limit_is_in_megabytes_and_strict() {
        assert!(!over_limit(None, u64::MAX));
        assert!(!over_limit(Some(1), 1024 * 1024));
        assert!(over_limit(Some(1), 1024 * 1024 + 1));
        assert!(over_limit(Some(0), 1));
    }
}
