//! The API, declared once. The macro generates the server traits the daemon implements and the
//! client the CLI and the tests call. Parameters are by name.

use crate::core::agent::AgentInfo;
use crate::core::interfaces::HostStats;
use crate::core::subscription::{Settings, Subscription};
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;

#[rpc(server, client, namespace = "agent", namespace_separator = ".")]
pub trait AgentApi {
    /// Version, host name, engine and nginx health, uptime and counts.
    #[method(name = "info", param_kind = map)]
    async fn info(&self) -> RpcResult<AgentInfo>;
}

#[rpc(server, client, namespace = "host", namespace_separator = ".")]
pub trait HostApi {
    /// CPU, memory and disks of the host.
    #[method(name = "stats", param_kind = map)]
    async fn stats(&self) -> RpcResult<HostStats>;
}

#[rpc(server, client, namespace = "subscription", namespace_separator = ".")]
pub trait SubscriptionApi {
    #[method(name = "create", param_kind = map)]
    async fn create(
        &self,
        id: String,
        stage_limit: u32,
        storage_limit_mb: Option<u64>,
        profile: Option<String>,
        settings: Option<Settings>,
    ) -> RpcResult<Subscription>;

    /// Absent fields stay as they are; `storage_limit_mb: 0` removes the limit.
    #[method(name = "update", param_kind = map)]
    async fn update(
        &self,
        id: String,
        stage_limit: Option<u32>,
        storage_limit_mb: Option<u64>,
        settings: Option<Settings>,
    ) -> RpcResult<Subscription>;

    #[method(name = "get", param_kind = map)]
    async fn get(&self, id: String) -> RpcResult<Subscription>;

    #[method(name = "list", param_kind = map)]
    async fn list(&self) -> RpcResult<Vec<Subscription>>;

    /// Refused while the subscription has stages that are not cancelled.
    #[method(name = "delete", param_kind = map)]
    async fn delete(&self, id: String) -> RpcResult<()>;
}
