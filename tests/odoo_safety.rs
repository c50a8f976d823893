//! Issue 16, safe by default: a stage on the default `odoo` profile (the Odoo stand-in), seen
//! through nginx, `docker inspect`, `ps`, PostgreSQL and the bytes of its configuration file.

mod common;

use common::odoo::odoo_overrides;
use common::{docker, inspect, StageEnv};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

const HOST: &str = "qa.acme.example.com";

/// Stage `name`'s record file, as the agent keeps it.
fn record(env: &StageEnv, name: &str) -> Value {
    let path = env
        .daemon
        .state_dir()
        .join(format!("stages/acme--{name}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// GET through nginx with the stage's Host header and `extra` curl arguments.
fn get(env: &StageEnv, path: &str, extra: &[&str]) -> (u16, String) {
    let host = format!("Host: {HOST}");
    let url = format!("http://127.0.0.1:{}{path}", env.nginx.http_port);
    let mut args = vec!["-H", &host];
    args.extend(extra);
    args.push(&url);
    common::nginx::curl(&args)
}

/// Polls `/web/health` through nginx until it answers 200 (the app may still be starting).
fn wait_serving(env: &StageEnv) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = get(env, "/web/health", &[]);
        if status == 200 {
            assert!(body.contains("pass"), "{body}");
            return;
        }
        assert!(Instant::now() < deadline, "never served: {status} {body}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// psql on stage `name`'s database as `user` with `password`: one value.
fn psql_as(env: &StageEnv, name: &str, user: &str, password: &str, sql: &str) -> String {
    let ip = inspect(
        &env.container("acme", name, "db"),
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    let out = Command::new("psql")
        .args(["-h", &ip, "-U", user, "-d", name, "-v", "ON_ERROR_STOP=1"])
        .args(["-At", "-c", sql])
        .env("PGPASSWORD", password)
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql as {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_default_odoo_stage_is_safe_on_the_internet() {
    let test = "a_default_odoo_stage_is_safe_on_the_internet";
    let Some(env) = StageEnv::with_stages(test, &odoo_overrides(), None, &["qa"]).await else {
        return;
    };
    wait_serving(&env);
    let app = env.container("acme", "qa", "app");

    // The database manager and selector are refused at nginx; nothing lists the databases.
    for path in [
        "/web/database/manager",
        "/web/database/selector",
        "/web/database/list",
    ] {
        let (status, body) = get(&env, path, &[]);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(!body.contains("qa"), "{path} names a database: {body}");
    }
    assert_eq!(get(&env, "/web/health", &[]).0, 200);

    // Proxy mode: the app logs the client nginx saw (from a loopback address of its own, so
    // neither the Docker gateway nor a client-supplied X-Forwarded-For), never the spoofed one.
    let probe = "/web/health?probe=xff";
    let (status, _) = get(
        &env,
        probe,
        &[
            "--interface",
            "127.0.0.7",
            "-H",
            "X-Forwarded-For: 198.51.100.7",
        ],
    );
    assert_eq!(status, 200);
    let logged = (0..50)
        .find_map(|_| {
            let out = Command::new("docker")
                .args(["logs", &app])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            let line = text.lines().find(|l| l.contains(probe)).map(str::to_string);
            if line.is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            line
        })
        .expect("the app logs the request");
    assert!(
        logged.contains("werkzeug: 127.0.0.7 "),
        "the app logs nginx's client: {logged}"
    );

    // The app's role: not a superuser, and the owner of the database and its tables.
    let rec = record(&env, "qa");
    let app_password = rec["app_db_password"].as_str().expect("an app role");
    let db_password = rec["db_password"].as_str().unwrap();
    assert_eq!(
        psql_as(
            &env,
            "qa",
            "odoo_app",
            app_password,
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ),
        "f"
    );
    assert_eq!(
        psql_as(
            &env,
            "qa",
            "odoo_app",
            app_password,
            "SELECT pg_get_userbyid(datdba) || ' ' || \
             (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'odoo_app') \
             || ' ' || (SELECT count(*) FROM pg_tables WHERE schemaname = 'public') \
             FROM pg_database WHERE datname = current_database()"
        )
        .split(' ')
        .take(2)
        .collect::<Vec<_>>(),
        ["odoo_app", "0"],
        "the app's role owns the database and every table"
    );
    assert!(
        psql_as(
            &env,
            "qa",
            "odoo_app",
            app_password,
            "SELECT count(*) FROM res_users"
        )
        .parse::<u32>()
        .unwrap()
            > 0
    );

    // No password on a command line or in the app's container.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    for secret in [app_password, db_password] {
        assert!(!ps.contains(secret), "ps shows a database password");
    }
    let seen = docker(&[
        "inspect",
        "-f",
        "{{json .Config.Env}} {{json .Config.Cmd}} {{json .Args}} {{json .Config.Entrypoint}}",
        &app,
    ]);
    assert!(seen.contains("stagelet.conf"), "{seen}");
    for secret in [app_password, db_password] {
        assert!(
            !seen.contains(secret),
            "docker inspect shows a password: {seen}"
        );
    }
    assert!(!seen.contains("db_password"), "{seen}");

    // The configuration file: private to the app's user, one database, no manager, proxy mode,
    // a hashed master password that no answer of the API shows.
    let conf = env.data("acme", "qa").join("config/app.conf");
    let meta = std::fs::metadata(&conf).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!((meta.uid(), meta.gid()), (101, 101));
    let text = std::fs::read_to_string(&conf).unwrap();
    for line in [
        "list_db = False",
        "proxy_mode = True",
        "dbfilter = ^qa$",
        "db_user = odoo_app",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("admin_passwd = "))
        .expect("a master password");
    assert!(hash.starts_with("$pbkdf2-sha512$"), "{hash}");
    assert!(
        !text.contains(db_password),
        "the superuser's password stays out"
    );
    let mut http = env.daemon.http().await;
    let got = http
        .call("stage.get", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    assert_eq!(got["result"]["state"], "running", "{got}");
    let answer = got.to_string();
    assert!(!answer.contains(hash) && !answer.contains("master_password"));

    // Rewritten before every start: what was changed on disk is back after a restart.
    std::fs::write(&conf, "[options]\nlist_db = True\n").unwrap();
    let r = http
        .call("stage.restart", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    assert_eq!(r["result"]["state"], "running", "{r}");
    let again = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(again, text, "the same file, the same master password hash");
    wait_serving(&env);
    assert_eq!(get(&env, "/web/database/manager", &[]).0, 403);

    // A copy is restored as the copy's own app role: it owns every table there too.
    let r = http
        .call(
            "stage.create",
            json!({"subscription": "acme", "name": "dev", "type": "dev",
                   "domain": "dev.acme.example.com", "clone_from": "acme/qa"}),
        )
        .await
        .unwrap();
    assert_eq!(r["result"]["state"], "running", "{r}");
    let dev_password = record(&env, "dev")["app_db_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(dev_password, app_password, "each stage has its own");
    assert_eq!(
        psql_as(
            &env,
            "dev",
            "odoo_app",
            &dev_password,
            "SELECT (SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user) || ' ' || \
             (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'odoo_app') \
             || ' ' || (SELECT count(*) FROM res_users)"
        )
        .split(' ')
        .take(2)
        .collect::<Vec<_>>(),
        ["false", "0"]
    );

    // A backup restored is restored as the app's role, into a database it owns.
    let b = http
        .call("stage.backup", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    let id = b["result"]["id"].as_str().expect("a backup").to_string();
    let r = http
        .call("stage.stop", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    assert_eq!(r["result"]["state"], "stopped", "{r}");
    let r = http
        .call(
            "stage.restore_backup",
            json!({"stage": "acme/qa", "backup": id}),
        )
        .await
        .unwrap();
    assert!(r["error"].is_null(), "{r}");
    let r = http
        .call("stage.start", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    assert_eq!(r["result"]["state"], "running", "{r}");
    assert_eq!(
        psql_as(
            &env,
            "qa",
            "odoo_app",
            app_password,
            "SELECT pg_get_userbyid(datdba) || ' ' || \
             (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'odoo_app') \
             FROM pg_database WHERE datname = current_database()"
        ),
        "odoo_app 0"
    );
    wait_serving(&env);
}
