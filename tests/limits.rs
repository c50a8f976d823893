//! Limits of the API socket: the cap on open connections with the admins' reserve, the
//! allowance of callers in no access group, the idle timeout, and the batch size.

mod common;

use common::child::{self, USERS_GID};
use common::stage_setup::assert_error_says;
use common::{rpc_error, Daemon};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

#[test]
fn child() {
    child::run_if_asked();
}

const OPEN: &str = r#"
[agent]
socket_mode = "0666"
[access]
admin_groups = []
reader_groups = ["users"]
[api]
idle_timeout = "5s"
"#;

fn fds(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count()
}

/// Reads `key=N` lines from a child until `key` comes.
fn expect_line(lines: &mut impl Iterator<Item = std::io::Result<String>>, key: &str) -> usize {
    for line in lines.by_ref() {
        let line = line.unwrap();
        // The harness may print `test child ... ` on the same line.
        let prefix = format!("{key}=");
        if let Some(n) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&prefix))
        {
            return n.parse().unwrap();
        }
    }
    panic!("the child never printed {key}");
}

async fn info_ok(d: &Daemon) {
    let mut http = d.http().await;
    let v = http.call("agent.info", json!({})).await.unwrap();
    assert_eq!(v["result"]["api_version"], "1", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_and_closed_and_root_keeps_its_reserve() {
    let d = Daemon::start(OPEN);
    let before = fds(&d);
    // A WebSocket opened now must outlive the idle timeout.
    let ws = d.client().await;

    // A reader opens 1100 connections and sends nothing: 1024 - 64 (the admins' reserve) - 1
    // (root's WebSocket) stay, the rest are answered 503 and closed at once.
    let mut reader = child::spawn(
        &[USERS_GID],
        "hold",
        &[d.socket.display().to_string(), "1100".into(), "9000".into()],
    );
    let mut lines = BufReader::new(reader.child.stdout.take().unwrap()).lines();
    assert_eq!(expect_line(&mut lines, "connected"), 1100);
    assert_eq!(expect_line(&mut lines, "first_open"), 959);
    let held = fds(&d);
    eprintln!("daemon descriptors: {before} before, {held} with the reader's connections");
    assert!(
        held <= before + 960 + 16,
        "the daemon holds {held} descriptors, {before} before"
    );
    // A stranger gets its few; root still gets in, from the reserve.
    let mut stranger = child::spawn(
        &[],
        "hold",
        &[d.socket.display().to_string(), "50".into(), "1000".into()],
    );
    let mut s_lines = BufReader::new(stranger.child.stdout.take().unwrap()).lines();
    assert_eq!(
        expect_line(&mut s_lines, "first_open"),
        0,
        "the readers took the shared room"
    );
    info_ok(&d).await;
    // After the idle timeout every one of them is closed, and the descriptors are back.
    assert_eq!(expect_line(&mut lines, "later_open"), 0);
    assert!(reader.child.wait().unwrap().success());
    assert!(stranger.child.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while fds(&d) > before + 8 {
        assert!(Instant::now() < deadline, "{} descriptors left", fds(&d));
        std::thread::sleep(Duration::from_millis(50));
    }
    let info: Value =
        jsonrpsee::core::client::ClientT::request(&ws, "agent.info", jsonrpsee::rpc_params![])
            .await
            .expect("the WebSocket outlived the idle timeout");
    assert_eq!(info["api_version"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_holds_a_few_connections_and_each_call_is_forbidden() {
    let d = Daemon::start(OPEN);
    let mut stranger = child::spawn(
        &[],
        "hold",
        &[d.socket.display().to_string(), "50".into(), "8000".into()],
    );
    let mut lines = BufReader::new(stranger.child.stdout.take().unwrap()).lines();
    assert_eq!(expect_line(&mut lines, "first_open"), 4);
    info_ok(&d).await;
    assert_eq!(expect_line(&mut lines, "later_open"), 0);
    assert!(stranger.child.wait().unwrap().success());
}

#[tokio::test]
async fn a_connection_idle_after_its_call_is_closed() {
    use std::os::unix::net::UnixStream;
    let d = Daemon::start(OPEN);
    let mut c = UnixStream::connect(&d.socket).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"agent.info","params":{}}"#;
    write!(
        c,
        "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Keep-alive: the connection stays, then goes 5 s after its call.
    let started = Instant::now();
    let mut rest = vec![];
    c.read_to_end(&mut rest).unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4500) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    // The HTTP client of the tests and scripts makes a new connection by itself.
    let mut http = d.http().await;
    http.call("agent.info", json!({})).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let v = http.call("agent.info", json!({})).await.unwrap();
    assert_eq!(v["result"]["api_version"], "1", "{v}");
}

fn batch(n: usize) -> String {
    let calls: Vec<Value> = (0..n)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "agent.info", "params": {}}))
        .collect();
    Value::Array(calls).to_string()
}

#[tokio::test]
async fn a_batch_above_max_batch_is_refused_whole() {
    let d = Daemon::start("");
    let mut http = d.http().await;
    let (_, text) = http.post(batch(50)).await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let answers = v.as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(answers.len(), 50);
    assert!(answers.iter().all(|a| a["result"]["api_version"] == "1"));
    let (_, text) = http.post(batch(51)).await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let (code, data) = rpc_error(&v);
    assert_eq!(
        (code, data["kind"].as_str()),
        (-32004, Some("limit_exceeded"))
    );
    assert_error_says(&v, "at most 50");
    // The batch of the report: refused at once instead of running for minutes.
    let started = Instant::now();
    let (_, text) = http.post(batch(10_000)).await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rpc_error(&v).0, -32004);
    eprintln!("a batch of 10000 refused in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));
}
