//! A private ACME server for one test: Debian's `pebble`, resolving every name through its own
//! `pebble-challtestsrv` (which answers 127.0.0.1), validating HTTP-01 on the test nginx's
//! HTTP port. Each test has its own ports, files and processes; all stop when dropped.

use super::nginx::TestNginx;
use super::{ports, Daemon, TEST_PROFILE};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether pebble is installed (scripts/test.sh installs it); without it the test says so and
/// fails only under STAGELET_TEST_REQUIRE_ENGINE=1, like the engine tests.
pub fn require_pebble(test: &str) -> bool {
    let found =
        Path::new("/usr/bin/pebble").exists() && Path::new("/usr/bin/pebble-challtestsrv").exists();
    if !found {
        if std::env::var("STAGELET_TEST_REQUIRE_ENGINE").as_deref() == Ok("1") {
            panic!("{test}: pebble is not installed (apt-get install pebble)");
        }
        eprintln!("SKIPPED {test}: pebble is not installed");
    }
    found
}

pub struct Pebble {
    pebble: Child,
    challtestsrv: Child,
    pub dir: PathBuf,
    pub directory: String,
    /// The CA that signed pebble's own HTTPS certificate (the agent's `acme_ca_file`).
    pub api_ca: PathBuf,
    /// The root pebble issues under (what clients of the stages trust).
    pub issuer_root: PathBuf,
    management: u16,
    dns_management: u16,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

fn wait_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "{what} did not start ({exited:?}): {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http_port`, issuing certificates valid `validity`.
    pub fn start(dir: &Path, http_port: u16, validity: Duration) -> Pebble {
        let dir = dir.join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        let p = |f: &str| dir.join(f).display().to_string();
        // A CA and the listener certificate it signs (rustls takes no self-signed leaf).
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=stagelet test ACME API CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("api.key"),
            "-out",
            &p("api.csr"),
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("api.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("api.pem"),
        ]);
        let base = ports(5);
        let (listen, management, dns, dns_management, tls_port) =
            (base, base + 1, base + 2, base + 3, base + 4);
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": p("api.pem"),
            "privateKey": p("api.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": validity.as_secs(),
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let dns_log = dir.join("challtestsrv.log");
        let mut challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&dns_log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv starts");
        wait_port(
            dns_management,
            "pebble-challtestsrv",
            &mut challtestsrv,
            &dns_log,
        );
        let log = dir.join("pebble.log");
        let mut pebble = Command::new("pebble")
            .args(["-config", &p("pebble.json")])
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // Every order is validated: a domain refused after its first certificate fails
            // its renewals (pebble reuses half the valid authorizations by default).
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble starts");
        wait_port(listen, "pebble", &mut pebble, &log);
        let mut me = Pebble {
            pebble,
            challtestsrv,
            directory: format!("https://127.0.0.1:{listen}/dir"),
            api_ca: dir.join("ca.pem"),
            issuer_root: dir.join("issuer-root.pem"),
            dir,
            management,
            dns_management,
        };
        me.fetch_root();
        me
    }

    /// pebble makes a new root each start; clients of the stages trust it.
    fn fetch_root(&mut self) {
        let out = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(&self.api_ca)
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .unwrap();
        assert!(out.status.success(), "pebble's root: {out:?}");
        std::fs::write(&self.issuer_root, &out.stdout).unwrap();
    }

    /// The daemon's `[tls]` for this server.
    pub fn toml(&self, challenge_dir: &Path) -> String {
        format!(
            "[tls]\nmode = \"acme\"\nacme_directory = \"{}\"\nacme_ca_file = \"{}\"\nchallenge_dir = \"{}\"\n",
            self.directory,
            self.api_ca.display(),
            challenge_dir.display()
        )
    }

    /// Makes every DNS answer for `host` SERVFAIL, so its validation fails.
    pub fn refuse(&self, host: &str) {
        // With and without the root dot: either spelling is the name challtestsrv matches.
        for name in [host.to_string(), format!("{host}.")] {
            let body = serde_json::json!({ "host": name }).to_string();
            let out = Command::new("curl")
                .args(["-sf", "-X", "POST", "-d", &body])
                .arg(format!(
                    "http://127.0.0.1:{}/set-servfail",
                    self.dns_management
                ))
                .output()
                .unwrap();
            assert!(out.status.success(), "challtestsrv set-servfail: {out:?}");
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in [&mut self.pebble, &mut self.challtestsrv] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A daemon in ACME mode with the test profile, its own nginx and its own pebble. Drops in
/// order: the daemon, then pebble, then nginx.
pub struct AcmeEnv {
    pub daemon: Daemon,
    pub pebble: Pebble,
    pub nginx: TestNginx,
    pub clock: PathBuf,
}

impl AcmeEnv {
    pub fn start(validity: Duration) -> AcmeEnv {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let base = ports(2);
        let nginx = TestNginx::start(dir.path(), base, base + 1);
        let pebble = Pebble::start(dir.path(), nginx.http_port, validity);
        let clock = dir.path().join("clock");
        std::fs::write(&clock, "0").unwrap();
        let tls = pebble.toml(&dir.path().join("acme-challenge"));
        let env = vec![("STAGELET_TEST_CLOCK".into(), clock.display().to_string())];
        let daemon = Daemon::start_in_env(dir, &[&nginx.toml(), TEST_PROFILE, &tls], env);
        AcmeEnv {
            daemon,
            pebble,
            nginx,
            clock,
        }
    }

    /// The certificate file the agent hands nginx for `domain`.
    pub fn cert_file(&self, domain: &str) -> PathBuf {
        self.daemon.state_dir().join(format!("tls/{domain}.pem"))
    }

    /// The serial of the certificate nginx presents for `host` over TLS (SNI), as
    /// `openssl x509 -serial` prints it; empty when no certificate came.
    pub fn served_serial(&self, host: &str) -> String {
        let hello = Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{}", self.nginx.https_port))
            .args(["-servername", host])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        serial_of(&hello.stdout)
    }

    /// The serial of the certificate in the agent's file for `domain`.
    pub fn file_serial(&self, domain: &str) -> String {
        serial_of(&std::fs::read(self.cert_file(domain)).unwrap())
    }

    /// Waits until nginx presents for `host` the certificate in the agent's file, no longer
    /// the one whose serial was `old` (at most 20 s).
    pub async fn wait_served(&self, host: &str, old: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (served, file) = (self.served_serial(host), self.file_serial(host));
            if served != old && served == file {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{host}: nginx serves {served:?}, the file holds {file:?}, before {old:?}\n{}",
                self.daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The scheduler's clock runs `secs` ahead.
    pub fn clock_ahead(&self, secs: u64) {
        std::fs::write(&self.clock, secs.to_string()).unwrap();
    }
}

/// `serial=…` of the first certificate in `pem` (text around it is skipped).
fn serial_of(pem: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(pem);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Requests over HTTPS in a loop on another thread until stopped: (made, failed, first failure).
pub struct Hammer {
    stop: Arc<AtomicBool>,
    made: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<Vec<(u16, String)>>,
}

pub fn hammer(env: &AcmeEnv, host: &str) -> Hammer {
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicUsize::new(0));
    let resolve = format!("{host}:{}:127.0.0.1", env.nginx.https_port);
    let url = format!("https://{host}:{}/", env.nginx.https_port);
    let ca = env.pebble.issuer_root.display().to_string();
    let (s, m) = (stop.clone(), made.clone());
    let thread = std::thread::spawn(move || {
        let mut failed = vec![];
        // Bounded: at most 2000 requests, whatever happens to the flag.
        for _ in 0..2000 {
            if s.load(Ordering::SeqCst) {
                break;
            }
            // HTTP/1.1: a reload ends old workers' HTTP/2 connections with GOAWAY, which
            // browsers answer by retrying and curl by failing (exit 16); what is under test is
            // that the agent's swap of certificate and reload drops no request.
            let out = std::process::Command::new("curl")
                .args([
                    "-sS",
                    "--http1.1",
                    "-m",
                    "10",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .args(["--resolve", &resolve, "--cacert", &ca, &url])
                .output()
                .unwrap();
            m.fetch_add(1, Ordering::SeqCst);
            let code: u16 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            if code != 200 {
                let at = time::OffsetDateTime::now_utc();
                let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                failed.push((code, format!("{at}: {why}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        failed
    });
    Hammer { stop, made, thread }
}

impl Hammer {
    pub fn finish(self) -> (usize, Vec<(u16, String)>) {
        self.stop.store(true, Ordering::SeqCst);
        let failed = self.thread.join().unwrap();
        (self.made.load(Ordering::SeqCst), failed)
    }
}
