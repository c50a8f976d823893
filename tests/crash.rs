//! Faults: the daemon killed with SIGKILL at each step of a create and of a cancel, and an
//! engine that comes back. Nothing may be orphaned; every stage ends consistent.

mod common;

use common::stage_setup::{
    create_qa, qa_params, restart_with_failpoint, subscribe, wait_state, CREATE_STEPS,
};
use common::{docker, require_engine, StageEnv};
use serde_json::json;
use std::time::{Duration, Instant};

fn labelled(env: &StageEnv) -> String {
    let label = format!("label={}.stage", env.daemon.label_prefix);
    docker(&["ps", "-aq", "--filter", &label])
        + &docker(&["network", "ls", "-q", "--filter", &label])
}

#[tokio::test]
async fn sigkill_at_each_create_step_then_restart_rolls_back() {
    if !require_engine("sigkill_at_each_create_step_then_restart_rolls_back").await {
        return;
    }
    let mut env = StageEnv::start("");
    let mut http = env.daemon.http().await;
    subscribe(&mut http, "acme", 1).await;
    for step in CREATE_STEPS {
        // Restart the daemon with the failpoint armed, then create: it dies at that step.
        let mut child = restart_with_failpoint(&mut env, &format!("create.{step}"));
        let sock = env.daemon.socket.clone();
        let mut h = stagelet::api::client::HttpClient::connect(&sock)
            .await
            .unwrap();
        let params = qa_params("acme", "qa");
        assert!(
            h.call("stage.create", params).await.is_err(),
            "the daemon should have died at {step}"
        );
        let status = child.wait().unwrap();
        assert!(!status.success(), "{step}: {status}");
        // Start it again: the interrupted create is rolled back completely.
        env.daemon.spawn();
        http = env.daemon.http().await;
        let got = wait_state(&mut http, "acme/qa", "cancelled").await;
        assert!(
            got["result"]["last_error"]
                .as_str()
                .unwrap()
                .contains("interrupted"),
            "{step}: {got}"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !labelled(&env).trim().is_empty() {
            assert!(
                Instant::now() < deadline,
                "{step}: left behind {}",
                labelled(&env)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !env.daemon.state_dir().join("data/acme/qa").exists(),
            "{step}: data left"
        );
        assert!(
            !env.nginx.sites_dir.join("acme--qa.conf").exists(),
            "{step}: nginx file left"
        );
    }
    // And a create without a failpoint still works afterwards.
    let resp = create_qa(&mut http, "acme", "qa").await;
    assert_eq!(resp["result"]["state"], "running", "{resp}");
}

#[tokio::test]
async fn sigkill_during_cancel_then_restart_finishes_it() {
    if !require_engine("sigkill_during_cancel_then_restart_finishes_it").await {
        return;
    }
    let mut env = StageEnv::start("");
    let mut http = env.daemon.http().await;
    subscribe(&mut http, "acme", 1).await;
    let resp = create_qa(&mut http, "acme", "qa").await;
    assert_eq!(resp["result"]["state"], "running", "{resp}");
    let mut child = restart_with_failpoint(&mut env, "cancel.teardown");
    let mut h = stagelet::api::client::HttpClient::connect(&env.daemon.socket)
        .await
        .unwrap();
    assert!(h
        .call("stage.cancel", json!({"stage": "acme/qa"}))
        .await
        .is_err());
    assert!(!child.wait().unwrap().success());
    env.daemon.spawn();
    http = env.daemon.http().await;
    wait_state(&mut http, "acme/qa", "cancelled").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !labelled(&env).trim().is_empty() || env.daemon.state_dir().join("data/acme/qa").exists()
    {
        assert!(Instant::now() < deadline, "left behind: {}", labelled(&env));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!env.nginx.sites_dir.join("acme--qa.conf").exists());
}

#[tokio::test]
async fn the_engine_coming_back_needs_no_restart_and_foreign_containers_are_untouched() {
    if !require_engine("the_engine_coming_back_needs_no_restart").await {
        return;
    }
    // The endpoint is a path that does not exist yet; linking it to the engine "starts" it.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("docker.sock");
    // A container without this daemon's labels, which reconcile must leave alone.
    let foreign = format!("foreign-{}", std::process::id());
    docker(&[
        "run",
        "-d",
        "--name",
        &foreign,
        "--label",
        "io.stagelet.stage=not-ours",
        "stagelet-test/app:1",
    ]);
    let env = StageEnv::start(&format!(
        "[docker]\nendpoint = \"unix://{}\"\n[nginx]\nenabled = false\n",
        link.display()
    ));
    let mut http = env.daemon.http().await;
    subscribe(&mut http, "acme", 1).await;
    let params = qa_params("acme", "qa");
    let resp = http.call("stage.create", params.clone()).await.unwrap();
    assert_eq!(resp["error"]["code"], -32010, "{resp}");
    std::os::unix::fs::symlink("/var/run/docker.sock", &link).unwrap();
    let resp = http.call("stage.create", params).await.unwrap();
    assert_eq!(resp["result"]["state"], "running", "{resp}");
    // Reconcile has run (scheduler every second) and left the foreign container alone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(common::inspect(&foreign, "{{.State.Running}}"), "true");
    docker(&["rm", "-f", &foreign]);
}
