//! `subscription.get` over the daemon's socket, on HTTP and WebSocket, with 1 and 16 concurrent
//! clients: requests per second and p50/p99 latency. The baseline, run in the same process, is
//! a bare jsonrpsee server on a Unix socket whose one method returns a constant: the ratios
//! show what the daemon adds (access check, span, lookup, record encoding).
//!
//! Run: `cargo bench --bench rpc`.

mod common;

use common::wait_for;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::server::{serve_with_graceful_shutdown, stop_channel, Server};
use jsonrpsee::RpcModule;
use serde_json::json;
use stagelet::api::client::{self, HttpClient};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PER_CLIENT: usize = 2000;

#[derive(Clone, Copy)]
enum Transport {
    Http,
    Ws,
}

struct Result {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `clients` concurrent clients, each sending PER_CLIENT calls of `method`.
async fn measure(
    socket: &Path,
    transport: Transport,
    clients: usize,
    method: &'static str,
    params: serde_json::Value,
) -> Result {
    let mut tasks = vec![];
    let start = Instant::now();
    for _ in 0..clients {
        let socket = socket.to_path_buf();
        let params = params.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(PER_CLIENT);
            match transport {
                Transport::Http => {
                    let mut c = HttpClient::connect(&socket).await.unwrap();
                    let body =
                        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                            .to_string();
                    for _ in 0..PER_CLIENT {
                        let t = Instant::now();
                        let (status, text) = c.post(body.clone()).await.unwrap();
                        assert!(status == 200 && text.contains("\"result\""), "{text}");
                        lat.push(t.elapsed());
                    }
                }
                Transport::Ws => {
                    let c = client::connect(&socket).await.unwrap();
                    let mut p = jsonrpsee::core::params::ObjectParams::new();
                    for (k, v) in params.as_object().unwrap() {
                        p.insert(k, v).unwrap();
                    }
                    for _ in 0..PER_CLIENT {
                        let t = Instant::now();
                        let _: serde_json::Value = c.request(method, p.clone()).await.unwrap();
                        lat.push(t.elapsed());
                    }
                }
            }
            lat
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    all.sort();
    Result {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

/// The baseline: jsonrpsee alone on a Unix socket, one method returning a constant record.
/// It runs in a child process of this bench (as the daemon does), so both servers are measured
/// under the same conditions.
async fn bare_server(socket: PathBuf) {
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let mut module = RpcModule::new(());
    module
        .register_method(
            "subscription.get",
            |_, _, _| json!({"id": "acme", "stage_limit": 3}),
        )
        .unwrap();
    let (stop, handle) = stop_channel();
    let builder = Server::builder().to_service_builder();
    let methods: jsonrpsee::Methods = module.into();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = builder.clone().build(methods.clone(), stop.clone());
            let stopped = stop.clone().shutdown();
            tokio::spawn(serve_with_graceful_shutdown(stream, svc, stopped));
        }
    });
    let _keep = handle;
    std::future::pending::<()>().await;
}

fn start_bare(socket: &Path) -> Child {
    let child = Command::new(std::env::current_exe().unwrap())
        .env(BARE_ENV, socket)
        .spawn()
        .unwrap();
    wait_for(socket);
    child
}

const BARE_ENV: &str = "STAGELET_BENCH_BARE_SERVER";

fn start_daemon(dir: &Path) -> Child {
    let config = format!(
        "[agent]\nstate_dir = \"{0}/state\"\nsocket = \"{0}/d.sock\"\nsocket_group = \"\"\n",
        dir.display()
    );
    common::start_daemon(dir, &config)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    if let Some(sock) = std::env::var_os(BARE_ENV) {
        return bare_server(sock.into()).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = start_daemon(dir.path());
    let daemon_sock = dir.path().join("d.sock");
    let bare_sock = dir.path().join("bare.sock");
    let mut bare = start_bare(&bare_sock);
    let mut http = HttpClient::connect(&daemon_sock).await.unwrap();
    let created = http
        .call(
            "subscription.create",
            json!({"id": "acme", "stage_limit": 3}),
        )
        .await
        .unwrap();
    assert!(created["result"].is_object(), "{created}");

    println!("subscription.get, {PER_CLIENT} calls per client; baseline = bare jsonrpsee on a Unix socket, in its own process");
    println!(
        "{:<10} {:>7} {:>12} {:>12} {:>10} {:>10} {:>16} {:>14}",
        "transport",
        "clients",
        "req/s",
        "base req/s",
        "p50",
        "p99",
        "rps vs baseline",
        "p99 vs base"
    );
    for (name, transport) in [("http", Transport::Http), ("websocket", Transport::Ws)] {
        for clients in [1, 16] {
            let params = json!({"id": "acme"});
            // Warm up both, then measure.
            measure(
                &daemon_sock,
                transport,
                1,
                "subscription.get",
                params.clone(),
            )
            .await;
            let base = measure(
                &bare_sock,
                transport,
                clients,
                "subscription.get",
                params.clone(),
            )
            .await;
            let ours = measure(&daemon_sock, transport, clients, "subscription.get", params).await;
            println!(
                "{:<10} {:>7} {:>12.0} {:>12.0} {:>10} {:>10} {:>15.2}x {:>13.2}x",
                name,
                clients,
                ours.rps,
                base.rps,
                ms(ours.p50),
                ms(ours.p99),
                ours.rps / base.rps,
                ours.p99.as_secs_f64() / base.p99.as_secs_f64(),
            );
        }
    }
    for child in [&mut daemon, &mut bare] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
