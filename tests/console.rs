//! The SQL console, logs and exec on a real stage: what a user sees through the socket.

mod common;

use common::stage_setup::{assert_error_says, with_extra, with_qa};
use common::{rpc_error, StageEnv};
use serde_json::{json, Value};
use stagelet::api::rpc::StageApiClient;
use std::time::{Duration, Instant};

async fn call(env: &StageEnv, method: &str, params: Value) -> Value {
    env.daemon.http().await.call(method, params).await.unwrap()
}

async fn sql(env: &StageEnv, query: &str, extra: Value) -> Value {
    let params = with_extra(json!({"stage": "acme/qa", "query": query}), extra);
    call(env, "stage.sql", params).await
}

#[tokio::test]
async fn the_sql_console() {
    let Some(env) = with_qa("the_sql_console").await else {
        return;
    };
    // Values become JSON faithfully.
    let r = sql(
        &env,
        "SELECT 1::int AS i, 2.5::float8 AS f, true AS b, NULL::text AS n, \
         12345678901234567890.000000000001::numeric AS num, \
         '2026-11-23 17:00:00.123456+00'::timestamptz AS ts, '\\x00ff41'::bytea AS raw, \
         ARRAY[1,2] AS arr, 'héllo'::text AS t",
        json!({}),
    )
    .await;
    let res = &r["result"];
    assert_eq!(
        res["rows"][0],
        json!([
            1,
            2.5,
            true,
            null,
            "12345678901234567890.000000000001",
            "2026-11-23 17:00:00.123456+00",
            "AP9B",
            "{1,2}",
            "héllo"
        ]),
        "{r}"
    );
    assert_eq!(res["columns"][4], json!({"name": "num", "type": "numeric"}));
    assert_eq!(
        (res["row_count"].clone(), res["truncated"].clone()),
        (json!(1), json!(false))
    );

    // Read-only by default: a write fails with the SQLSTATE; with read_only false it persists.
    let r = sql(&env, "CREATE TABLE notes (body text)", json!({})).await;
    let (code, data) = rpc_error(&r);
    assert_eq!((code, data["kind"].as_str()), (-32012, Some("database")));
    assert_error_says(&r, "25006");
    // The console's writer changes rows, never the schema: the superuser's code could be
    // made to run what it created.
    let r = sql(
        &env,
        "CREATE TABLE notes (body text)",
        json!({"read_only": false}),
    )
    .await;
    assert_error_says(&r, "42501");
    env.psql("acme", "qa", "CREATE TABLE notes (body text)");
    let r = sql(
        &env,
        "INSERT INTO notes VALUES ('a'), ('b')",
        json!({"read_only": false}),
    )
    .await;
    assert_eq!(r["result"]["row_count"], 2, "{r}");
    let r = sql(&env, "SELECT count(*) FROM notes", json!({})).await;
    assert_eq!(r["result"]["rows"][0][0], 2, "{r}");
    assert_eq!(
        env.psql("acme", "qa", "SELECT string_agg(body, ',') FROM notes"),
        "a,b"
    );

    // The statement timeout.
    let started = Instant::now();
    let r = sql(&env, "SELECT pg_sleep(60)", json!({"timeout_s": 1})).await;
    let (code, _) = rpc_error(&r);
    assert_eq!(code, -32012);
    assert_error_says(&r, "57014");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // max_rows: the rest are not sent.
    let r = sql(
        &env,
        "SELECT g FROM generate_series(1, 50) g",
        json!({"max_rows": 10}),
    )
    .await;
    assert_eq!(r["result"]["rows"].as_array().unwrap().len(), 10);
    assert_eq!(r["result"]["rows"][9], json!([10]));
    assert_eq!(r["result"]["truncated"], true);

    // One statement per call; bounds name their field.
    for (query, extra, field) in [
        ("SELECT 1; SELECT 2", json!({}), "query"),
        (
            "INSERT INTO notes VALUES ('c'); DROP TABLE notes",
            json!({"read_only": false}),
            "query",
        ),
        ("", json!({}), "query"),
        ("SELECT 1", json!({"timeout_s": 0}), "timeout_s"),
        ("SELECT 1", json!({"max_rows": 0}), "max_rows"),
        ("SELECT 1", json!({"max_bytes": 0}), "max_bytes"),
    ] {
        let r = sql(&env, query, extra).await;
        let (code, data) = rpc_error(&r);
        assert_eq!(
            (code, data["field"].as_str()),
            (-32602, Some(field)),
            "{query}: {r}"
        );
    }
    assert_eq!(
        env.psql("acme", "qa", "SELECT count(*) FROM notes"),
        "2",
        "nothing ran"
    );

    let out = env.daemon.ctl(&[
        "stage",
        "sql",
        "acme/qa",
        "SELECT body FROM notes ORDER BY body",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "body\na\nb\n(2 rows)\n"
    );

    // A stopped stage has no database to talk to.
    StageApiClient::stop(&env.daemon.client().await, "acme/qa".into(), Some(2))
        .await
        .unwrap();
    let (code, data) = rpc_error(&sql(&env, "SELECT 1", json!({})).await);
    assert_eq!((code, data["state"].as_str()), (-32003, Some("stopped")));
}

#[tokio::test]
async fn logs_and_exec() {
    let Some(env) = with_qa("logs_and_exec").await else {
        return;
    };
    // exec: an argv, exit code and both streams.
    let r = call(
        &env,
        "stage.exec",
        json!({"stage": "acme/qa", "command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}),
    )
    .await;
    let res = &r["result"];
    assert_eq!(
        (
            res["exit_code"].clone(),
            res["stdout"].clone(),
            res["stderr"].clone()
        ),
        (json!(3), json!("out\n"), json!("err\n")),
        "{r}"
    );
    // No shell is added: the argument stays one word.
    let r = call(
        &env,
        "stage.exec",
        json!({"stage": "acme/qa", "command": ["echo", "a; touch /tmp/x"]}),
    )
    .await;
    assert_eq!(r["result"]["stdout"], "a; touch /tmp/x\n");
    // Output is capped at 1 MiB and marked.
    let r = call(
        &env,
        "stage.exec",
        json!({"stage": "acme/qa", "command": ["sh", "-c", "yes | head -c 3000000"]}),
    )
    .await;
    assert_eq!(r["result"]["stdout"].as_str().unwrap().len(), 1 << 20);
    assert_eq!(r["result"]["stdout_truncated"], true);
    assert_eq!(r["result"]["exit_code"], 0);
    // A timeout kills the process and says so.
    let started = Instant::now();
    let r = call(
        &env,
        "stage.exec",
        json!({"stage": "acme/qa", "command": ["sleep", "37"], "timeout_s": 1}),
    )
    .await;
    assert_eq!(
        (
            r["result"]["timed_out"].clone(),
            r["result"]["exit_code"].clone()
        ),
        (json!(true), json!(null)),
        "{r}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    let ps = call(
        &env,
        "stage.exec",
        json!({"stage": "acme/qa", "command": ["ps"]}),
    )
    .await;
    assert!(
        !ps["result"]["stdout"]
            .as_str()
            .unwrap()
            .contains("sleep 37"),
        "{ps}"
    );
    // The db component, and bad input.
    let r = call(
        &env,
        "stage.exec",
        json!({"stage": "acme/qa", "component": "db", "command": ["pg_dump", "--version"]}),
    )
    .await;
    assert!(
        r["result"]["stdout"].as_str().unwrap().contains("pg_dump"),
        "{r}"
    );
    for (params, field) in [
        (json!({"stage": "acme/qa", "command": []}), "command"),
        (
            json!({"stage": "acme/qa", "command": ["ls"], "component": "web"}),
            "component",
        ),
        (
            json!({"stage": "acme/qa", "command": ["ls"], "timeout_s": 7200}),
            "timeout_s",
        ),
    ] {
        let (code, data) = rpc_error(&call(&env, "stage.exec", params.clone()).await);
        assert_eq!(
            (code, data["field"].as_str()),
            (-32602, Some(field)),
            "{params}"
        );
    }

    // Logs: stamped lines, stdout and stderr; tail bounded.
    env.daemon.ctl(&[
        "stage",
        "exec",
        "acme/qa",
        "--",
        "sh",
        "-c",
        // Two copiers stamp the streams: a second apart is what "in order" can promise.
        "echo to-stdout > /proc/1/fd/1; sleep 1; echo to-stderr > /proc/1/fd/2",
    ]);
    let r = call(
        &env,
        "stage.logs",
        json!({"stage": "acme/qa", "tail": 1000}),
    )
    .await;
    let lines = r["result"]["lines"].as_array().unwrap().clone();
    let find = |text: &str| {
        lines
            .iter()
            .position(|l| l["line"] == text)
            .unwrap_or_else(|| panic!("{text} not in {r}"))
    };
    let (o, e) = (find("to-stdout"), find("to-stderr"));
    assert!(o < e, "in order");
    assert_eq!(lines[e]["stream"], "stderr");
    assert!(
        lines[o]["at"].as_str().unwrap().starts_with("20"),
        "{}",
        lines[o]
    );
    assert!(
        lines[0]["line"]
            .as_str()
            .unwrap()
            .contains("app: starting on port"),
        "{r}"
    );
    let r = call(&env, "stage.logs", json!({"stage": "acme/qa", "tail": 1})).await;
    assert_eq!(r["result"]["lines"].as_array().unwrap().len(), 1);
    let (code, data) = rpc_error(
        &call(
            &env,
            "stage.logs",
            json!({"stage": "acme/qa", "tail": 1001}),
        )
        .await,
    );
    assert_eq!((code, data["field"].as_str()), (-32602, Some("tail")));
    let r = call(
        &env,
        "stage.logs",
        json!({"stage": "acme/qa", "since": "2100-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r["result"]["lines"], json!([]));
    let r = call(
        &env,
        "stage.logs",
        json!({"stage": "acme/qa", "component": "db"}),
    )
    .await;
    assert!(!r["result"]["lines"].as_array().unwrap().is_empty(), "{r}");

    // Following: a new line arrives through the subscription.
    let c = env.daemon.client().await;
    let mut follow = StageApiClient::follow_logs(&c, "acme/qa".into(), None, Some(0))
        .await
        .unwrap();
    env.daemon.ctl(&[
        "stage",
        "exec",
        "acme/qa",
        "--",
        "sh",
        "-c",
        "echo followed-line > /proc/1/fd/1",
    ]);
    let line = tokio::time::timeout(Duration::from_secs(10), follow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(line.line, "followed-line");
}
