//! The order of a deploy's steps, its rollback and its recovery, against recording fakes.

use super::*;
use crate::core::fakes::deploy::{
    FlakyPorts, LogDb, LogDirs, LogEngine, LogGit, LogProxy, NEW_COMMIT,
};
use crate::core::fakes::{self, deploy::Log};
use crate::core::stage::model::Step;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const OLD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const URL: &str = "https://git.example.com/acme/addons.git";

struct World {
    stages: Stages,
    log: Log,
    engine: Arc<LogEngine>,
    ports: Arc<FlakyPorts>,
}

/// A running stage that has `OLD` of `URL` deployed; the new checkout holds mod_a, mod_b;
/// the diff from OLD touches `changed`.
fn world(changed: Option<&[&str]>, step: Option<Step>) -> World {
    let log = Log::default();
    let mut s = fakes::stage("acme", "qa", StageState::Running);
    s.git.repository = Some(URL.into());
    s.git.last_commit = Some(OLD.into());
    s.step = step;
    // Hashing a master password takes seconds in debug builds.
    s.master_password_hash = Some("$pbkdf2-sha512$1$x$y".into());
    let store = fakes::store_with(&[s]);
    let mut deps = fakes::deps(store, Arc::new(fakes::SlowMeter::default()));
    let engine = Arc::new(LogEngine {
        log: log.clone(),
        ..Default::default()
    });
    let set = |l: &[&str]| l.iter().map(|m| m.to_string()).collect::<BTreeSet<_>>();
    deps.engine = engine.clone();
    deps.db = Arc::new(LogDb {
        log: log.clone(),
        snapshot: (step == Some(Step::DeployUpdate)).into(),
    });
    deps.dirs = Arc::new(LogDirs {
        log: log.clone(),
        modules: set(&["mod_a", "mod_b"]),
        kept: (step == Some(Step::DeployUpdate)).into(),
    });
    deps.git = Arc::new(LogGit {
        log: log.clone(),
        changed: changed.map(set),
    });
    deps.proxy = Arc::new(LogProxy { log: log.clone() });
    let ports = Arc::new(FlakyPorts::default());
    deps.ports = ports.clone();
    World {
        stages: Stages::load(deps).unwrap(),
        log,
        engine,
        ports,
    }
}

fn request(update: UpdateModules) -> DeployRequest {
    DeployRequest::new(URL.into(), "17.0".into(), None, None, None, Some(update))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const APP: &str = "stagelet-acme--qa--app";

/// Snapshot with the app down, then the new code, the update, the app up, the clean-up.
#[tokio::test]
async fn an_update_runs_between_a_snapshot_and_the_restart() {
    let w = world(Some(&["mod_b", "README.md"]), None);
    let config = Settings::default();
    let s = w
        .stages
        .deploy(&config, "acme/qa", request(UpdateModules::Changed))
        .await
        .unwrap();
    assert_eq!(s.git.last_commit.as_deref(), Some(NEW_COMMIT));
    assert_eq!(s.step, None);
    let log = w.log.take();
    let update = log.iter().find(|l| l.starts_with("run ")).unwrap();
    assert!(update.contains("-i mod_b -u mod_b"), "{update}");
    assert!(
        update.starts_with("run stagelet-acme--qa--update "),
        "{update}"
    );
    let want = strings(&[
        "diff aaaa bbbb",
        "site stopped",
        &format!("stop {APP}"),
        "sql DROP DATABASE IF",
        "sql SELECT pg_terminate_backend(pid) FROM",
        "sql CREATE DATABASE \"qa__pre_deploy\"",
        "sql DO $$ BEGIN",
        "lay_out_kept addons",
        update,
        &format!("start {APP}"),
        "site running",
        "sql DROP DATABASE IF",
        "drop_kept",
    ]);
    assert_eq!(log, want);
    let stored = w.stages.find("acme/qa").unwrap();
    assert_eq!(stored.git.last_commit.as_deref(), Some(NEW_COMMIT));
}

/// A failed update: app down, old code back, snapshot back, app up; the old commit stays.
#[tokio::test]
async fn a_failed_update_rolls_code_and_database_back() {
    let w = world(None, None);
    w.engine.update_exit.store(1, Ordering::SeqCst);
    let config = Settings::default();
    let e = w
        .stages
        .deploy(&config, "acme/qa", request(UpdateModules::All))
        .await
        .unwrap_err();
    match &e {
        Error::DeployFailed { message, log_tail } => {
            assert!(message.contains("exited with 1"), "{message}");
            assert!(message.contains(OLD), "{message}");
            assert_eq!(log_tail.last().unwrap(), "ERROR broken: not installable");
            assert_eq!(log_tail.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    let log = w.log.take();
    let run = log.iter().position(|l| l.starts_with("run ")).unwrap();
    assert!(log[run].contains("-i all -u all"), "{}", log[run]);
    let want = strings(&[
        "remove stagelet-acme--qa--update",
        "site stopped",
        &format!("stop {APP}"),
        "put_back addons",
        "sql DROP DATABASE IF",
        "sql SELECT pg_terminate_backend(pid) FROM",
        "sql BEGIN; ALTER DATABASE",
        "sql DROP DATABASE IF",
        &format!("start {APP}"),
        "site running",
    ]);
    assert_eq!(log[run + 1..], want);
    let stored = w.stages.find("acme/qa").unwrap();
    assert_eq!(stored.git.last_commit.as_deref(), Some(OLD));
    assert_eq!(stored.step, None);
}

/// An app that does not come up on the new code is rolled back the same way.
#[tokio::test]
async fn an_app_not_ready_on_the_new_code_is_rolled_back() {
    let w = world(None, None);
    // The new code's app answers nothing and exits.
    w.ports.refused.store(1, Ordering::SeqCst);
    w.engine.unready.store(1, Ordering::SeqCst);
    let config = Settings::default();
    let e = w
        .stages
        .deploy(&config, "acme/qa", request(UpdateModules::Changed))
        .await
        .unwrap_err();
    match &e {
        Error::DeployFailed { message, log_tail } => {
            assert!(message.contains("readiness"), "{message}");
            assert!(!log_tail.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let log = w.log.take();
    assert!(log.contains(&"put_back addons".to_string()), "{log:?}");
    assert!(!log.contains(&"drop_kept".to_string()), "{log:?}");
    assert_eq!(log.last().unwrap(), "site running");
    let stored = w.stages.find("acme/qa").unwrap();
    assert_eq!(stored.git.last_commit.as_deref(), Some(OLD));
}

/// A module the checkout lacks is refused before anything changes.
#[tokio::test]
async fn a_named_module_must_be_in_the_checkout() {
    let w = world(None, None);
    let config = Settings::default();
    let upd = UpdateModules::Named(strings(&["mod_a", "nope"]));
    let e = w
        .stages
        .deploy(&config, "acme/qa", request(upd))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidParams { field, .. } if *field == "update"),
        "{e:?}"
    );
    assert_eq!(w.log.take(), ["drop_scratch"]);
    let upd = UpdateModules::Named(strings(&["../x"]));
    let e = w.stages.deploy(&config, "acme/qa", request(upd)).await;
    assert!(matches!(e, Err(Error::InvalidParams { .. })));
    assert!(w.log.take().is_empty(), "refused before the fetch");
}

/// Nothing of a module changed: the app restarts on the new code, no snapshot, no update.
#[tokio::test]
async fn no_changed_module_means_no_update() {
    let w = world(Some(&["README.md"]), None);
    let config = Settings::default();
    let s = w
        .stages
        .deploy(&config, "acme/qa", request(UpdateModules::Changed))
        .await
        .unwrap();
    assert_eq!(s.git.last_commit.as_deref(), Some(NEW_COMMIT));
    let log = w.log.take();
    assert_eq!(
        log,
        strings(&[
            "diff aaaa bbbb",
            "lay_out addons",
            "site stopped",
            &format!("stop {APP}"),
            &format!("start {APP}"),
            "site running",
        ])
    );
}

/// Without an update command (nor readiness check) the deploy is what it was: no diff, no
/// snapshot, the app restarted behind nginx's back.
#[tokio::test]
async fn a_profile_without_update_command_deploys_as_before() {
    let w = world(Some(&["mod_a"]), None);
    let mut config = Settings::default();
    let profile = config.profiles.get_mut("odoo").unwrap();
    profile.update_command = vec![];
    profile.app.readiness = None;
    w.stages
        .deploy(&config, "acme/qa", request(UpdateModules::Changed))
        .await
        .unwrap();
    assert_eq!(
        w.log.take(),
        strings(&[
            "lay_out addons",
            &format!("stop {APP}"),
            &format!("start {APP}")
        ])
    );
}

/// A crash during the update: start-up puts the old code and the snapshot back.
#[tokio::test]
async fn reconcile_rolls_back_an_interrupted_update() {
    let w = world(None, Some(Step::DeployUpdate));
    let config = Settings::default();
    w.stages.reconcile(&config).await.unwrap();
    let log = w.log.take();
    assert_eq!(
        log[..8],
        strings(&[
            "remove stagelet-acme--qa--update",
            "site stopped",
            &format!("stop {APP}"),
            "put_back addons",
            "sql DROP DATABASE IF",
            "sql SELECT pg_terminate_backend(pid) FROM",
            "sql BEGIN; ALTER DATABASE",
            "sql DROP DATABASE IF",
        ])
    );
    assert_eq!(
        log[8..10],
        strings(&[&format!("start {APP}"), "site running"])
    );
    let stored = w.stages.find("acme/qa").unwrap();
    assert_eq!(
        (stored.step, stored.git.last_commit.as_deref()),
        (None, Some(OLD))
    );
}

/// A crash while the snapshot was taken: it goes, the app starts again.
#[tokio::test]
async fn reconcile_abandons_an_interrupted_snapshot() {
    let w = world(None, Some(Step::DeploySnapshot));
    w.stages.reconcile(&Settings::default()).await.unwrap();
    assert_eq!(
        w.log.take()[..3],
        strings(&[
            "sql DROP DATABASE IF",
            &format!("start {APP}"),
            "site running"
        ])
    );
    assert_eq!(w.stages.find("acme/qa").unwrap().step, None);
}
