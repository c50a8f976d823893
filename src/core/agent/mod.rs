//! The agent: the facade the API hands every request to. It owns the settings in force, the
//! registries and the probes. Every operation that changes state runs on a task of its own
//! ([`Agent::detached`]): a client that hangs up does not cut it off midway. The facade's
//! methods live by concern in `subscriptions`, `stages` and `code_server`; the views they
//! answer with are assembled in `views`.

mod code_server;
mod stages;
mod subscriptions;
mod views;

use super::interfaces::{DependencyProbe, HostProbe, HostStats, RecordStore};
use super::settings::{Settings, SharedSettings};
use super::stage::model::Stage;
use super::stage::{StageDeps, Stages};
use super::subscription::Subscriptions;
use super::{Error, Result};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Agent {
    config: SharedSettings,
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
        config: SharedSettings,
        store: Arc<dyn RecordStore>,
        stage_deps: StageDeps,
        host: Arc<dyn HostProbe>,
        deps: Arc<dyn DependencyProbe>,
    ) -> Result<Self> {
        Ok(Agent {
            config,
            subscriptions: Subscriptions::load(store, stage_deps.files.clone())?,
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

    /// The settings in force.
    pub fn config(&self) -> Arc<Settings> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts reloaded settings in force (the caller kept the restart-only values).
    pub fn apply_settings(&self, new: Settings) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
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

    /// Runs a stage operation on a task of its own ([`detached`](Self::detached)) with the
    /// settings in force; the stage as it left it.
    async fn stage_op<F>(self: &Arc<Self>, reference: &str, op: F) -> Result<Stage>
    where
        F: for<'a> FnOnce(&'a Stages, &'a Settings, &'a str) -> BoxFuture<'a, Result<Stage>>
            + Send
            + 'static,
    {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let config = a.config();
            op(&a.stages, &config, &r).await
        })
        .await
    }

    #[cfg(test)]
    pub(crate) fn stages(&self) -> &Stages {
        &self.stages
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
