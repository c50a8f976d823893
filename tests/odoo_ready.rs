//! Readiness before traffic and long polling, on the Odoo stand-in through the real daemon,
//! dockerd and nginx: `/websocket` reaches the long-polling listener when the profile has one
//! (the main port otherwise); clients see no 502 while a stage is created, stopped and
//! started; an app that never gets ready fails its create, which rolls back.

mod common;

use common::odoo::odoo_overrides;
use common::request_loop::{after_first_ok, RequestLoop};
use common::stage_setup::{call, expect_state};
use common::{docker, inspect, require_engine, rpc_error, StageEnv};
use serde_json::{json, Value};
use stagelet::api::client::HttpClient;

/// The stand-in profile as `odoo` (the default), plus:
/// - `odoo-lp`: Odoo with workers, its evented listener on 8072 (`longpolling_port`);
/// - `odoo-slow`: an app that listens 2 s after its container starts, as real Odoo takes
///   seconds to load (the stand-in listens at once, too soon for a window to show);
/// - `odoo-nr`: an app whose readiness path the stand-in answers 404, with a 5 s timeout.
fn overrides() -> String {
    let mut top: toml::Table = toml::from_str(&odoo_overrides()).unwrap();
    let profiles = top["profiles"].as_table_mut().unwrap();
    let base = profiles["odoo"].as_table().unwrap().clone();

    let mut lp = base.clone();
    let template = lp["config_template"].as_str().unwrap().to_string();
    assert!(template.contains("workers = 0\n"), "{template}");
    let template = template.replace("workers = 0\n", "workers = 2\ngevent_port = 8072\n");
    lp.insert("config_template".into(), template.into());
    app(&mut lp).insert("longpolling_port".into(), 8072.into());
    profiles.insert("odoo-lp".into(), lp.into());

    let mut slow = base.clone();
    let mut command: Vec<toml::Value> = ["sh", "-c", "sleep 2; exec \"$@\"", "sh"]
        .map(toml::Value::from)
        .to_vec();
    command.extend(
        app(&mut slow)["command"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    app(&mut slow).insert("command".into(), command.into());
    profiles.insert("odoo-slow".into(), slow.into());

    let mut nr = base;
    let readiness: toml::Table =
        toml::from_str("http = \"/never-ready\"\ntimeout = \"5s\"").unwrap();
    app(&mut nr).insert("readiness".into(), readiness.into());
    profiles.insert("odoo-nr".into(), nr.into());
    toml::to_string(&top).unwrap()
}

fn app(profile: &mut toml::Table) -> &mut toml::Table {
    profile.get_mut("app").unwrap().as_table_mut().unwrap()
}

async fn start(test: &str) -> Option<(StageEnv, HttpClient)> {
    if !require_engine(test).await {
        return None;
    }
    let env = StageEnv::start(&overrides());
    let http = env.daemon.http().await;
    Some((env, http))
}

/// Subscription `sub` on `profile` and its qa stage `sub/qa` at `qa.<sub>.example.com`: the
/// create's whole response.
async fn create(http: &mut HttpClient, sub: &str, profile: &str) -> Value {
    let r = call(
        http,
        "subscription.create",
        json!({"id": sub, "stage_limit": 2, "profile": profile}),
    )
    .await;
    assert!(r["result"].is_object(), "{r}");
    let domain = format!("qa.{sub}.example.com");
    let params = json!({"subscription": sub, "name": "qa", "type": "qa", "domain": domain});
    call(http, "stage.create", params).await
}

/// The JSON the stand-in answers `/websocket` with, through nginx.
fn websocket(env: &StageEnv, host: &str) -> (u16, Value) {
    let (status, body) = env.nginx.get(host, "/websocket");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn websocket_goes_to_the_longpolling_port_else_to_the_main_one() {
    let Some((env, mut http)) = start("websocket_goes_to_the_longpolling_port").await else {
        return;
    };
    let r = create(&mut http, "poll", "odoo-lp").await;
    let stage = &r["result"];
    assert_eq!(stage["state"], "running", "{r}");
    let (port, lp) = (
        stage["http_port"].as_u64(),
        stage["longpolling_port"].as_u64(),
    );
    assert!(lp.is_some() && lp != port, "{r}");
    // Both ports published on the bind address, each to its container port.
    let app = env.container("poll", "qa", "app");
    let published = inspect(&app, "{{json .HostConfig.PortBindings}}");
    for (host_port, container) in [(port.unwrap(), 8069), (lp.unwrap(), 8072)] {
        let want =
            format!(r#""{container}/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{host_port}"}}]"#);
        assert!(published.contains(&want), "{want} not in {published}");
    }
    // Workers on: the evented listener answers /websocket, the HTTP port refuses it.
    assert_eq!(
        websocket(&env, "qa.poll.example.com"),
        (200, json!({"websocket": true, "port": 8072}))
    );
    assert_eq!(env.nginx.get("qa.poll.example.com", "/web/health").0, 200);

    // The default profile has no long-polling port: /websocket on the main port, as before.
    let r = create(&mut http, "plain", "odoo").await;
    assert_eq!(r["result"]["state"], "running", "{r}");
    assert!(r["result"]["longpolling_port"].is_null(), "{r}");
    assert_eq!(
        websocket(&env, "qa.plain.example.com"),
        (200, json!({"websocket": true, "port": 8069}))
    );

    // Terminated, the stage gives its ports back; restored, it holds two again.
    let t = expect_state(&mut http, "stage.terminate", "poll/qa", "terminated").await;
    assert!(
        t["result"]["http_port"].is_null() && t["result"]["longpolling_port"].is_null(),
        "{t}"
    );
    let r = expect_state(&mut http, "stage.restore", "poll/qa", "stopped").await;
    assert!(r["result"]["longpolling_port"].as_u64().is_some(), "{r}");
    expect_state(&mut http, "stage.start", "poll/qa", "running").await;
    assert_eq!(
        websocket(&env, "qa.poll.example.com"),
        (200, json!({"websocket": true, "port": 8072}))
    );
}

/// Through nginx, every ~100 ms while the stage is created, then while it is stopped and
/// started: never a 502 (before its site exists the domain meets the catch-all, then the
/// stopped page's 503), and it serves at the end.
#[tokio::test]
async fn no_502_while_a_stage_is_created_stopped_and_started() {
    let Some((env, mut http)) = start("no_502_while_a_stage_is_created").await else {
        return;
    };
    let host = "qa.acme.example.com";
    let watch = RequestLoop::start(env.nginx.http_port, host, "/web/health");
    let r = create(&mut http, "acme", "odoo-slow").await;
    let seen = watch.finish();
    assert_eq!(r["result"]["state"], "running", "{r}");
    assert!(!seen.contains(&502), "a 502 during the create: {seen:?}");
    assert_eq!(env.nginx.get(host, "/web/health").0, 200);

    for round in 0..2 {
        let watch = RequestLoop::start(env.nginx.http_port, host, "/web/health");
        std::thread::sleep(std::time::Duration::from_millis(300));
        if round == 0 {
            expect_state(&mut http, "stage.stop", "acme/qa", "stopped").await;
            expect_state(&mut http, "stage.start", "acme/qa", "running").await;
        } else {
            expect_state(&mut http, "stage.restart", "acme/qa", "running").await;
        }
        let seen = watch.finish();
        let after = after_first_ok(&seen);
        assert!(!after.is_empty(), "round {round}: no 200 at all: {seen:?}");
        assert!(
            seen.contains(&503),
            "round {round}: never stopped: {seen:?}"
        );
        assert!(
            !after.contains(&502),
            "round {round}: a 502 after a 200: {seen:?}"
        );
        assert_eq!(env.nginx.get(host, "/web/health").0, 200, "round {round}");
    }
}

/// An app whose readiness path never passes: the create fails with the path, the last answer
/// and the container's state, and rolls back (no container, no site, a cancelled record).
#[tokio::test]
async fn an_app_that_never_gets_ready_rolls_its_create_back() {
    let Some((env, mut http)) = start("an_app_that_never_gets_ready").await else {
        return;
    };
    let r = create(&mut http, "stuck", "odoo-nr").await;
    let (code, data) = rpc_error(&r);
    assert_eq!(
        (code, data["kind"].as_str()),
        (-32010, Some("docker")),
        "{r}"
    );
    let m = r["error"]["message"].as_str().unwrap();
    for part in [
        "GET /never-ready",
        "within 5s",
        "last: HTTP 404",
        "is running",
    ] {
        assert!(m.contains(part), "{part:?} not in {m}");
    }
    let got = call(&mut http, "stage.get", json!({"stage": "stuck/qa"})).await;
    assert_eq!(got["result"]["state"], "cancelled", "{got}");
    assert!(
        got["result"]["last_error"]
            .as_str()
            .unwrap()
            .contains("/never-ready"),
        "{got}"
    );
    assert!(got["result"]["http_port"].is_null(), "{got}");
    let label = format!("label={}.stage", env.daemon.label_prefix);
    let left = docker(&["ps", "-aq", "--filter", &label]);
    assert!(left.trim().is_empty(), "containers left: {left}");
    let sites: Vec<_> = std::fs::read_dir(&env.nginx.sites_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(sites.is_empty(), "{sites:?}");
    // Never proxied: the domain meets the catch-all, which closes the connection.
    assert_eq!(env.nginx.get("qa.stuck.example.com", "/web/health").0, 0);
}
