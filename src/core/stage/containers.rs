//! Pure construction of a stage's container specs from its profile: names, labels,
//! placeholders, mounts, limits, the published port.

use super::model::Stage;
use crate::core::interfaces::{ContainerSpec, Owner};
use crate::core::settings::{Component, Profile};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Where names and labels come from (`[docker]`).
#[derive(Debug, Clone)]
pub struct Naming {
    pub label_prefix: String,
    pub name_prefix: String,
}

pub const APP: &str = "app";
pub const DB: &str = "db";
pub const INIT: &str = "init";
pub const NEUTRALIZE: &str = "neutralize";
pub const UPDATE: &str = "update";
/// One-off containers of the app's image: removed after their run, and by every tear-down.
pub const ONE_OFFS: [&str; 3] = [INIT, NEUTRALIZE, UPDATE];

/// Where the agent writes the app's configuration file, inside the stage directory.
pub const APP_CONFIG: &str = "config/app.conf";
pub const CODE_SERVER: &str = "code_server";

/// Subscription ids and stage names hold no "--" and neither starts nor ends with "-", so
/// `<sub>--<name>` names one stage only; a single "-" would not (`a-b`/`c` and `a`/`b-c`).
impl Naming {
    /// `<prefix><sub>--<name>--<component>`.
    pub fn container(&self, stage: &Stage, component: &str) -> String {
        format!("{}--{component}", self.network(stage))
    }

    /// `<prefix><sub>--<name>`.
    pub fn network(&self, stage: &Stage) -> String {
        format!("{}{}--{}", self.name_prefix, stage.subscription, stage.name)
    }

    /// What removals check: the stage label holding this stage's uuid.
    pub fn owner(&self, stage: &Stage) -> Owner {
        Owner {
            label: self.stage_label(),
            uuid: stage.uuid.to_string(),
        }
    }

    pub fn component_label(&self) -> String {
        format!("{}.component", self.label_prefix)
    }

    pub fn stage_label(&self) -> String {
        format!("{}.stage", self.label_prefix)
    }

    pub fn labels(&self, stage: &Stage, component: &str) -> BTreeMap<String, String> {
        let p = &self.label_prefix;
        BTreeMap::from([
            (format!("{p}.stage"), stage.uuid.to_string()),
            (format!("{p}.subscription"), stage.subscription.to_string()),
            (format!("{p}.name"), stage.name.to_string()),
            (format!("{p}.component"), component.to_string()),
        ])
    }
}

/// The long-running containers a stage has: app and db, and its code server if it has one.
pub fn components(stage: &Stage) -> &'static [&'static str] {
    if stage.code_server.is_some() {
        &[APP, DB, CODE_SERVER]
    } else {
        &[APP, DB]
    }
}

/// The database user the db component initialises and the app connects as.
pub fn db_user(profile: &Profile) -> String {
    profile.db.user.clone().unwrap_or_else(|| "postgres".into())
}

/// The role the app connects as: the profile's `app_db_user` once the stage has its password
/// (stages made before keep the superuser), else the db component's user.
pub fn app_db_user(stage: &Stage, profile: &Profile) -> String {
    match (&profile.app_db_user, &stage.app_db_password) {
        (Some(user), Some(_)) => user.clone(),
        _ => db_user(profile),
    }
}

fn app_db_password(stage: &Stage) -> String {
    stage
        .app_db_password
        .clone()
        .unwrap_or_else(|| stage.db_password.clone())
}

/// Replaces `{db_host}`, `{db_port}`, `{db_user}`, `{db_password}` (the superuser),
/// `{app_db_user}`, `{app_db_password}` (the app's role), `{db_name}`, `{config}`, `{stage}`,
/// `{subscription}` and `{domain}`.
pub fn expand(template: &str, stage: &Stage, profile: &Profile) -> String {
    let vars = [
        ("{db_host}", DB.to_string()),
        ("{db_port}", profile.db.port.to_string()),
        ("{db_user}", db_user(profile)),
        ("{db_password}", stage.db_password.clone()),
        ("{app_db_user}", app_db_user(stage, profile)),
        ("{app_db_password}", app_db_password(stage)),
        ("{config}", profile.config_path.clone()),
        ("{db_name}", stage.db_name().to_string()),
        ("{stage}", stage.name.to_string()),
        ("{subscription}", stage.subscription.to_string()),
        ("{domain}", stage.domain.to_string()),
    ];
    vars.iter()
        .fold(template.to_string(), |s, (k, v)| s.replace(k, v))
}

/// The inputs every spec of a stage shares.
pub struct SpecContext<'a> {
    pub naming: &'a Naming,
    pub stage: &'a Stage,
    pub profile: &'a Profile,
    pub data_dir: &'a Path,
    pub grace_s: u64,
    /// `[logs]`: (max size in MB, files kept) for the json-file log driver.
    pub logs: Option<(u64, u32)>,
}

/// The signal that stops a component's container: the profile's, else PostgreSQL's fast
/// shutdown (SIGINT) for the database and SIGTERM for the rest.
pub fn stop_signal(component: Option<&Component>, role: &str) -> String {
    let default = if role == DB { "SIGINT" } else { "SIGTERM" };
    component
        .and_then(|c| c.stop_signal)
        .map_or(default.to_string(), |sig| sig.0.as_str().to_string())
}

impl SpecContext<'_> {
    fn base(&self, component: &Component, role: &str) -> ContainerSpec {
        let s = self.stage;
        let mounts = component
            .mounts
            .iter()
            .map(|(dir, path)| (self.data_dir.join(dir), path.clone()))
            .collect();
        let env = component
            .env
            .iter()
            .map(|(k, v)| (k.clone(), expand(v, s, self.profile)))
            .collect();
        let memory_mb = s.settings.memory_limit_mb.or(component.memory_limit_mb);
        let cpus = s.settings.cpu_limit.or(component.cpu_limit);
        ContainerSpec {
            name: self.naming.container(s, role),
            image: component.image.clone(),
            command: component
                .command
                .iter()
                .map(|c| expand(c, s, self.profile))
                .collect(),
            env,
            labels: self.naming.labels(s, role),
            network: self.naming.network(s),
            aliases: vec![],
            mounts,
            files: vec![],
            publish: vec![],
            entrypoint: component.entrypoint.clone(),
            stop_signal: stop_signal(Some(component), role),
            stop_timeout_s: self.grace_s,
            memory_bytes: memory_mb.map(|m| (m * 1024 * 1024) as i64),
            nano_cpus: cpus.map(|c| (c * 1e9) as i64),
            restart: true,
            group_add: super::ownership::extra_groups(self.profile, component),
            shm_size_bytes: component.shm_size_mb.map(|m| (m * 1024 * 1024) as i64),
            log_caps: self.logs,
        }
    }

    pub fn db(&self) -> ContainerSpec {
        let mut spec = self.base(&self.profile.db, DB);
        spec.aliases = vec![DB.to_string()];
        // PostgreSQL's parallel queries outgrow the engine's 64 MB /dev/shm.
        let shm_mb = self.profile.db.shm_size_mb.unwrap_or(256);
        spec.shm_size_bytes = Some((shm_mb * 1024 * 1024) as i64);
        spec
    }

    /// The app's configuration file, read-only, when the profile has a template.
    fn app_base(&self, role: &str) -> ContainerSpec {
        let mut spec = self.base(&self.profile.app, role);
        if !self.profile.config_template.is_empty() {
            spec.files = vec![(
                self.data_dir.join(APP_CONFIG),
                self.profile.config_path.clone(),
            )];
        }
        spec
    }

    pub fn app(&self, bind: IpAddr, http_port: u16) -> ContainerSpec {
        let mut spec = self.app_base(APP);
        // The subscription's env wins over the profile's.
        spec.env.extend(self.stage.settings.env.clone());
        spec.publish = vec![(bind, http_port, self.profile.app.port)];
        // The port was allocated at admission when the profile had one.
        if let (Some(host), Some(port)) = (
            self.stage.longpolling_port,
            self.profile.app.longpolling_port,
        ) {
            spec.publish.push((bind, host, port));
        }
        spec
    }

    /// The code server, when the profile has one: its password in `password_env`, its port
    /// published like the app's.
    pub fn code_server(&self, bind: IpAddr, port: u16, password: &str) -> Option<ContainerSpec> {
        let component = self.profile.code_server.as_ref()?;
        let mut spec = self.base(component, CODE_SERVER);
        if let Some(var) = &component.password_env {
            spec.env.insert(var.clone(), password.to_string());
        }
        spec.publish = vec![(bind, port, component.port)];
        Some(spec)
    }

    /// The app's `init_command` in a one-off container, if the profile has one.
    pub fn init(&self) -> Option<ContainerSpec> {
        let command = &self.profile.app.init_command;
        (!command.is_empty()).then(|| self.one_off(INIT, command))
    }

    /// `command` (placeholders expanded) in a one-off container of the app's image, with the
    /// app's mounts, configuration file and environment; `role` is one of [`ONE_OFFS`].
    pub fn one_off(&self, role: &str, command: &[String]) -> ContainerSpec {
        let mut spec = self.app_base(role);
        spec.env.extend(self.stage.settings.env.clone());
        spec.command = command
            .iter()
            .map(|c| expand(c, self.stage, self.profile))
            .collect();
        spec.restart = false;
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::stage::model::StageState;

    fn stage() -> Stage {
        let mut s = crate::core::fakes::stage("acme", "qa", StageState::Build);
        s.uuid = uuid::Uuid::nil();
        s.http_port = Some(20001);
        s.db_password = "s3cret".into();
        s.settings.env.insert("HOST".into(), "override".into());
        s.settings.memory_limit_mb = Some(512);
        s
    }

    #[test]
    fn specs_follow_the_profile_and_the_settings() {
        let naming = Naming {
            label_prefix: "io.stagelet".into(),
            name_prefix: "stagelet-".into(),
        };
        let s = stage();
        let profile = crate::core::settings::odoo_profile();
        let ctx = SpecContext {
            naming: &naming,
            stage: &s,
            profile: &profile,
            data_dir: Path::new("/d/acme/qa"),
            grace_s: 42,
            logs: Some((50, 3)),
        };
        let db = ctx.db();
        assert_eq!(db.name, "stagelet-acme--qa--db");
        assert_eq!(db.network, "stagelet-acme--qa");
        assert_eq!(db.aliases, vec!["db"]);
        assert_eq!(db.stop_signal, "SIGINT");
        assert_eq!(db.env["POSTGRES_PASSWORD"], "s3cret");
        assert_eq!(
            db.mounts,
            vec![(
                Path::new("/d/acme/qa/db").to_path_buf(),
                "/var/lib/postgresql/data".to_string()
            )]
        );
        assert_eq!(db.labels["io.stagelet.component"], "db");
        assert_eq!(db.stop_timeout_s, 42);
        let app = ctx.app("127.0.0.1".parse().unwrap(), 20001);
        assert_eq!(
            app.publish,
            vec!(("127.0.0.1".parse().unwrap(), 20001, 8069))
        );
        assert_eq!(app.env["HOST"], "override");
        assert_eq!(app.entrypoint, Some(vec![]));
        assert_eq!(app.command, ["odoo", "-c", "/etc/odoo/stagelet.conf"]);
        assert_eq!(app.stop_signal, "SIGTERM");
        assert_eq!(app.memory_bytes, Some(512 * 1024 * 1024));
        assert!(app.restart);
        let init = ctx.init().unwrap();
        assert_eq!(init.command[3..5], ["-d", "qa"]);
        assert!(!init.restart);
        assert_eq!(
            init.files,
            vec![(
                Path::new("/d/acme/qa/config/app.conf").to_path_buf(),
                "/etc/odoo/stagelet.conf".to_string()
            )]
        );
        assert_eq!(init.files, app.files);
        assert_eq!(init.name, "stagelet-acme--qa--init");
        let cs = ctx
            .code_server("127.0.0.1".parse().unwrap(), 25001, "pw-pw-pw")
            .unwrap();
        assert_eq!(cs.name, "stagelet-acme--qa--code_server");
        assert_eq!(cs.env["PASSWORD"], "pw-pw-pw");
        assert_eq!(
            cs.publish,
            vec!(("127.0.0.1".parse().unwrap(), 25001, 8080))
        );
        assert_eq!(cs.labels["io.stagelet.component"], "code_server");
        assert_eq!(
            cs.mounts,
            vec![(
                Path::new("/d/acme/qa/addons").to_path_buf(),
                "/home/coder/project".to_string()
            )]
        );
    }

    #[test]
    fn names_of_different_stages_never_meet() {
        use crate::core::names::{StageName, SubscriptionId};
        let naming = Naming {
            label_prefix: "io.stagelet".into(),
            name_prefix: "p-".into(),
        };
        // Every split of hyphenated words into (subscription, stage).
        let words = [
            "a", "b", "c", "a-b", "b-c", "a-b-c", "ab", "c-db", "db", "0", "x-0",
        ];
        let mut seen = std::collections::HashMap::new();
        for sub in words {
            for name in words {
                let mut s = stage();
                s.subscription = SubscriptionId::parse(sub).unwrap();
                s.name = StageName::parse(name).unwrap();
                // Containers and networks share no namespace with record keys.
                let mut names = vec![naming.network(&s), format!("key:{}", s.key())];
                for role in [APP, DB, INIT, NEUTRALIZE, UPDATE, CODE_SERVER, "network"] {
                    names.push(naming.container(&s, role));
                }
                for n in names {
                    if let Some(other) = seen.insert(n.clone(), (sub, name)) {
                        assert_eq!(other, (sub, name), "{n} names two stages");
                    }
                }
            }
        }
        let mut a = stage();
        a.subscription = SubscriptionId::parse("a-b").unwrap();
        a.name = StageName::parse("c").unwrap();
        assert_eq!(naming.container(&a, DB), "p-a-b--c--db");
        assert_eq!(naming.network(&a), "p-a-b--c");
    }

    /// The app publishes its long-polling port beside its HTTP port once the stage holds one.
    #[test]
    fn the_longpolling_port_is_published_too() {
        let naming = Naming {
            label_prefix: "io.stagelet".into(),
            name_prefix: "stagelet-".into(),
        };
        let (mut s, mut profile) = (stage(), crate::core::settings::odoo_profile());
        (s.longpolling_port, profile.app.longpolling_port) = (Some(20002), Some(8072));
        let ctx = SpecContext {
            naming: &naming,
            stage: &s,
            profile: &profile,
            data_dir: Path::new("/d/acme/qa"),
            grace_s: 1,
            logs: None,
        };
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let want = vec![(lo, 20001, 8069), (lo, 20002, 8072)];
        assert_eq!(ctx.app(lo, 20001).publish, want);
    }
}
