//! What the stage operations need from the host: the container engine, the stage database and
//! the stage directories. The runtime implements these; unit tests fake them.

use crate::core::Result;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
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
        _login: Option<&super::pull::RegistryLogin>,
        _source: &str,
        _progress: &(dyn Fn(super::pull::PullProgress) + Send + Sync),
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
    /// Runs a query returning one number (first column of the first row) on database `db`.
    async fn count(&self, target: &DbTarget, db: &str, query: &str) -> Result<i64>;
    /// The SQL console: one statement, in a read-only transaction unless `read_only` is false.
    async fn sql(&self, target: &DbTarget, db: &str, req: &SqlRequest) -> Result<SqlResult>;
    /// Makes (or puts back in shape) the console's two roles, neither a superuser: `reader`
    /// reads every table, `writer` also changes rows; both log in with `password`.
    async fn ensure_console_roles(
        &self,
        admin: &DbTarget,
        db: &str,
        roles: &ConsoleRoles,
    ) -> Result<()>;
    /// Runs `sql` (several statements allowed: it comes from the configuration) in one
    /// transaction.
    async fn execute(&self, target: &DbTarget, db: &str, sql: &str) -> Result<()>;
    /// Runs each statement on its own, outside any transaction (CREATE and DROP DATABASE).
    async fn each(&self, target: &DbTarget, db: &str, statements: &[String]) -> Result<()>;
}

#[derive(Debug, Clone)]
pub struct SqlRequest {
    pub query: String,
    pub read_only: bool,
    pub timeout: Duration,
    pub max_rows: usize,
    /// Rows stop before their values' text adds up to more.
    pub max_bytes: usize,
}

/// The SQL console's login roles on a stage's PostgreSQL.
#[derive(Debug, Clone)]
pub struct ConsoleRoles {
    pub reader: String,
    pub writer: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SqlResult {
    pub columns: Vec<SqlColumn>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows sent (after `max_rows`), or rows changed by a statement that returns none.
    pub row_count: u64,
    /// More rows were there than `max_rows`, or than fit in `max_bytes`.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SqlColumn {
    pub name: String,
    /// PostgreSQL's type name.
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The stage's directories under `state_dir/data/<subscription>/<name>/`.
pub trait StageDirs: Send + Sync {
    fn root(&self, subscription: &str, name: &str) -> PathBuf;
    fn create(&self, subscription: &str, name: &str) -> Result<()>;
    /// Removes the whole tree and the stage's git cache; idempotent.
    fn remove(&self, subscription: &str, name: &str) -> Result<()>;
    /// The bare mirror deploys fetch into.
    fn git_cache(&self, subscription: &str, name: &str) -> PathBuf;
    /// A new, empty directory on the same filesystem as the stage's data, for a checkout.
    fn scratch(&self, subscription: &str, name: &str) -> Result<PathBuf>;
    /// Removes the stage's scratch directory, if there is one.
    fn drop_scratch(&self, subscription: &str, name: &str) -> Result<()>;
    /// Copies the contents of `dir` of stage `from` into the same, empty, directory of stage
    /// `to` without following any symlink in it (they are copied as symlinks).
    fn copy_dir(&self, from: (&str, &str), to: (&str, &str), dir: &str) -> Result<()>;
    /// Puts the tree at `tree` in the stage's directory `dir` (`addons`, `filestore`), changing
    /// its contents and never the directory itself (it is bind-mounted). With `clear` what the
    /// tree lacks goes; else the tree is laid over what is there. On failure the directory is
    /// as it was. `tree` is consumed.
    fn lay_out_dir(
        &self,
        subscription: &str,
        name: &str,
        dir: &str,
        tree: &Path,
        clear: bool,
    ) -> Result<()>;
    /// Makes `uid:gid` own the stage's directory `dir` and everything in it, the directory
    /// with `mode`; symlinks are not followed. Fakes keep the default, which does nothing.
    fn own(
        &self,
        _subscription: &str,
        _name: &str,
        _dir: &str,
        _uid: u32,
        _gid: u32,
        _mode: u32,
    ) -> Result<()> {
        Ok(())
    }
}

/// A deploy's fetch: into the stage's bare mirror, with the transport locked down.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub cache: PathBuf,
    pub url: String,
    pub branch: String,
    /// Its deploy key is used for ssh.
    pub subscription: String,
    /// `git.allowed_protocols`.
    pub protocols: Vec<String>,
    pub timeout: Duration,
    /// Check out the commit's submodules too (one level), each URL held to the same rules.
    pub submodules: bool,
    /// What the checkout, submodules included, may write.
    pub limits: CheckoutLimits,
    /// `git.file_roots`: a `file://` repository must lie under one of them.
    pub file_roots: Vec<PathBuf>,
}

/// `git.max_checkout_mb` (in bytes) and `git.max_checkout_files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutLimits {
    pub max_bytes: u64,
    pub max_files: u64,
}

/// The commit a deploy lays out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub hash: String,
    pub subject: String,
    /// `git rev-list --count` of the commit.
    pub count: u64,
}

#[async_trait::async_trait]
pub trait Git: Send + Sync {
    /// Fetches the branch's tip into `req.cache` (made if missing; only what is new comes).
    async fn fetch(&self, req: &FetchRequest) -> Result<Commit>;
    /// Writes the commit's files into the empty directory `into`; refused with
    /// `limit_exceeded`, before a file is written, when they cross `req.limits`.
    async fn export(&self, req: &FetchRequest, hash: &str, into: &Path) -> Result<()>;
    /// The subscription's ed25519 public key, made on the first call.
    async fn deploy_key(&self, subscription: &str) -> Result<String>;
    /// Removes the subscription's key pair (idempotent): a later subscription of the same id
    /// gets a new one.
    async fn remove_deploy_key(&self, subscription: &str) -> Result<()>;
}

/// Disk usage of one directory tree: what `du -sb` (apparent) and `du -sB1` (allocated) print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirUsage {
    pub apparent_bytes: u64,
    pub allocated_bytes: u64,
    pub files: u64,
    pub dirs: u64,
    /// Entries that could not be read (permissions, vanished while walking).
    pub unreadable: u64,
}

impl DirUsage {
    pub fn add(&mut self, o: DirUsage) {
        self.apparent_bytes += o.apparent_bytes;
        self.allocated_bytes += o.allocated_bytes;
        self.files += o.files;
        self.dirs += o.dirs;
        self.unreadable += o.unreadable;
    }
}

/// How hard a measure may press on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasurePriority {
    /// Someone waits for the answer.
    Interactive,
    /// The periodic pass: idle I/O class and the lowest CPU priority.
    Background,
}

/// Measures directory trees. Blocking: callers run it off the async workers.
pub trait UsageMeter: Send + Sync {
    fn measure(&self, dir: &Path, priority: MeasurePriority) -> DirUsage;
}

/// Where backups live: `state_dir/backups/<subscription>/<name>/<id>/`, each with its
/// manifest. Blocking: callers run it off the async workers.
pub trait BackupStore: Send + Sync {
    /// A new, empty directory for backup `id`.
    fn create(&self, subscription: &str, name: &str, id: &str) -> Result<PathBuf>;
    fn dir(&self, subscription: &str, name: &str, id: &str) -> PathBuf;
    /// Writes `manifest.json` atomically and durably.
    fn write_manifest(&self, dir: &Path, manifest: &[u8]) -> Result<()>;
    /// Every backup's manifest bytes, by id.
    fn manifests(&self, subscription: &str, name: &str) -> Result<Vec<(String, Vec<u8>)>>;
    fn remove(&self, subscription: &str, name: &str, id: &str) -> Result<()>;
    /// Removes one file of a backup; a missing one is no error.
    fn remove_file(&self, file: &Path) -> Result<()>;
    /// Size and sha256 (hex) of a file.
    fn sha256(&self, file: &Path) -> Result<(u64, String)>;
    /// A tar of `dir`'s contents at `to`.
    fn pack(&self, dir: &Path, to: &Path) -> Result<()>;
    /// Unpacks a tar into the empty directory `into`.
    fn unpack(&self, tar: &Path, into: &Path) -> Result<()>;
    /// A file to write to, made (or emptied) here.
    fn writer(&self, file: &Path) -> Result<ByteWriter>;
    /// A file to read.
    fn reader(&self, file: &Path) -> Result<ByteReader>;
    /// Moves every backup of a deleted subscription out of the API's reach, into the archive
    /// `label` beside `records` (name and bytes of each, written as `<name>.json`). Where it
    /// went; `None` when there was nothing to keep.
    fn archive(
        &self,
        subscription: &str,
        label: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<Option<PathBuf>>;
}

/// Whether a host port is in use by anything (a bind fails).
pub trait PortProbe: Send + Sync {
    fn in_use(&self, addr: IpAddr, port: u16) -> bool;
    /// Whether something accepts TCP connections at `addr:port` now (blocking, brief).
    fn accepts(&self, addr: IpAddr, port: u16) -> bool;
}
