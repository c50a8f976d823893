//! Stage lifecycle figures, each printed as a ratio against a baseline from the same run:
//! - 20 stages whose app ignores SIGTERM, grace 5 s, stopped at once: wall time / grace
//!   (goal <= 1.3; serial stops would be ~20);
//! - create-to-running of one stage through the agent, against the same two containers made
//!   and started directly with bollard (network, db, app).
//!
//! Needs a Docker engine and the test images (tests/images/build.sh). Run:
//! `cargo bench --bench lifecycle`.

mod common;

use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use serde_json::json;
use stagelet::api::client::HttpClient;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const STAGES: usize = 20;
const GRACE_S: u64 = 5;

fn start_daemon(dir: &Path) -> Child {
    let label = format!("io.stagelet.bench{}", std::process::id());
    let config = format!(
        r#"[agent]
state_dir = "{d}/state"
socket = "{d}/d.sock"
socket_group = ""
default_profile = "bench"
[docker]
label_prefix = "{label}"
name_prefix = "bench{pid}-"
[ports]
http = "33000-33099"
code_server = "33100-33199"
[nginx]
enabled = false
[profiles.bench]
grace_period = "{GRACE_S}s"
[profiles.bench.app]
image = "stagelet-test/app:1"
port = 8069
env = {{ IGNORE_TERM = "1" }}
[profiles.bench.db]
image = "stagelet-test/postgres:1"
port = 5432
user = "odoo"
mounts = {{ db = "/var/lib/postgresql/data" }}
env = {{ POSTGRES_USER = "{{db_user}}", POSTGRES_PASSWORD = "{{db_password}}" }}
"#,
        d = dir.display(),
        pid = std::process::id(),
    );
    common::start_daemon(dir, &config)
}

async fn call(sock: &Path, method: &str, params: serde_json::Value) -> serde_json::Value {
    let mut c = HttpClient::connect(sock).await.unwrap();
    let v = c.call(method, params).await.unwrap();
    assert!(v.get("error").is_none(), "{method}: {v}");
    v
}

/// The baseline: network, db container, app container, made and started with bollard alone.
async fn direct_create(docker: &bollard::Docker, n: usize) -> Duration {
    let name = format!("benchdirect{}-{n}", std::process::id());
    let t = Instant::now();
    docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    for (role, image, env) in [
        (
            "db",
            "stagelet-test/postgres:1",
            vec![
                "POSTGRES_USER=odoo".to_string(),
                "POSTGRES_PASSWORD=x".into(),
            ],
        ),
        ("app", "stagelet-test/app:1", vec![]),
    ] {
        let body = ContainerCreateBody {
            image: Some(image.into()),
            env: Some(env),
            host_config: Some(HostConfig {
                network_mode: Some(name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cname = format!("{name}-{role}");
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(cname.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .unwrap();
        docker.start_container(&cname, None).await.unwrap();
    }
    let took = t.elapsed();
    for role in ["db", "app"] {
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        docker
            .remove_container(&format!("{name}-{role}"), Some(opts))
            .await
            .unwrap();
    }
    docker.remove_network(&name).await.unwrap();
    took
}

async fn engine_floor(docker: &bollard::Docker) -> Duration {
    use bollard::query_parameters::{KillContainerOptions, WaitContainerOptions};
    use futures::StreamExt;
    let names: Vec<(String, String)> = (0..STAGES)
        .map(|i| {
            (
                format!("benchfloor{}-app{i}", std::process::id()),
                format!("benchfloor{}-db{i}", std::process::id()),
            )
        })
        .collect();
    for (app, db) in &names {
        for (name, image, env) in [
            (
                app,
                "stagelet-test/app:1",
                vec!["IGNORE_TERM=1".to_string()],
            ),
            (
                db,
                "stagelet-test/postgres:1",
                vec!["POSTGRES_USER=u".into(), "POSTGRES_PASSWORD=p".into()],
            ),
        ] {
            let body = ContainerCreateBody {
                image: Some(image.into()),
                env: Some(env),
                ..Default::default()
            };
            docker
                .create_container(
                    Some(CreateContainerOptions {
                        name: Some(name.clone()),
                        ..Default::default()
                    }),
                    body,
                )
                .await
                .unwrap();
            docker.start_container(name, None).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stop = |name: String, signal: &'static str| async move {
        docker
            .kill_container(
                &name,
                Some(KillContainerOptions {
                    signal: signal.into(),
                }),
            )
            .await
            .unwrap();
        let mut w = docker.wait_container(
            &name,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        let _ = w.next().await;
    };
    let t = Instant::now();
    futures::future::join_all(names.iter().map(|(app, db)| async move {
        stop(app.clone(), "SIGKILL").await;
        stop(db.clone(), "SIGINT").await;
    }))
    .await;
    let took = t.elapsed();
    for (app, db) in &names {
        for n in [app, db] {
            let _ = docker
                .remove_container(
                    n,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
        }
    }
    took
}

#[tokio::main]
async fn main() {
    let docker = match stagelet::runtime::docker::connect("unix:///var/run/docker.sock").await {
        Ok(d) => d,
        Err(e) => {
            println!("lifecycle bench skipped: no Docker engine ({e})");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = start_daemon(dir.path());
    let sock = dir.path().join("d.sock");
    call(
        &sock,
        "subscription.create",
        json!({"id": "bench", "stage_limit": 100}),
    )
    .await;

    // Create-to-running, one at a time, against the direct baseline, 3 rounds each.
    let mut agent = vec![];
    let mut direct = vec![];
    for i in 0..3 {
        let t = Instant::now();
        call(&sock, "stage.create", json!({"subscription": "bench", "name": format!("c{i}"), "type": "dev", "domain": format!("c{i}.bench.example.com")})).await;
        agent.push(t.elapsed());
        direct.push(direct_create(&docker, i).await);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (a, d) = (median(&mut agent), median(&mut direct));
    println!(
        "create to running: agent {:.2} s, direct bollard {:.2} s, ratio {:.2}x",
        a.as_secs_f64(),
        d.as_secs_f64(),
        a.as_secs_f64() / d.as_secs_f64()
    );
    println!(
        "  (the agent also waits for PostgreSQL to accept connections and creates the database)"
    );

    // 20 stages whose app ignores SIGTERM, stopped at once.
    let creates = (0..STAGES).map(|i| {
        let sock = sock.clone();
        async move {
            call(&sock, "stage.create", json!({"subscription": "bench", "name": format!("s{i}"), "type": "dev", "domain": format!("s{i}.bench.example.com")})).await
        }
    });
    futures::future::join_all(creates).await;
    let t = Instant::now();
    let stops = (0..STAGES).map(|i| {
        let sock = sock.clone();
        async move { call(&sock, "stage.stop", json!({"stage": format!("bench/s{i}")})).await }
    });
    futures::future::join_all(stops).await;
    let wall = t.elapsed();
    println!(
        "stop {STAGES} stages at once, grace {GRACE_S} s, app ignores SIGTERM: {:.2} s wall, ratio to one grace {:.2} (goal <= 1.3; serial would be {STAGES})",
        wall.as_secs_f64(),
        wall.as_secs_f64() / GRACE_S as f64
    );

    // The engine's own floor in this run: SIGKILL 20 app containers, then SIGINT 20 PostgreSQL
    // containers, straight through bollard with no agent in between.
    let floor = engine_floor(&docker).await;
    println!(
        "  engine floor (kill {STAGES} apps, then fast-stop {STAGES} PostgreSQL, bollard alone): {:.2} s; agent wall / (grace + floor) = {:.2}",
        floor.as_secs_f64(),
        wall.as_secs_f64() / (GRACE_S as f64 + floor.as_secs_f64())
    );

    let list = call(&sock, "stage.list", json!({})).await;
    let names: Vec<String> = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("bench/{}", s["name"].as_str().unwrap()))
        .collect();
    futures::future::join_all(names.iter().map(|n| {
        let sock = sock.clone();
        async move { call(&sock, "stage.cancel", json!({"stage": n})).await }
    }))
    .await;
    let _ = daemon.kill();
    let _ = daemon.wait();
}
