//! The agent's configuration: TOML with every key defaulted, loaded from a file or embedded.

pub mod api;
pub mod check;
pub mod images;
pub mod profile;
pub mod registries;
pub mod types;

use profile::Profile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use types::{BodySize, Dur, FileMode, PortRange, SafePath};

pub use api::Api;
pub use check::{load_file, parse, ConfigError};

pub const DEFAULT_PATH: &str = "/etc/stagelet/stagelet.toml";

/// The live configuration, swapped whole on a reload; readers clone the inner `Arc`.
pub type SharedConfig = std::sync::Arc<std::sync::RwLock<std::sync::Arc<Config>>>;

pub fn shared(config: Config) -> SharedConfig {
    std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(config)))
}

pub fn current(shared: &SharedConfig) -> std::sync::Arc<Config> {
    shared.read().unwrap_or_else(|p| p.into_inner()).clone()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub agent: Agent,
    pub access: Access,
    pub api: Api,
    pub docker: Docker,
    pub ports: Ports,
    pub nginx: Nginx,
    pub lifecycle: Lifecycle,
    pub usage: Usage,
    pub git: Git,
    pub backups: Backups,
    pub profiles: BTreeMap<String, Profile>,
    pub registries: images::Registries,
    pub logs: images::Logs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Agent {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub socket_mode: FileMode,
    /// Empty: leave the socket's group as the daemon's.
    pub socket_group: String,
    pub log_format: LogFormat,
    pub default_profile: String,
    /// How long in-flight requests may run on after SIGTERM.
    pub shutdown_timeout: Dur,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Access {
    pub admin_groups: Vec<String>,
    pub reader_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Docker {
    pub endpoint: String,
    pub label_prefix: String,
    pub name_prefix: String,
    /// Stage networks take their subnets from here; the engine's default pools hold only
    /// about 30 networks. Empty: leave it to the engine.
    pub subnet_pool: String,
    /// Prefix length of each stage network (26: 64 addresses, 1024 networks in a /16).
    pub subnet_size: u8,
    /// Docker's `config.json` (`docker login` writes it): registry credentials.
    pub auth_config: PathBuf,
}

impl Docker {
    /// The pool and the size of each subnet, when the agent picks subnets.
    pub fn subnets(&self) -> Option<(ipnet::Ipv4Net, u8)> {
        let pool = self.subnet_pool.parse().ok()?;
        Some((pool, self.subnet_size))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ports {
    pub bind_address: std::net::IpAddr,
    pub http: PortRange,
    pub code_server: PortRange,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Nginx {
    pub enabled: bool,
    pub sites_dir: PathBuf,
    pub test_command: Vec<String>,
    pub reload_command: Vec<String>,
    pub listen_http: u16,
    pub listen_https: u16,
    pub tls_certificate: String,
    pub tls_certificate_key: String,
    /// The nginx master's pid file: reload checks, and SIGHUP when `reload_command` is empty.
    pub pid_file: PathBuf,
    /// Address the server blocks listen on; empty: every address.
    pub listen_address: String,
    pub client_max_body_size: BodySize,
    /// Per-stage access and error logs go here.
    pub log_dir: SafePath,
    /// How long a reload may take to show new worker processes.
    pub reload_timeout: Dur,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lifecycle {
    pub grace_period: Dur,
    pub retention: Retention,
    pub expiry_grace: Dur,
    /// How often expiry and purge are checked (and a failed start-up reconcile retried).
    pub scheduler_interval: Dur,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    pub dev: Dur,
    pub qa: Dur,
    pub prod: Dur,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub interval: Dur,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Git {
    pub allowed_protocols: Vec<String>,
    pub timeout: Dur,
    /// A commit whose files add up to more is not checked out.
    pub max_checkout_mb: u64,
    /// Nor one with more files (submodules included).
    pub max_checkout_files: u64,
    /// Directories `file://` repositories must lie under; `file` in `allowed_protocols`
    /// needs at least one.
    pub file_roots: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Backups {
    pub keep: u32,
}

impl Default for Agent {
    fn default() -> Self {
        Agent {
            state_dir: "/var/lib/stagelet".into(),
            socket: "/run/stagelet/stagelet.sock".into(),
            socket_mode: FileMode(0o660),
            socket_group: "stagelet".into(),
            log_format: LogFormat::Text,
            default_profile: "odoo".into(),
            shutdown_timeout: Dur::secs(30),
        }
    }
}

impl Default for Access {
    fn default() -> Self {
        Access {
            admin_groups: vec!["stagelet".into()],
            reader_groups: vec![],
        }
    }
}

impl Default for Docker {
    fn default() -> Self {
        Docker {
            endpoint: "unix:///var/run/docker.sock".into(),
            label_prefix: "io.stagelet".into(),
            name_prefix: "stagelet-".into(),
            subnet_pool: "10.213.0.0/16".into(),
            subnet_size: 26,
            auth_config: "/root/.docker/config.json".into(),
        }
    }
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            bind_address: std::net::IpAddr::from([127, 0, 0, 1]),
            http: PortRange {
                first: 20000,
                last: 24999,
            },
            code_server: PortRange {
                first: 25000,
                last: 29999,
            },
        }
    }
}

impl Default for Nginx {
    fn default() -> Self {
        Nginx {
            enabled: true,
            sites_dir: "/etc/nginx/stagelet".into(),
            test_command: vec!["nginx".into(), "-t".into()],
            reload_command: vec!["nginx".into(), "-s".into(), "reload".into()],
            listen_http: 80,
            listen_https: 443,
            tls_certificate: String::new(),
            tls_certificate_key: String::new(),
            pid_file: "/run/nginx.pid".into(),
            listen_address: String::new(),
            client_max_body_size: BodySize::try_from("100m".to_string()).expect("a valid default"),
            log_dir: SafePath::try_from("/var/log/nginx".to_string()).expect("a valid default"),
            reload_timeout: Dur::secs(10),
        }
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            grace_period: Dur::secs(60),
            retention: Retention::default(),
            expiry_grace: Dur::secs(0),
            scheduler_interval: Dur::secs(60),
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            dev: Dur::secs(86_400),
            qa: Dur::secs(7 * 86_400),
            prod: Dur::secs(30 * 86_400),
        }
    }
}

impl Default for Usage {
    fn default() -> Self {
        Usage {
            interval: Dur::secs(15 * 60),
        }
    }
}

impl Default for Git {
    fn default() -> Self {
        Git {
            allowed_protocols: vec!["https".into(), "ssh".into()],
            timeout: Dur::secs(300),
            max_checkout_mb: 2048,
            max_checkout_files: 200_000,
            file_roots: vec![],
        }
    }
}

impl Default for Backups {
    fn default() -> Self {
        Backups { keep: 7 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agent: Agent::default(),
            access: Access::default(),
            api: Api::default(),
            docker: Docker::default(),
            ports: Ports::default(),
            nginx: Nginx::default(),
            lifecycle: Lifecycle::default(),
            usage: Usage::default(),
            git: Git::default(),
            backups: Backups::default(),
            profiles: BTreeMap::from([("odoo".to_string(), profile::odoo())]),
            registries: images::Registries::new(),
            logs: images::Logs::default(),
        }
    }
}

impl Git {
    fn cross_check(&self) -> Vec<(&'static str, String)> {
        use std::path::Component;
        let mut errs = vec![];
        // No file root would make `file` useless; say so now rather than at the first deploy.
        if self.allowed_protocols.iter().any(|p| p == "file") && self.file_roots.is_empty() {
            errs.push((
                "file_roots",
                "allowed_protocols has file: name the directories file:// repositories may \
                 lie under"
                    .into(),
            ));
        }
        for root in &self.file_roots {
            // Components() would quietly drop a ".": look at the text too.
            let text = root.to_string_lossy();
            let plain = root.is_absolute()
                && !text.split('/').any(|c| c == "." || c == "..")
                && root
                    .components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
            if !plain || root.parent().is_none() {
                errs.push((
                    "file_roots",
                    format!(
                        "{} is not an absolute path below / without '.' or '..'",
                        root.display()
                    ),
                ));
            }
        }
        if self.max_checkout_files == 0 {
            errs.push(("max_checkout_files", "must be at least 1".into()));
        }
        errs
    }
}

impl Nginx {
    fn cross_check(&self) -> Vec<(&'static str, String)> {
        let mut errs = vec![];
        if self.enabled && self.test_command.is_empty() {
            errs.push((
                "test_command",
                "must name a command while nginx.enabled".into(),
            ));
        }
        if self.tls_certificate.is_empty() != self.tls_certificate_key.is_empty() {
            errs.push((
                "tls_certificate_key",
                "set both tls_certificate and tls_certificate_key, or neither".into(),
            ));
        }
        for (k, template) in [
            ("tls_certificate", &self.tls_certificate),
            ("tls_certificate_key", &self.tls_certificate_key),
        ] {
            if !template.is_empty() && self.tls_path(template, "example.com").is_err() {
                errs.push((k, format!("{template:?} is not an absolute path of plain characters, with {{domain}} where the domain goes")));
            }
        }
        if self.listen_ip().is_err() {
            errs.push((
                "listen_address",
                "must be an IP address, or empty for every address".into(),
            ));
        }
        if self.listen_http == 0 || self.listen_https == 0 || self.listen_http == self.listen_https
        {
            errs.push((
                "listen_https",
                "listen_http and listen_https must be two different ports".into(),
            ));
        }
        errs
    }

    /// A TLS path template with the domain filled in.
    pub fn tls_path(&self, template: &str, domain: &str) -> Result<SafePath, String> {
        SafePath::try_from(template.replace("{domain}", domain))
    }

    pub fn listen_ip(&self) -> Result<Option<std::net::IpAddr>, std::net::AddrParseError> {
        match self.listen_address.as_str() {
            "" => Ok(None),
            a => a.parse().map(Some),
        }
    }
}

impl Config {
    /// Embedded defaults for a first try: state and socket under `base`, no socket group, and
    /// no nginx (the host's nginx does not include a directory it has never heard of); stages
    /// answer on `ports.bind_address:<http_port>`.
    pub fn local(base: &Path) -> Config {
        let mut c = Config::default();
        c.agent.state_dir = base.join("state");
        c.agent.socket = base.join("stagelet.sock");
        c.agent.socket_group = String::new();
        c.nginx.enabled = false;
        c.nginx.sites_dir = base.join("nginx");
        c
    }

    /// Checks what a single key's type cannot: references between keys.
    /// Returns `(key path, message)` pairs.
    pub fn cross_check(&self) -> Vec<(Vec<String>, String)> {
        let key = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut errs = vec![];
        if !self.profiles.contains_key(&self.agent.default_profile) {
            errs.push((
                key(&["agent", "default_profile"]),
                format!(
                    "names no profile; defined: {:?}",
                    self.profiles.keys().collect::<Vec<_>>()
                ),
            ));
        }
        errs.extend(
            self.api
                .cross_check()
                .into_iter()
                .map(|(k, m)| (key(&["api", k]), m)),
        );
        if self.ports.http.overlaps(&self.ports.code_server) {
            errs.push((key(&["ports", "code_server"]), "overlaps ports.http".into()));
        }
        if self.agent.socket.as_os_str().is_empty() {
            errs.push((key(&["agent", "socket"]), "must not be empty".into()));
        }
        if self.agent.state_dir.as_os_str().is_empty() {
            errs.push((key(&["agent", "state_dir"]), "must not be empty".into()));
        }
        errs.extend(
            self.nginx
                .cross_check()
                .into_iter()
                .map(|(k, m)| (key(&["nginx", k]), m)),
        );
        if !self.docker.subnet_pool.is_empty() {
            match self.docker.subnet_pool.parse::<ipnet::Ipv4Net>() {
                Err(_) => errs.push((
                    key(&["docker", "subnet_pool"]),
                    "must be an IPv4 network like \"10.213.0.0/16\", or empty".into(),
                )),
                Ok(pool)
                    if self.docker.subnet_size < pool.prefix_len()
                        || self.docker.subnet_size > 29 =>
                {
                    errs.push((
                        key(&["docker", "subnet_size"]),
                        format!(
                            "must be between the pool's prefix length {} and 29",
                            pool.prefix_len()
                        ),
                    ))
                }
                Ok(_) => {}
            }
        }
        for p in &self.git.allowed_protocols {
            if !["https", "ssh", "http", "file"].contains(&p.as_str()) {
                errs.push((
                    key(&["git", "allowed_protocols"]),
                    format!("{p:?} is not one of https, ssh, http, file"),
                ));
            }
        }
        errs.extend(
            self.git
                .cross_check()
                .into_iter()
                .map(|(k, m)| (key(&["git", k]), m)),
        );
        errs.extend(images::cross_check(self));
        for name in self.profiles.keys() {
            if crate::core::names::SubscriptionId::parse(name).is_err() {
                errs.push((
                    key(&["profiles", name]),
                    "a profile name is a DNS label (a-z, 0-9, '-')".into(),
                ));
            }
        }
        errs
    }

    /// Keys whose change a SIGHUP cannot apply: they need a restart.
    pub fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        let mut keys = vec![];
        let mut diff = |changed: bool, key: &'static str| {
            if changed {
                keys.push(key)
            }
        };
        diff(
            self.agent.state_dir != new.agent.state_dir,
            "agent.state_dir",
        );
        diff(self.agent.socket != new.agent.socket, "agent.socket");
        diff(
            self.agent.socket_mode != new.agent.socket_mode,
            "agent.socket_mode",
        );
        diff(
            self.agent.socket_group != new.agent.socket_group,
            "agent.socket_group",
        );
        diff(
            self.agent.log_format != new.agent.log_format,
            "agent.log_format",
        );
        // auth_config is read at each pull: a reload applies it.
        let same_auth = Docker {
            auth_config: self.docker.auth_config.clone(),
            ..new.docker.clone()
        };
        diff(self.docker != same_auth, "docker");
        diff(self.ports != new.ports, "ports");
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_their_own_checks() {
        assert!(Config::default().cross_check().is_empty());
        let local = Config::local(Path::new("/tmp/x"));
        assert!(local.cross_check().is_empty());
        assert_eq!(local.agent.socket, Path::new("/tmp/x/stagelet.sock"));
    }

    #[test]
    fn file_urls_need_plain_roots() {
        let mut c = Config::default();
        c.git.allowed_protocols.push("file".into());
        let keys = |c: &Config| {
            c.cross_check()
                .into_iter()
                .map(|(k, _)| k.join("."))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&c), vec!["git.file_roots"]);
        c.git.file_roots = vec!["/srv/git".into()];
        assert!(keys(&c).is_empty());
        for bad in ["srv/git", "/srv/../etc", "/", "/srv/./git"] {
            c.git.file_roots = vec![bad.into()];
            assert_eq!(keys(&c), vec!["git.file_roots"], "{bad}");
        }
        c.git.file_roots = vec![];
        c.git.allowed_protocols.pop();
        c.git.max_checkout_files = 0;
        assert_eq!(keys(&c), vec!["git.max_checkout_files"]);
    }

    #[test]
    fn restart_needed_lists_only_what_changed() {
        let a = Config::default();
        let mut b = a.clone();
        b.access.reader_groups.push("ops".into());
        b.lifecycle.grace_period = Dur::secs(5);
        assert!(a.restart_needed(&b).is_empty());
        b.agent.socket = "/tmp/other.sock".into();
        b.ports.http = PortRange {
            first: 30000,
            last: 30010,
        };
        assert_eq!(a.restart_needed(&b), vec!["agent.socket", "ports"]);
    }
}
