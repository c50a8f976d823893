//! The agent: the one object the API hands requests to. It owns the live configuration, the
//! registries and the probes.

use super::interfaces::{DependencyProbe, HostProbe, HostStats, RecordStore};
use super::names::SubscriptionId;
use super::stage::code_server::CodeServerView;
use super::stage::deploy::DeployRequest;
use super::stage::interfaces::{ContainerStats, MeasurePriority};
use super::stage::model::{Stage, StageState, StageType, StageView, StopReason};
use super::stage::usage::{over_limit, used_by, StageUsage};
use super::stage::{NewStage, StageDeps, StagePatch, Stages};
use super::subscription::{DeployKey, Subscription, SubscriptionView};
use super::subscriptions::{NewSubscription, SubscriptionPatch, Subscriptions};
use super::{Error, Result};
use crate::config::{Config, SharedConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub struct Agent {
    config: SharedConfig,
    subscriptions: Subscriptions,
    stages: Stages,
    host: Arc<dyn HostProbe>,
    deps: Arc<dyn DependencyProbe>,
    started: Instant,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentInfo {
    pub version: String,
    pub api_version: String,
    pub hostname: String,
    pub docker: DockerInfo,
    pub nginx: NginxInfo,
    pub uptime_s: u64,
    pub subscriptions: usize,
    /// Stage counts by state.
    pub stages: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DockerInfo {
    pub reachable: bool,
    pub version: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NginxInfo {
    pub ok: bool,
    pub version: Option<String>,
    pub message: Option<String>,
}

impl Agent {
    pub fn new(
        config: SharedConfig,
        store: Arc<dyn RecordStore>,
        stage_deps: StageDeps,
        host: Arc<dyn HostProbe>,
        deps: Arc<dyn DependencyProbe>,
    ) -> Result<Self> {
        Ok(Agent {
            config,
            subscriptions: Subscriptions::load(store)?,
            stages: Stages::load(stage_deps)?,
            host,
            deps,
            started: Instant::now(),
        })
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies what can change live and returns the keys that need a restart; those keep
    /// their running values.
    pub fn reload(&self, new: Config) -> Vec<&'static str> {
        let mut slot = self.config.write().unwrap_or_else(|p| p.into_inner());
        let restart = slot.restart_needed(&new);
        let mut merged = new;
        merged.agent.state_dir = slot.agent.state_dir.clone();
        merged.agent.socket = slot.agent.socket.clone();
        merged.agent.socket_mode = slot.agent.socket_mode;
        merged.agent.socket_group = slot.agent.socket_group.clone();
        merged.agent.log_format = slot.agent.log_format;
        merged.docker = slot.docker.clone();
        merged.ports = slot.ports.clone();
        *slot = Arc::new(merged);
        restart
    }

    pub async fn info(&self) -> AgentInfo {
        let (docker, nginx) = tokio::join!(self.deps.docker(), self.deps.nginx());
        AgentInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            api_version: crate::API_VERSION.to_string(),
            hostname: self.host.hostname(),
            docker: DockerInfo {
                reachable: docker.ok,
                version: docker.version,
                message: docker.message,
            },
            nginx: NginxInfo {
                ok: nginx.ok,
                version: nginx.version,
                message: nginx.message,
            },
            uptime_s: self.started.elapsed().as_secs(),
            subscriptions: self.subscriptions.count(),
            stages: self.stages.counts(),
        }
    }

    pub async fn host_stats(&self) -> HostStats {
        let host = self.host.clone();
        // sysinfo reads /proc; keep that off the async workers.
        tokio::task::spawn_blocking(move || host.stats())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// The record with what its stages use.
    fn subscription_view(&self, subscription: Subscription) -> SubscriptionView {
        let used_bytes = used_by(&self.stages.all(), &subscription.id);
        SubscriptionView {
            over_limit: over_limit(subscription.storage_limit_mb, used_bytes),
            used_bytes,
            subscription,
        }
    }

    pub async fn create_subscription(&self, req: NewSubscription) -> Result<SubscriptionView> {
        let config = self.config();
        let profiles: Vec<String> = config.profiles.keys().cloned().collect();
        let s = self
            .subscriptions
            .create(req, &profiles, &config.agent.default_profile)
            .await?;
        Ok(self.subscription_view(s))
    }

    pub async fn update_subscription(&self, patch: SubscriptionPatch) -> Result<SubscriptionView> {
        let s = self.subscriptions.update(patch).await?;
        Ok(self.subscription_view(s))
    }

    pub fn get_subscription(&self, id: &str) -> Result<SubscriptionView> {
        Ok(self.subscription_view(self.subscriptions.get(id)?))
    }

    pub fn list_subscriptions(&self) -> Vec<SubscriptionView> {
        self.subscriptions
            .list()
            .into_iter()
            .map(|s| self.subscription_view(s))
            .collect()
    }

    /// Whether the stage's subscription is over its storage limit.
    fn over_limit(&self, stage: &Stage) -> bool {
        self.over_limit_among(&self.stages.all(), &stage.subscription)
    }

    /// As [`over_limit`](Self::over_limit), summing over `all` records already at hand.
    fn over_limit_among(&self, all: &[Stage], subscription: &SubscriptionId) -> bool {
        let limit = self
            .subscriptions
            .get(subscription.as_str())
            .ok()
            .and_then(|s| s.storage_limit_mb);
        over_limit(limit, used_by(all, subscription))
    }

    /// Refused while the subscription has a stage that is not cancelled. Its backups and
    /// stage records go to the archive, its deploy key and mirrors are removed: a new
    /// subscription of the same id starts with nothing.
    pub async fn delete_subscription(&self, id: &str) -> Result<()> {
        // Held throughout: no stage of `id` is admitted meanwhile (create checks its
        // subscription under this lock).
        let _admission = self.stages.hold_admission().await;
        let holding = self.stages.live_of(id);
        if !holding.is_empty() {
            return Err(Error::InvalidState {
                what: format!(
                    "subscription {id} still has stages ({}); cancel them first: it",
                    holding.join(", ")
                ),
                state: "in_use".into(),
                allowed: vec!["no stages".into()],
            });
        }
        self.subscriptions
            .delete_with(id, |sub| async move {
                self.stages.retire_subscription(&sub).await.map(|_| ())
            })
            .await
    }

    pub fn stages(&self) -> &Stages {
        &self.stages
    }

    async fn view(&self, stage: &Stage) -> StageView {
        self.view_as(stage, self.over_limit(stage)).await
    }

    async fn view_as(&self, stage: &Stage, over_limit: bool) -> StageView {
        let mut view = self.stages.view(&self.config(), stage).await;
        view.over_limit = over_limit;
        view.code_server = self.code_view(stage, false).ok();
        view
    }

    pub async fn create_stage(&self, subscription: &str, req: NewStage) -> Result<StageView> {
        let sub = self.subscriptions.get(subscription).map_err(|e| match e {
            Error::InvalidParams { message, .. } => Error::invalid("subscription", message),
            other => other,
        })?;
        // Checked again under admission: a delete may have run since.
        let current = || match self.subscriptions.get(sub.id.as_str()) {
            Ok(now) if now.created_at == sub.created_at => Ok(()),
            _ => Err(Error::NotFound {
                what: "subscription",
                id: sub.id.to_string(),
            }),
        };
        let stage = self
            .stages
            .create(&self.config(), &sub, req, &current)
            .await?;
        Ok(self.view(&stage).await)
    }

    pub async fn get_stage(&self, reference: &str) -> Result<StageView> {
        let stage = self.stages.find(reference)?;
        Ok(self.view(&stage).await)
    }

    pub async fn list_stages(
        &self,
        subscription: Option<&str>,
        state: Option<&str>,
        stage_type: Option<&str>,
    ) -> Result<Vec<StageView>> {
        let state = state
            .map(|s| {
                StageState::parse(s)
                    .ok_or_else(|| Error::invalid("state", format!("{s:?} is not a stage state")))
            })
            .transpose()?;
        let stage_type = stage_type
            .map(|t| {
                StageType::parse(t).ok_or_else(|| {
                    Error::invalid("type", format!("{t:?} is not one of dev, qa, prod"))
                })
            })
            .transpose()?;
        let all = self.stages.all();
        let mut stages: Vec<&Stage> = all
            .iter()
            .filter(|s| subscription.is_none_or(|id| s.subscription.as_str() == id))
            .filter(|s| state.is_none_or(|st| s.state == st))
            .filter(|s| stage_type.is_none_or(|t| s.stage_type == t))
            .collect();
        stages.sort_by(|a, b| {
            (a.subscription.as_str(), a.name.as_str(), a.created_at).cmp(&(
                b.subscription.as_str(),
                b.name.as_str(),
                b.created_at,
            ))
        });
        // One pass over the records per subscription listed, not one per stage.
        let mut over: BTreeMap<&SubscriptionId, bool> = BTreeMap::new();
        for s in &stages {
            over.entry(&s.subscription)
                .or_insert_with(|| self.over_limit_among(&all, &s.subscription));
        }
        let views = stages
            .iter()
            .map(|s| self.view_as(s, over[&s.subscription]));
        Ok(futures::future::join_all(views).await)
    }

    pub async fn stop_stage(
        &self,
        reference: &str,
        grace_period_s: Option<u64>,
    ) -> Result<StageView> {
        let s = self
            .stages
            .stop(&self.config(), reference, grace_period_s, StopReason::User)
            .await?;
        Ok(self.view(&s).await)
    }

    pub async fn start_stage(&self, reference: &str) -> Result<StageView> {
        let s = self.stages.start(&self.config(), reference).await?;
        Ok(self.view(&s).await)
    }

    pub async fn restart_stage(
        &self,
        reference: &str,
        grace_period_s: Option<u64>,
    ) -> Result<StageView> {
        let s = self
            .stages
            .restart(&self.config(), reference, grace_period_s)
            .await?;
        Ok(self.view(&s).await)
    }

    pub async fn terminate_stage(&self, reference: &str) -> Result<StageView> {
        let s = self.stages.terminate(&self.config(), reference).await?;
        Ok(self.view(&s).await)
    }

    pub async fn restore_stage(&self, reference: &str) -> Result<StageView> {
        let s = self.stages.restore(&self.config(), reference).await?;
        Ok(self.view(&s).await)
    }

    pub async fn cancel_stage(&self, reference: &str) -> Result<StageView> {
        let s = self.stages.cancel(&self.config(), reference).await?;
        Ok(self.view(&s).await)
    }

    pub async fn update_stage(&self, reference: &str, patch: StagePatch) -> Result<StageView> {
        let s = self.stages.update(&self.config(), reference, patch).await?;
        Ok(self.view(&s).await)
    }

    /// `stage.usage`: the last measure, or a new one with `refresh` (joined by concurrent
    /// refreshes of the same stage).
    pub async fn stage_usage(&self, reference: &str, refresh: bool) -> Result<StageUsage> {
        let mut stage = self.stages.find(reference)?;
        if refresh {
            let m = self
                .stages
                .measure(&self.config(), reference, MeasurePriority::Interactive)
                .await?;
            stage.storage = Some(m.storage);
            stage.active_users = m.active_users;
        }
        Ok(StageUsage {
            stage: stage.reference(),
            over_limit: self.over_limit(&stage),
            storage: stage.storage,
            active_users: stage.active_users,
        })
    }

    /// `stage.stats`: one Docker stats sample per component; `None` when it is not running.
    pub async fn stage_stats(
        &self,
        reference: &str,
    ) -> Result<BTreeMap<String, Option<ContainerStats>>> {
        self.stages.stats(&self.config(), reference).await
    }

    pub async fn backup_stage(&self, reference: &str) -> Result<super::stage::backup::Backup> {
        self.stages.backup(&self.config(), reference).await
    }

    pub async fn restore_stage_backup(&self, reference: &str, id: &str) -> Result<StageView> {
        let s = self
            .stages
            .restore_backup(&self.config(), reference, id)
            .await?;
        Ok(self.view(&s).await)
    }

    pub async fn deploy_stage(&self, reference: &str, req: DeployRequest) -> Result<StageView> {
        let s = self.stages.deploy(&self.config(), reference, req).await?;
        Ok(self.view(&s).await)
    }

    /// Made once per subscription; later calls return the same key.
    pub async fn deploy_key(&self, id: &str) -> Result<DeployKey> {
        // A delete holds admission while it removes the key: no key is made for a
        // subscription on its way out, to be inherited by the next one of its id.
        let _admission = self.stages.hold_admission().await;
        let sub = self.subscriptions.get(id)?;
        let public_key = self.stages.deploy_key(sub.id.as_str()).await?;
        Ok(DeployKey {
            id: sub.id.to_string(),
            public_key,
        })
    }

    /// The code server of `stage` as the API shows it; the password only when asked.
    fn code_view(&self, stage: &Stage, with_password: bool) -> Result<CodeServerView> {
        let config = self.config();
        let https = config.nginx.enabled && !config.nginx.tls_certificate.is_empty();
        let cs = stage.code_server.as_ref().ok_or_else(|| Error::NotFound {
            what: "code server of stage",
            id: stage.reference(),
        })?;
        Ok(CodeServerView::new(
            stage.reference(),
            cs,
            https,
            with_password,
        ))
    }

    pub async fn create_code_server(
        &self,
        reference: &str,
        domain: &str,
    ) -> Result<CodeServerView> {
        let s = self
            .stages
            .code_create(&self.config(), reference, domain)
            .await?;
        self.code_view(&s, true)
    }

    pub async fn start_code_server(&self, reference: &str) -> Result<CodeServerView> {
        let s = self.stages.code_start(&self.config(), reference).await?;
        self.code_view(&s, false)
    }

    pub async fn stop_code_server(&self, reference: &str) -> Result<CodeServerView> {
        let s = self.stages.code_stop(&self.config(), reference).await?;
        self.code_view(&s, false)
    }

    /// Answers with the code server as it was before it went.
    pub async fn remove_code_server(&self, reference: &str) -> Result<CodeServerView> {
        let before = self.stages.find(reference)?;
        let view = self.code_view(&before, false)?;
        self.stages.code_remove(&self.config(), reference).await?;
        Ok(view)
    }

    pub async fn rotate_code_server_password(&self, reference: &str) -> Result<CodeServerView> {
        let s = self.stages.code_rotate(&self.config(), reference).await?;
        self.code_view(&s, true)
    }

    /// Measures stale stages one at a time, at idle priority, for as long as the daemon runs.
    pub async fn run_usage(self: Arc<Self>) {
        loop {
            let config = self.config();
            self.stages.measure_stale(&config, super::time::now()).await;
            // Look again often enough to notice new stages and a shorter interval.
            let pause = config
                .usage
                .interval
                .0
                .min(std::time::Duration::from_secs(60));
            tokio::time::sleep(pause).await;
        }
    }

    /// Reconcile (until it succeeds once) and the scheduled work, every `interval`.
    pub async fn run_background(self: Arc<Self>, interval: std::time::Duration) {
        let mut reconciled = false;
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let config = self.config();
            if !reconciled {
                match self.stages.reconcile(&config).await {
                    Ok(()) => reconciled = true,
                    Err(e) => tracing::warn!(error = %e, "reconcile failed; retrying"),
                }
            }
            self.stages.run_due(&config, super::time::now()).await;
        }
    }
}
