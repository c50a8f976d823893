//! What the stage operations need from the host: the container engine, the stage database and
//! the stage directories. The runtime implements these; unit tests fake them.

use crate::core::Result;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A container to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Empty: the image's own command.
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub network: String,
    pub aliases: Vec<String>,
    /// (host path, container path)
    pub mounts: Vec<(PathBuf, String)>,
    /// (host address, host port, container port)
    pub publish: Option<(IpAddr, u16, u16)>,
    pub stop_signal: String,
    pub stop_timeout_s: u64,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    /// `unless-stopped`; false for one-off containers.
    pub restart: bool,
}

/// A container as the engine reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    /// `created`, `running`, `exited`, ...
    pub status: String,
    pub running: bool,
    pub exit_code: Option<i64>,
    /// Its address on the named network.
    pub ip: Option<IpAddr>,
    pub labels: BTreeMap<String, String>,
    pub name: String,
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// It was not running.
    AlreadyStopped,
    /// It exited on its stop signal within the grace period.
    Exited,
    /// The grace period ran out and it was killed.
    Killed,
}

#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// With `subnets` (pool, prefix length) the network gets a free subnet of that pool.
    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        subnets: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()>;
    /// Idempotent: a missing network is fine.
    async fn remove_network(&self, name: &str) -> Result<()>;
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;
    async fn start_container(&self, name: &str) -> Result<()>;
    /// Sends `signal`, waits `grace`, then SIGKILL; bounded by grace + 10 s.
    async fn stop_container(
        &self,
        name: &str,
        signal: &str,
        grace: Duration,
    ) -> Result<StopOutcome>;
    /// Force-removes; idempotent.
    async fn remove_container(&self, name: &str) -> Result<()>;
    async fn inspect_container(&self, name: &str, network: &str) -> Result<Option<ContainerInfo>>;
    /// Runs a one-off container to completion: exit code and the tail of its output.
    async fn run_to_completion(
        &self,
        spec: &ContainerSpec,
        timeout: Duration,
    ) -> Result<(i64, String)>;
    /// Containers that carry `label` (any value).
    async fn list_labelled(&self, label: &str) -> Result<Vec<ContainerInfo>>;
    /// Host ports that containers publish.
    async fn published_ports(&self) -> Result<Vec<u16>>;
}

/// The PostgreSQL of a stage, reached at its container's address.
#[derive(Debug, Clone)]
pub struct DbTarget {
    pub host: IpAddr,
    pub port: u16,
    pub user: String,
    pub password: String,
}

#[async_trait::async_trait]
pub trait StageDatabase: Send + Sync {
    /// Waits until PostgreSQL accepts connections with these credentials.
    async fn wait_ready(&self, target: &DbTarget, timeout: Duration) -> Result<()>;
    /// Creates `name` unless it exists.
    async fn create_database(&self, target: &DbTarget, name: &str) -> Result<()>;
}

/// The stage's directories under `state_dir/data/<subscription>/<name>/`.
pub trait StageDirs: Send + Sync {
    fn root(&self, subscription: &str, name: &str) -> PathBuf;
    fn create(&self, subscription: &str, name: &str) -> Result<()>;
    /// Removes the whole tree; idempotent.
    fn remove(&self, subscription: &str, name: &str) -> Result<()>;
}

/// Whether a host port is in use by anything (a bind fails).
pub trait PortProbe: Send + Sync {
    fn in_use(&self, addr: IpAddr, port: u16) -> bool;
}
