//! The scheduler: stops expired stages and cancels terminated stages past `purge_at`. What is
//! due is a pure function of the stages, the configuration and the time, so tests pass any time.

use super::model::{Stage, StageState, StopReason};
use super::ops::expired;
use super::Stages;
use crate::config::Config;
use crate::core::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Expire(uuid::Uuid),
    Purge(uuid::Uuid),
}

pub fn due(config: &Config, stages: &[Stage], now: Timestamp) -> Vec<Due> {
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

impl Stages {
    /// Does what is due at `now`, concurrently across stages.
    pub async fn run_due(&self, config: &Config, now: Timestamp) {
        let work = due(config, &self.all(), now)
            .into_iter()
            .map(|d| async move {
                let (what, result) = match d {
                    Due::Expire(u) => (
                        "expire",
                        self.stop(config, &u.to_string(), None, StopReason::Expired)
                            .await
                            .map(|_| ()),
                    ),
                    Due::Purge(u) => (
                        "purge",
                        self.cancel(config, &u.to_string()).await.map(|_| ()),
                    ),
                };
                if let Err(e) = result {
                    tracing::warn!(?d, error = %e, "scheduled {what} failed; retried next round");
                }
            });
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

    #[test]
    fn what_is_due_when() {
        let mut config = Config::default();
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
        config.lifecycle.expiry_grace = crate::config::types::Dur::secs(7200);
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
