//! A stage's database against its own tenant, on real stages: the SQL console runs as a role
//! that cannot run programs, read server files, signal backends or reload the server, leaves
//! nothing behind for the next call, never as the superuser, and stops huge results at
//! `max_bytes` with the daemon's memory flat; a tenant holding a lock delays only its own
//! active-users count.

mod common;

use common::stage_setup::{peak_kib, with_extra};
use common::{inspect, rpc_error, StageEnv};
use serde_json::{json, Value};
use stagelet::api::rpc::StageApiClient;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

async fn sql(env: &StageEnv, stage: &str, query: &str, extra: Value) -> Value {
    let params = with_extra(json!({"stage": stage, "query": query}), extra);
    env.daemon
        .http()
        .await
        .call("stage.sql", params)
        .await
        .unwrap()
}

/// A psql session as the stage's superuser running `script`, left running.
fn hold(env: &StageEnv, name: &str, script: &str) -> Child {
    let record = env
        .daemon
        .state_dir()
        .join(format!("stages/acme--{name}.json"));
    let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    let ip = inspect(
        &env.container("acme", name, "db"),
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    Command::new("psql")
        .args(["-h", &ip, "-U", "odoo", "-d", name, "-At", "-c", script])
        .env("PGPASSWORD", record["db_password"].as_str().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn database_error(r: &Value, what: &str) {
    let (code, data) = rpc_error(r);
    assert_eq!(
        (code, data["kind"].as_str()),
        (-32012, Some("database")),
        "{what}: {r}"
    );
}

#[tokio::test]
async fn the_console_cannot_escape_its_role() {
    let Some(env) = StageEnv::with_stages("console_cannot_escape", "", None, &["qa"]).await else {
        return;
    };
    let db = env.container("acme", "qa", "db");
    let touched = || {
        Command::new("docker")
            .args(["exec", &db, "test", "-e", "/tmp/stagelet-pwned"])
            .status()
            .unwrap()
            .success()
    };
    // A superuser session to signal; the console must not reach it.
    let mut sleeper = hold(&env, "qa", "SELECT pg_sleep(120)");
    std::thread::sleep(Duration::from_millis(500));
    for read_only in [true, false] {
        let mode = json!({ "read_only": read_only });
        for query in [
            "COPY (SELECT 1) TO PROGRAM 'touch /tmp/stagelet-pwned'",
            "SELECT pg_read_file('/etc/passwd')",
            "SELECT pg_reload_conf()",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = 'odoo' AND pid <> pg_backend_pid()",
            "ALTER SYSTEM SET log_statement = 'none'",
            "CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE sql AS 'SELECT 1::text'",
        ] {
            let r = sql(&env, "acme/qa", query, mode.clone()).await;
            database_error(&r, &format!("{query} read_only={read_only}"));
        }
        let r = sql(
            &env,
            "acme/qa",
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            mode.clone(),
        )
        .await;
        assert_eq!(r["result"]["rows"], json!([[false]]), "{r}");
    }
    assert!(!touched(), "a program ran in the db container");
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the superuser session was terminated"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    // Writes need read_only: false, on the tenant's tables.
    env.psql("acme", "qa", "CREATE TABLE notes (body text)");
    let r = sql(&env, "acme/qa", "INSERT INTO notes VALUES ('a')", json!({})).await;
    database_error(&r, "a write in read-only mode");
    let r = sql(
        &env,
        "acme/qa",
        "INSERT INTO notes VALUES ('a')",
        json!({"read_only": false}),
    )
    .await;
    assert_eq!(r["result"]["row_count"], 1, "{r}");
    assert_eq!(env.psql("acme", "qa", "SELECT count(*) FROM notes"), "1");

    // Nothing one call sets reaches the next: neither the session nor the role's defaults.
    let r = sql(
        &env,
        "acme/qa",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        json!({}),
    )
    .await;
    assert!(r["result"].is_object(), "{r}");
    for stmt in [
        "ALTER ROLE CURRENT_USER SET search_path = nowhere",
        "ALTER ROLE CURRENT_USER SET default_transaction_read_only = off",
    ] {
        let _ = sql(&env, "acme/qa", stmt, json!({"read_only": false})).await;
    }
    let r = sql(
        &env,
        "acme/qa",
        "SHOW default_transaction_read_only",
        json!({}),
    )
    .await;
    assert_eq!(r["result"]["rows"], json!([["on"]]), "{r}");
    let r = sql(
        &env,
        "acme/qa",
        "SHOW search_path",
        json!({"read_only": false}),
    )
    .await;
    assert_eq!(r["result"]["rows"], json!([["\"$user\", public"]]), "{r}");
    let log = env.daemon.log();
    let record: Value = serde_json::from_slice(
        &std::fs::read(env.daemon.state_dir().join("stages/acme--qa.json")).unwrap(),
    )
    .unwrap();
    let password = record["console_password"]
        .as_str()
        .expect("kept in the record");
    assert!(!log.contains(password), "the console password was logged");
    let db_log = Command::new("docker").args(["logs", &db]).output().unwrap();
    let db_log = format!(
        "{}{}",
        String::from_utf8_lossy(&db_log.stdout),
        String::from_utf8_lossy(&db_log.stderr)
    );
    assert!(
        !db_log.contains(password),
        "PostgreSQL logged the console password"
    );
}

#[tokio::test]
async fn huge_results_stop_at_max_bytes_with_memory_flat() {
    let Some(env) = StageEnv::with_stages("huge_results_stop", "", None, &["qa"]).await else {
        return;
    };
    let query = "SELECT repeat('x', 1000000) FROM generate_series(1, 3000)";
    let before = peak_kib(&env);
    let started = Instant::now();
    let r = sql(&env, "acme/qa", query, json!({})).await;
    let took = started.elapsed();
    let after = peak_kib(&env);
    eprintln!("daemon VmHWM before {before} KiB, after {after} KiB, answered in {took:?}");
    let res = &r["result"];
    let text = r.to_string();
    assert_eq!(res["truncated"], true, "{}", &text[..text.len().min(300)]);
    let rows = res["rows"].as_array().unwrap();
    let data: usize = rows.iter().map(|r| r[0].as_str().unwrap().len()).sum();
    assert!(
        !rows.is_empty() && data <= 8 << 20,
        "{} rows, {data} bytes",
        rows.len()
    );
    // Text that JSON escapes is counted escaped: the answer still fits the API.
    let r = sql(
        &env,
        "acme/qa",
        "SELECT repeat(chr(1), 1000000) FROM generate_series(1, 100)",
        json!({}),
    )
    .await;
    assert_eq!(
        r["result"]["truncated"],
        true,
        "{}",
        &r.to_string()[..300.min(r.to_string().len())]
    );
    assert!(after < 400 * 1024, "peak {after} KiB");
    assert!(took < Duration::from_secs(20), "{took:?}");
    let r = sql(&env, "acme/qa", query, json!({"max_bytes": 1 << 20})).await;
    assert_eq!(r["result"]["rows"].as_array().unwrap().len(), 1);
    assert_eq!(r["result"]["truncated"], true);
    for bad in [json!(0), json!(1u64 << 40)] {
        let r = sql(&env, "acme/qa", "SELECT 1", json!({ "max_bytes": bad })).await;
        let (code, data) = rpc_error(&r);
        assert_eq!(
            (code, data["field"].as_str()),
            (-32602, Some("max_bytes")),
            "{r}"
        );
    }
}

const ACTIVE_USERS: &str = r#"
[usage]
interval = "2s"
[profiles.test]
active_users_query = "SELECT count(*) FROM res_users WHERE active AND NOT share"
"#;

#[tokio::test]
async fn a_locked_table_delays_only_its_own_count() {
    let Some(env) =
        StageEnv::with_stages("a_locked_table_delays", ACTIVE_USERS, None, &["qa", "dev"]).await
    else {
        return;
    };
    for name in ["qa", "dev"] {
        env.psql(
            "acme",
            name,
            "CREATE TABLE res_users (id serial, active bool, share bool); \
             INSERT INTO res_users (active, share) VALUES (true, false)",
        );
    }
    let usage = |stage: &'static str| {
        let env = &env;
        async move {
            let mut http = env.daemon.http().await;
            let started = Instant::now();
            let r = http
                .call("stage.usage", json!({"stage": stage, "refresh": true}))
                .await
                .unwrap();
            (r, started.elapsed())
        }
    };
    let (r, _) = usage("acme/qa").await;
    assert_eq!(r["result"]["active_users"], 1, "{r}");
    let mut locker = hold(
        &env,
        "qa",
        "BEGIN; LOCK TABLE res_users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120)",
    );
    std::thread::sleep(Duration::from_millis(500));
    let locked_at = time::OffsetDateTime::now_utc();
    let ((qa, qa_took), (dev, dev_took)) = tokio::join!(usage("acme/qa"), usage("acme/dev"));
    eprintln!("locked qa answered in {qa_took:?}, dev in {dev_took:?}");
    assert!(qa["result"].is_object(), "{qa}");
    assert_eq!(
        qa["result"]["active_users"], 1,
        "the last count holds: {qa}"
    );
    assert!(qa_took < Duration::from_secs(16), "{qa_took:?}");
    assert_eq!(dev["result"]["active_users"], 1, "{dev}");
    assert!(dev_took < Duration::from_secs(8), "{dev_took:?}");
    // The background pass keeps measuring the other stage while the lock is held.
    let deadline = Instant::now() + Duration::from_secs(45);
    let c = env.daemon.client().await;
    loop {
        let dev = StageApiClient::get(&c, "acme/dev".into()).await.unwrap();
        let at = dev.storage.as_ref().map(|s| s.measured_at);
        if at.is_some_and(|t| t > locked_at + Duration::from_secs(2)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the background pass stalled: {at:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = locker.kill();
    let _ = locker.wait();
}

/// The agent sets the console roles up as the superuser inside the tenant's database: a
/// function the tenant plants in `public` with a closer argument type than the catalog's
/// (CVE-2018-1058's pattern) must never run there.
#[tokio::test]
async fn a_function_planted_in_public_never_runs_as_the_superuser() {
    let Some(env) = StageEnv::with_stages("planted_function", "", None, &["qa"]).await else {
        return;
    };
    // hashtext() gives int4; the catalog's pg_advisory_xact_lock takes int8.
    env.psql(
        "acme",
        "qa",
        "CREATE FUNCTION public.pg_advisory_xact_lock(integer) RETURNS void LANGUAGE plpgsql \
         AS $$BEGIN CREATE TABLE IF NOT EXISTS public.hijacked(x int); END$$",
    );
    let r = sql(&env, "acme/qa", "select 1 as one", json!({})).await;
    assert_eq!(r["result"]["rows"][0][0], 1, "{r}");
    assert_eq!(
        env.psql(
            "acme",
            "qa",
            "select count(*) from pg_tables where tablename = 'hijacked'"
        ),
        "0",
        "the planted function ran as the superuser"
    );
}
