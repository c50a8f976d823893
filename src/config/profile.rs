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
}

impl Component {
    fn new(image: &str, port: u16) -> Self {
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
        }
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Odoo 17 with PostgreSQL 16: the embedded default profile.
pub fn odoo() -> Profile {
    let mut app = Component::new("odoo:17.0", 8069);
    app.mounts = map(&[
        ("filestore", "/var/lib/odoo"),
        ("addons", "/mnt/extra-addons"),
    ]);
    app.env = map(&[
        ("HOST", "{db_host}"),
        ("USER", "{db_user}"),
        ("PASSWORD", "{db_password}"),
    ]);
    app.run_as = Some(RunAs { uid: 101, gid: 101 });
    app.init_command = [
        "odoo",
        "-d",
        "{db_name}",
        "-i",
        "base",
        "--without-demo=all",
        "--stop-after-init",
    ]
    .map(String::from)
    .to_vec();
    let mut db = Component::new("postgres:16", 5432);
    db.stop_signal = Some(SignalName(nix::sys::signal::Signal::SIGINT));
    db.user = Some("odoo".into());
    db.shm_size_mb = Some(256);
    db.mounts = map(&[("db", "/var/lib/postgresql/data")]);
    db.env = map(&[
        ("POSTGRES_USER", "{db_user}"),
        ("POSTGRES_PASSWORD", "{db_password}"),
        ("POSTGRES_DB", "postgres"),
    ]);
    let mut code_server = Component::new("codercom/code-server:4.96.4", 8080);
    code_server.password_env = Some("PASSWORD".into());
    code_server.run_as = Some(RunAs {
        uid: 1000,
        gid: 1000,
    });
    code_server.mounts = map(&[("addons", "/home/coder/project")]);
    Profile {
        grace_period: Some(Dur::secs(60)),
        active_users_query: "SELECT count(*) FROM res_users WHERE active AND NOT share".into(),
        neutralize_sql: ODOO_NEUTRALIZE.into(),
        neutralize_check: ODOO_NEUTRALIZE_CHECK.into(),
        app,
        db,
        code_server: Some(code_server),
    }
}

/// Odoo clones must send no mail and run no scheduled jobs against real services.
const ODOO_NEUTRALIZE: &str = "UPDATE ir_mail_server SET active = false; \
UPDATE fetchmail_server SET active = false; \
UPDATE ir_cron SET active = false WHERE id NOT IN (SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'autovacuum_job'); \
INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, active, sequence) VALUES ('neutralized: no mail leaves this stage', 'invalid', 25, 'none', true, 0)";
const ODOO_NEUTRALIZE_CHECK: &str =
    "SELECT count(*) FROM ir_mail_server WHERE active AND smtp_host <> 'invalid'";
