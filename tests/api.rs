//! The API through the real daemon: the generated client over WebSocket, raw HTTP POST, and
//! the error contract.

mod common;

use common::stage_setup::subscribe;
use common::{require_engine, rpc_error, Daemon};
use serde_json::json;
use stagelet::api::rpc::{AgentApiClient, HostApiClient, SubscriptionApiClient};

#[tokio::test]
async fn subscriptions_over_websocket() {
    let d = Daemon::start("");
    let c = d.client().await;
    let s = c
        .create("acme".into(), 3, Some(500), None, None)
        .await
        .unwrap();
    assert_eq!(
        (
            s.id.as_str(),
            s.stage_limit,
            s.storage_limit_mb,
            s.profile.as_str()
        ),
        ("acme", 3, Some(500), "odoo")
    );
    c.create("beta".into(), 1, None, None, None).await.unwrap();
    let s = c
        .update("acme".into(), Some(5), Some(0), None)
        .await
        .unwrap();
    assert_eq!((s.stage_limit, s.storage_limit_mb), (5, None));
    assert_eq!(
        SubscriptionApiClient::get(&c, "acme".into())
            .await
            .unwrap()
            .stage_limit,
        5
    );
    let ids: Vec<String> = c
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["acme", "beta"]);
    c.delete("beta".into()).await.unwrap();
    assert_eq!(c.list().await.unwrap().len(), 1);
    // What the API said is what is on disk.
    let on_disk: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.state_dir().join("subscriptions/acme.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk["stage_limit"], 5);
    assert!(!d.state_dir().join("subscriptions/beta.json").exists());
}

#[tokio::test]
async fn agent_info_and_host_stats() {
    let d = Daemon::start("");
    let c = d.client().await;
    let info = c.info().await.unwrap();
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.api_version, "1");
    assert!(!info.hostname.is_empty());
    if require_engine("agent_info_and_host_stats").await {
        assert!(info.docker.reachable, "{:?}", info.docker);
        assert!(info.docker.version.is_some());
    }
    let stats = c.stats().await.unwrap();
    assert!(stats.cpu.cores >= 1);
    assert!(stats.memory.total > stats.memory.used && stats.memory.used > 0);
    assert_eq!(
        stats.disks.iter().filter(|d| d.holds_state_dir).count(),
        1,
        "{:?}",
        stats.disks
    );
}

#[tokio::test]
async fn raw_http_post_like_curl() {
    let d = Daemon::start("");
    // No content-type header, as `curl -d` sends it.
    let mut http = d.http().await;
    let (status, body) = http
        .post(r#"{"jsonrpc":"2.0","id":7,"method":"agent.info","params":{}}"#.into())
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(v["result"]["api_version"], "1");
    let created = subscribe(&mut http, "acme", 2).await;
    assert_eq!(created["result"]["stage_limit"], 2);
    // The real curl, as README shows it.
    let out = std::process::Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(&d.socket)
        .args([
            "-d",
            r#"{"jsonrpc":"2.0","id":1,"method":"subscription.get","params":{"id":"acme"}}"#,
            "http://localhost/",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"]["id"], "acme", "{v}");
}

#[tokio::test]
async fn errors_follow_the_contract() {
    let d = Daemon::start("");
    let mut http = d.http().await;
    let cases = [
        (
            "subscription.create",
            json!({"id": "acme", "stage_limit": "three"}),
            -32602,
            Some("stage_limit"),
        ),
        (
            "subscription.create",
            json!({"stage_limit": 3}),
            -32602,
            Some("id"),
        ),
        (
            "subscription.create",
            json!({"id": "a.com; include /etc/shadow", "stage_limit": 3}),
            -32602,
            Some("id"),
        ),
        (
            "subscription.create",
            json!({"id": "acme", "stage_limit": 3, "profile": "nope"}),
            -32602,
            Some("profile"),
        ),
        (
            "subscription.create",
            json!({"id": "acme", "stage_limit": 3, "settings": {"env": {"1X": "y"}}}),
            -32602,
            Some("settings.env"),
        ),
        (
            "subscription.create",
            json!({"id": "acme", "stage_limit": 3, "settings": {"bogus": 1}}),
            -32602,
            Some("settings"),
        ),
        ("subscription.get", json!({"id": "ghost"}), -32001, None),
        (
            "subscription.update",
            json!({"id": "ghost", "stage_limit": 1}),
            -32001,
            None,
        ),
        ("subscription.delete", json!({"id": "ghost"}), -32001, None),
    ];
    for (method, params, code, field) in cases {
        let resp = http.call(method, params.clone()).await.unwrap();
        let (got, data) = rpc_error(&resp);
        assert_eq!(got, code, "{method} {params} → {resp}");
        let kind = stagelet::api::errors::kind_of_code(code as i32).unwrap();
        assert_eq!(data["kind"], kind.as_str(), "{resp}");
        if let Some(f) = field {
            assert_eq!(data["field"], f, "{method} {params} → {resp}");
        }
    }
    // Nothing was written by any of the refused calls.
    assert_eq!(
        std::fs::read_dir(d.state_dir().join("subscriptions"))
            .unwrap()
            .count(),
        0
    );
    subscribe(&mut http, "acme", 3).await;
    let resp = subscribe(&mut http, "acme", 3).await;
    assert_eq!(rpc_error(&resp), (-32002, json!({"kind": "conflict"})));
    let resp = http.call("no.such_method", json!({})).await.unwrap();
    assert_eq!(rpc_error(&resp).0, -32601);
}

#[tokio::test]
async fn stagectl_prints_tables_json_and_error_statuses() {
    let d = Daemon::start("");
    let out = d.ctl(&[
        "subscription",
        "create",
        "acme",
        "--stage-limit",
        "3",
        "--env",
        "A=1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = d.ctl(&["subscription", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ID "), "{text}");
    assert!(text.lines().nth(1).unwrap().starts_with("acme "), "{text}");
    let out = d.ctl(&["--json", "subscription", "get", "acme"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["settings"]["env"]["A"], "1");
    let out = d.ctl(&["subscription", "create", "acme", "--stage-limit", "3"]);
    assert_eq!(out.status.code(), Some(12));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: "),
        "{out:?}"
    );
    let out = d.ctl(&["subscription", "get", "BAD"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("id"),
        "{out:?}"
    );
    let out = d.ctl(&["subscription", "get", "ghost"]);
    assert_eq!(out.status.code(), Some(11));
    let out = std::process::Command::new(common::CTL)
        .args(["--socket", "/nonexistent/x.sock", "info"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let out = std::process::Command::new(common::CTL)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("stagectl"));
}
