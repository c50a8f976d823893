//! The admin password's checks and decisions, and its flow through create and
//! set_admin_password over fakes. Each flow test hashes at most twice: 600,000 rounds take
//! seconds in a debug build.

use super::*;
use crate::core::fakes;
use crate::core::stage::model::StageState;
use crate::core::stage::NewStage;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn secret(s: &str) -> Option<Secret> {
    Some(Secret::new(s))
}

fn field_of(e: Error) -> String {
    match e {
        Error::InvalidParams { field, .. } => field,
        other => panic!("not invalid_params: {other}"),
    }
}

fn without_admin_password() -> Settings {
    let mut config = Settings::default();
    config.profiles.get_mut("odoo").unwrap().admin_password = None;
    config
}

#[test]
fn short_passwords_and_control_characters_are_refused_without_quoting_them() {
    for bad in [
        "elevenchars",
        "",
        "ééééééééééé", // 11 characters, 22 bytes: characters count
        "twelve chars\nmore",
        "tab\there-in-it",
        "a-carriage-return\r",
        "delete\u{7f}character",
    ] {
        let e = check("admin_password", &Secret::new(bad)).unwrap_err();
        if !bad.is_empty() {
            assert!(!e.to_string().contains(bad), "{e} quotes the password");
        }
        assert_eq!(field_of(e), "admin_password", "{bad:?}");
    }
    for good in [
        "twelve-chars",
        "a long pass phrase with spaces",
        "ünïcödé-ok-12",
    ] {
        assert!(check("password", &Secret::new(good)).is_ok(), "{good:?}");
    }
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let req = NewStage {
        admin_password: secret("correct horse battery staple"),
        ..Default::default()
    };
    let text = format!("{req:?}");
    assert!(!text.contains("correct horse"), "{text}");
    assert!(text.contains("<redacted>"));
}

#[test]
fn create_generates_for_a_fresh_stage_and_leaves_a_clone_alone() {
    let config = Settings::default();
    let odoo = &config.profiles["odoo"];
    let fresh = for_create("odoo", odoo, None, false).unwrap().unwrap();
    assert!(fresh.generated);
    assert_eq!(fresh.password.expose().len(), GENERATED_LEN);
    assert_eq!(fresh.answer().as_deref(), Some(fresh.password.expose()));
    assert!(for_create("odoo", odoo, None, true).unwrap().is_none());
    for clone in [false, true] {
        let given = for_create("odoo", odoo, secret("given-password-1"), clone)
            .unwrap()
            .unwrap();
        assert!(!given.generated);
        assert_eq!(
            given.answer(),
            None,
            "the caller's own password is not echoed"
        );
    }
    let e = for_create("odoo", odoo, secret("short"), false).unwrap_err();
    assert_eq!(field_of(e), "admin_password");
}

#[test]
fn a_profile_without_a_way_refuses_a_given_password_and_sets_nothing_otherwise() {
    let config = without_admin_password();
    let p = &config.profiles["odoo"];
    assert!(for_create("odoo", p, None, false).unwrap().is_none());
    let e = for_create("odoo", p, secret("given-password-1"), false).unwrap_err();
    assert!(
        e.to_string().contains("no way to set an admin password"),
        "{e}"
    );
    assert_eq!(field_of(e), "admin_password");
    assert_eq!(
        field_of(for_reset("odoo", p, secret("given-password-1")).unwrap_err()),
        "password"
    );
    assert_eq!(field_of(for_reset("odoo", p, None).unwrap_err()), "stage");
}

#[test]
fn the_sql_gets_the_hash_and_the_stage_placeholders() {
    let stage = fakes::stage("acme", "qa", StageState::Running);
    let profile = &Settings::default().profiles["odoo"];
    let sql = render_sql(
        "UPDATE res_users SET password = '{password_hash}' /* {db_name} */",
        &stage,
        profile,
        "$pbkdf2-sha512$1$salt$sum",
    );
    assert_eq!(
        sql,
        format!(
            "UPDATE res_users SET password = '$pbkdf2-sha512$1$salt$sum' /* {} */",
            stage.db_name()
        )
    );
}

/// Stages over a running engine and a recording database, holding `existing`.
fn running_stages(existing: &[Stage]) -> (Stages, Arc<fakes::MemStore>, Arc<fakes::RecordingDb>) {
    let store = fakes::store_with(existing);
    let db = Arc::new(fakes::RecordingDb::default());
    let mut deps = fakes::deps(store.clone(), Arc::new(fakes::SlowMeter::default()));
    deps.engine = Arc::new(fakes::UpEngine);
    deps.db = db.clone();
    (Stages::load(deps).unwrap(), store, db)
}

fn stored_text(store: &fakes::MemStore) -> String {
    let recs = store.recs.lock().unwrap();
    recs.values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

fn new_qa(admin_password: Option<Secret>) -> NewStage {
    NewStage {
        name: "qa".into(),
        stage_type: "qa".into(),
        domain: "qa.acme.example.com".into(),
        admin_password,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_fresh_create_sets_a_generated_password_before_the_app_starts() {
    let (stages, store, db) = running_stages(&[]);
    let mut events = stages.events.subscribe();
    let (stage, answered) = stages
        .create(
            &Settings::default(),
            &fakes::subscription("acme"),
            new_qa(None),
            &|| Ok(()),
        )
        .await
        .unwrap();
    assert_eq!(stage.state, StageState::Running);
    let pw = answered.expect("a generated password, answered once");
    assert_eq!(pw.len(), GENERATED_LEN);
    let ran = db.counted();
    assert_eq!(ran.len(), 1, "{ran:?}");
    let (user, on, sql) = &ran[0];
    // The tenant owns res_users (and any trigger on it): never the superuser.
    assert_eq!(user, "odoo_app", "as the app's own role");
    assert_eq!(on, stage.db_name());
    assert!(
        sql.contains("SET password = '$pbkdf2-sha512$600000$"),
        "{sql}"
    );
    assert!(!sql.contains(&pw) && !sql.contains(PLACEHOLDER), "{sql}");
    assert!(!stored_text(&store).contains(&pw), "the record holds it");
    let mut steps = vec![];
    while let Ok(e) = events.try_recv() {
        assert!(!format!("{e:?}").contains(&pw), "an event holds it: {e:?}");
        steps.push(e.step);
    }
    let at = |s: &str| steps.iter().position(|x| x == s).unwrap_or(usize::MAX);
    assert!(at("init") < at("admin_password"), "{steps:?}");
    assert!(at("admin_password") < at("app"), "{steps:?}");
}

#[tokio::test]
async fn a_create_whose_sql_changes_nothing_rolls_back() {
    let (stages, _, db) = running_stages(&[]);
    db.changed.store(0, Ordering::SeqCst);
    let e = stages
        .create(
            &Settings::default(),
            &fakes::subscription("acme"),
            new_qa(secret("given-password-1")),
            &|| Ok(()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Database(_)), "{e}");
    assert!(e.to_string().contains("changed 0 rows"), "{e}");
    let s = stages.find("acme/qa").unwrap();
    assert_eq!(s.state, StageState::Cancelled, "rolled back");
    assert!(s.last_error.unwrap().contains("changed 0 rows"));
}

#[tokio::test]
async fn bad_input_to_create_is_refused_before_anything_runs() {
    let (stages, store, db) = running_stages(&[]);
    for bad in ["elevenchars", "twelve chars\nmore"] {
        let e = stages
            .create(
                &Settings::default(),
                &fakes::subscription("acme"),
                new_qa(secret(bad)),
                &|| Ok(()),
            )
            .await
            .unwrap_err();
        assert_eq!(field_of(e), "admin_password");
    }
    assert!(stages.find("acme/qa").is_err(), "no record was made");
    assert!(store.recs.lock().unwrap().is_empty());
    assert!(db.counted().is_empty());
}

#[tokio::test]
async fn set_admin_password_generates_or_takes_one_and_answers_only_a_generated_one() {
    let running = fakes::stage("acme", "qa", StageState::Running);
    let (stages, store, db) = running_stages(&[running]);
    let mut events = stages.events.subscribe();
    let config = Settings::default();
    let made = stages
        .set_admin_password(&config, "acme/qa", None)
        .await
        .unwrap();
    let pw = made.admin_password.expect("generated, answered");
    assert_eq!(pw.len(), GENERATED_LEN);
    let given = stages
        .set_admin_password(&config, "acme/qa", secret("given-password-1"))
        .await
        .unwrap();
    assert_eq!(given.admin_password, None);
    let ran = db.counted();
    assert_eq!(ran.len(), 2);
    for (_, _, sql) in &ran {
        assert!(sql.contains("'$pbkdf2-sha512$600000$"), "{sql}");
        assert!(!sql.contains(&pw) && !sql.contains("given-password-1"));
    }
    assert_ne!(ran[0].2, ran[1].2, "a new salt each time");
    let text = stored_text(&store);
    assert!(!text.contains(&pw) && !text.contains("given-password-1"));
    let mut done = vec![];
    while let Ok(e) = events.try_recv() {
        let t = format!("{e:?}");
        assert!(!t.contains(&pw) && !t.contains("given-password-1"), "{t}");
        done.push((e.operation, e.message));
    }
    let op = "set_admin_password".to_string();
    assert_eq!(
        done,
        vec![(op.clone(), "generated".into()), (op, "given".into())]
    );
}

#[tokio::test]
async fn set_admin_password_needs_a_running_stage_and_good_input() {
    let stopped = fakes::stage("acme", "off", StageState::Stopped);
    let running = fakes::stage("acme", "qa", StageState::Running);
    let (stages, _, db) = running_stages(&[stopped, running]);
    let config = Settings::default();
    match stages.set_admin_password(&config, "acme/off", None).await {
        Err(Error::InvalidState { state, allowed, .. }) => {
            assert_eq!(state, "stopped");
            assert_eq!(allowed, vec!["running"]);
        }
        other => panic!("{other:?}"),
    }
    for bad in ["elevenchars", "twelve chars\nmore"] {
        let e = stages
            .set_admin_password(&config, "acme/qa", secret(bad))
            .await
            .unwrap_err();
        assert_eq!(field_of(e), "password");
    }
    let config = without_admin_password();
    let e = stages
        .set_admin_password(&config, "acme/qa", None)
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "stage");
    assert!(db.counted().is_empty(), "nothing ran");
}
