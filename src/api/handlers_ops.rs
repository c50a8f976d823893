//! The server side of the agent-wide API traits: agent info and image pulls, host stats and
//! a stage's TLS renewal; merged into the one module by [`super::handlers::Handlers`].

use super::handlers::Handlers;
use super::rpc::{AgentApiServer, HostApiServer, TlsApiServer};
use crate::core::agent::AgentInfo;
use crate::core::interfaces::HostStats;
use crate::core::stage::model::StageView;
use crate::core::stage::pull::ImageDigest;
use jsonrpsee::core::{async_trait, RpcResult};

#[async_trait]
impl TlsApiServer for Handlers {
    async fn renew(&self, stage: String) -> RpcResult<StageView> {
        Ok(self.agent.renew_tls(&stage).await?)
    }
}

#[async_trait]
impl AgentApiServer for Handlers {
    async fn info(&self) -> RpcResult<AgentInfo> {
        Ok(self.agent.info().await)
    }

    async fn pull_images(&self, profile: Option<String>) -> RpcResult<Vec<ImageDigest>> {
        Ok(self.agent.pull_images(profile.as_deref()).await?)
    }
}

#[async_trait]
impl HostApiServer for Handlers {
    async fn stats(&self) -> RpcResult<HostStats> {
        Ok(self.agent.host_stats().await)
    }
}
