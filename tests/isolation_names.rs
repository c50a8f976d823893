//! Tenants whose subscription and stage names join alike (`a-b`/`c` and `a`/`b-c`) get
//! distinct containers and networks; a failed or cancelled create of one never touches the
//! other; start-up neither adopts nor removes a container whose labels name another stage,
//! and moves containers of the older naming (`<prefix><sub>-<name>-<role>`) to the new one.
mod common;

use common::stage_setup::{create_qa, expect_state, qa_params, restart_with_failpoint, wait_state};
use common::{docker, inspect, require_engine, StageEnv};
use serde_json::json;
use std::time::{Duration, Instant};

/// The app answers with `<subscription>/<stage>`, so a reply tells whose app served it.
const WHOSE: &str = r#"
[profiles.test.app.env]
APP_ID = "{subscription}/{stage}"
"#;

/// Subscriptions `a-b` and `a`, and stage `a-b/c` running.
async fn two_tenants(test: &str) -> Option<(StageEnv, stagelet::api::client::HttpClient)> {
    if !require_engine(test).await {
        return None;
    }
    let env = StageEnv::start(WHOSE);
    let mut http = env.daemon.http().await;
    for sub in ["a-b", "a"] {
        let r = http
            .call("subscription.create", json!({"id": sub, "stage_limit": 2}))
            .await
            .unwrap();
        assert!(r.get("result").is_some(), "{r}");
    }
    let r = create_qa(&mut http, "a-b", "c").await;
    assert_eq!(r["result"]["state"], "running", "{r}");
    Some((env, http))
}

async fn state(http: &mut stagelet::api::client::HttpClient, stage: &str) -> serde_json::Value {
    http.call("stage.get", json!({"stage": stage}))
        .await
        .unwrap()["result"]
        .clone()
}

/// `a-b/c` still runs and its own app answers.
fn first_serves(env: &StageEnv) {
    assert_eq!(
        inspect(&env.container("a-b", "c", "app"), "{{.State.Running}}"),
        "true"
    );
    assert_eq!(
        inspect(&env.container("a-b", "c", "db"), "{{.State.Running}}"),
        "true"
    );
    assert_eq!(
        env.nginx.get("c.a-b.example.com", "/"),
        (200, "stagelet test app a-b/c\n".into())
    );
}

/// Start-up reconcile runs beside the socket: waits until it has done `what`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "start-up never did: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn network_of(container: &str) -> String {
    inspect(
        container,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    )
}

#[tokio::test]
async fn stages_whose_names_join_alike_get_their_own_containers_and_networks() {
    let Some((env, mut http)) =
        two_tenants("stages_whose_names_join_alike_get_their_own_containers_and_networks").await
    else {
        return;
    };
    let r = create_qa(&mut http, "a", "b-c").await;
    assert_eq!(r["result"]["state"], "running", "{r}");
    for role in ["app", "db"] {
        let (x, y) = (
            env.container("a-b", "c", role),
            env.container("a", "b-c", role),
        );
        assert_ne!(x, y);
        let (ix, iy) = (inspect(&x, "{{.Id}}"), inspect(&y, "{{.Id}}"));
        assert!(!ix.is_empty() && !iy.is_empty() && ix != iy, "{x} {y}");
    }
    let (nx, ny) = (
        network_of(&env.container("a-b", "c", "app")),
        network_of(&env.container("a", "b-c", "app")),
    );
    assert_ne!(nx, ny);
    first_serves(&env);
    assert_eq!(
        env.nginx.get("b-c.a.example.com", "/"),
        (200, "stagelet test app a/b-c\n".into())
    );
    // Cancelling one leaves the other running and serving.
    expect_state(&mut http, "stage.cancel", "a/b-c", "cancelled").await;
    assert_eq!(inspect(&env.container("a", "b-c", "app"), "{{.Id}}"), "");
    first_serves(&env);
}

#[tokio::test]
async fn a_create_killed_midway_rolls_back_only_its_own_containers() {
    let Some((mut env, _)) =
        two_tenants("a_create_killed_midway_rolls_back_only_its_own_containers").await
    else {
        return;
    };
    // The daemon dies as `a/b-c` reaches its app step; the restart rolls that create back.
    let mut child = restart_with_failpoint(&mut env, "create.app");
    let mut h = stagelet::api::client::HttpClient::connect(&env.daemon.socket)
        .await
        .unwrap();
    let _ = h.call("stage.create", qa_params("a", "b-c")).await;
    assert!(
        !child.wait().unwrap().success(),
        "the failpoint was not hit"
    );
    env.daemon.spawn();
    let mut http = env.daemon.http().await;
    let s = wait_state(&mut http, "a/b-c", "cancelled").await["result"].clone();
    assert!(
        s["last_error"].as_str().unwrap().contains("interrupted"),
        "{s}"
    );
    assert_eq!(inspect(&env.container("a", "b-c", "db"), "{{.Id}}"), "");
    assert_eq!(state(&mut http, "a-b/c").await["state"], "running");
    first_serves(&env);
}

#[tokio::test]
async fn start_up_gives_a_misnamed_container_back_to_the_stage_its_labels_name() {
    let Some((mut env, mut http)) =
        two_tenants("start_up_gives_a_misnamed_container_back_to_the_stage_its_labels_name").await
    else {
        return;
    };
    let r = create_qa(&mut http, "a", "b-c").await;
    assert_eq!(r["result"]["state"], "running", "{r}");
    let uuid_y = r["result"]["uuid"].as_str().unwrap().to_string();
    let (x_app, y_app) = (
        env.container("a-b", "c", "app"),
        env.container("a", "b-c", "app"),
    );
    let y_id = inspect(&y_app, "{{.Id}}");
    // With the daemon down, a/b-c's app takes the name of a-b/c's app.
    env.daemon.kill9();
    docker(&["rm", "-f", &x_app]);
    docker(&["rename", &y_app, &x_app]);
    env.daemon.spawn();
    let mut http = env.daemon.http().await;
    // Not adopted by a-b/c, not removed: back under its own stage's name, still running.
    let label = format!(
        "{{{{index .Config.Labels \"{}.stage\"}}}}",
        env.daemon.label_prefix
    );
    eventually("renaming a/b-c's app back", || {
        inspect(&y_app, "{{.Id}}") == y_id
    })
    .await;
    assert_eq!(inspect(&y_app, &label), uuid_y);
    assert_eq!(inspect(&y_app, "{{.State.Running}}"), "true");
    assert_eq!(inspect(&x_app, "{{.Id}}"), "");
    assert_eq!(
        env.nginx.get("b-c.a.example.com", "/"),
        (200, "stagelet test app a/b-c\n".into())
    );
    // a-b/c's own app comes back from its record on start.
    expect_state(&mut http, "stage.restart", "a-b/c", "running").await;
    first_serves(&env);
}

#[tokio::test]
async fn start_up_moves_containers_and_network_of_the_older_naming() {
    let Some((mut env, _)) =
        two_tenants("start_up_moves_containers_and_network_of_the_older_naming").await
    else {
        return;
    };
    let prefix = env.container("", "", "");
    let prefix = prefix.trim_end_matches("----");
    let net = network_of(&env.container("a-b", "c", "app"))
        .trim()
        .to_string();
    assert_eq!(net, format!("{prefix}a-b--c"));
    // What the older version made: `<prefix>a-b-c-<role>` on network `<prefix>a-b-c`.
    env.daemon.kill9();
    let old_net = format!("{prefix}a-b-c");
    let labels: serde_json::Value =
        serde_json::from_str(&inspect(&net, "{{json .Labels}}")).unwrap();
    let mut args = vec!["network".to_string(), "create".into()];
    for (k, v) in labels.as_object().unwrap() {
        args.extend(["--label".into(), format!("{k}={}", v.as_str().unwrap())]);
    }
    args.push(old_net.clone());
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for role in ["app", "db"] {
        let name = env.container("a-b", "c", role);
        let mut connect = vec!["network", "connect"];
        if role == "db" {
            connect.extend(["--alias", "db"]);
        }
        docker(&[&connect[..], &[old_net.as_str(), name.as_str()]].concat());
        docker(&["network", "disconnect", &net, &name]);
        docker(&["rename", &name, &format!("{prefix}a-b-c-{role}")]);
    }
    docker(&["network", "rm", &net]);
    assert_eq!(inspect(&net, "{{.Id}}"), "");
    env.daemon.spawn();
    let mut http = env.daemon.http().await;
    // Networks first, then the containers' names.
    eventually("moving to the new names", || {
        inspect(&old_net, "{{.Id}}").is_empty()
            && ["app", "db"]
                .iter()
                .all(|r| !inspect(&env.container("a-b", "c", r), "{{.Id}}").is_empty())
    })
    .await;
    for role in ["app", "db"] {
        let name = env.container("a-b", "c", role);
        assert_eq!(inspect(&name, "{{.State.Running}}"), "true", "{name}");
        assert_eq!(network_of(&name).trim(), net, "{name}");
        assert_eq!(inspect(&format!("{prefix}a-b-c-{role}"), "{{.Id}}"), "");
    }
    assert_eq!(inspect(&old_net, "{{.Id}}"), "");
    first_serves(&env);
    // And it works on: a restart finds the db by its alias on the new network.
    expect_state(&mut http, "stage.restart", "a-b/c", "running").await;
    first_serves(&env);
    expect_state(&mut http, "stage.cancel", "a-b/c", "cancelled").await;
    let label = format!("label={}.stage", env.daemon.label_prefix);
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", &label]).trim(),
        ""
    );
}
