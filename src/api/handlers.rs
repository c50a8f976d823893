//! The server side of the API traits: each method turns its parameters into a core request
//! and hands it to the agent's facade (which runs those that change state on tasks of its
//! own). Defaults of absent parameters are the core's, not decided here. The agent-wide
//! methods (agent, host, tls) and backups are in handlers_ops.rs.

use super::rpc::LogLines;
use super::rpc::{
    AgentApiServer, BackupApiServer, CodeServerApiServer, EventsApiServer, HostApiServer,
    StageApiServer, SubscriptionApiServer, TlsApiServer,
};
use crate::core::agent::Agent;
use crate::core::interfaces::{ContainerStats, SqlResult};
use crate::core::stage::admin_password::{AdminPasswordReply, Secret};
use crate::core::stage::code_server::CodeServerView;
use crate::core::stage::console::{ExecCall, ExecResult, LogsCall, SqlCall};
use crate::core::stage::deploy::DeployRequest;
use crate::core::stage::model::StageView;
use crate::core::stage::usage::StageUsage;
use crate::core::stage::{NewStage, StagePatch};
use crate::core::subscription::{DeployKey, Settings, SubscriptionView};
use crate::core::subscription::{NewSubscription, SubscriptionPatch};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::RpcModule;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct Handlers {
    pub(super) agent: Arc<Agent>,
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
        merge(
            &mut module,
            SubscriptionApiServer::into_rpc(self.clone()).into(),
        );
        merge(&mut module, StageApiServer::into_rpc(self.clone()).into());
        merge(
            &mut module,
            CodeServerApiServer::into_rpc(self.clone()).into(),
        );
        merge(&mut module, BackupApiServer::into_rpc(self.clone()).into());
        merge(&mut module, TlsApiServer::into_rpc(self.clone()).into());
        merge(&mut module, EventsApiServer::into_rpc(self).into());
        module
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
    ) -> RpcResult<SubscriptionView> {
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
    ) -> RpcResult<SubscriptionView> {
        let patch = SubscriptionPatch {
            id,
            stage_limit,
            storage_limit_mb,
            settings,
        };
        Ok(self.agent.update_subscription(patch).await?)
    }

    async fn get(&self, id: String) -> RpcResult<SubscriptionView> {
        Ok(self.agent.get_subscription(&id)?)
    }

    async fn list(&self) -> RpcResult<Vec<SubscriptionView>> {
        Ok(self.agent.list_subscriptions())
    }

    async fn delete(&self, id: String) -> RpcResult<()> {
        let delete = |a: Arc<Agent>| async move { a.delete_subscription(&id).await };
        Ok(self.agent.detached(delete).await?)
    }

    async fn deploy_key(&self, id: String) -> RpcResult<DeployKey> {
        Ok(self.agent.deploy_key(&id).await?)
    }
}

#[async_trait]
impl StageApiServer for Handlers {
    async fn create(
        &self,
        subscription: String,
        name: String,
        stage_type: String,
        domain: String,
        end_date: Option<String>,
        grace_period_s: Option<u64>,
        clone_from: Option<String>,
        admin_password: Option<String>,
    ) -> RpcResult<StageView> {
        let req = NewStage {
            name,
            stage_type,
            domain,
            end_date,
            grace_period_s,
            clone_from,
            admin_password: admin_password.map(Secret::new),
        };
        Ok(self.agent.create_stage(&subscription, req).await?)
    }

    async fn get(&self, stage: String) -> RpcResult<StageView> {
        Ok(self.agent.get_stage(&stage).await?)
    }

    async fn list(
        &self,
        subscription: Option<String>,
        state: Option<String>,
        stage_type: Option<String>,
    ) -> RpcResult<Vec<StageView>> {
        Ok(self
            .agent
            .list_stages(
                subscription.as_deref(),
                state.as_deref(),
                stage_type.as_deref(),
            )
            .await?)
    }

    async fn start(&self, stage: String) -> RpcResult<StageView> {
        Ok(self.agent.start_stage(&stage).await?)
    }

    async fn stop(&self, stage: String, grace_period_s: Option<u64>) -> RpcResult<StageView> {
        Ok(self.agent.stop_stage(&stage, grace_period_s).await?)
    }

    async fn restart(&self, stage: String, grace_period_s: Option<u64>) -> RpcResult<StageView> {
        Ok(self.agent.restart_stage(&stage, grace_period_s).await?)
    }

    async fn terminate(&self, stage: String) -> RpcResult<StageView> {
        Ok(self.agent.terminate_stage(&stage).await?)
    }

    async fn restore(&self, stage: String) -> RpcResult<StageView> {
        Ok(self.agent.restore_stage(&stage).await?)
    }

    async fn cancel(&self, stage: String) -> RpcResult<StageView> {
        Ok(self.agent.cancel_stage(&stage).await?)
    }

    async fn update(
        &self,
        stage: String,
        end_date: Option<String>,
        stage_type: Option<String>,
        grace_period_s: Option<u64>,
        webhook_state: Option<String>,
    ) -> RpcResult<StageView> {
        let patch = StagePatch {
            end_date,
            stage_type,
            grace_period_s,
            webhook_state,
        };
        Ok(self.agent.update_stage(&stage, patch).await?)
    }

    async fn deploy(
        &self,
        stage: String,
        repository: String,
        branch: String,
        clear_destination: Option<bool>,
        restart: Option<bool>,
        submodules: Option<bool>,
        update: Option<Value>,
    ) -> RpcResult<StageView> {
        let update = update
            .map(|u| super::params::update_modules(&u))
            .transpose()?;
        let req = DeployRequest::new(
            repository,
            branch,
            clear_destination,
            restart,
            submodules,
            update,
        );
        Ok(self.agent.deploy_stage(&stage, req).await?)
    }

    async fn usage(&self, stage: String, refresh: Option<bool>) -> RpcResult<StageUsage> {
        Ok(self.agent.stage_usage(&stage, refresh).await?)
    }

    async fn stats(&self, stage: String) -> RpcResult<BTreeMap<String, Option<ContainerStats>>> {
        Ok(self.agent.stage_stats(&stage).await?)
    }

    async fn sql(
        &self,
        stage: String,
        query: String,
        read_only: Option<bool>,
        timeout_s: Option<u64>,
        max_rows: Option<usize>,
        max_bytes: Option<usize>,
    ) -> RpcResult<SqlResult> {
        let call = SqlCall {
            query,
            read_only,
            timeout_s,
            max_rows,
            max_bytes,
        };
        Ok(self.agent.stage_sql(&stage, call).await?)
    }

    async fn logs(
        &self,
        stage: String,
        component: Option<String>,
        tail: Option<usize>,
        since: Option<String>,
    ) -> RpcResult<LogLines> {
        let call = LogsCall {
            component,
            tail,
            since,
        };
        let lines = self.agent.stage_logs(&stage, call).await?;
        Ok(LogLines { lines })
    }

    async fn follow_logs(
        &self,
        pending: PendingSubscriptionSink,
        stage: String,
        component: Option<String>,
        tail: Option<usize>,
    ) -> SubscriptionResult {
        let call = LogsCall {
            component,
            tail,
            since: None,
        };
        let stream = self.agent.follow_stage_logs(&stage, call).await;
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                pending
                    .reject(jsonrpsee::types::ErrorObjectOwned::from(e))
                    .await;
                return Ok(());
            }
        };
        let sink = pending.accept().await?;
        while let Some(line) = futures::StreamExt::next(&mut stream).await {
            let Ok(line) = line else { break };
            let msg = jsonrpsee::SubscriptionMessage::from(serde_json::value::to_raw_value(&line)?);
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    async fn exec(
        &self,
        stage: String,
        component: Option<String>,
        command: Vec<String>,
        timeout_s: Option<u64>,
    ) -> RpcResult<ExecResult> {
        let call = ExecCall {
            component,
            command,
            timeout_s,
        };
        Ok(self.agent.stage_exec(&stage, call).await?)
    }

    async fn set_admin_password(
        &self,
        stage: String,
        password: Option<String>,
    ) -> RpcResult<AdminPasswordReply> {
        let password = password.map(Secret::new);
        Ok(self.agent.set_admin_password(&stage, password).await?)
    }
}

#[async_trait]
impl CodeServerApiServer for Handlers {
    async fn create(&self, stage: String, domain: String) -> RpcResult<CodeServerView> {
        Ok(self.agent.create_code_server(&stage, &domain).await?)
    }

    async fn start(&self, stage: String) -> RpcResult<CodeServerView> {
        Ok(self.agent.start_code_server(&stage).await?)
    }

    async fn stop(&self, stage: String) -> RpcResult<CodeServerView> {
        Ok(self.agent.stop_code_server(&stage).await?)
    }

    async fn remove(&self, stage: String) -> RpcResult<CodeServerView> {
        Ok(self.agent.remove_code_server(&stage).await?)
    }

    async fn rotate_password(&self, stage: String) -> RpcResult<CodeServerView> {
        Ok(self.agent.rotate_code_server_password(&stage).await?)
    }
}

#[async_trait]
impl EventsApiServer for Handlers {
    async fn watch(
        &self,
        pending: PendingSubscriptionSink,
        stage: Option<String>,
    ) -> SubscriptionResult {
        // Events carry both: a UUID matches that record, a name matches whichever stage holds
        // it (a create about to start, or a name taken again after a cancel).
        let filter = stage;
        let mut events = self.agent.watch_events();
        let sink = pending.accept().await?;
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return Ok(()),
            };
            if filter
                .as_ref()
                .is_some_and(|f| *f != event.stage && *f != event.uuid.to_string())
            {
                continue;
            }
            let msg =
                jsonrpsee::SubscriptionMessage::from(serde_json::value::to_raw_value(&event)?);
            if sink.send(msg).await.is_err() {
                return Ok(());
            }
        }
    }
}
