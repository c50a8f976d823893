//! The server side of the agent-wide API traits: agent info and image pulls, host stats and
//! a stage's TLS renewal; and of a stage's backups; merged into the one module by [`super::handlers::Handlers`].

use super::handlers::Handlers;
use super::rpc::{AgentApiServer, BackupApiServer, HostApiServer, TlsApiServer};
use crate::core::agent::AgentInfo;
use crate::core::interfaces::HostStats;
use crate::core::stage::backup::Backup;
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

#[async_trait]
impl BackupApiServer for Handlers {
    async fn backup(&self, stage: String) -> RpcResult<Backup> {
        Ok(self.agent.backup_stage(&stage).await?)
    }

    async fn backups(&self, stage: String) -> RpcResult<Vec<Backup>> {
        Ok(self.agent.stage_backups(&stage).await?)
    }

    async fn restore_backup(&self, stage: String, backup: String) -> RpcResult<StageView> {
        Ok(self.agent.restore_stage_backup(&stage, &backup).await?)
    }

    async fn backup_delete(&self, stage: String, backup: String) -> RpcResult<()> {
        Ok(self.agent.delete_stage_backup(&stage, &backup).await?)
    }
}
