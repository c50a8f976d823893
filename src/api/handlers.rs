//! The server side of the API traits: each method turns its parameters into a core request
//! and hands it to the agent.

use super::rpc::{AgentApiServer, HostApiServer, SubscriptionApiServer};
use crate::core::agent::{Agent, AgentInfo};
use crate::core::interfaces::HostStats;
use crate::core::subscription::{Settings, Subscription};
use crate::core::subscriptions::{NewSubscription, SubscriptionPatch};
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::RpcModule;
use std::sync::Arc;

#[derive(Clone)]
pub struct Handlers {
    agent: Arc<Agent>,
}

impl Handlers {
    pub fn new(agent: Arc<Agent>) -> Self {
        Handlers { agent }
    }

    /// Every method of the API in one module.
    pub fn into_module(self) -> RpcModule<()> {
        let mut module = RpcModule::new(());
        let merge = |m: &mut RpcModule<()>, other: jsonrpsee::Methods| {
            m.merge(other).expect("API method names are unique");
        };
        merge(&mut module, AgentApiServer::into_rpc(self.clone()).into());
        merge(&mut module, HostApiServer::into_rpc(self.clone()).into());
        merge(&mut module, SubscriptionApiServer::into_rpc(self).into());
        module
    }
}

#[async_trait]
impl AgentApiServer for Handlers {
    async fn info(&self) -> RpcResult<AgentInfo> {
        Ok(self.agent.info().await)
    }
}

#[async_trait]
impl HostApiServer for Handlers {
    async fn stats(&self) -> RpcResult<HostStats> {
        Ok(self.agent.host_stats().await)
    }
}

#[async_trait]
impl SubscriptionApiServer for Handlers {
    async fn create(
        &self,
        id: String,
        stage_limit: u32,
        storage_limit_mb: Option<u64>,
        profile: Option<String>,
        settings: Option<Settings>,
    ) -> RpcResult<Subscription> {
        let req = NewSubscription {
            id,
            stage_limit,
            storage_limit_mb,
            profile,
            settings,
        };
        Ok(self.agent.create_subscription(req).await?)
    }

    async fn update(
        &self,
        id: String,
        stage_limit: Option<u32>,
        storage_limit_mb: Option<u64>,
        settings: Option<Settings>,
    ) -> RpcResult<Subscription> {
        let patch = SubscriptionPatch {
            id,
            stage_limit,
            storage_limit_mb,
            settings,
        };
        Ok(self.agent.update_subscription(patch).await?)
    }

    async fn get(&self, id: String) -> RpcResult<Subscription> {
        Ok(self.agent.get_subscription(&id)?)
    }

    async fn list(&self) -> RpcResult<Vec<Subscription>> {
        Ok(self.agent.list_subscriptions())
    }

    async fn delete(&self, id: String) -> RpcResult<()> {
        Ok(self.agent.delete_subscription(&id).await?)
    }
}
