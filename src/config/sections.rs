//! The tables of the configuration file other than `[api]` and `[profiles]`, each with its
//! defaults.

use super::types::{BodySize, Dur, FileMode, PortRange, SafePath};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// The agent's global nginx file (map, catch-all, include of `sites_dir`).
    pub global_file: SafePath,
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
            global_file: SafePath::try_from("/etc/nginx/stagelet/global/stagelet.conf".to_string())
                .expect("a valid default"),
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

impl Nginx {
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
