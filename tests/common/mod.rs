//! Test harness: runs the real daemon binary on its own temporary directory, socket, port
//! range, nginx directory and label prefix, so tests run in parallel and leave nothing behind.
#![allow(dead_code)]

pub mod acme;
pub mod child;
pub mod hostile;
pub mod nginx;
pub mod odoo;
// -- issue 15 (real images): the test registries
pub mod registry;
// -- end issue 15
pub mod stage_setup;

use jsonrpsee::async_client::Client;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use stagelet::api::client::{self, HttpClient};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub const DAEMON: &str = env!("CARGO_BIN_EXE_stagelet");
pub const CTL: &str = env!("CARGO_BIN_EXE_stagectl");

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A unique small number per daemon in this process.
fn next_slot() -> u16 {
    NEXT.fetch_add(1, Ordering::SeqCst)
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub label_prefix: String,
    /// Extra environment for the daemon process (test hooks).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

/// Deep-merges `over` into `base`.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Daemon {
    /// The test configuration, with `overrides` (TOML text) merged in.
    pub fn config(dir: &Path, slot: u16, overrides: &[&str]) -> (toml::Table, String) {
        // Distinct per process and per daemon; the agent also skips ports in use.
        // 20000-29999; `ports()` below hands out 40000 and up, so the two never meet.
        let base = 20000 + (std::process::id() as u16 % 25) * 400 + (slot % 20) * 20;
        let label_prefix = format!("io.stagelet.test.p{}s{slot}", std::process::id());
        let text = format!(
            r#"
[agent]
state_dir = "{dir}/state"
socket = "{dir}/run/stagelet.sock"
socket_group = ""
shutdown_timeout = "5s"
[docker]
label_prefix = "{label_prefix}"
name_prefix = "stl-p{pid}s{slot}-"
[ports]
http = "{h0}-{h1}"
code_server = "{c0}-{c1}"
[nginx]
sites_dir = "{dir}/nginx"
global_file = "{dir}/nginx-global/stagelet.conf"
pid_file = "{dir}/nginx.pid"
"#,
            dir = dir.display(),
            pid = std::process::id(),
            h0 = base,
            h1 = base + 9,
            c0 = base + 10,
            c1 = base + 19,
        );
        let mut table: toml::Table = toml::from_str(&text).unwrap();
        for o in overrides {
            merge(
                &mut table,
                toml::from_str(o).expect("test overrides are TOML"),
            );
        }
        (table, label_prefix)
    }

    pub fn start(overrides: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        // Other uids (the access tests) must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self::start_in(dir, &[overrides])
    }

    pub fn start_in(dir: tempfile::TempDir, overrides: &[&str]) -> Daemon {
        Self::start_in_env(dir, overrides, vec![])
    }

    /// As [`start_in`](Self::start_in), with `env` in the daemon's environment.
    pub fn start_in_env(
        dir: tempfile::TempDir,
        overrides: &[&str],
        env: Vec<(String, String)>,
    ) -> Daemon {
        let (table, label_prefix) = Self::config(dir.path(), next_slot(), overrides);
        let config_path = dir.path().join("stagelet.toml");
        std::fs::write(&config_path, toml::to_string(&table).unwrap()).unwrap();
        let socket = PathBuf::from(table["agent"]["socket"].as_str().unwrap());
        let log_path = dir.path().join("daemon.log");
        let mut d = Daemon {
            dir,
            socket,
            config_path,
            log_path,
            label_prefix,
            env,
            child: None,
        };
        d.spawn();
        d
    }

    /// Starts the binary and waits until its socket answers.
    pub fn spawn(&mut self) {
        let child = self.command().spawn().expect("the daemon binary starts");
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn command(&self) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut cmd = Command::new(DAEMON);
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .env("RUST_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        cmd
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "daemon exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon not ready in time:\n{}", self.log());
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap();
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        self.wait_exit(Duration::from_secs(5));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn client(&self) -> Client {
        client::connect(&self.socket)
            .await
            .expect("WebSocket client connects")
    }

    pub async fn http(&self) -> HttpClient {
        HttpClient::connect(&self.socket)
            .await
            .expect("HTTP client connects")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs stagectl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(CTL)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Leave no container or network of this daemon behind, whatever the test did.
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label={}.stage", self.label_prefix),
        ]);
        for id in ids.split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        let nets = docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label={}.stage", self.label_prefix),
        ]);
        for id in nets.split_whitespace() {
            docker(&["network", "rm", id]);
        }
    }
}

/// Runs the docker CLI and returns its stdout ("" when there is no engine).
pub fn docker(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `docker inspect -f FORMAT NAME`, trimmed; "" when missing.
pub fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, name]).trim().to_string()
}

/// The test images' profile as the daemon's default. Issue 15: the app and the code server are
/// the stand-ins of the official images (tests/images/build-standins.sh), running as 101 and
/// 1000 as odoo:17.0 and code-server do.
pub const TEST_PROFILE: &str = r#"
[agent]
default_profile = "test"
[lifecycle]
scheduler_interval = "1s"
[profiles.test]
grace_period = "5s"
[profiles.test.app]
image = "stagelet-test/app:2"
run_as = "101:101"
port = 8069
mounts = { filestore = "/var/lib/odoo", addons = "/mnt/extra-addons" }
env = { HOST = "{db_host}", APP_ID = "{subscription}-{stage}" }
init_command = ["sh", "-c", "echo init ran for {db_name} > /var/lib/odoo/init.txt"]
[profiles.test.db]
image = "stagelet-test/postgres:1"
port = 5432
user = "odoo"
mounts = { db = "/var/lib/postgresql/data" }
env = { POSTGRES_USER = "{db_user}", POSTGRES_PASSWORD = "{db_password}", POSTGRES_DB = "postgres" }
[profiles.test.code_server]
image = "stagelet-test/code-server:1"
run_as = "1000:1000"
port = 8080
password_env = "AUTH_PASSWORD"
mounts = { addons = "/home/coder/project" }
env = { APP_PORT = "8080", APP_ID = "code-{subscription}-{stage}" }
"#;

/// A daemon with the test profile and its own nginx master. The daemon drops first (no more
/// changes), taking the directory with it; the nginx master is stopped by its process handle,
/// not by the pid file that was in that directory.
pub struct StageEnv {
    pub daemon: Daemon,
    pub nginx: nginx::TestNginx,
}

impl StageEnv {
    pub fn start(overrides: &str) -> StageEnv {
        Self::start_env(overrides, vec![])
    }

    /// As [`start`](Self::start), with `env` in the daemon's environment.
    pub fn start_env(overrides: &str, env: Vec<(String, String)>) -> StageEnv {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let base = ports(2);
        let nginx = nginx::TestNginx::start(dir.path(), base, base + 1);
        let daemon = Daemon::start_in_env(dir, &[&nginx.toml(), TEST_PROFILE, overrides], env);
        StageEnv { daemon, nginx }
    }
}

impl StageEnv {
    /// When an engine answers: a daemon with `overrides`, subscription `acme` (5 stages,
    /// `limit_mb` of storage), and running qa stages `names` at `<name>.acme.example.com`.
    pub async fn with_stages(
        test: &str,
        overrides: &str,
        limit_mb: Option<u64>,
        names: &[&str],
    ) -> Option<StageEnv> {
        use stagelet::api::rpc::{StageApiClient, SubscriptionApiClient};
        if !require_engine(test).await {
            return None;
        }
        let env = StageEnv::start(overrides);
        let c = env.daemon.client().await;
        SubscriptionApiClient::create(&c, "acme".into(), 5, limit_mb, None, None)
            .await
            .unwrap();
        for name in names {
            StageApiClient::create(
                &c,
                "acme".into(),
                (*name).into(),
                "qa".into(),
                format!("{name}.acme.example.com"),
                None,
                None,
                None,
                None,
            )
            .await
            .unwrap();
        }
        Some(env)
    }

    /// The name the daemon gives a stage's container (`<name_prefix><sub>--<name>--<role>`).
    pub fn container(&self, sub: &str, name: &str, role: &str) -> String {
        let text = std::fs::read_to_string(&self.daemon.config_path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let prefix = table["docker"]["name_prefix"].as_str().unwrap();
        format!("{prefix}{sub}--{name}--{role}")
    }

    /// A stage's data directory.
    pub fn data(&self, sub: &str, name: &str) -> PathBuf {
        self.daemon.state_dir().join("data").join(sub).join(name)
    }

    /// Runs SQL with psql on a stage's database, as its user, at the db container's address.
    pub fn psql(&self, sub: &str, name: &str, sql: &str) -> String {
        let record = self
            .daemon
            .state_dir()
            .join(format!("stages/{sub}--{name}.json"));
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
        let ip = inspect(
            &self.container(sub, name, "db"),
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        );
        let out = Command::new("psql")
            .args(["-h", &ip, "-U", "odoo", "-d", name, "-v", "ON_ERROR_STOP=1"])
            .args(["-At", "-c", sql])
            .env("PGPASSWORD", record["db_password"].as_str().unwrap())
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// `du ARGS PATH`'s total.
pub fn du(args: &[&str], path: &Path) -> u64 {
    let out = Command::new("du").args(args).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("du printed nothing for {}", path.display()))
        .parse()
        .unwrap()
}

/// Waits until something accepts connections on `socket` (at most 20 s).
pub fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a Docker engine answers. Without one, a test that needs it prints a notice and
/// passes, unless STAGELET_TEST_REQUIRE_ENGINE=1 makes that a failure.
pub async fn require_engine(test: &str) -> bool {
    let up = match stagelet::runtime::docker::connect("unix:///var/run/docker.sock").await {
        Ok(d) => d.ping().await.is_ok(),
        Err(_) => false,
    };
    if !up {
        if std::env::var("STAGELET_TEST_REQUIRE_ENGINE").as_deref() == Ok("1") {
            panic!("{test}: no Docker engine answers, and STAGELET_TEST_REQUIRE_ENGINE=1");
        }
        eprintln!("SKIPPED {test}: no Docker engine answers (set STAGELET_TEST_REQUIRE_ENGINE=1 to fail instead)");
    }
    up
}

/// `code` and `data` of a JSON-RPC error response.
pub fn rpc_error(resp: &serde_json::Value) -> (i64, serde_json::Value) {
    let e = &resp["error"];
    assert!(e.is_object(), "expected an error, got {resp}");
    (e["code"].as_i64().unwrap(), e["data"].clone())
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// `count` consecutive loopback ports for this test, distinct within the process, and skipping
/// any that something already listens on.
pub fn ports(count: u16) -> u16 {
    loop {
        let base = 40000
            + (std::process::id() as u16 % 60) * 400
            + NEXT_PORT.fetch_add(count, Ordering::SeqCst) % 400;
        if (base..base + count).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
}
