//! The agent: the one object the API hands requests to. It owns the live configuration, the
//! registries and the probes. Every operation that changes state runs on a task of its own
//! ([`Agent::detached`]): a client that hangs up does not cut it off midway.

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
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Agent {
    config: SharedConfig,
    subscriptions: Subscriptions,
    stages: Stages,
    host: Arc<dyn HostProbe>,
    deps: Arc<dyn DependencyProbe>,
    started: Instant,
    /// How many operations run on their own tasks; shutdown waits for none.
    operations: Arc<tokio::sync::watch::Sender<usize>>,
}

/// Counts one operation while it runs, however its task ends.
struct Running(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
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
            operations: Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    /// Runs `op` on a task of the agent's own and waits for its result. Dropping the returned
    /// future (the client hung up, the request was cut off) leaves the operation running to
    /// its end or its rollback; `stage.get` and `events.subscribe` show how it ended.
    pub async fn detached<T, F>(self: &Arc<Self>, op: impl FnOnce(Arc<Self>) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(op(self.clone())).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::internal("an operation's task", e)),
        }
    }

    /// Spawns `work`, counted until it ends.
    fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.operations.send_modify(|n| *n += 1);
        let running = Running(self.operations.clone());
        tokio::spawn(async move {
            let _running = running;
            work.await
        })
    }

    /// Waits until no operation runs, at most `limit`. False when some still ran.
    pub async fn finish_operations(&self, limit: Duration) -> bool {
        let mut count = self.operations.subscribe();
        let idle = tokio::time::timeout(limit, count.wait_for(|n| *n == 0))
            .await
            .is_ok();
        idle
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
        let (applied, restart) = slot.reloaded(new);
        *slot = Arc::new(applied);
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

    pub async fn create_subscription(
        self: &Arc<Self>,
        req: NewSubscription,
    ) -> Result<SubscriptionView> {
        self.detached(move |a| async move {
            let config = a.config();
            let profiles: Vec<String> = config.profiles.keys().cloned().collect();
            let s = a
                .subscriptions
                .create(req, &profiles, &config.agent.default_profile)
                .await?;
            Ok(a.subscription_view(s))
        })
        .await
    }

    pub async fn update_subscription(
        self: &Arc<Self>,
        patch: SubscriptionPatch,
    ) -> Result<SubscriptionView> {
        self.detached(move |a| async move {
            let s = a.subscriptions.update(patch).await?;
            Ok(a.subscription_view(s))
        })
        .await
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

    pub async fn create_stage(
        self: &Arc<Self>,
        subscription: &str,
        req: NewStage,
    ) -> Result<StageView> {
        let subscription = subscription.to_string();
        self.detached(move |a| async move {
            let sub = a.subscriptions.get(&subscription).map_err(|e| match e {
                Error::InvalidParams { message, .. } => Error::invalid("subscription", message),
                other => other,
            })?;
            // Checked again under admission: a delete may have run since.
            let current = || match a.subscriptions.get(sub.id.as_str()) {
                Ok(now) if now.created_at == sub.created_at => Ok(()),
                _ => Err(Error::NotFound {
                    what: "subscription",
                    id: sub.id.to_string(),
                }),
            };
            let stage = a.stages.create(&a.config(), &sub, req, &current).await?;
            Ok(a.view(&stage).await)
        })
        .await
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
        self: &Arc<Self>,
        reference: &str,
        grace_period_s: Option<u64>,
    ) -> Result<StageView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a
                .stages
                .stop(&a.config(), &r, grace_period_s, StopReason::User)
                .await?;
            Ok(a.view(&s).await)
        })
        .await
    }

    pub async fn start_stage(self: &Arc<Self>, reference: &str) -> Result<StageView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.start(&a.config(), &r).await?;
            Ok(a.view(&s).await)
        })
        .await
    }

    pub async fn restart_stage(
        self: &Arc<Self>,
        reference: &str,
        grace_period_s: Option<u64>,
    ) -> Result<StageView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.restart(&a.config(), &r, grace_period_s).await?;
            Ok(a.view(&s).await)
        })
        .await
    }

    pub async fn terminate_stage(self: &Arc<Self>, reference: &str) -> Result<StageView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.terminate(&a.config(), &r).await?;
            Ok(a.view(&s).await)
        })
        .await
    }

    pub async fn restore_stage(self: &Arc<Self>, reference: &str) -> Result<StageView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.restore(&a.config(), &r).await?;
            Ok(a.view(&s).await)
        })
        .await
    }

    pub async fn cancel_stage(self: &Arc<Self>, reference: &str) -> Result<StageView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.cancel(&a.config(), &r).await?;
            Ok(a.view(&s).await)
        })
        .await
    }

    pub async fn update_stage(
        self: &Arc<Self>,
        reference: &str,
        patch: StagePatch,
    ) -> Result<StageView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.update(&a.config(), &r, patch).await?;
            Ok(a.view(&s).await)
        })
        .await
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

    pub async fn backup_stage(
        self: &Arc<Self>,
        reference: &str,
    ) -> Result<super::stage::backup::Backup> {
        let r = reference.to_string();
        self.detached(move |a| async move { a.stages.backup(&a.config(), &r).await })
            .await
    }

    pub async fn restore_stage_backup(
        self: &Arc<Self>,
        reference: &str,
        id: &str,
    ) -> Result<StageView> {
        let (r, id) = (reference.to_string(), id.to_string());
        self.detached(move |a| async move {
            let s = a.stages.restore_backup(&a.config(), &r, &id).await?;
            Ok(a.view(&s).await)
        })
        .await
    }

    pub async fn delete_stage_backup(self: &Arc<Self>, reference: &str, id: &str) -> Result<()> {
        let (r, id) = (reference.to_string(), id.to_string());
        self.detached(move |a| async move { a.stages.delete_backup(&r, &id).await })
            .await
    }

    pub async fn deploy_stage(
        self: &Arc<Self>,
        reference: &str,
        req: DeployRequest,
    ) -> Result<StageView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.deploy(&a.config(), &r, req).await?;
            Ok(a.view(&s).await)
        })
        .await
    }

    /// Made once per subscription; later calls return the same key.
    pub async fn deploy_key(self: &Arc<Self>, id: &str) -> Result<DeployKey> {
        let id = id.to_string();
        self.detached(move |a| async move {
            // A delete holds admission while it removes the key: no key is made for a
            // subscription on its way out, to be inherited by the next one of its id.
            let _admission = a.stages.hold_admission().await;
            let sub = a.subscriptions.get(&id)?;
            let public_key = a.stages.deploy_key(sub.id.as_str()).await?;
            Ok(DeployKey {
                id: sub.id.to_string(),
                public_key,
            })
        })
        .await
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
        self: &Arc<Self>,
        reference: &str,
        domain: &str,
    ) -> Result<CodeServerView> {
        let (r, domain) = (reference.to_string(), domain.to_string());
        self.detached(move |a| async move {
            let s = a.stages.code_create(&a.config(), &r, &domain).await?;
            a.code_view(&s, true)
        })
        .await
    }

    pub async fn start_code_server(self: &Arc<Self>, reference: &str) -> Result<CodeServerView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.code_start(&a.config(), &r).await?;
            a.code_view(&s, false)
        })
        .await
    }

    pub async fn stop_code_server(self: &Arc<Self>, reference: &str) -> Result<CodeServerView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.code_stop(&a.config(), &r).await?;
            a.code_view(&s, false)
        })
        .await
    }

    /// Answers with the code server as it was before it went.
    pub async fn remove_code_server(self: &Arc<Self>, reference: &str) -> Result<CodeServerView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let before = a.stages.find(&r)?;
            let view = a.code_view(&before, false)?;
            a.stages.code_remove(&a.config(), &r).await?;
            Ok(view)
        })
        .await
    }

    pub async fn rotate_code_server_password(
        self: &Arc<Self>,
        reference: &str,
    ) -> Result<CodeServerView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let s = a.stages.code_rotate(&a.config(), &r).await?;
            a.code_view(&s, true)
        })
        .await
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

    /// Reconcile (until it succeeds once) and the scheduled work, every `interval`. Each due
    /// stage's work runs on its own task: none waits for another, and a round does not wait
    /// for the last one (a stage still busy with it is skipped).
    pub async fn run_background(self: Arc<Self>, interval: std::time::Duration) {
        let mut reconciled = false;
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            if !reconciled {
                let done = self
                    .detached(|a| async move { a.stages.reconcile(&a.config()).await })
                    .await;
                match done {
                    Ok(()) => reconciled = true,
                    Err(e) => tracing::warn!(error = %e, "reconcile failed; retrying"),
                }
            }
            let config = self.config();
            let now = super::stage::scheduler::now();
            for due in self.stages.due_now(&config, now) {
                let (agent, config) = (self.clone(), config.clone());
                drop(self.spawn(async move { agent.stages.run_one(&config, due, now).await }));
            }
        }
    }
}
