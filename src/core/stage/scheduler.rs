//! The scheduler: stops expired stages and cancels terminated stages past `purge_at`. What is
//! due is a pure function of the stages, the configuration and the time, so tests pass any time.

use super::lifecycle::expired;
use super::model::{Stage, StageState, StopReason};
use super::Stages;
use crate::core::settings::Settings;
use crate::core::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Expire(uuid::Uuid),
    Purge(uuid::Uuid),
}

pub fn due(config: &Settings, stages: &[Stage], now: Timestamp) -> Vec<Due> {
    stages
        .iter()
        .filter_map(|s| match s.state {
            StageState::Running if expired(config, s, now) => Some(Due::Expire(s.uuid)),
            StageState::Terminated if s.purge_at.is_some_and(|p| p <= now) => {
                Some(Due::Purge(s.uuid))
            }
            _ => None,
        })
        .collect()
}

/// The scheduler's clock: the wall clock, run ahead by the test hook in debug builds.
pub fn now() -> Timestamp {
    crate::core::time::now() + crate::core::failpoint::clock_shift()
}

impl Stages {
    /// What is due at `now`, by the records as they are.
    pub fn due_now(&self, config: &Settings, now: Timestamp) -> Vec<Due> {
        due(config, &self.all(), now)
    }

    /// Does `d` if it is still due. The stage's lock is taken without waiting (a stage an
    /// operation holds is left for the next round: one long backup delays nothing else), and
    /// the record is read again under it and checked again: a restore or an end_date moved
    /// since the list was made means there is nothing to do.
    pub async fn run_one(&self, config: &Settings, d: Due, now: Timestamp) {
        let (uuid, what) = match d {
            Due::Expire(u) => (u, "expire"),
            Due::Purge(u) => (u, "purge"),
        };
        let Some(_guard) = self.try_lock_stage(uuid) else {
            tracing::debug!(?d, "scheduled {what} skipped: the stage is busy");
            return;
        };
        let Ok(mut stage) = self.find(&uuid.to_string()) else {
            return;
        };
        if !due(config, std::slice::from_ref(&stage), now).contains(&d) {
            tracing::debug!(?d, "scheduled {what} no longer due");
            return;
        }
        let result = match d {
            Due::Expire(_) => {
                self.stop_locked(config, &mut stage, None, StopReason::Expired)
                    .await
            }
            Due::Purge(_) => self.cancel_locked(config, &mut stage).await,
        };
        if let Err(e) = result {
            tracing::warn!(?d, error = %e, "scheduled {what} failed; retried next round");
        }
    }

    /// Does what is due at `now`, each stage on its own.
    pub async fn run_due(&self, config: &Settings, now: Timestamp) {
        let work = self
            .due_now(config, now)
            .into_iter()
            .map(|d| self.run_one(config, d, now));
        futures::future::join_all(work).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::Duration;

    fn stage(state: StageState, end: Option<Timestamp>, purge: Option<Timestamp>) -> Stage {
        let t0 = ::time::OffsetDateTime::UNIX_EPOCH;
        let mut s = crate::core::fakes::stage("a", "b", state);
        (s.created_at, s.updated_at, s.end_date, s.purge_at) = (t0, t0, end, purge);
        s
    }

    fn stages_of(all: &[Stage]) -> Stages {
        let meter = std::sync::Arc::new(crate::core::fakes::SlowMeter::default());
        Stages::load(crate::core::fakes::deps(
            crate::core::fakes::store_with(all),
            meter,
        ))
        .unwrap()
    }

    /// A purge decided on a terminated stage that a restore brings back before the purge
    /// takes the lock: the restored stage stays, with its data.
    #[tokio::test]
    async fn a_purge_decided_before_a_restore_spares_the_restored_stage() {
        let config = Settings::default();
        let now = crate::core::time::now();
        let mut s = crate::core::fakes::stage("acme", "qa", StageState::Terminated);
        (s.purge_at, s.http_port) = (Some(now - Duration::seconds(1)), None);
        let stages = stages_of(std::slice::from_ref(&s));
        let decided = stages.due_now(&config, now);
        assert_eq!(decided, vec![Due::Purge(s.uuid)]);
        stages.restore(&config, "acme/qa").await.unwrap();
        for d in decided {
            stages.run_one(&config, d, now).await;
        }
        let after = stages.find("acme/qa").unwrap();
        assert_eq!(after.state, StageState::Stopped);
        assert!(after.cancelled_at.is_none());
    }

    /// An expiry decided before the end date was moved: the stage keeps running.
    #[tokio::test]
    async fn an_expiry_decided_before_an_extension_leaves_the_stage_running() {
        let config = Settings::default();
        let now = crate::core::time::now();
        let mut s = crate::core::fakes::stage("acme", "qa", StageState::Running);
        s.end_date = Some(now - Duration::hours(1));
        let stages = stages_of(std::slice::from_ref(&s));
        let decided = stages.due_now(&config, now);
        assert_eq!(decided, vec![Due::Expire(s.uuid)]);
        let later = crate::core::time::rfc3339(&(now + Duration::days(30)));
        let patch = crate::core::stage::StagePatch {
            end_date: Some(later),
            ..Default::default()
        };
        stages.update(&config, "acme/qa", patch).await.unwrap();
        for d in decided {
            stages.run_one(&config, d, now).await;
        }
        assert_eq!(stages.find("acme/qa").unwrap().state, StageState::Running);
    }

    /// A stage an operation holds is skipped at once, not waited for; the others go on.
    #[tokio::test]
    async fn a_busy_stage_is_skipped_and_holds_up_no_other() {
        let config = Settings::default();
        let now = crate::core::time::now();
        let mut busy = crate::core::fakes::stage("acme", "busy", StageState::Running);
        busy.end_date = Some(now - Duration::hours(1));
        let mut free = crate::core::fakes::stage("acme", "free", StageState::Running);
        (free.end_date, free.http_port) = (Some(now - Duration::hours(1)), Some(20001));
        let stages = stages_of(&[busy.clone(), free.clone()]);
        let (held, _) = stages.lock_stage("acme/busy").await.unwrap();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stages.run_due(&config, now),
        )
        .await
        .expect("run_due does not wait for a busy stage");
        assert_eq!(stages.find("acme/busy").unwrap().state, StageState::Running);
        assert_eq!(stages.find("acme/free").unwrap().state, StageState::Stopped);
        drop(held);
        stages.run_due(&config, now).await;
        assert_eq!(stages.find("acme/busy").unwrap().state, StageState::Stopped);
    }

    #[test]
    fn what_is_due_when() {
        let mut config = Settings::default();
        let t = ::time::OffsetDateTime::UNIX_EPOCH + Duration::days(100);
        let running_expired = stage(StageState::Running, Some(t - Duration::hours(1)), None);
        let running_future = stage(StageState::Running, Some(t + Duration::hours(1)), None);
        let stopped_expired = stage(StageState::Stopped, Some(t - Duration::hours(1)), None);
        let purge_now = stage(StageState::Terminated, None, Some(t - Duration::seconds(1)));
        let purge_later = stage(StageState::Terminated, None, Some(t + Duration::days(1)));
        let all = [
            running_expired.clone(),
            running_future,
            stopped_expired,
            purge_now.clone(),
            purge_later,
        ];
        assert_eq!(
            due(&config, &all, t),
            vec![
                Due::Expire(running_expired.uuid),
                Due::Purge(purge_now.uuid)
            ]
        );
        // expiry_grace pushes the stop later.
        config.lifecycle.expiry_grace = crate::core::settings::Dur::secs(7200);
        assert_eq!(due(&config, &all, t), vec![Due::Purge(purge_now.uuid)]);
        assert_eq!(
            due(&config, &all, t + Duration::hours(2)),
            vec![
                Due::Expire(running_expired.uuid),
                Due::Purge(purge_now.uuid)
            ]
        );
    }
}
