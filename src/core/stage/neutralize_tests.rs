//! The copy steps against recording fakes: which container or SQL ran, on which database, and
//! what a failure leaves; the SQL expansion's quoting.

use super::*;
use crate::core::fakes::{self, CopyDb, CopyEngine};
use crate::core::settings::odoo_profile;
use crate::core::stage::model::StageState;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn stages(engine: &Arc<CopyEngine>, db: &Arc<CopyDb>) -> Stages {
    let mut deps = fakes::deps(
        fakes::store_with(&[]),
        Arc::new(fakes::SlowMeter::default()),
    );
    deps.engine = engine.clone();
    deps.db = db.clone();
    Stages::load(deps).unwrap()
}

fn events(rx: &mut tokio::sync::broadcast::Receiver<super::super::events::Event>) -> Vec<String> {
    let mut out = vec![];
    while let Ok(e) = rx.try_recv() {
        out.push(format!("{}.{}: {}", e.operation, e.step, e.message));
    }
    out
}

fn qa() -> Stage {
    fakes::stage("acme", "qa", StageState::Build)
}

#[tokio::test]
async fn the_command_runs_on_the_copy_then_the_check_proves_it() {
    let (engine, db) = (Arc::default(), Arc::default());
    let s = stages(&engine, &db);
    let mut rx = s.events.subscribe();
    let (config, profile, mut stage) = (Settings::default(), odoo_profile(), qa());
    s.neutralize(
        &config,
        &profile,
        &mut stage,
        "restore_backup",
        "qa__restore",
    )
    .await
    .unwrap();
    let runs = engine.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0].name.ends_with("acme--qa--neutralize"),
        "{}",
        runs[0].name
    );
    // The side database a restore renames in later, and the app's configuration file.
    assert_eq!(
        runs[0].command,
        [
            "odoo",
            "neutralize",
            "-c",
            "/etc/odoo/stagelet.conf",
            "-d",
            "qa__restore"
        ]
    );
    assert_eq!(runs[0].files[0].1, "/etc/odoo/stagelet.conf");
    assert!(!runs[0].restart);
    // The command replaces the SQL; the check runs on the same database.
    assert!(db.executed.lock().unwrap().is_empty());
    assert_eq!(
        *db.counted.lock().unwrap(),
        [("qa__restore".to_string(), profile.neutralize_check.clone())]
    );
    assert!(stage.neutralized);
    let seen = events(&mut rx);
    assert!(
        seen[0].starts_with("restore_backup.neutralize: odoo neutralize -c {config} -d {db_name}"),
        "{seen:?}"
    );
    assert_eq!(seen[1], "restore_backup.neutralize_check: 0");
}

#[tokio::test]
async fn a_failing_command_or_check_is_an_error_and_no_mark() {
    let (engine, db) = (Arc::<CopyEngine>::default(), Arc::<CopyDb>::default());
    let s = stages(&engine, &db);
    let (config, mut profile, mut stage) = (Settings::default(), odoo_profile(), qa());
    engine.exit.store(1, Ordering::SeqCst);
    let e = s
        .neutralize(&config, &profile, &mut stage, "create", "qa")
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("neutralize_command exited with 1: last line"),
        "{msg}"
    );
    assert!(matches!(e, Error::Database(_)));
    assert!(
        db.counted.lock().unwrap().is_empty(),
        "no check after a failed command"
    );
    assert!(!stage.neutralized);

    // Without a command the SQL runs; a check that finds 2 left fails the copy.
    profile.neutralize_command = vec![];
    db.left.store(2, Ordering::SeqCst);
    let e = s
        .neutralize(&config, &profile, &mut stage, "create", "qa")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("neutralize_check returned 2, not 0"),
        "{e}"
    );
    assert_eq!(
        *db.executed.lock().unwrap(),
        [("qa".to_string(), profile.neutralize_sql.clone())]
    );
    assert!(!stage.neutralized);
    db.left.store(0, Ordering::SeqCst);
    s.neutralize(&config, &profile, &mut stage, "create", "qa")
        .await
        .unwrap();
    assert!(stage.neutralized);
}

#[tokio::test]
async fn a_profile_without_a_way_to_neutralise_leaves_the_mark_off() {
    let (engine, db) = (Arc::<CopyEngine>::default(), Arc::<CopyDb>::default());
    let s = stages(&engine, &db);
    let (config, mut profile, mut stage) = (Settings::default(), odoo_profile(), qa());
    profile.neutralize_command = vec![];
    profile.neutralize_sql = String::new();
    s.neutralize(&config, &profile, &mut stage, "create", "qa")
        .await
        .unwrap();
    assert!(!stage.neutralized);
    assert!(engine.runs.lock().unwrap().is_empty());
    assert!(db.counted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn on_copy_sql_gets_the_stage_url() {
    let (engine, db) = (Arc::<CopyEngine>::default(), Arc::<CopyDb>::default());
    let s = stages(&engine, &db);
    let (mut config, mut profile, stage) = (Settings::default(), odoo_profile(), qa());
    config.nginx.enabled = true;
    config.tls.mode = TlsMode::Off;
    s.on_copy(&config, &profile, &stage, "create", "qa")
        .await
        .unwrap();
    config.tls.mode = TlsMode::Acme;
    s.on_copy(&config, &profile, &stage, "create", "qa")
        .await
        .unwrap();
    let ran = db.executed.lock().unwrap().clone();
    assert_eq!(ran.len(), 2);
    assert_eq!(ran[0].0, "qa");
    assert!(
        ran[0].1.contains("'http://qa.acme.example.com'"),
        "{}",
        ran[0].1
    );
    assert!(
        ran[1].1.contains("'https://qa.acme.example.com'"),
        "{}",
        ran[1].1
    );
    assert!(ran[0].1.contains("'database.uuid', 'database.secret'"));
    profile.on_copy_sql = " ".into();
    s.on_copy(&config, &profile, &stage, "create", "qa")
        .await
        .unwrap();
    assert_eq!(db.executed.lock().unwrap().len(), 2, "nothing to run");
}

#[test]
fn the_url_is_https_only_where_nginx_serves_tls() {
    let (mut config, stage) = (Settings::default(), qa());
    for (enabled, mode, url) in [
        (true, TlsMode::Off, "http://qa.acme.example.com"),
        (true, TlsMode::Files, "https://qa.acme.example.com"),
        (true, TlsMode::Acme, "https://qa.acme.example.com"),
        (false, TlsMode::Files, "http://qa.acme.example.com"),
    ] {
        (config.nginx.enabled, config.tls.mode) = (enabled, mode);
        assert_eq!(base_url(&config, &stage), url, "{enabled} {mode:?}");
    }
}

/// The text of `sql` outside its `'...'` literals (`''` is a quote inside one).
fn outside_literals(sql: &str) -> String {
    let (mut out, mut inside, mut chars) = (String::new(), false, sql.chars().peekable());
    while let Some(c) = chars.next() {
        match (inside, c) {
            (false, '\'') => inside = true,
            (true, '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
            }
            (true, '\'') => inside = false,
            (false, c) => out.push(c),
            (true, _) => {}
        }
    }
    assert!(!inside, "an unterminated literal in {sql}");
    out
}

#[test]
fn no_value_leaves_its_literal() {
    let (profile, stage) = (odoo_profile(), qa());
    let hostile = "http://x'); DROP TABLE res_users; --";
    let sql = expand_sql(&profile.on_copy_sql, &stage, &profile, hostile);
    assert_eq!(
        outside_literals(&sql),
        outside_literals(&profile.on_copy_sql)
    );
    assert!(
        sql.contains("'http://x''); DROP TABLE res_users; --'"),
        "{sql}"
    );
    // Domains are checked before they get here: a quote is no part of one.
    assert!(crate::core::names::Domain::parse("x'.example.com").is_err());
    // One pass: a value is not expanded again; unknown braces and passwords stay as written.
    let t = "'{base_url}' '{1,2}' {db_password} '{db_name}' {subscription}";
    assert_eq!(
        expand_sql(t, &stage, &profile, "{db_name}"),
        "'{db_name}' '{1,2}' {db_password} 'qa' acme"
    );
}
