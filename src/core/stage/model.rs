//! The stage record: what is persisted in `stages/<subscription>--<name>.json`, and the view
//! the API shows (which never holds the database password).

use super::code_server::{CodeServer, CodeServerView};
use super::deploy::GitState;
use super::usage::Storage;
use crate::core::names::{Domain, StageName, SubscriptionId};
use crate::core::subscription::Settings;
use crate::core::time::{rfc3339 as fmt, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    Build,
    Running,
    Stopped,
    Terminated,
    Cancelled,
}

impl StageState {
    pub const ALL: [StageState; 5] = [
        Self::Build,
        Self::Running,
        Self::Stopped,
        Self::Terminated,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Terminated => "terminated",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<StageState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageType {
    Dev,
    Qa,
    Prod,
}

impl StageType {
    pub fn parse(s: &str) -> Option<StageType> {
        match s {
            "dev" => Some(Self::Dev),
            "qa" => Some(Self::Qa),
            "prod" => Some(Self::Prod),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Qa => "qa",
            Self::Prod => "prod",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    User,
    Expired,
}

/// The steps of a create, each persisted before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Directories,
    Network,
    Db,
    Database,
    Init,
    App,
    Nginx,
    /// The database and files copied from another stage or restored from a template.
    Copy,
    /// A dev or qa copy made harmless (no mail, no scheduled jobs).
    Neutralize,
    /// The app's admin password set in its database (profile `admin_password`).
    AdminPassword,
    /// A cancel in progress: finished at start-up if a crash interrupted it.
    Cancelling,
    /// A deploy's database snapshot is being taken; the addons are untouched. A crash here
    /// leaves the old code and database: start-up starts the app again.
    DeploySnapshot,
    /// A deploy's new code and update are under way beside the snapshot and the old addons;
    /// a crash here is rolled back at start-up (deploy_update.rs).
    DeployUpdate,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Directories => "directories",
            Step::Network => "network",
            Step::Db => "db",
            Step::Database => "database",
            Step::Init => "init",
            Step::App => "app",
            Step::Nginx => "nginx",
            Step::Copy => "copy",
            Step::Neutralize => "neutralize",
            Step::AdminPassword => "admin_password",
            Step::Cancelling => "cancelling",
            Step::DeploySnapshot => "deploy_snapshot",
            Step::DeployUpdate => "deploy_update",
        }
    }
}

/// The persisted record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub schema_version: u32,
    pub uuid: uuid::Uuid,
    pub subscription: SubscriptionId,
    pub name: StageName,
    #[serde(rename = "type")]
    pub stage_type: StageType,
    pub domain: Domain,
    pub state: StageState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub end_date: Option<Timestamp>,
    pub stop_reason: Option<StopReason>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub purge_at: Option<Timestamp>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub cancelled_at: Option<Timestamp>,
    pub http_port: Option<u16>,
    /// The host port published for the app's `longpolling_port` (nginx's `/websocket`); held
    /// and released with `http_port`.
    #[serde(default)]
    pub longpolling_port: Option<u16>,
    pub grace_period_s: Option<u64>,
    pub last_error: Option<String>,
    pub profile: String,
    /// The subscription's settings when the stage was made.
    pub settings: Settings,
    /// Never leaves the record file (mode 0600).
    pub db_password: String,
    /// The SQL console roles' password, made at their first use; never leaves the record.
    #[serde(default)]
    pub console_password: Option<String>,
    /// The password of the app's own role (profiles with `app_db_user`). None on stages made
    /// before the role existed: their app keeps the superuser. Never leaves the record.
    #[serde(default)]
    pub app_db_password: Option<String>,
    /// The app's master password as its hash only (the password itself is never kept):
    /// `{master_password_hash}` in the configuration file. Never leaves the record.
    #[serde(default)]
    pub master_password_hash: Option<String>,
    /// A dev or qa copy that the profile's neutralize command or SQL went through.
    #[serde(default)]
    pub neutralized: bool,
    /// The step in progress, if any.
    pub step: Option<Step>,
    /// The last measure of its directories.
    #[serde(default)]
    pub storage: Option<Storage>,
    /// Active users by the profile's query, at the last measure while running.
    #[serde(default)]
    pub active_users: Option<u64>,
    #[serde(default)]
    pub code_server: Option<CodeServer>,
    #[serde(default)]
    pub git: GitState,
}

impl Stage {
    pub fn reference(&self) -> String {
        format!("{}/{}", self.subscription, self.name)
    }

    pub fn key(&self) -> String {
        crate::core::site::site_key(&self.subscription, &self.name)
    }

    /// The database the app uses: the stage's name.
    pub fn db_name(&self) -> &str {
        self.name.as_str()
    }
}

/// One container as `stage.get` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentView {
    pub container_id: Option<String>,
    /// Docker's status (`running`, `exited`, ...) or `missing`.
    pub status: String,
    /// The image reference the container runs, and its digest (the registry's, else the
    /// engine's image id); null when there is no container.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
}

/// A stage as the API shows it: the record without its password, plus live facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageView {
    pub uuid: uuid::Uuid,
    pub subscription: String,
    pub name: String,
    #[serde(rename = "type")]
    pub stage_type: StageType,
    pub domain: String,
    pub state: StageState,
    pub created_at: String,
    pub updated_at: String,
    pub end_date: Option<String>,
    pub stop_reason: Option<StopReason>,
    pub purge_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub http_port: Option<u16>,
    /// The host port nginx sends `/websocket` to, when the profile has a long-polling port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longpolling_port: Option<u16>,
    pub grace_period_s: Option<u64>,
    pub last_error: Option<String>,
    pub profile: String,
    pub step: Option<Step>,
    pub addons_dir: String,
    pub storage: Option<Storage>,
    pub active_users: Option<u64>,
    /// The stage's subscription uses more than its storage limit.
    pub over_limit: bool,
    /// Without its password; the agent fills it in (its URL depends on the TLS settings).
    pub code_server: Option<CodeServerView>,
    pub git: GitState,
    /// A dev or qa copy that went through the profile's neutralisation.
    #[serde(default)]
    pub neutralized: bool,
    pub components: BTreeMap<String, ComponentView>,
    /// What differs between the record and the engine (a container missing or exited while the
    /// stage should run).
    pub drift: Vec<String>,
    /// The stage domain's certificate; the agent fills it in.
    #[serde(default)]
    pub tls: Option<crate::core::tls::TlsView>,
    /// Only in `stage.create`'s answer, when the agent generated the app's admin password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<String>,
}

impl StageView {
    pub fn new(
        s: &Stage,
        addons_dir: String,
        components: BTreeMap<String, ComponentView>,
        drift: Vec<String>,
    ) -> Self {
        StageView {
            uuid: s.uuid,
            subscription: s.subscription.to_string(),
            name: s.name.to_string(),
            stage_type: s.stage_type,
            domain: s.domain.to_string(),
            state: s.state,
            created_at: fmt(&s.created_at),
            updated_at: fmt(&s.updated_at),
            end_date: s.end_date.as_ref().map(fmt),
            stop_reason: s.stop_reason,
            purge_at: s.purge_at.as_ref().map(fmt),
            cancelled_at: s.cancelled_at.as_ref().map(fmt),
            http_port: s.http_port,
            longpolling_port: s.longpolling_port,
            grace_period_s: s.grace_period_s,
            last_error: s.last_error.clone(),
            profile: s.profile.clone(),
            step: s.step,
            addons_dir,
            storage: s.storage.clone(),
            active_users: s.active_users,
            over_limit: false,
            code_server: None,
            git: s.git.clone(),
            neutralized: s.neutralized,
            components,
            drift,
            tls: None,
            admin_password: None,
        }
    }
}
