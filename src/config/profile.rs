//! Profiles: the stage templates of the configuration, one table per component.

use super::images::{PullPolicy, RunAs};
use super::types::{Dur, SignalName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Empty: `lifecycle.grace_period`.
    #[serde(default)]
    pub grace_period: Option<Dur>,
    #[serde(default)]
    pub active_users_query: String,
    /// Run on dev/qa clones before their app first starts.
    #[serde(default)]
    pub neutralize_sql: String,
    /// Must return 0 after `neutralize_sql`.
    #[serde(default)]
    pub neutralize_check: String,
    /// Run in a one-off app container on dev/qa copies; when set, `neutralize_sql` is not run.
    #[serde(default)]
    pub neutralize_command: Vec<String>,
    /// Run as the superuser on every copy (clone, restore of another stage's backup): fresh
    /// secrets, the copy's own URL. Placeholders as elsewhere, plus `{base_url}`.
    #[serde(default)]
    pub on_copy_sql: String,
    /// Run in a one-off app container after a deploy's checkout; `{modules}` is the comma list
    /// of modules to update (or `all`).
    #[serde(default)]
    pub update_command: Vec<String>,
    /// How the application's admin password is set; unset: the agent does not set one.
    #[serde(default)]
    pub admin_password: Option<AdminPassword>,
    /// The app's configuration file, written per stage (mode 0600, owned by the app's
    /// `run_as`) and mounted read-only at `config_path`; empty: none.
    #[serde(default)]
    pub config_template: String,
    /// Where the app sees its configuration file (`{config}` in commands).
    #[serde(default)]
    pub config_path: String,
    /// The app's own database role: it owns the stage database and is not a superuser.
    /// Unset: the app connects as the db component's `user`.
    #[serde(default)]
    pub app_db_user: Option<String>,
    /// URL path prefixes nginx refuses (403) on this profile's stages.
    #[serde(default)]
    pub blocked_paths: Vec<String>,
    pub app: Component,
    pub db: Component,
    #[serde(default)]
    pub code_server: Option<Component>,
}

/// One container of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub image: String,
    /// Empty: the image's own command.
    #[serde(default)]
    pub command: Vec<String>,
    pub port: u16,
    /// Stage directory (`db`, `filestore`, `addons`) to container path.
    #[serde(default)]
    pub mounts: BTreeMap<String, String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Run once in a one-off container after the database is ready.
    #[serde(default)]
    pub init_command: Vec<String>,
    /// Default SIGTERM; the db profile sets SIGINT (PostgreSQL's fast shutdown).
    #[serde(default)]
    pub stop_signal: Option<SignalName>,
    /// The database user (db component).
    #[serde(default)]
    pub user: Option<String>,
    /// How the code-server password reaches the image.
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub memory_limit_mb: Option<u64>,
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// The owner of the component's mounted directories; unset: root (the db's entrypoint
    /// chowns its own).
    #[serde(default)]
    pub run_as: Option<RunAs>,
    #[serde(default)]
    pub pull: PullPolicy,
    /// `/dev/shm` size; unset: the engine's 64 MB (the db defaults to 256).
    #[serde(default)]
    pub shm_size_mb: Option<u64>,
    /// Unset: the image's. An empty list: none, so `command` is the whole argv.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// What must answer before nginx proxies to the component.
    #[serde(default)]
    pub readiness: Option<Readiness>,
    /// A second container port, published too; nginx routes `/websocket` there.
    #[serde(default)]
    pub longpolling_port: Option<u16>,
}

/// An HTTP path that answers 2xx or 3xx once the component serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub http: String,
    #[serde(default = "Readiness::default_timeout")]
    pub timeout: Dur,
}

impl Readiness {
    fn default_timeout() -> Dur {
        Dur::secs(120)
    }
}

/// How the agent sets the application's admin password: SQL run as the superuser on the
/// stage database, with `{password_hash}` the password hashed as `hash` says (the password
/// itself never reaches a command line, a log or the record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminPassword {
    pub sql: String,
    /// `pbkdf2-sha512`: passlib's format, as Odoo's `res.users` stores it.
    #[serde(default = "AdminPassword::default_hash")]
    pub hash: String,
}

impl AdminPassword {
    fn default_hash() -> String {
        "pbkdf2-sha512".into()
    }

    /// `(key, message)` for what the agent could not run: an unknown hash, SQL without the
    /// hash's placeholder (it would set no password, or the same one on every stage).
    pub(super) fn cross_check(&self) -> Vec<(&'static str, String)> {
        let mut errs = vec![];
        if self.hash != "pbkdf2-sha512" {
            errs.push((
                "hash",
                format!(
                    "{:?} is not a hash the agent knows (pbkdf2-sha512)",
                    self.hash
                ),
            ));
        }
        if !self.sql.contains("{password_hash}") {
            errs.push((
                "sql",
                "must hold {password_hash}, where the hashed password goes".into(),
            ));
        }
        errs
    }
}

impl Component {
    pub(super) fn new(image: &str, port: u16) -> Self {
        Component {
            image: image.into(),
            command: vec![],
            port,
            mounts: BTreeMap::new(),
            env: BTreeMap::new(),
            init_command: vec![],
            stop_signal: None,
            user: None,
            password_env: None,
            memory_limit_mb: None,
            cpu_limit: None,
            run_as: None,
            pull: PullPolicy::Missing,
            shm_size_mb: None,
            entrypoint: None,
            readiness: None,
            longpolling_port: None,
        }
    }
}

pub(super) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub use super::odoo_profile::odoo;
