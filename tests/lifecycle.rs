//! Operations that always finish or roll back: a client that hangs up at each step of a create,
//! a clone, a backup restore, a deploy and a code-server create cuts nothing off; and the
//! scheduler (its clock driven by the test hook) racing a restore and an end_date extension.
//! The cut lands at a step deterministically: a failpoint pauses the daemon there, the test
//! sees the pause in the daemon's log and hangs up.

mod common;

use common::stage_setup::{subscribe, CREATE_STEPS};
use common::{docker, inspect, require_engine, StageEnv};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const PAUSE_MS: u64 = 1500;

/// The files the daemon's test hooks read: failpoint pauses and the scheduler's clock.
struct Hooks {
    _dir: tempfile::TempDir,
    pause: PathBuf,
    clock: PathBuf,
}

impl Hooks {
    fn new() -> Hooks {
        let dir = tempfile::tempdir().unwrap();
        let (pause, clock) = (dir.path().join("pause"), dir.path().join("clock"));
        std::fs::write(&pause, "").unwrap();
        std::fs::write(&clock, "0").unwrap();
        Hooks {
            _dir: dir,
            pause,
            clock,
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "STAGELET_FAILPOINT_PAUSE".into(),
                self.pause.display().to_string(),
            ),
            (
                "STAGELET_TEST_CLOCK".into(),
                self.clock.display().to_string(),
            ),
        ]
    }

    fn pause_at(&self, point: &str, ms: u64) {
        std::fs::write(&self.pause, format!("{point} {ms}\n")).unwrap();
    }

    fn clear(&self) {
        std::fs::write(&self.pause, "").unwrap();
    }

    fn clock_ahead(&self, secs: u64) {
        std::fs::write(&self.clock, secs.to_string()).unwrap();
    }
}

async fn start(test: &str, overrides: &str) -> Option<(StageEnv, Hooks)> {
    if !require_engine(test).await {
        return None;
    }
    let hooks = Hooks::new();
    let env = StageEnv::start_env(overrides, hooks.env());
    let mut http = env.daemon.http().await;
    let r = subscribe(&mut http, "acme", 5).await;
    assert!(r["result"].is_object(), "{r}");
    Some((env, hooks))
}

async fn call(env: &StageEnv, method: &str, params: Value) -> Value {
    let mut http = env.daemon.http().await;
    http.call(method, params).await.unwrap()
}

async fn ok(env: &StageEnv, method: &str, params: Value) -> Value {
    let r = call(env, method, params.clone()).await;
    assert!(
        r.get("error").is_none(),
        "{method} {params}: {r}\n{}",
        env.daemon.log()
    );
    r["result"].clone()
}

/// How often the daemon has logged a pause at `point`.
fn pauses(env: &StageEnv, point: &str) -> usize {
    // Quoted, so that `create.db` is not `create.database`.
    let quoted = format!("\"{point}\"");
    env.daemon
        .log()
        .lines()
        .filter(|l| l.contains("failpoint: pausing") && l.contains(&quoted))
        .count()
}

/// Sends `method` on a connection of its own and hangs up once the daemon pauses at `point`:
/// a client that gave up (as `curl --max-time`) while the operation is at that step.
async fn cut_off_at(env: &StageEnv, hooks: &Hooks, point: &str, method: &str, params: Value) {
    let seen = pauses(env, point);
    hooks.pause_at(point, PAUSE_MS);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = tokio::net::UnixStream::connect(&env.daemon.socket)
        .await
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while pauses(env, point) == seen {
        assert!(
            Instant::now() < deadline,
            "{method} never reached {point}:\n{}",
            env.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);
    hooks.clear();
}

/// Waits until `stage` is in one of `states` and at no step.
async fn settled(env: &StageEnv, stage: &str, states: &[&str], why: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = call(env, "stage.get", json!({"stage": stage})).await;
        let s = &got["result"];
        if states.iter().any(|st| s["state"] == *st) && s["step"].is_null() {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{why}: {stage} never settled in {states:?}: {got}\n{}",
            env.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns once no operation holds the stage: a no-op update waits for its lock.
async fn idle(env: &StageEnv, stage: &str) -> Value {
    ok(env, "stage.update", json!({"stage": stage})).await
}

fn running(env: &StageEnv, name: &str, role: &str) -> String {
    inspect(&env.container("acme", name, role), "{{.State.Running}}")
}

/// Entries of the stage's data directory that are no part of a stage (scratch of a deploy or
/// a restore, say).
fn strays(env: &StageEnv, name: &str) -> Vec<String> {
    let known = ["db", "filestore", "addons", "git"];
    std::fs::read_dir(env.data("acme", name))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !known.contains(&n.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

/// Cancels `name` and checks nothing of it is left in the engine, on disk or in nginx.
async fn cancel_clean(env: &StageEnv, name: &str) {
    let s = ok(
        env,
        "stage.cancel",
        json!({"stage": format!("acme/{name}")}),
    )
    .await;
    assert_eq!(s["state"], "cancelled", "{s}");
    for role in ["app", "db", "init", "code_server"] {
        let c = env.container("acme", name, role);
        assert_eq!(inspect(&c, "{{.Id}}"), "", "{c} left");
    }
    assert!(!env.data("acme", name).exists(), "data of {name} left");
    assert!(!env
        .nginx
        .sites_dir
        .join(format!("acme--{name}.conf"))
        .exists());
}

fn create_params(name: &str, clone_from: Option<&str>) -> Value {
    json!({
        "subscription": "acme",
        "name": name,
        "type": "qa",
        "domain": format!("{name}.acme.example.com"),
        "clone_from": clone_from,
    })
}

/// A created (or cloned) stage whose client hung up at `step` ends running, whole; or, if a
/// step failed on its own (the engine refusing a port another process took meanwhile), rolled
/// back with its error and nothing left. Never half made, as a dropped create left it.
async fn check_create_cut_at(env: &StageEnv, hooks: &Hooks, step: &str, clone: Option<&str>) {
    let point = format!("create.{step}");
    let params = create_params("qa", clone);
    cut_off_at(env, hooks, &point, "stage.create", params).await;
    let s = settled(env, "acme/qa", &["running", "cancelled"], &point).await;
    if s["state"] == "cancelled" {
        eprintln!("{point}: rolled back: {}", s["last_error"]);
        assert!(s["last_error"].is_string(), "{point}: {s}");
        for role in ["app", "db", "init"] {
            let c = env.container("acme", "qa", role);
            assert_eq!(inspect(&c, "{{.Id}}"), "", "{point}: {c} left");
        }
        assert!(!env.data("acme", "qa").exists(), "{point}: data left");
        return;
    }
    assert!(s["last_error"].is_null(), "{point}: {s}");
    assert_eq!(running(env, "qa", "app"), "true", "{point}");
    assert_eq!(running(env, "qa", "db"), "true", "{point}");
    assert_eq!(
        env.nginx.get("qa.acme.example.com", "/"),
        (200, "stagelet test app acme-qa\n".into()),
        "{point}"
    );
    cancel_clean(env, "qa").await;
}

#[tokio::test]
async fn a_client_cut_off_at_each_create_step_leaves_a_running_stage() {
    let test = "a_client_cut_off_at_each_create_step_leaves_a_running_stage";
    let Some((env, hooks)) = start(test, "").await else {
        return;
    };
    for step in CREATE_STEPS {
        check_create_cut_at(&env, &hooks, step, None).await;
    }
    // Nothing of any of them is left in the engine.
    let label = format!("label={}.stage", env.daemon.label_prefix);
    assert_eq!(docker(&["ps", "-aq", "--filter", &label]).trim(), "");
}

#[tokio::test]
async fn a_client_cut_off_at_each_clone_step_leaves_a_running_copy() {
    let test = "a_client_cut_off_at_each_clone_step_leaves_a_running_copy";
    let Some((env, hooks)) = start(test, "").await else {
        return;
    };
    ok(&env, "stage.create", create_params("src", None)).await;
    env.psql(
        "acme",
        "src",
        "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 100)",
    );
    for step in ["copy", "neutralize", "app"] {
        check_create_cut_at(&env, &hooks, step, Some("acme/src")).await;
    }
    assert_eq!(running(&env, "src", "app"), "true");
}

#[tokio::test]
async fn a_client_cut_off_during_restore_backup_leaves_it_whole() {
    let test = "a_client_cut_off_during_restore_backup_leaves_it_whole";
    let Some((env, hooks)) = start(test, "").await else {
        return;
    };
    ok(&env, "stage.create", create_params("qa", None)).await;
    env.psql(
        "acme",
        "qa",
        "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000)",
    );
    let b = ok(&env, "stage.backup", json!({"stage": "acme/qa"})).await;
    let id = b["id"].as_str().unwrap().to_string();
    for step in ["verified", "database"] {
        env.psql("acme", "qa", "DELETE FROM t");
        ok(&env, "stage.stop", json!({"stage": "acme/qa"})).await;
        let point = format!("restore_backup.{step}");
        let params = json!({"stage": "acme/qa", "backup": id});
        cut_off_at(&env, &hooks, &point, "stage.restore_backup", params).await;
        let s = idle(&env, "acme/qa").await;
        assert_eq!(s["state"], "stopped", "{point}: {s}");
        assert_eq!(
            running(&env, "qa", "db"),
            "false",
            "{point}: db left running"
        );
        assert_eq!(strays(&env, "qa"), Vec::<String>::new(), "{point}");
        ok(&env, "stage.start", json!({"stage": "acme/qa"})).await;
        assert_eq!(
            env.psql("acme", "qa", "SELECT count(*) FROM t"),
            "1000",
            "{point}"
        );
    }
    cancel_clean(&env, "qa").await;
}

/// A work repository on branch main, served over file://.
fn repo(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    for i in 0..200 {
        let d = dir.join(format!("mod_{}", i % 10));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.py")), format!("x = {i}\n")).unwrap();
    }
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "Modules"]);
    format!("file://{}", dir.display())
}

#[tokio::test]
async fn a_client_cut_off_at_each_deploy_step_leaves_it_deployed() {
    let test = "a_client_cut_off_at_each_deploy_step_leaves_it_deployed";
    let git = format!(
        "[git]\nallowed_protocols = [\"https\", \"ssh\", \"file\"]\nfile_roots = [\"{}\"]",
        std::env::temp_dir().canonicalize().unwrap().display()
    );
    let Some((env, hooks)) = start(test, &git).await else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let url = repo(work.path());
    ok(&env, "stage.create", create_params("qa", None)).await;
    for step in ["fetch", "checkout", "addons", "restart"] {
        let point = format!("deploy.{step}");
        let params = json!({"stage": "acme/qa", "repository": url, "branch": "main", "clear_destination": true});
        cut_off_at(&env, &hooks, &point, "stage.deploy", params).await;
        let s = idle(&env, "acme/qa").await;
        assert_eq!(s["state"], "running", "{point}: {s}");
        assert_eq!(s["git"]["commit_count"], 1, "{point}: {s}");
        assert!(
            s["git"]["deployed_at"].is_string(),
            "{point}: not recorded: {s}"
        );
        assert_eq!(strays(&env, "qa"), Vec::<String>::new(), "{point}");
        assert!(env.data("acme", "qa").join("addons/mod_3/f13.py").exists());
        assert_eq!(running(&env, "qa", "app"), "true", "{point}");
    }
    cancel_clean(&env, "qa").await;
}

#[tokio::test]
async fn a_client_cut_off_during_codeserver_create_leaves_it_running() {
    let test = "a_client_cut_off_during_codeserver_create_leaves_it_running";
    let Some((env, hooks)) = start(test, "").await else {
        return;
    };
    ok(&env, "stage.create", create_params("qa", None)).await;
    let params = json!({"stage": "acme/qa", "domain": "code-qa.acme.example.com"});
    cut_off_at(
        &env,
        &hooks,
        "codeserver.create.recorded",
        "codeserver.create",
        params,
    )
    .await;
    let s = idle(&env, "acme/qa").await;
    assert_eq!(s["code_server"]["state"], "running", "{s}");
    assert_eq!(running(&env, "qa", "code_server"), "true");
    cancel_clean(&env, "qa").await;
}

/// A purge due (by the scheduler's clock) while a restore holds the stage: the restored stage
/// keeps its data.
#[tokio::test]
async fn a_restore_racing_a_due_purge_keeps_its_data() {
    let test = "a_restore_racing_a_due_purge_keeps_its_data";
    let Some((env, hooks)) = start(test, "").await else {
        return;
    };
    ok(&env, "stage.create", create_params("qa", None)).await;
    ok(&env, "stage.terminate", json!({"stage": "acme/qa"})).await;
    hooks.pause_at("restore.containers", 4000);
    let restoring = {
        let socket = env.daemon.socket.clone();
        tokio::spawn(async move {
            let mut h = stagelet::api::client::HttpClient::connect(&socket)
                .await
                .unwrap();
            h.call("stage.restore", json!({"stage": "acme/qa"}))
                .await
                .unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while pauses(&env, "restore.containers") == 0 {
        assert!(Instant::now() < deadline, "{}", env.daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Retention of a qa stage is a week: the purge is due from now on.
    hooks.clock_ahead(8 * 86_400);
    let r = restoring.await.unwrap();
    hooks.clear();
    assert_eq!(r["result"]["state"], "stopped", "{r}");
    // Rounds run every second: give the scheduler a few.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = idle(&env, "acme/qa").await;
    assert_eq!(s["state"], "stopped", "{s}");
    assert!(env.data("acme", "qa").join("db/PG_VERSION").exists());
    ok(&env, "stage.start", json!({"stage": "acme/qa"})).await;
    assert_eq!(running(&env, "qa", "app"), "true");
}

/// An expiry due (by the scheduler's clock) while the stage is busy and an extension of its
/// end_date waits for it: the extension wins, the stage keeps running.
#[tokio::test]
async fn an_expiry_racing_an_end_date_extension_keeps_the_stage_running() {
    let test = "an_expiry_racing_an_end_date_extension_keeps_the_stage_running";
    let Some((env, hooks)) = start(test, "").await else {
        return;
    };
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let mut params = create_params("qa", None);
    params["end_date"] = json!(fmt(now + time::Duration::hours(1)));
    ok(&env, "stage.create", params).await;
    // A backup holds the stage; the extension waits behind it.
    hooks.pause_at("backup.started", 4000);
    let socket = env.daemon.socket.clone();
    let backing_up = tokio::spawn(async move {
        let mut h = stagelet::api::client::HttpClient::connect(&socket)
            .await
            .unwrap();
        h.call("stage.backup", json!({"stage": "acme/qa"}))
            .await
            .unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while pauses(&env, "backup.started") == 0 {
        assert!(Instant::now() < deadline, "{}", env.daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let socket = env.daemon.socket.clone();
    let later = fmt(now + time::Duration::days(30));
    let extending = tokio::spawn(async move {
        let mut h = stagelet::api::client::HttpClient::connect(&socket)
            .await
            .unwrap();
        h.call(
            "stage.update",
            json!({"stage": "acme/qa", "end_date": later}),
        )
        .await
        .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two hours on: by the record as it still is, the stage is past its end.
    hooks.clock_ahead(2 * 3600);
    let b = backing_up.await.unwrap();
    hooks.clear();
    assert_eq!(b["result"]["status"], "ok", "{b}");
    let u = extending.await.unwrap();
    assert!(u["result"]["end_date"].is_string(), "{u}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = idle(&env, "acme/qa").await;
    assert_eq!(s["state"], "running", "{s}");
    assert!(s["stop_reason"].is_null(), "{s}");
    assert_eq!(running(&env, "qa", "app"), "true");
}

/// SIGTERM while a create whose client hung up is under way: the daemon lets it finish
/// (within `shutdown_timeout`, 5 s here) before it exits.
#[tokio::test]
async fn shutdown_lets_an_operation_whose_client_left_finish() {
    let test = "shutdown_lets_an_operation_whose_client_left_finish";
    let Some((mut env, hooks)) = start(test, "").await else {
        return;
    };
    cut_off_at(
        &env,
        &hooks,
        "create.app",
        "stage.create",
        create_params("qa", None),
    )
    .await;
    env.daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let status = env.daemon.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}\n{}", env.daemon.log());
    let record = env.daemon.state_dir().join("stages/acme--qa.json");
    let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    assert_eq!(record["state"], "running", "{}", env.daemon.log());
    assert_eq!(running(&env, "qa", "app"), "true");
}
