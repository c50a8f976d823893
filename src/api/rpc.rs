//! The API, declared once. The macro generates the server traits the daemon implements and the
//! client the CLI and the tests call. Parameters are by name.
// Named parameters mirror the contract one to one; the macro's generated items inherit this.
#![allow(clippy::too_many_arguments)]

use crate::core::agent::AgentInfo;
use crate::core::interfaces::HostStats;
use crate::core::interfaces::{ContainerStats, LogLine, SqlResult};
use crate::core::stage::admin_password::AdminPasswordReply;
use crate::core::stage::backup::Backup;
use crate::core::stage::code_server::CodeServerView;
use crate::core::stage::console::ExecResult;
use crate::core::stage::events::Event;
use crate::core::stage::model::StageView;
use crate::core::stage::pull::ImageDigest;
use crate::core::stage::usage::StageUsage;
use crate::core::subscription::{DeployKey, Settings, SubscriptionView};
use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use std::collections::BTreeMap;

#[rpc(server, client, namespace = "agent", namespace_separator = ".")]
pub trait AgentApi {
    /// Version, host name, engine and nginx health, uptime and counts.
    #[method(name = "info", param_kind = map)]
    async fn info(&self) -> RpcResult<AgentInfo>;

    /// Pulls every image of a profile (default: the default profile); each one's digest.
    #[method(name = "pull_images", param_kind = map)]
    async fn pull_images(&self, profile: Option<String>) -> RpcResult<Vec<ImageDigest>>;
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
    ) -> RpcResult<SubscriptionView>;

    /// Absent fields stay as they are; `storage_limit_mb: 0` removes the limit.
    #[method(name = "update", param_kind = map)]
    async fn update(
        &self,
        id: String,
        stage_limit: Option<u32>,
        storage_limit_mb: Option<u64>,
        settings: Option<Settings>,
    ) -> RpcResult<SubscriptionView>;

    #[method(name = "get", param_kind = map)]
    async fn get(&self, id: String) -> RpcResult<SubscriptionView>;

    #[method(name = "list", param_kind = map)]
    async fn list(&self) -> RpcResult<Vec<SubscriptionView>>;

    /// Refused while the subscription has stages that are not cancelled.
    #[method(name = "delete", param_kind = map)]
    async fn delete(&self, id: String) -> RpcResult<()>;

    /// The subscription's ed25519 public key for ssh deploys, made on the first call.
    #[method(name = "deploy_key", param_kind = map)]
    async fn deploy_key(&self, id: String) -> RpcResult<DeployKey>;
}

#[rpc(server, client, namespace = "stage", namespace_separator = ".")]
pub trait StageApi {
    /// Creates a stage and returns it running, or fails with everything made rolled back.
    /// Without `admin_password` a fresh stage gets a generated one, in the answer this once.
    #[method(name = "create", param_kind = map)]
    async fn create(
        &self,
        subscription: String,
        name: String,
        #[argument(rename = "type")] stage_type: String,
        domain: String,
        end_date: Option<String>,
        grace_period_s: Option<u64>,
        clone_from: Option<String>,
        admin_password: Option<String>,
    ) -> RpcResult<StageView>;

    #[method(name = "get", param_kind = map)]
    async fn get(&self, stage: String) -> RpcResult<StageView>;

    #[method(name = "list", param_kind = map)]
    async fn list(
        &self,
        subscription: Option<String>,
        state: Option<String>,
        #[argument(rename = "type")] stage_type: Option<String>,
    ) -> RpcResult<Vec<StageView>>;

    #[method(name = "start", param_kind = map)]
    async fn start(&self, stage: String) -> RpcResult<StageView>;

    #[method(name = "stop", param_kind = map)]
    async fn stop(&self, stage: String, grace_period_s: Option<u64>) -> RpcResult<StageView>;

    #[method(name = "restart", param_kind = map)]
    async fn restart(&self, stage: String, grace_period_s: Option<u64>) -> RpcResult<StageView>;

    #[method(name = "terminate", param_kind = map)]
    async fn terminate(&self, stage: String) -> RpcResult<StageView>;

    #[method(name = "restore", param_kind = map)]
    async fn restore(&self, stage: String) -> RpcResult<StageView>;

    #[method(name = "cancel", param_kind = map)]
    async fn cancel(&self, stage: String) -> RpcResult<StageView>;

    /// `end_date: ""` clears the end date.
    #[method(name = "update", param_kind = map)]
    async fn update(
        &self,
        stage: String,
        end_date: Option<String>,
        #[argument(rename = "type")] stage_type: Option<String>,
        grace_period_s: Option<u64>,
        webhook_state: Option<String>,
    ) -> RpcResult<StageView>;

    /// Fetches `branch` of `repository`, lays its tip into the addons directory, records it in
    /// the stage's `git`, and restarts the app (unless `restart: false`). With the profile's
    /// `update_command`, `update` ("changed" by default, "all" or a list of module folders)
    /// is run first, and a failure rolls code and database back (`deploy_failed`).
    #[method(name = "deploy", param_kind = map)]
    async fn deploy(
        &self,
        stage: String,
        repository: String,
        branch: String,
        clear_destination: Option<bool>,
        restart: Option<bool>,
        submodules: Option<bool>,
        update: Option<serde_json::Value>,
    ) -> RpcResult<StageView>;

    /// The last measure of the stage's directories; `refresh: true` measures now (concurrent
    /// refreshes of one stage share one walk).
    #[method(name = "usage", param_kind = map)]
    async fn usage(&self, stage: String, refresh: Option<bool>) -> RpcResult<StageUsage>;

    /// One Docker stats sample per component (`null` when it is not running).
    #[method(name = "stats", param_kind = map)]
    async fn stats(&self, stage: String) -> RpcResult<BTreeMap<String, Option<ContainerStats>>>;

    /// One SQL statement on the stage database, read-only unless `read_only: false`.
    #[method(name = "sql", param_kind = map)]
    async fn sql(
        &self,
        stage: String,
        query: String,
        read_only: Option<bool>,
        timeout_s: Option<u64>,
        max_rows: Option<usize>,
        max_bytes: Option<usize>,
    ) -> RpcResult<SqlResult>;

    /// The last `tail` (default 100, at most 1000) lines of a component, stdout and stderr in
    /// order, from `since` (RFC 3339).
    #[method(name = "logs", param_kind = map)]
    async fn logs(
        &self,
        stage: String,
        component: Option<String>,
        tail: Option<usize>,
        since: Option<String>,
    ) -> RpcResult<LogLines>;

    /// The last `tail` lines (default 10), then each new line as it comes.
    #[subscription(name = "follow_logs", unsubscribe = "unfollow_logs", item = LogLine, param_kind = map)]
    async fn follow_logs(
        &self,
        stage: String,
        component: Option<String>,
        tail: Option<usize>,
    ) -> SubscriptionResult;

    /// Runs an argv (no shell) in a component; output capped at 1 MiB a stream.
    #[method(name = "exec", param_kind = map)]
    async fn exec(
        &self,
        stage: String,
        component: Option<String>,
        command: Vec<String>,
        timeout_s: Option<u64>,
    ) -> RpcResult<ExecResult>;

    /// Sets the app's admin password on a running stage: `password`, or a generated one, which
    /// the answer carries this once.
    #[method(name = "set_admin_password", param_kind = map)]
    async fn set_admin_password(
        &self,
        stage: String,
        password: Option<String>,
    ) -> RpcResult<AdminPasswordReply>;
}

#[rpc(server, client, namespace = "stage", namespace_separator = ".")]
pub trait BackupApi {
    /// Backs the running stage up: the database (pg_dump -Fc), the filestore (tar), a manifest
    /// with sizes and sha256 sums. Keeps the newest `backups.keep`.
    #[method(name = "backup", param_kind = map)]
    async fn backup(&self, stage: String) -> RpcResult<Backup>;

    /// The stage's backups, newest first (kept after the stage is cancelled).
    #[method(name = "backups", param_kind = map)]
    async fn backups(&self, stage: String) -> RpcResult<Vec<Backup>>;

    /// On a stopped stage: checks the sums, restores the database and the filestore; the stage
    /// stays stopped.
    #[method(name = "restore_backup", param_kind = map)]
    async fn restore_backup(&self, stage: String, backup: String) -> RpcResult<StageView>;

    #[method(name = "backup_delete", param_kind = map)]
    async fn backup_delete(&self, stage: String, backup: String) -> RpcResult<()>;
}

/// `stage.logs`'s answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogLines {
    pub lines: Vec<LogLine>,
}

#[rpc(server, client, namespace = "codeserver", namespace_separator = ".")]
pub trait CodeServerApi {
    /// Records the stage's code server at `domain` and runs it if the stage runs. The answer
    /// carries the password, this once.
    #[method(name = "create", param_kind = map)]
    async fn create(&self, stage: String, domain: String) -> RpcResult<CodeServerView>;

    /// Needs the stage running.
    #[method(name = "start", param_kind = map)]
    async fn start(&self, stage: String) -> RpcResult<CodeServerView>;

    #[method(name = "stop", param_kind = map)]
    async fn stop(&self, stage: String) -> RpcResult<CodeServerView>;

    /// Container, port and server block go; the stage is untouched. Answers with what went.
    #[method(name = "remove", param_kind = map)]
    async fn remove(&self, stage: String) -> RpcResult<CodeServerView>;

    /// A new password, in force at once; the answer carries it.
    #[method(name = "rotate_password", param_kind = map)]
    async fn rotate_password(&self, stage: String) -> RpcResult<CodeServerView>;
}

#[rpc(server, client, namespace = "tls", namespace_separator = ".")]
pub trait TlsApi {
    /// ACME mode: orders the stage's certificates (its domain's and its code server's) again
    /// at the next round, whatever their back-off; a server's rate limit still holds. Answers
    /// with the stage; its `tls` shows how the order went.
    #[method(name = "renew", param_kind = map)]
    async fn renew(&self, stage: String) -> RpcResult<StageView>;
}

#[rpc(server, client, namespace = "events", namespace_separator = ".")]
pub trait EventsApi {
    /// Every step of every operation, or of one stage (`SUBSCRIPTION/NAME` or UUID).
    #[subscription(name = "subscribe", unsubscribe = "unsubscribe", item = Event, param_kind = map)]
    async fn watch(&self, stage: Option<String>) -> SubscriptionResult;
}

/// Who may call a method (DESIGN.md, "Access"): readers only what changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// A read, unless the call asks for `refresh` (measuring now is work done on the host).
    ReadUnlessRefresh,
}

/// Every method the server registers, with its access; a method missing here is refused to
/// readers. A unit test checks this table against the registered methods, both ways.
pub const METHODS: &[(&str, Access)] = {
    use Access::{Read, ReadUnlessRefresh, Write};
    &[
        ("agent.info", Read),
        // Pulls images: work done on the host.
        ("agent.pull_images", Write),
        ("host.stats", Read),
        ("subscription.create", Write),
        ("subscription.update", Write),
        ("subscription.get", Read),
        ("subscription.list", Read),
        ("subscription.delete", Write),
        ("subscription.deploy_key", Write),
        ("stage.create", Write),
        ("stage.get", Read),
        ("stage.list", Read),
        ("stage.start", Write),
        ("stage.stop", Write),
        ("stage.restart", Write),
        ("stage.terminate", Write),
        ("stage.restore", Write),
        ("stage.cancel", Write),
        ("stage.update", Write),
        ("stage.deploy", Write),
        ("stage.usage", ReadUnlessRefresh),
        ("stage.stats", Read),
        ("stage.sql", Write),
        ("stage.logs", Read),
        // Ending a stream the caller may open changes nothing either.
        ("stage.follow_logs", Read),
        ("stage.unfollow_logs", Read),
        ("stage.exec", Write),
        ("stage.set_admin_password", Write),
        ("stage.backup", Write),
        // Not in the contract's read-only list (docs/api.md).
        ("stage.backups", Write),
        ("stage.restore_backup", Write),
        ("stage.backup_delete", Write),
        ("codeserver.create", Write),
        ("codeserver.start", Write),
        ("codeserver.stop", Write),
        ("codeserver.remove", Write),
        ("codeserver.rotate_password", Write),
        ("tls.renew", Write),
        ("events.subscribe", Write),
        ("events.unsubscribe", Write),
    ]
};

/// The access of `method`, `None` when the API has no such method.
pub fn access_of(method: &str) -> Option<Access> {
    METHODS
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, access)| *access)
}
