//! A private nginx master for one test: its own prefix, config, pid file and loopback ports.
//! The master runs in the foreground as this process's child, so stopping it needs no file:
//! the test's directory may already be gone when it drops.

use stagelet::config::Config;
use stagelet::core::names::{Domain, StageName, SubscriptionId};
use stagelet::core::site::{SiteSpec, SiteState};
use stagelet::runtime::nginx::control::alive;
use stagelet::runtime::nginx::NginxSites;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, RwLock};

pub struct TestNginx {
    pub prefix: PathBuf,
    pub conf: PathBuf,
    pub sites_dir: PathBuf,
    pub pid_file: PathBuf,
    pub http_port: u16,
    pub https_port: u16,
    child: Mutex<Option<Child>>,
}

impl TestNginx {
    /// Writes the main config and starts the master. Like the package's
    /// /etc/nginx/conf.d/stagelet.conf, the config includes the directory of the agent's global
    /// file by a glob; the file is written first, as the agent writes it, so nginx starts with
    /// the catch-all. `dir` must be readable by the worker user.
    pub fn start(dir: &Path, http_port: u16, https_port: u16) -> TestNginx {
        Self::start_with(dir, http_port, https_port, true, None)
    }

    /// As [`start`](Self::start), with no global file: the agent has to write it.
    pub fn start_empty(dir: &Path, http_port: u16, https_port: u16) -> TestNginx {
        Self::start_with(dir, http_port, https_port, false, None)
    }

    /// Laid out as Debian's nginx: `conf.d/*.conf` (holding the package's
    /// `etc/nginx/stagelet.conf`, pointed at this prefix), then `sites-enabled/*`, where Debian's
    /// default site claims `default_server` on the HTTP port when `default_site` is set.
    /// No global file: the agent has to write it.
    pub fn start_debian(
        dir: &Path,
        http_port: u16,
        https_port: u16,
        default_site: bool,
    ) -> TestNginx {
        Self::start_with(dir, http_port, https_port, false, Some(default_site))
    }

    fn start_with(
        dir: &Path,
        http_port: u16,
        https_port: u16,
        global: bool,
        debian: Option<bool>,
    ) -> TestNginx {
        let prefix = dir.join("nginx");
        let sites_dir = prefix.join("sites");
        for sub in ["sites", "logs", "tmp", "global"] {
            std::fs::create_dir_all(prefix.join(sub)).unwrap();
        }
        let pid_file = prefix.join("nginx.pid");
        let n = TestNginx {
            conf: prefix.join("nginx.conf"),
            prefix,
            sites_dir,
            pid_file,
            http_port,
            https_port,
            child: Mutex::new(None),
        };
        if global {
            let mut config = Config::default();
            n.apply_to(&mut config);
            let text = stagelet::runtime::nginx::global::render_config(&config).unwrap();
            std::fs::write(n.global_file(), text).unwrap();
        }
        let p = n.prefix.display();
        let mut include = format!("include {p}/global/*.conf;");
        if let Some(default_site) = debian {
            for sub in ["conf.d", "sites-enabled"] {
                std::fs::create_dir_all(n.prefix.join(sub)).unwrap();
            }
            let shipped = include_str!("../../etc/nginx/stagelet.conf")
                .replace("/etc/nginx/stagelet/global/", &format!("{p}/global/"));
            std::fs::write(n.prefix.join("conf.d/stagelet.conf"), shipped).unwrap();
            if default_site {
                std::fs::write(
                    n.prefix.join("sites-enabled/default"),
                    format!(
                        "server {{\n    listen 127.0.0.1:{http_port} default_server;\n    server_name _;\n    \
                         location / {{ return 200 \"Welcome to nginx (Debian's default site)\\n\"; }}\n}}\n"
                    ),
                )
                .unwrap();
            }
            include = format!("include {p}/conf.d/*.conf;\n    include {p}/sites-enabled/*;");
        }
        std::fs::write(
            &n.conf,
            format!(
                "pid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\nworker_processes 1;\nevents {{ worker_connections 128; }}\n\
                 http {{\n    access_log off;\n    client_body_temp_path {p}/tmp/body;\n    proxy_temp_path {p}/tmp/proxy;\n\
                 fastcgi_temp_path {p}/tmp/fastcgi;\n    uwsgi_temp_path {p}/tmp/uwsgi;\n    scgi_temp_path {p}/tmp/scgi;\n\
                 {include}\n}}\n"
            ),
        )
        .unwrap();
        let stderr = std::fs::File::create(n.prefix.join("logs/stderr.log")).unwrap();
        let child = n
            .nginx(&["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("nginx starts");
        let pid = child.id() as i32;
        *n.child.lock().unwrap() = Some(child);
        // Up once its pid file names it (it writes the file after binding its ports).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while n.master() != Some(pid) {
            let exited = n
                .child
                .lock()
                .unwrap()
                .as_mut()
                .unwrap()
                .try_wait()
                .unwrap();
            assert!(
                exited.is_none() && std::time::Instant::now() < deadline,
                "no nginx master ({exited:?}): {}{}",
                std::fs::read_to_string(n.prefix.join("logs/stderr.log")).unwrap_or_default(),
                n.error_log()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        n
    }

    fn master(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive(pid).then_some(pid)
    }

    /// Where the agent writes its global file for this master.
    pub fn global_file(&self) -> PathBuf {
        self.prefix.join("global/stagelet.conf")
    }

    /// Points a configuration's `[nginx]` at this master.
    pub fn apply_to(&self, config: &mut stagelet::config::Config) {
        let c = &mut config.nginx;
        c.sites_dir = self.sites_dir.clone();
        c.global_file =
            stagelet::config::types::SafePath::try_from(self.global_file().display().to_string())
                .unwrap();
        c.pid_file = self.pid_file.clone();
        c.listen_address = "127.0.0.1".into();
        c.listen_http = self.http_port;
        c.listen_https = self.https_port;
        c.log_dir = stagelet::config::types::SafePath::try_from(
            self.prefix.join("logs").display().to_string(),
        )
        .unwrap();
        let base = [
            "nginx",
            "-p",
            &self.prefix.display().to_string(),
            "-c",
            &self.conf.display().to_string(),
        ]
        .map(String::from);
        c.test_command = [&base[..], &["-t".to_string(), "-q".to_string()]].concat();
        c.reload_command = [&base[..], &["-s".to_string(), "reload".to_string()]].concat();
    }

    /// The `[nginx]` table for a daemon's TOML configuration.
    pub fn toml(&self) -> String {
        let mut config = stagelet::config::Config::default();
        self.apply_to(&mut config);
        let mut t = toml::Table::new();
        t.insert(
            "nginx".into(),
            toml::Value::try_from(&config.nginx).unwrap(),
        );
        toml::to_string(&t).unwrap()
    }

    fn nginx(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&self.conf)
            .args(args);
        cmd
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default()
    }

    /// GETs `path` on the HTTP port with a Host header: (status, body); status 0 when nginx
    /// closed the connection without answering (444).
    pub fn get(&self, host: &str, path: &str) -> (u16, String) {
        curl(&[
            "-H",
            &format!("Host: {host}"),
            &format!("http://127.0.0.1:{}{path}", self.http_port),
        ])
    }

    /// As [`get`](Self::get), with HTTP basic auth.
    pub fn get_as(&self, host: &str, user: &str, password: &str) -> (u16, String) {
        curl(&[
            "-u",
            &format!("{user}:{password}"),
            "-H",
            &format!("Host: {host}"),
            &format!("http://127.0.0.1:{}/", self.http_port),
        ])
    }

    /// GETs over TLS with SNI `host`, trusting only `ca`.
    pub fn get_tls(&self, host: &str, ca: &Path) -> (u16, String) {
        let resolve = format!("{host}:{}:127.0.0.1", self.https_port);
        curl(&[
            "--resolve",
            &resolve,
            "--cacert",
            &ca.display().to_string(),
            &format!("https://{host}:{}/", self.https_port),
        ])
    }

    /// Stops the master (it stops its workers) and reaps it.
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().unwrap().take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nginx master {pid} did not stop on SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for TestNginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// (status, body) from curl; status 0 when no HTTP answer came.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A self-signed certificate for `domain` at `<dir>/<domain>.pem` and `.key`.
pub fn self_signed(dir: &Path, domain: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let cert = dir.join(format!("{domain}.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={domain}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{domain}"))
        .arg("-keyout")
        .arg(dir.join(format!("{domain}.key")))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    cert
}

/// A backend on loopback: busybox httpd serving `body` at `/`.
pub struct Backend {
    child: std::process::Child,
    pub port: u16,
}

impl Backend {
    pub fn start(dir: &Path, port: u16, body: &str) -> Backend {
        let root = dir.join(format!("backend-{port}"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), body).unwrap();
        let child = Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(&root)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "backend on {port} did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Backend { child, port }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxy layer on its own (no daemon) against a private nginx master. Fields drop in
/// order: nginx stops before its directory goes.
pub struct Setup {
    pub nginx: TestNginx,
    pub config: Arc<RwLock<Arc<Config>>>,
    pub sites: Arc<NginxSites>,
    pub dir: tempfile::TempDir,
}

pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    // nginx workers run as nobody and read the sites from here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = super::ports(2);
    let nginx = TestNginx::start(dir.path(), base, base + 1);
    setup_with(dir, nginx)
}

/// The proxy layer against `nginx`, which runs in `dir`.
pub fn setup_with(dir: tempfile::TempDir, nginx: TestNginx) -> Setup {
    let mut config = Config::default();
    nginx.apply_to(&mut config);
    let config = Arc::new(RwLock::new(Arc::new(config)));
    let shared = config.clone();
    let sites = NginxSites::start(Arc::new(move || shared.read().unwrap().clone()));
    Setup {
        dir,
        nginx,
        config,
        sites,
    }
}

impl Setup {
    pub fn set_config(&self, f: impl FnOnce(&mut Config)) {
        let mut c = (**self.config.read().unwrap()).clone();
        f(&mut c);
        *self.config.write().unwrap() = Arc::new(c);
    }

    pub fn file(&self, sub: &str, name: &str) -> std::path::PathBuf {
        self.nginx.sites_dir.join(format!("{sub}--{name}.conf"))
    }
}

/// A certificate and key for `domain` that the agent takes (the leaf is a valid self-signed
/// certificate, the key its own) and that nginx refuses: the chain after the leaf holds a
/// block that is not a certificate.
pub fn not_a_certificate(dir: &std::path::Path, domain: &str) {
    use std::io::Write;
    let cert = self_signed(dir, domain);
    std::fs::OpenOptions::new()
        .append(true)
        .open(cert)
        .unwrap()
        .write_all(b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        .unwrap();
}

/// A site with no code server.
pub fn site(sub: &str, name: &str, domain: &str, state: SiteState, port: u16) -> SiteSpec {
    SiteSpec {
        subscription: SubscriptionId::parse(sub).unwrap(),
        name: StageName::parse(name).unwrap(),
        domain: Domain::parse(domain).unwrap(),
        state,
        http_port: port,
        longpolling_port: None,
        code_server: None,
        blocked_paths: vec![],
    }
}
