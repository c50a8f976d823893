//! The core's view of the configuration: only what the operations read, built from the
//! `Config` at start-up and again on each reload. The one place in `core` that names
//! `crate::config`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub use crate::config::images::{Logs, PullPolicy, Registries, RunAs};
pub use crate::config::profile::{Component, Profile};
pub use crate::config::registries::RegistryLogin;
pub use crate::config::tls::{Tls, TlsMode};
pub use crate::config::types::{Dur, PortRange, SignalName};
use crate::config::Config;
pub use crate::config::{Backups, Git, Lifecycle, Ports, Retention, Usage};

/// What pulls need: registry credentials (`docker.auth_config`, `[registries]`), and the
/// containers' log caps (`[logs]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSettings {
    pub auth_config: std::path::PathBuf,
    pub registries: Registries,
    pub logs: Logs,
}

impl ImageSettings {
    pub fn login_for(&self, registry: &str) -> Result<Option<RegistryLogin>, String> {
        crate::config::registries::login_for(&self.auth_config, &self.registries, registry)
    }

    /// Where a registry's credentials would come from, for "check the credentials in …".
    pub fn source_for(&self, registry: &str) -> String {
        crate::config::registries::source_for(&self.auth_config, &self.registries, registry)
    }

    /// (max size in MB, files kept) for the json-file log driver.
    pub fn log_caps(&self) -> Option<(u64, u32)> {
        Some((self.logs.max_size_mb, self.logs.max_files))
    }
}

/// What the core needs of `docker`: how it names and labels what it makes, and where stage
/// networks take their subnets.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSettings {
    pub label_prefix: String,
    pub name_prefix: String,
    subnets: Option<(ipnet::Ipv4Net, u8)>,
}

impl DockerSettings {
    /// The pool and the size of each subnet, when the agent picks subnets.
    pub fn subnets(&self) -> Option<(ipnet::Ipv4Net, u8)> {
        self.subnets
    }
}

/// What the core needs of `nginx`: whether sites are served with TLS.
#[derive(Debug, Clone, PartialEq)]
pub struct NginxSettings {
    pub enabled: bool,
    pub tls_certificate: String,
}

/// What the core needs of `[tls]`: the mode in force and the ACME server.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// `tls.mode`, or what it defaults to from `nginx.tls_certificate`.
    pub mode: TlsMode,
    pub acme: Tls,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `agent.default_profile`.
    pub default_profile: String,
    pub profiles: BTreeMap<String, Profile>,
    pub docker: DockerSettings,
    pub ports: Ports,
    pub nginx: NginxSettings,
    pub lifecycle: Lifecycle,
    pub usage: Usage,
    pub git: Git,
    pub backups: Backups,
    pub tls: TlsSettings,
    pub images: ImageSettings,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        Settings {
            default_profile: c.agent.default_profile.clone(),
            profiles: c.profiles.clone(),
            docker: DockerSettings {
                label_prefix: c.docker.label_prefix.clone(),
                name_prefix: c.docker.name_prefix.clone(),
                subnets: c.docker.subnets(),
            },
            ports: c.ports.clone(),
            nginx: NginxSettings {
                enabled: c.nginx.enabled,
                tls_certificate: c.nginx.tls_certificate.clone(),
            },
            lifecycle: c.lifecycle.clone(),
            usage: c.usage.clone(),
            git: c.git.clone(),
            backups: c.backups.clone(),
            tls: TlsSettings {
                mode: c.tls.mode(&c.nginx),
                acme: c.tls.clone(),
            },
            images: ImageSettings {
                auth_config: c.docker.auth_config.clone(),
                registries: c.registries.clone(),
                logs: c.logs.clone(),
            },
        }
    }
}

/// The defaults of the configuration file.
impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Config::default())
    }
}

/// The settings in force, swapped whole on reload.
pub type SharedSettings = Arc<RwLock<Arc<Settings>>>;

pub fn shared(settings: Settings) -> SharedSettings {
    Arc::new(RwLock::new(Arc::new(settings)))
}

/// The built-in `odoo` profile, for tests.
#[cfg(test)]
pub fn odoo_profile() -> Profile {
    crate::config::profile::odoo()
}
