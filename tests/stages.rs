//! Stages on the real engine, nginx and PostgreSQL image, driven through the daemon's socket.

mod common;

use common::stage_setup::{
    assert_error_says, assert_last_error_says, create_qa, create_typed, expect_state, subscribe,
};
use common::{docker, inspect, require_engine, rpc_error, StageEnv};
use serde_json::{json, Value};
use stagelet::api::rpc::{StageApiClient, SubscriptionApiClient};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

async fn env(test: &str, overrides: &str) -> Option<StageEnv> {
    if !require_engine(test).await {
        return None;
    }
    Some(StageEnv::start(overrides))
}

fn container(env: &StageEnv, sub: &str, name: &str, role: &str) -> String {
    format!("stl-p{}s", std::process::id()) + &env.daemon_slot_suffix(sub, name, role)
}

trait Names {
    fn daemon_slot_suffix(&self, sub: &str, name: &str, role: &str) -> String;
}

impl Names for StageEnv {
    /// The daemon's name prefix is `stl-p<pid>s<slot>-`; the slot is in its config.
    fn daemon_slot_suffix(&self, sub: &str, name: &str, role: &str) -> String {
        let text = std::fs::read_to_string(&self.daemon.config_path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let prefix = table["docker"]["name_prefix"].as_str().unwrap().to_string();
        let slot = prefix
            .trim_start_matches(&format!("stl-p{}s", std::process::id()))
            .to_string();
        format!("{slot}{sub}--{name}--{role}")
    }
}

fn nothing_left(env: &StageEnv, sub: &str, name: &str) {
    let label = format!("label={}.stage", env.daemon.label_prefix);
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &label]).trim(),
        "",
        "containers left"
    );
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", &label]).trim(),
        "",
        "networks left"
    );
    assert!(
        !env.daemon
            .state_dir()
            .join(format!("data/{sub}/{name}"))
            .exists(),
        "data left"
    );
    assert!(
        !env.nginx
            .sites_dir
            .join(format!("{sub}--{name}.conf"))
            .exists(),
        "nginx file left"
    );
}

#[tokio::test]
async fn the_whole_lifecycle_as_a_user_sees_it() {
    let Some(env) = env("the_whole_lifecycle_as_a_user_sees_it", "").await else {
        return;
    };
    let c = env.daemon.client().await;
    SubscriptionApiClient::create(&c, "acme".into(), 3, None, None, None)
        .await
        .unwrap();
    let s = create_typed(&c, "acme", "qa", "qa").await.unwrap();
    assert_eq!(s.state.as_str(), "running");
    let port = s.http_port.unwrap();
    // Through nginx by Host, to the app container.
    assert_eq!(
        env.nginx.get("qa.acme.example.com", "/"),
        (200, "stagelet test app acme-qa\n".into())
    );
    let app = container(&env, "acme", "qa", "app");
    let db = container(&env, "acme", "qa", "db");
    assert_eq!(inspect(&app, "{{.State.Running}}"), "true");
    assert_eq!(
        inspect(&app, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    assert_eq!(inspect(&app, "{{.Config.StopTimeout}}"), "5");
    assert_eq!(inspect(&db, "{{.Config.StopSignal}}"), "SIGINT");
    assert_eq!(
        inspect(
            &app,
            "{{(index (index .HostConfig.PortBindings \"8069/tcp\") 0).HostIp}}"
        ),
        "127.0.0.1"
    );
    assert_eq!(
        inspect(
            &app,
            "{{(index (index .HostConfig.PortBindings \"8069/tcp\") 0).HostPort}}"
        ),
        port.to_string()
    );
    assert!(
        inspect(&db, "{{json .NetworkSettings.Networks}}").contains("\"db\""),
        "db alias"
    );
    assert_eq!(
        inspect(
            &app,
            &format!(
                "{{{{index .Config.Labels \"{}.component\"}}}}",
                env.daemon.label_prefix
            )
        ),
        "app"
    );
    // init_command ran once, into the filestore; the db has the stage's database.
    let data = env.daemon.state_dir().join("data/acme/qa");
    assert_eq!(
        std::fs::read_to_string(data.join("filestore/init.txt")).unwrap(),
        "init ran for qa\n"
    );
    assert!(data.join("db/PG_VERSION").exists());
    assert_eq!(s.addons_dir, data.join("addons").display().to_string());
    // The password stays in the record (0600) and out of the API.
    let record = env.daemon.state_dir().join("stages/acme--qa.json");
    assert_eq!(
        std::fs::metadata(&record).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pw: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let pw = pw["db_password"].as_str().unwrap().to_string();
    assert!(pw.len() >= 32);
    let mut http = env.daemon.http().await;
    let got = http
        .call("stage.get", json!({"stage": "acme/qa"}))
        .await
        .unwrap()
        .to_string();
    assert!(!got.contains(&pw) && !got.contains("password"), "{got}");
    assert!(
        !env.daemon.log().contains(&pw),
        "the password reached the log"
    );

    // stop: 503 page, containers exited on their own signal (no SIGKILL: exit code 0).
    let s = StageApiClient::stop(&c, "acme/qa".into(), None)
        .await
        .unwrap();
    assert_eq!(s.state.as_str(), "stopped");
    let (status, body) = env.nginx.get("qa.acme.example.com", "/");
    assert_eq!(status, 503);
    assert!(body.contains("qa.acme.example.com is stopped"));
    assert_eq!(
        inspect(&app, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert_eq!(inspect(&db, "{{.State.Status}}"), "exited");
    // Stop again is fine.
    StageApiClient::stop(&c, "acme/qa".into(), None)
        .await
        .unwrap();

    let s = StageApiClient::start(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(s.state.as_str(), "running");
    assert_eq!(env.nginx.get("qa.acme.example.com", "/").0, 200);

    // An operation the table refuses.
    let resp = http
        .call("stage.restore", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    let (code, err) = rpc_error(&resp);
    assert_eq!(code, -32003);
    assert_eq!(err["state"], "running");
    assert_eq!(err["allowed"], json!(["terminated"]));

    // terminate: 410, containers gone, data kept, port released, purge in 7 days (qa).
    let s = StageApiClient::terminate(&c, "acme/qa".into())
        .await
        .unwrap();
    assert_eq!(s.state.as_str(), "terminated");
    assert_eq!(s.http_port, None);
    assert_eq!(env.nginx.get("qa.acme.example.com", "/").0, 410);
    assert_eq!(inspect(&app, "{{.Id}}"), "");
    assert!(data.join("filestore/init.txt").exists());
    let purge = time::OffsetDateTime::parse(
        s.purge_at.as_deref().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (purge - time::OffsetDateTime::now_utc()).whole_hours();
    assert!((167..=168).contains(&days), "{days} hours");

    // restore: stopped with containers made, 503.
    let s = StageApiClient::restore(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(s.state.as_str(), "stopped");
    assert_eq!(inspect(&app, "{{.State.Status}}"), "created");
    assert_eq!(env.nginx.get("qa.acme.example.com", "/").0, 503);
    StageApiClient::start(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(
        env.nginx.get("qa.acme.example.com", "/").0,
        200,
        "the data survived terminate and restore"
    );

    // cancel: nothing of the stage remains; the record stays as a tombstone; the name is free.
    let s = StageApiClient::cancel(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(s.state.as_str(), "cancelled");
    nothing_left(&env, "acme", "qa");
    assert_eq!(
        StageApiClient::get(&c, "acme/qa".into())
            .await
            .unwrap()
            .state
            .as_str(),
        "cancelled"
    );
    let again = create_typed(&c, "acme", "qa", "dev").await.unwrap();
    assert_ne!(again.uuid, s.uuid);
    assert_eq!(
        StageApiClient::get(&c, s.uuid.to_string())
            .await
            .unwrap()
            .state
            .as_str(),
        "cancelled"
    );
    StageApiClient::cancel(&c, "acme/qa".into()).await.unwrap();
    // The subscription can go once its stages are cancelled, not before.
    SubscriptionApiClient::delete(&c, "acme".into())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_image_rolls_everything_back() {
    let broken = "[profiles.broken.app]\nimage = \"stagelet-test/nope:1\"\nport = 8069\n[profiles.broken.db]\nimage = \"stagelet-test/postgres:1\"\nport = 5432\nuser = \"odoo\"\nmounts = { db = \"/var/lib/postgresql/data\" }\nenv = { POSTGRES_USER = \"{db_user}\", POSTGRES_PASSWORD = \"{db_password}\" }\n";
    let Some(env) = env("a_missing_image_rolls_everything_back", broken).await else {
        return;
    };
    let mut http = env.daemon.http().await;
    http.call(
        "subscription.create",
        json!({"id": "acme", "stage_limit": 1, "profile": "broken"}),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        // Twice: the failed stage frees its name and its place in the limit.
        let resp = create_qa(&mut http, "acme", "qa").await;
        let (code, data) = rpc_error(&resp);
        assert_eq!(
            (code, data["kind"].as_str()),
            (-32010, Some("docker")),
            "{resp}"
        );
        assert_error_says(&resp, "stagelet-test/nope:1");
        nothing_left(&env, "acme", "qa");
    }
    let got = http
        .call("stage.get", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    assert_eq!(got["result"]["state"], "cancelled");
    assert_last_error_says(&got, "nope");
}

#[tokio::test]
async fn an_nginx_failure_rolls_everything_back() {
    // A certificate nginx refuses (a missing one would be served over plain HTTP instead).
    let certs = tempfile::tempdir().unwrap();
    common::nginx::not_a_certificate(certs.path(), "qa.acme.example.com");
    let tls = format!(
        "[nginx]\ntls_certificate = \"{0}/{{domain}}.pem\"\ntls_certificate_key = \"{0}/{{domain}}.key\"\n",
        certs.path().display()
    );
    let Some(env) = env("an_nginx_failure_rolls_everything_back", &tls).await else {
        return;
    };
    let mut http = env.daemon.http().await;
    subscribe(&mut http, "acme", 1).await;
    let resp = create_qa(&mut http, "acme", "qa").await;
    let (code, _) = rpc_error(&resp);
    assert_eq!(code, -32011, "{resp}");
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("acme/qa") && msg.contains("/qa.acme.example.com.pem"),
        "{msg}"
    );
    nothing_left(&env, "acme", "qa");
}

#[tokio::test]
async fn twenty_parallel_creates_against_a_limit_of_five() {
    let Some(env) = env(
        "twenty_parallel_creates_against_a_limit_of_five",
        "[nginx]\nenabled = false\n",
    )
    .await
    else {
        return;
    };
    let c = env.daemon.client().await;
    SubscriptionApiClient::create(&c, "acme".into(), 5, None, None, None)
        .await
        .unwrap();
    let mut tasks = vec![];
    for i in 0..20 {
        let c = env.daemon.client().await;
        tasks.push(tokio::spawn(async move {
            create_typed(&c, "acme", &format!("s{i}"), "dev").await
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(jsonrpsee::core::ClientError::Call(e)) if e.code() == -32004 => limited += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, limited), (5, 15));
    assert_eq!(
        StageApiClient::list(&c, Some("acme".into()), Some("running".into()), None)
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn a_port_in_use_on_the_host_is_skipped_and_names_and_domains_are_unique() {
    let Some(env) = env(
        "a_port_in_use_on_the_host_is_skipped",
        "[nginx]\nenabled = false\n",
    )
    .await
    else {
        return;
    };
    let text = std::fs::read_to_string(&env.daemon.config_path).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let first: u16 = table["ports"]["http"]
        .as_str()
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", first)).unwrap();
    let mut http = env.daemon.http().await;
    subscribe(&mut http, "acme", 3).await;
    let resp = http
        .call("stage.create", json!({"subscription": "acme", "name": "a", "type": "dev", "domain": "a.acme.example.com"}))
        .await
        .unwrap();
    assert_eq!(resp["result"]["http_port"], first + 1, "{resp}");
    for (params, code) in [
        (
            json!({"subscription": "acme", "name": "a", "type": "dev", "domain": "other.example.com"}),
            -32002,
        ),
        (
            json!({"subscription": "acme", "name": "b", "type": "dev", "domain": "a.acme.example.com"}),
            -32002,
        ),
        (
            json!({"subscription": "ghost", "name": "b", "type": "dev", "domain": "b.example.com"}),
            -32001,
        ),
        (
            json!({"subscription": "acme", "name": "b", "type": "staging", "domain": "b.example.com"}),
            -32602,
        ),
        (
            json!({"subscription": "acme", "name": "B!", "type": "dev", "domain": "b.example.com"}),
            -32602,
        ),
        (
            json!({"subscription": "acme", "name": "b", "type": "dev", "domain": "b.example.com", "end_date": "tomorrow"}),
            -32602,
        ),
    ] {
        let resp = http.call("stage.create", params.clone()).await.unwrap();
        assert_eq!(rpc_error(&resp).0, code, "{params} → {resp}");
    }
}

#[tokio::test]
async fn hostile_domains_never_reach_a_file() {
    let Some(env) = env("hostile_domains_never_reach_a_file", "").await else {
        return;
    };
    let mut http = env.daemon.http().await;
    subscribe(&mut http, "acme", 100).await;
    for (i, domain) in common::hostile::domains().into_iter().enumerate() {
        let params = json!({"subscription": "acme", "name": format!("h{i}"), "type": "dev", "domain": domain});
        let resp = http.call("stage.create", params).await.unwrap();
        let (code, data) = rpc_error(&resp);
        assert_eq!(
            (code, data["field"].as_str()),
            (-32602, Some("domain")),
            "{domain:?} → {resp}"
        );
    }
    assert_eq!(
        std::fs::read_dir(env.daemon.state_dir().join("stages"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(std::fs::read_dir(&env.nginx.sites_dir).unwrap().count(), 0);
}

#[tokio::test]
async fn grace_periods_term_then_kill() {
    let Some(env) = env("grace_periods_term_then_kill", "[nginx]\nenabled = false\n").await else {
        return;
    };
    let mut http = env.daemon.http().await;
    // One subscription's app ignores SIGTERM; the other's exits on it.
    http.call(
        "subscription.create",
        json!({"id": "stubborn", "stage_limit": 1, "settings": {"env": {"IGNORE_TERM": "1"}}}),
    )
    .await
    .unwrap();
    subscribe(&mut http, "polite", 1).await;
    for sub in ["stubborn", "polite"] {
        let resp = http
            .call("stage.create", json!({"subscription": sub, "name": "s", "type": "dev", "domain": format!("s.{sub}.example.com"), "grace_period_s": 2}))
            .await
            .unwrap();
        assert_eq!(resp["result"]["state"], "running", "{resp}");
    }
    let t = Instant::now();
    let resp = http
        .call("stage.stop", json!({"stage": "stubborn/s"}))
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(resp["result"]["state"], "stopped", "{resp}");
    // At least the 2 s grace, and far below the 60 s default: the per-stage grace was used.
    // The upper bound leaves room for a loaded machine; the exit code below shows the kill.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(12),
        "{took:?}"
    );
    let env_ref = &env;
    assert_eq!(
        inspect(
            &container(env_ref, "stubborn", "s", "app"),
            "{{.State.ExitCode}}"
        ),
        "137",
        "killed after the grace"
    );
    http.call(
        "stage.stop",
        json!({"stage": "polite/s", "grace_period_s": 30}),
    )
    .await
    .unwrap();
    assert_eq!(
        inspect(
            &container(env_ref, "polite", "s", "app"),
            "{{.State.ExitCode}}"
        ),
        "0",
        "exited on SIGTERM, never killed"
    );
    assert!(docker(&["logs", &container(env_ref, "polite", "s", "app")])
        .contains("exiting after SIGTERM"));
}

#[tokio::test]
async fn expiry_stops_and_purge_cancels() {
    let overrides = "[nginx]\nenabled = false\n[lifecycle]\nretention = { dev = \"1s\", qa = \"7d\", prod = \"30d\" }\n";
    let Some(env) = env("expiry_stops_and_purge_cancels", overrides).await else {
        return;
    };
    let mut http = env.daemon.http().await;
    subscribe(&mut http, "acme", 2).await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let resp = http
        .call("stage.create", json!({"subscription": "acme", "name": "exp", "type": "qa", "domain": "exp.example.com", "end_date": soon}))
        .await
        .unwrap();
    assert_eq!(resp["result"]["state"], "running", "{resp}");
    http.call(
        "stage.create",
        json!({"subscription": "acme", "name": "old", "type": "dev", "domain": "old.example.com"}),
    )
    .await
    .unwrap();
    http.call("stage.terminate", json!({"stage": "acme/old"}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exp = http
            .call("stage.get", json!({"stage": "acme/exp"}))
            .await
            .unwrap();
        let old = http
            .call("stage.get", json!({"stage": "acme/old"}))
            .await
            .unwrap();
        if exp["result"]["state"] == "stopped" && old["result"]["state"] == "cancelled" {
            assert_eq!(exp["result"]["stop_reason"], "expired");
            break;
        }
        assert!(Instant::now() < deadline, "{exp}\n{old}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    nothing_left_but(&env, "acme", "old");
    let resp = http
        .call("stage.start", json!({"stage": "acme/exp"}))
        .await
        .unwrap();
    assert_eq!(rpc_error(&resp).0, -32003, "{resp}");
    http.call("stage.update", json!({"stage": "acme/exp", "end_date": ""}))
        .await
        .unwrap();
    expect_state(&mut http, "stage.start", "acme/exp", "running").await;
}

/// The purged stage left nothing (the other stage of the test still runs).
fn nothing_left_but(env: &StageEnv, sub: &str, name: &str) {
    assert_eq!(inspect(&container(env, sub, name, "app"), "{{.Id}}"), "");
    assert!(!env
        .daemon
        .state_dir()
        .join(format!("data/{sub}/{name}"))
        .exists());
}

#[tokio::test]
async fn an_unreachable_engine_is_a_docker_error_and_the_daemon_stays_up() {
    let d = common::Daemon::start("[docker]\nendpoint = \"unix:///nonexistent/docker.sock\"\n");
    let mut http = d.http().await;
    subscribe(&mut http, "acme", 1).await;
    let resp = http
        .call(
            "stage.create",
            json!({"subscription": "acme", "name": "qa", "type": "qa", "domain": "qa.example.com"}),
        )
        .await
        .unwrap();
    let (code, _) = rpc_error(&resp);
    assert_eq!(code, -32010, "{resp}");
    assert_error_says(&resp, "unix:///nonexistent/docker.sock");
    let info = http.call("agent.info", json!({})).await.unwrap();
    assert_eq!(info["result"]["docker"]["reachable"], false);
}
