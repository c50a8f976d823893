//! The agent's side of certificates: the ACME round (each due domain on a task of its own),
//! the `tls` views, `tls.renew` and the expiry warnings of `agent.info` and the log.

use super::Agent;
use crate::core::names::Domain;
use crate::core::stage::model::StageView;
use crate::core::stage::tls::TlsManager;
use crate::core::tls::TlsView;
use crate::core::Result;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often due orders are looked for: cheap (records in memory), and a new stage's
/// certificate should not wait for the slower lifecycle scheduler.
const TICK: Duration = Duration::from_secs(2);
/// How often the expiry warning is repeated in the log.
const WARN_EVERY: Duration = Duration::from_secs(3600);

/// Whether the domain is served over HTTPS (for the code server's URL): in ACME mode while
/// its certificate has not expired (nginx serves an expired one over HTTP).
pub(super) fn serves_https(tls: &TlsView) -> bool {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    match tls.mode.as_str() {
        "files" => true,
        "acme" => tls
            .not_after
            .as_deref()
            .and_then(|t| time::OffsetDateTime::parse(t, rfc3339).ok())
            .is_some_and(|end| end > crate::core::time::now()),
        _ => false,
    }
}

impl Agent {
    /// Gives the agent its certificate manager; the first call wins.
    pub fn attach_tls(&self, tls: Arc<TlsManager>) {
        let _ = self.tls.set(tls);
    }

    pub(super) fn tls_view(&self, domain: &Domain) -> TlsView {
        let config = self.config();
        match self.tls.get() {
            Some(t) => t.view(&config, domain),
            None => TlsView::none(config.tls.mode.as_str()),
        }
    }

    pub(super) fn tls_warnings(&self) -> Vec<String> {
        let now = super::super::stage::scheduler::now();
        self.tls.get().map(|t| t.expiring(now)).unwrap_or_default()
    }

    /// `tls.renew`: the stage's certificates are ordered again at the next round.
    pub async fn renew_tls(&self, reference: &str) -> Result<StageView> {
        let tls = self.tls.get().ok_or_else(|| {
            crate::core::Error::Tls("the agent runs without a certificate manager".into())
        })?;
        let stage = self
            .stages
            .tls_force(&self.config(), tls, reference)
            .await?;
        Ok(self.view(&stage).await)
    }

    /// Runs ACME rounds until the task is aborted. Each due domain's order runs on its own
    /// task, so a slow or failing server for one domain holds up no other.
    pub async fn run_tls(self: Arc<Self>) {
        let Some(tls) = self.tls.get().cloned() else {
            return;
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned: Option<Instant> = None;
        loop {
            tick.tick().await;
            let config = self.config();
            let now = super::super::stage::scheduler::now();
            for (domain, uuid) in self.stages.tls_due(&config, &tls, now).await {
                let (agent, config, tls) = (self.clone(), config.clone(), tls.clone());
                drop(self.spawn(async move {
                    agent
                        .stages
                        .tls_order(&config, &tls, domain, uuid, now)
                        .await
                }));
            }
            if warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                let warnings = tls.expiring(now);
                for w in &warnings {
                    tracing::warn!(warning = %w, "certificate expiring");
                }
                if !warnings.is_empty() {
                    warned = Some(Instant::now());
                }
            }
        }
    }
}
