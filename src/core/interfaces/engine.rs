//! The container engine as the core drives it: networks, containers, one-off runs, exec, logs
//! and stats. Implemented on Docker in `runtime::docker`.

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
    /// Read-only bind mounts of single files: (host path, container path).
    pub files: Vec<(PathBuf, String)>,
    /// (host address, host port, container port), each published.
    pub publish: Vec<(IpAddr, u16, u16)>,
    /// None: the image's. `Some([])`: none, so `command` is the whole argv.
    pub entrypoint: Option<Vec<String>>,
    pub stop_signal: String,
    pub stop_timeout_s: u64,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    /// `unless-stopped`; false for one-off containers.
    pub restart: bool,
    /// Supplementary groups (gids) of the container's user: the owners' of shared mounts.
    pub group_add: Vec<String>,
    pub shm_size_bytes: Option<i64>,
    /// The json-file log driver's caps: (max size in MB, files kept).
    pub log_caps: Option<(u64, u32)>,
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
    /// The reference it was made from, and the engine's id of that image.
    pub image: String,
    pub image_id: String,
}

/// Whose a container or network is: the value of the stage label, the stage's uuid. Removals
/// check it, so an operation never removes another stage's container that merely has the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub label: String,
    pub uuid: String,
}

impl Owner {
    pub fn owns(&self, labels: &BTreeMap<String, String>) -> bool {
        labels.get(&self.label) == Some(&self.uuid)
    }
}

/// A network as the engine reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
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
    /// The digest of `image` on the engine, or None when the engine lacks it. Fakes have
    /// every image.
    async fn image_digest(&self, _image: &str) -> Result<Option<String>> {
        Ok(Some(String::new()))
    }
    /// Pulls `image` with `login`, reporting progress; returns its digest. `source` says
    /// where credentials come from, for an access-denied message.
    async fn pull_image(
        &self,
        _image: &str,
        _login: Option<&crate::core::stage::pull::RegistryLogin>,
        _source: &str,
        _progress: &(dyn Fn(crate::core::stage::pull::PullProgress) + Send + Sync),
    ) -> Result<String> {
        Ok(String::new())
    }
    /// With `subnets` (pool, prefix length) the network gets a free subnet of that pool.
    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        subnets: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()>;
    /// Removes the networks named `name` that `owner` owns; a missing one, or one of another
    /// owner, is left alone.
    async fn remove_network(&self, name: &str, owner: &Owner) -> Result<()>;
    /// Networks that carry `label` (any value).
    async fn list_labelled_networks(&self, label: &str) -> Result<Vec<NetworkInfo>>;
    /// Connects a container to a network under `aliases`.
    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()>;
    async fn disconnect_network(&self, network: &str, container: &str) -> Result<()>;
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;
    async fn start_container(&self, name: &str) -> Result<()>;
    /// Sends `signal`, waits `grace`, then SIGKILL; bounded by grace + 10 s.
    async fn stop_container(
        &self,
        name: &str,
        signal: &str,
        grace: Duration,
    ) -> Result<StopOutcome>;
    /// Force-removes the container `name` (a name or an id) by the id it inspected, if `owner`
    /// owns it; a missing one, or one of another owner, is left alone.
    async fn remove_container(&self, name: &str, owner: &Owner) -> Result<()>;
    /// Renames the container `id`.
    async fn rename_container(&self, id: &str, name: &str) -> Result<()>;
    async fn inspect_container(&self, name: &str, network: &str) -> Result<Option<ContainerInfo>>;
    /// Runs a one-off container to completion: exit code and the tail of its output.
    /// A leftover of the same name goes first, if `owner` owns it.
    async fn run_to_completion(
        &self,
        spec: &ContainerSpec,
        owner: &Owner,
        timeout: Duration,
    ) -> Result<(i64, String)>;
    /// Containers that carry `label` (any value).
    async fn list_labelled(&self, label: &str) -> Result<Vec<ContainerInfo>>;
    /// Host ports that containers publish.
    async fn published_ports(&self) -> Result<Vec<u16>>;
    /// One stats sample of a running container; `None` when it is missing or not running.
    async fn stats(&self, name: &str) -> Result<Option<ContainerStats>>;
    /// Runs `argv` in the running container, wiring its standard streams to `req`; killed when
    /// the timeout runs out.
    async fn exec(&self, name: &str, req: ExecRequest) -> Result<ExecStatus>;
    /// The last `tail` lines of stdout and stderr, in order, from `since` (Unix seconds).
    async fn logs(&self, name: &str, tail: usize, since: Option<i64>) -> Result<Vec<LogLine>>;
    /// The last `tail` lines, then every new line as it comes.
    async fn follow_logs(
        &self,
        name: &str,
        tail: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>>;
}

pub type ByteReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
pub type ByteWriter = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// A command to run in a container: an argv (no shell is added) and where its streams go.
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// For the process only: secrets go here, never into `argv`.
    pub env: Vec<(String, String)>,
    pub stdin: Option<ByteReader>,
    pub stdout: ByteWriter,
    pub stderr: ByteWriter,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecStatus {
    /// `None` when it was killed at the timeout.
    pub exit_code: Option<i64>,
    pub timed_out: bool,
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// RFC 3339 with nanoseconds, as the engine stamped it.
    pub at: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub line: String,
}

/// One Docker stats sample of a container.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerStats {
    /// Share of one CPU, as `docker stats` prints it (200 = two CPUs busy).
    pub cpu_pct: f64,
    /// Memory in use, page cache excluded.
    pub memory_bytes: u64,
    /// The container's limit, or the host's memory when it has none.
    pub memory_limit_bytes: u64,
}
