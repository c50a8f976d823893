//! The agent's configuration: TOML with every key defaulted, loaded from a file or embedded.

pub mod api;
pub mod check;
mod copies_check;
mod cross_check;
pub mod images;
mod nginx_paths;
pub mod odoo_profile;
pub mod profile;
mod profile_check;
pub mod registries;
mod reload;
mod sections;
pub mod tls;
pub mod types;

use profile::Profile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use api::Api;
pub use check::{load_file, parse, ConfigError};
pub use sections::{
    Access, Agent, Backups, Docker, Git, Lifecycle, LogFormat, Nginx, Ports, Retention, Usage,
};

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
    pub tls: tls::Tls,
    pub profiles: BTreeMap<String, Profile>,
    pub registries: images::Registries,
    pub logs: images::Logs,
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
            tls: tls::Tls::default(),
            profiles: BTreeMap::from([("odoo".to_string(), profile::odoo())]),
            registries: images::Registries::new(),
            logs: images::Logs::default(),
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
}
