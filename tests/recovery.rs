//! A stage recovers what was removed behind the agent's back, and a db that cannot run fails
//! its create at once instead of at the end of the wait.
mod common;

use common::stage_setup::{assert_last_error_says, create_qa, expect_state, subscribe, with_qa};
use common::{docker, inspect, require_engine, rpc_error, StageEnv};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn start_makes_again_an_app_removed_outside_the_agent() {
    let Some(env) = with_qa("start_makes_again_an_app_removed_outside_the_agent").await else {
        return;
    };
    let mut http = env.daemon.http().await;
    expect_state(&mut http, "stage.stop", "acme/qa", "stopped").await;
    let app = env.container("acme", "qa", "app");
    let old = inspect(&app, "{{.Id}}");
    docker(&["rm", "-f", &app]);
    assert_eq!(inspect(&app, "{{.Id}}"), "");
    expect_state(&mut http, "stage.start", "acme/qa", "running").await;
    assert_eq!(inspect(&app, "{{.State.Running}}"), "true");
    assert_ne!(inspect(&app, "{{.Id}}"), old);
    assert_eq!(
        env.nginx.get("qa.acme.example.com", "/"),
        (200, "stagelet test app acme-qa\n".into())
    );
    // And a restart after a prune-like removal of the stopped db as well.
    expect_state(&mut http, "stage.stop", "acme/qa", "stopped").await;
    docker(&["rm", "-f", &env.container("acme", "qa", "db")]);
    expect_state(&mut http, "stage.restart", "acme/qa", "running").await;
    assert_eq!(env.psql("acme", "qa", "select 1"), "1");
}

#[tokio::test]
async fn a_failed_start_stops_the_db_and_records_why() {
    let Some(env) = with_qa("a_failed_start_stops_the_db_and_records_why").await else {
        return;
    };
    let mut http = env.daemon.http().await;
    expect_state(&mut http, "stage.stop", "acme/qa", "stopped").await;
    // Something else holds the app's name: it cannot be made again, and is not taken over.
    let app = env.container("acme", "qa", "app");
    docker(&["rm", "-f", &app]);
    docker(&["create", "--name", &app, "stagelet-test/app:1"]);
    let r = http
        .call("stage.start", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    let (_, data) = rpc_error(&r);
    assert_eq!(data["kind"], "docker", "{r}");
    let got = expect_state(&mut http, "stage.get", "acme/qa", "stopped").await;
    assert!(
        got["result"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("another stage"),
        "{got}"
    );
    assert_eq!(
        inspect(&env.container("acme", "qa", "db"), "{{.State.Running}}"),
        "false"
    );
    assert_eq!(inspect(&app, "{{.State.Status}}"), "created");
    docker(&["rm", "-f", &app]);
}

#[tokio::test]
async fn a_db_that_exits_at_once_fails_the_create_at_once() {
    if !require_engine("a_db_that_exits_at_once_fails_the_create_at_once").await {
        return;
    }
    // The test postgres image's entrypoint exits at once, with a message, without its PGBIN.
    let env = StageEnv::start("[profiles.test.db.env]\nPGBIN = \"\"\n");
    let mut http = env.daemon.http().await;
    subscribe(&mut http, "acme", 1).await;
    let began = Instant::now();
    let r = create_qa(&mut http, "acme", "qa").await;
    let took = began.elapsed();
    let (_, data) = rpc_error(&r);
    assert_eq!(data["kind"], "docker", "{r}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    eprintln!("a db that exits at once failed the create after {took:?}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("the image sets PGBIN"), "{message}");
    let got = expect_state(&mut http, "stage.get", "acme/qa", "cancelled").await;
    assert_last_error_says(&got, "the image sets PGBIN");
    let label = format!("label={}.stage", env.daemon.label_prefix);
    assert_eq!(docker(&["ps", "-aq", "--filter", &label]).trim(), "");
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", &label]).trim(),
        ""
    );
    assert!(!env.data("acme", "qa").exists());
}

#[tokio::test]
async fn start_never_makes_a_second_db_beside_one_under_another_name() {
    let Some(env) = with_qa("start_never_makes_a_second_db_beside_one_under_another_name").await
    else {
        return;
    };
    let mut http = env.daemon.http().await;
    expect_state(&mut http, "stage.stop", "acme/qa", "stopped").await;
    // As an older version named it, before the start-up adoption renamed it: same labels,
    // same data directory mounted.
    let db = env.container("acme", "qa", "db");
    let aside = format!("{db}-aside");
    docker(&["rename", &db, &aside]);
    let r = http
        .call("stage.start", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    let (code, _) = rpc_error(&r);
    assert_eq!(code, -32010, "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&aside), "{msg}");
    // No second PostgreSQL on the same data directory.
    assert_eq!(inspect(&db, "{{.Id}}"), "", "a second db was made");
    assert_eq!(inspect(&aside, "{{.State.Running}}"), "false");
    docker(&["rename", &aside, &db]);
    expect_state(&mut http, "stage.start", "acme/qa", "running").await;
}
