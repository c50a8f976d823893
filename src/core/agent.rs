//! The agent: the one object the API hands requests to. It owns the live configuration, the
//! registries and the probes.

use super::interfaces::{DependencyProbe, HostProbe, HostStats, RecordStore};
use super::subscription::Subscription;
use super::subscriptions::{NewSubscription, SubscriptionPatch, Subscriptions};
use super::Result;
use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

pub struct Agent {
    config: RwLock<Arc<Config>>,
    subscriptions: Subscriptions,
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
        config: Config,
        store: Arc<dyn RecordStore>,
        host: Arc<dyn HostProbe>,
        deps: Arc<dyn DependencyProbe>,
    ) -> Result<Self> {
        Ok(Agent {
            config: RwLock::new(Arc::new(config)),
            subscriptions: Subscriptions::load(store)?,
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
            stages: BTreeMap::new(),
        }
    }

    pub async fn host_stats(&self) -> HostStats {
        let host = self.host.clone();
        // sysinfo reads /proc; keep that off the async workers.
        tokio::task::spawn_blocking(move || host.stats())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    pub async fn create_subscription(&self, req: NewSubscription) -> Result<Subscription> {
        let config = self.config();
        let profiles: Vec<String> = config.profiles.keys().cloned().collect();
        self.subscriptions
            .create(req, &profiles, &config.agent.default_profile)
            .await
    }

    pub async fn update_subscription(&self, patch: SubscriptionPatch) -> Result<Subscription> {
        self.subscriptions.update(patch).await
    }

    pub fn get_subscription(&self, id: &str) -> Result<Subscription> {
        self.subscriptions.get(id)
    }

    pub fn list_subscriptions(&self) -> Vec<Subscription> {
        self.subscriptions.list()
    }

    /// Stages arrive with the lifecycle; until then no stage can hold a subscription.
    pub async fn delete_subscription(&self, id: &str) -> Result<()> {
        self.subscriptions.delete(id).await
    }
}
