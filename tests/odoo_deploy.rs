//! Issue 16, upgrade on deploy: a stage on the default `odoo` profile (the Odoo stand-in) gets
//! commits from a local repository. A new module is installed; an update that fails rolls the
//! code and the database back while nginx keeps serving; a module name that is not in the
//! commit is refused; a daemon killed midway rolls back at its next start. Seen through
//! PostgreSQL, the addons on disk, stage.get and HTTP through nginx.

mod common;

use common::odoo::odoo_overrides;
use common::stage_setup::restart_with_failpoint;
use common::{inspect, rpc_error, StageEnv};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOST: &str = "qa.acme.example.com";

/// file:// allowed for the repositories made here, in the temporary directory.
fn overrides() -> String {
    format!(
        "{}\n[git]\nallowed_protocols = [\"https\", \"ssh\", \"file\"]\nfile_roots = [\"{}\"]\n",
        odoo_overrides(),
        std::env::temp_dir().canonicalize().unwrap().display()
    )
}

/// A work repository on branch 17.0.
struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addons-repo");
        std::fs::create_dir(&path).unwrap();
        let r = Repo { _dir: dir, path };
        r.git(&["init", "-q", "-b", "17.0"]);
        r
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.path)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Commits `files`; the new head.
    fn commit(&self, message: &str, files: &[(&str, &str)]) -> String {
        for (p, v) in files {
            let p = self.path.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

/// A module as the stand-in reads it: a manifest and one SQL data file.
fn module(name: &str, installable: bool, sql: &str) -> Vec<(String, String)> {
    let manifest = format!(
        "{{'name': '{name}', 'version': '1.0', 'depends': ['base'], \
         'data': ['data/{name}.sql'], 'installable': {}}}\n",
        if installable { "True" } else { "False" }
    );
    vec![
        (format!("{name}/__manifest__.py"), manifest),
        (format!("{name}/__init__.py"), String::new()),
        (format!("{name}/data/{name}.sql"), sql.to_string()),
    ]
}

fn files(modules: &[Vec<(String, String)>]) -> Vec<(&str, &str)> {
    modules
        .iter()
        .flatten()
        .map(|(p, v)| (p.as_str(), v.as_str()))
        .collect()
}

/// Every file under `dir` with its content.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect()
}

/// One GET of `/web/health` through nginx with the stage's Host header: the status, 0 when
/// no answer came.
fn health(port: u16) -> u16 {
    let ask = || -> std::io::Result<u16> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET /web/health HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0))
    };
    ask().unwrap_or(0)
}

/// Polls `/web/health` through nginx until it answers 200.
fn wait_serving(env: &StageEnv) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while health(env.nginx.http_port) != 200 {
        assert!(Instant::now() < deadline, "the stage never served");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A loop of requests through nginx every 100 ms, on loopback, until stopped (at most ten
/// minutes): every status it saw, in order.
struct Watch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u16>>,
}

impl Watch {
    fn start(port: u16) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut seen, until) = (vec![], Instant::now() + Duration::from_secs(600));
            while !flag.load(Ordering::SeqCst) && Instant::now() < until {
                seen.push(health(port));
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        });
        Watch { stop, thread }
    }

    /// Stops the loop; asserts that no 502 came after the first 200; the counts by status.
    fn finish(self, during: &str) -> BTreeMap<u16, usize> {
        self.stop.store(true, Ordering::SeqCst);
        let seen = self.thread.join().unwrap();
        let first = seen.iter().position(|s| *s == 200).expect("a 200 at all");
        let mut counts = BTreeMap::new();
        for s in &seen {
            *counts.entry(*s).or_insert(0) += 1;
        }
        eprintln!("requests through nginx during {during}: {counts:?}");
        assert!(
            !seen[first..].contains(&502),
            "a 502 after the first 200 during {during}: {counts:?}"
        );
        counts
    }
}

async fn deploy(env: &StageEnv, params: Value) -> Value {
    let mut http = env.daemon.http().await;
    http.call("stage.deploy", params).await.unwrap()
}

async fn stage_git(env: &StageEnv) -> Value {
    let mut http = env.daemon.http().await;
    let r = http
        .call("stage.get", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    r["result"]["git"].clone()
}

/// Leftovers of a deploy: the snapshot database, the kept code.
fn assert_clean(env: &StageEnv) {
    let dbs = env.psql(
        "acme",
        "qa",
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'qa\\_\\_%'",
    );
    assert_eq!(dbs, "0", "a snapshot database is left");
    let root = env.data("acme", "qa");
    for left in [
        ".deploy-prev",
        ".deploy-failed",
        ".deploy-new",
        ".deploy-trash",
    ] {
        assert!(!root.join(left).exists(), "{left} is left");
    }
}

const NOTE_SQL: &str = "CREATE TABLE IF NOT EXISTS stage_note (id serial PRIMARY KEY, note text); \
INSERT INTO stage_note (note) VALUES ('installed');";

#[tokio::test]
async fn deploys_install_modules_and_failed_updates_roll_back() {
    let test = "deploys_install_modules_and_failed_updates_roll_back";
    let Some(env) = StageEnv::with_stages(test, &overrides(), None, &["qa"]).await else {
        return;
    };
    wait_serving(&env);
    let repo = Repo::new();
    let addons = env.data("acme", "qa").join("addons");

    // (a) A commit that adds a module: installed, its data written, nginx never 502.
    let c1 = repo.commit(
        "Add stage_note",
        &files(&[module("stage_note", true, NOTE_SQL)]),
    );
    let watch = Watch::start(env.nginx.http_port);
    let params = json!({"stage": "acme/qa", "repository": repo.url(), "branch": "17.0"});
    let r = deploy(&env, params.clone()).await;
    assert!(r.get("error").is_none(), "{r}");
    watch.finish("a deploy that installs a module");
    let state = "SELECT state FROM ir_module_module WHERE name = 'stage_note'";
    assert_eq!(env.psql("acme", "qa", state), "installed");
    assert_eq!(
        env.psql("acme", "qa", "SELECT string_agg(note, ',') FROM stage_note"),
        "installed"
    );
    assert_eq!(stage_git(&env).await["last_commit"], c1.as_str());
    assert_clean(&env);
    let code_v1 = tree(&addons);
    assert!(
        code_v1.contains_key("stage_note/__manifest__.py"),
        "{code_v1:?}"
    );

    // (b) A commit whose update fails: a module that cannot be installed beside one whose
    // data the stand-in commits before it exits 1.
    let failing = "INSERT INTO stage_note (note) VALUES ('written by the failed update');";
    let c2 = repo.commit(
        "Add note_two and broken",
        &files(&[
            module("note_two", true, failing),
            module("broken", false, "SELECT 1;"),
        ]),
    );
    assert_ne!(c1, c2);
    let watch = Watch::start(env.nginx.http_port);
    let r = deploy(&env, params.clone()).await;
    let counts = watch.finish("a deploy whose update fails");
    let (code, data) = rpc_error(&r);
    assert_eq!(code, -32014, "{r}");
    assert_eq!(data["kind"], "deploy_failed");
    let tail = data["log_tail"].as_array().expect("log_tail");
    assert!(!tail.is_empty() && tail.len() <= 50, "{data}");
    assert!(
        tail.iter()
            .any(|l| l.as_str().unwrap().contains("not installable")),
        "{data}"
    );
    assert!(r["error"]["message"].as_str().unwrap().contains(&c1), "{r}");
    assert_eq!(tree(&addons), code_v1, "the old commit's addons are back");
    assert_eq!(
        env.psql("acme", "qa", "SELECT string_agg(note, ',') FROM stage_note"),
        "installed",
        "the failed update's row is gone"
    );
    let known = "SELECT count(*) FROM ir_module_module WHERE name IN ('note_two', 'broken')";
    assert_eq!(env.psql("acme", "qa", known), "0");
    assert_eq!(env.psql("acme", "qa", state), "installed");
    let git = stage_git(&env).await;
    assert_eq!(git["last_commit"], c1.as_str(), "{git}");
    assert_eq!(health(env.nginx.http_port), 200, "the stage keeps serving");
    assert!(counts.get(&200).copied().unwrap_or(0) > 0);
    assert_clean(&env);
    // The app runs as the old commit's: the database's owner is still the app's role.
    let owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'qa'";
    assert_eq!(env.psql("acme", "qa", owner), "odoo_app");

    // (d) A module the commit does not have: refused, nothing changed.
    let app = env.container("acme", "qa", "app");
    let started = inspect(&app, "{{.State.StartedAt}}");
    let mut bad = params.clone();
    bad["update"] = json!(["nope"]);
    let r = deploy(&env, bad).await;
    let (code, data) = rpc_error(&r);
    assert_eq!(
        (code, data["field"].as_str()),
        (-32602, Some("update")),
        "{r}"
    );
    for odd in [json!(["../x"]), json!("everything"), json!([1])] {
        let mut bad = params.clone();
        bad["update"] = odd;
        let (code, data) = rpc_error(&deploy(&env, bad).await);
        assert_eq!((code, data["field"].as_str()), (-32602, Some("update")));
    }
    let url = repo.url();
    let out = env.daemon.ctl(&[
        "stage",
        "deploy",
        "acme/qa",
        "--repo",
        &url,
        "--branch",
        "17.0",
        "--update",
        "stage_note,nope",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("update: "), "{err}");
    assert!(err.contains("\"nope\""), "{err}");
    assert_eq!(tree(&addons), code_v1);
    assert_eq!(stage_git(&env).await["last_commit"], c1.as_str());
    assert_eq!(inspect(&app, "{{.State.StartedAt}}"), started, "no restart");
    assert_clean(&env);
}

/// The daemon dies after the update ran, before the app restarts: its next start puts back the
/// old code and the snapshot, and starts the app.
#[tokio::test]
async fn a_deploy_interrupted_by_a_crash_is_rolled_back_at_start_up() {
    let test = "a_deploy_interrupted_by_a_crash_is_rolled_back_at_start_up";
    let Some(mut env) = StageEnv::with_stages(test, &overrides(), None, &["qa"]).await else {
        return;
    };
    wait_serving(&env);
    let repo = Repo::new();
    let addons = env.data("acme", "qa").join("addons");
    let before = tree(&addons);
    repo.commit(
        "Add stage_note",
        &files(&[module("stage_note", true, NOTE_SQL)]),
    );
    let mut child = restart_with_failpoint(&mut env, "deploy.restart");
    let params = json!({"stage": "acme/qa", "repository": repo.url(), "branch": "17.0"});
    let mut h = stagelet::api::client::HttpClient::connect(&env.daemon.socket)
        .await
        .unwrap();
    assert!(h.call("stage.deploy", params).await.is_err(), "it died");
    assert!(!child.wait().unwrap().success());
    // The update ran and wrote before the crash.
    let installed = "SELECT count(*) FROM ir_module_module WHERE name = 'stage_note'";
    assert_eq!(env.psql("acme", "qa", installed), "1");

    env.daemon.spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut http = env.daemon.http().await;
        let got = http
            .call("stage.get", json!({"stage": "acme/qa"}))
            .await
            .unwrap();
        if got["result"]["step"].is_null() && health(env.nginx.http_port) == 200 {
            assert!(got["result"]["git"]["last_commit"].is_null(), "{got}");
            break;
        }
        assert!(Instant::now() < deadline, "never rolled back: {got}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        env.psql("acme", "qa", installed),
        "0",
        "the snapshot is back"
    );
    let table = "SELECT count(*) FROM pg_tables WHERE tablename = 'stage_note'";
    assert_eq!(env.psql("acme", "qa", table), "0");
    assert_eq!(tree(&addons), before, "the old code is back");
    assert_clean(&env);
}
