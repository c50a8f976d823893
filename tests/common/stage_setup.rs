//! The steps stage tests repeat: one call, a subscription, a qa stage, a state to reach or
//! wait for, a daemon restarted to die at a failpoint, and merged parameters.

use super::StageEnv;
use jsonrpsee::async_client::Client;
use jsonrpsee::core::ClientError;
use serde_json::{json, Value};
use stagelet::api::client::HttpClient;
use stagelet::api::rpc::StageApiClient;
use stagelet::core::stage::model::StageView;
use std::time::{Duration, Instant};

/// The steps of a create, in order, as its failpoints name them.
pub const CREATE_STEPS: [&str; 7] = [
    "directories",
    "network",
    "db",
    "database",
    "init",
    "app",
    "nginx",
];

/// When an engine answers: a daemon with the test profile, subscription `acme` and its running
/// qa stage `acme/qa` at `qa.acme.example.com`.
pub async fn with_qa(test: &str) -> Option<StageEnv> {
    StageEnv::with_stages(test, "", None, &["qa"]).await
}

/// One call and its whole response (result or error).
pub async fn call(http: &mut HttpClient, method: &str, params: Value) -> Value {
    http.call(method, params).await.unwrap()
}

/// `subscription.create` of `id` with room for `stage_limit` stages; the response.
pub async fn subscribe(http: &mut HttpClient, id: &str, stage_limit: u32) -> Value {
    call(
        http,
        "subscription.create",
        json!({"id": id, "stage_limit": stage_limit}),
    )
    .await
}

/// The params of a qa stage `sub/name` at `<name>.<sub>.example.com`.
pub fn qa_params(sub: &str, name: &str) -> Value {
    let domain = format!("{name}.{sub}.example.com");
    json!({"subscription": sub, "name": name, "type": "qa", "domain": domain})
}

/// `stage.create` of a qa stage `sub/name` at `<name>.<sub>.example.com`; the response.
pub async fn create_qa(http: &mut HttpClient, sub: &str, name: &str) -> Value {
    call(http, "stage.create", qa_params(sub, name)).await
}

/// Calls `method` on `stage` and asserts the stage it answers is in `state`; the response.
pub async fn expect_state(http: &mut HttpClient, method: &str, stage: &str, state: &str) -> Value {
    let r = call(http, method, json!({"stage": stage})).await;
    assert_eq!(r["result"]["state"], state, "{r}");
    r
}

/// Polls `stage.get` until the stage is in `state` (at most 30 s); that response.
pub async fn wait_state(http: &mut HttpClient, stage: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = call(http, "stage.get", json!({"stage": stage})).await;
        if got["result"]["state"] == state {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{stage} never became {state}: {got}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills the daemon and starts it again with `STAGELET_FAILPOINT` armed.
pub fn restart_with_failpoint(env: &mut StageEnv, failpoint: &str) -> std::process::Child {
    env.daemon.kill9();
    let mut cmd = env.daemon.command();
    cmd.env("STAGELET_FAILPOINT", failpoint);
    let child = cmd.spawn().unwrap();
    super::wait_for_socket(&env.daemon.socket);
    child
}

/// `base` (an object) with the keys of `extra` (an object) set in it.
pub fn with_extra(mut base: Value, extra: Value) -> Value {
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    base
}

/// The first number `du` printed (its total).
pub fn du_total(stdout: &[u8]) -> u64 {
    String::from_utf8_lossy(stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `stage.create` through the typed client of `sub/name` of `stage_type` at
/// `<name>.<sub>.example.com`, without options.
pub async fn create_typed(
    c: &Client,
    sub: &str,
    name: &str,
    stage_type: &str,
) -> Result<StageView, ClientError> {
    StageApiClient::create(
        c,
        sub.into(),
        name.into(),
        stage_type.into(),
        format!("{name}.{sub}.example.com"),
        None,
        None,
        None,
        None,
    )
    .await
}

/// The daemon's peak resident memory (VmHWM) in KiB.
pub fn peak_kib(env: &StageEnv) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", env.daemon.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Asserts that the error message of response `r` contains `part`.
pub fn assert_error_says(r: &Value, part: &str) {
    assert!(
        r["error"]["message"].as_str().unwrap().contains(part),
        "{r}"
    );
}

/// Asserts that the `last_error` of the stage in response `r` contains `part`.
pub fn assert_last_error_says(r: &Value, part: &str) {
    assert!(
        r["result"]["last_error"].as_str().unwrap().contains(part),
        "{r}"
    );
}
