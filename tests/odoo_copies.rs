//! Copies of Odoo stages (issue 16, items 4 and 5): a qa clone serves its source's attachments
//! under its own database name, has its own `database.uuid`/`secret` and URL, no real mail
//! server, and says `neutralized: true`; the source is untouched; a copy whose check fails is
//! rolled back. Restores of another stage's backup are copies too. The default profile's
//! fallback SQL is run on the stand-in's schema (tests/images/odoo/.../schema.sql).

mod common;

use common::odoo::odoo_overrides;
use common::stage_setup::{assert_error_says, call};
use common::{docker, require_engine, rpc_error, StageEnv, TEST_PROFILE};
use serde_json::{json, Value};
use stagelet::api::client::HttpClient;
use std::path::Path;

const SCHEMA: &str = include_str!("images/odoo/odoo/addons/base/data/schema.sql");

/// A production database's identity and its real mail server.
const PROD_ROWS: &str = "
INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid', 'prod-uuid'),
    ('database.secret', 'prod-secret'), ('web.base.url', 'https://erp.example.net')
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_authentication, smtp_encryption,
    smtp_user, smtp_pass, active, sequence)
    VALUES ('company smtp', 'smtp.example.com', 587, 'login', 'starttls', 'erp', 'secret', true, 10);";

const ACTIVE_REAL_MAIL: &str =
    "SELECT count(*) FROM ir_mail_server WHERE active AND smtp_host IS DISTINCT FROM 'invalid'";
const IDENTITY: &str = "SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter \
     WHERE key IN ('database.uuid', 'database.secret')";
const BASE_URL: &str = "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'";

/// `[profiles.<name>]` as TOML text.
fn profile_toml(name: &str, table: toml::Table) -> String {
    let mut profiles = toml::Table::new();
    profiles.insert(name.into(), table.into());
    let mut top = toml::Table::new();
    top.insert("profiles".into(), profiles.into());
    toml::to_string(&top).unwrap()
}

/// A copy of profile `from` in `config` (TOML text) with `keys` and
/// `neutralize_check = "SELECT 1"`: no copy ever passes it.
fn failing_profile(config: &str, from: &str, keys: &toml::Table, name: &str) -> String {
    let table: toml::Table = toml::from_str(config).unwrap();
    let mut p = table["profiles"][from].as_table().unwrap().clone();
    p.extend(keys.clone());
    p.insert("neutralize_check".into(), "SELECT 1".into());
    profile_toml(name, p)
}

fn params(sub: &str, name: &str, ty: &str, clone_from: Option<&str>) -> Value {
    let mut p = json!({"subscription": sub, "name": name, "type": ty,
        "domain": format!("{name}.{sub}.example.com")});
    if let Some(src) = clone_from {
        p["clone_from"] = json!(src);
    }
    p
}

async fn create(http: &mut HttpClient, p: Value) -> Value {
    let r = call(http, "stage.create", p).await;
    assert!(r["result"].is_object(), "{r}");
    r["result"].clone()
}

async fn ok(http: &mut HttpClient, method: &str, p: Value) -> Value {
    let r = call(http, method, p).await;
    assert!(r.get("error").is_none(), "{method}: {r}");
    r["result"].clone()
}

/// Writes `bytes` at `rel` under `root`, every new directory and the file owned by 101:101
/// (the app's user, as Odoo would have written it).
fn put_file(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    let mut dir = root.to_path_buf();
    for part in Path::new(rel).parent().unwrap().components() {
        dir.push(part);
        if !dir.exists() {
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(101), Some(101)).unwrap();
        }
    }
    std::fs::write(&path, bytes).unwrap();
    std::os::unix::fs::chown(&path, Some(101), Some(101)).unwrap();
}

/// GET through nginx once the app answers: until readiness waits are in (odoo-ready), a
/// fresh app may not listen yet (502). Bounded to a minute.
fn get_when_up(env: &StageEnv, host: &str, path: &str) -> (u16, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = env.nginx.get(host, path);
        if !matches!(r.0, 0 | 502) || std::time::Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Nothing of stage `sub/name` is left but its tombstone: no containers, no directory.
async fn only_a_tombstone(env: &StageEnv, http: &mut HttpClient, sub: &str, name: &str) {
    let gone = ok(http, "stage.get", json!({"stage": format!("{sub}/{name}")})).await;
    assert_eq!(gone["state"], "cancelled", "{gone}");
    assert!(!env.data(sub, name).exists());
    let prefix = env.container(sub, name, "");
    let left = docker(&["ps", "-aq", "--filter", &format!("name={prefix}")]);
    assert_eq!(left.trim(), "", "containers of {sub}/{name} left");
}

/// The fallback SQL (no `neutralize_command`) and `on_copy_sql` of the default profile on the
/// stand-in's schema, through the test profile's quick app: a qa clone and a restore of another
/// stage's backup into a dev stage; a failing check rolls the restore back.
#[tokio::test]
async fn the_fallback_sql_neutralises_the_stand_in_schema() {
    if !require_engine("the_fallback_sql_neutralises_the_stand_in_schema").await {
        return;
    }
    let odoo = stagelet::config::profile::odoo();
    let mut keys = toml::Table::new();
    for (k, v) in [
        ("neutralize_sql", &odoo.neutralize_sql),
        ("neutralize_check", &odoo.neutralize_check),
        ("on_copy_sql", &odoo.on_copy_sql),
    ] {
        keys.insert(k.into(), v.clone().into());
    }
    let bad = failing_profile(TEST_PROFILE, "test", &keys, "test-bad");
    let overrides = profile_toml("test", keys);
    let env = StageEnv::start(&format!("{overrides}\n{bad}"));
    let mut http = env.daemon.http().await;
    ok(
        &mut http,
        "subscription.create",
        json!({"id": "acme", "stage_limit": 5}),
    )
    .await;
    create(&mut http, params("acme", "prod", "prod", None)).await;
    env.psql("acme", "prod", SCHEMA);
    env.psql("acme", "prod", PROD_ROWS);
    let prod_files = env.data("acme", "prod").join("filestore");
    put_file(&prod_files, "filestore/prod/ab/abcd", b"prod file");
    // A database of another name's folder travels as it is.
    put_file(&prod_files, "filestore/main/cd/cdef", b"main file");

    let qa = create(&mut http, params("acme", "qa", "qa", Some("acme/prod"))).await;
    assert_eq!(qa["neutralized"], true, "{qa}");
    assert_eq!(env.psql("acme", "qa", ACTIVE_REAL_MAIL), "0");
    assert_eq!(
        env.psql("acme", "qa", "SELECT string_agg(smtp_host || ':' || active || ':' || smtp_authentication, ',' ORDER BY id) FROM ir_mail_server"),
        "smtp.example.com:false:login,invalid:true:login"
    );
    assert_eq!(
        env.psql(
            "acme",
            "qa",
            "SELECT string_agg(cron_name, ',') FROM ir_cron WHERE active"
        ),
        "Base: Auto-vacuum internal data"
    );
    assert_eq!(
        env.psql(
            "acme",
            "qa",
            "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'"
        ),
        "true"
    );
    let identity = env.psql("acme", "qa", IDENTITY);
    assert!(!identity.contains("prod-"), "{identity}");
    assert_eq!(
        env.psql("acme", "qa", BASE_URL),
        "http://qa.acme.example.com"
    );
    let qa_files = env.data("acme", "qa").join("filestore/filestore");
    assert_eq!(
        std::fs::read(qa_files.join("qa/ab/abcd")).unwrap(),
        b"prod file"
    );
    assert!(!qa_files.join("prod").exists());
    assert_eq!(
        std::fs::read(qa_files.join("main/cd/cdef")).unwrap(),
        b"main file"
    );
    // The source is as it was.
    let prod = ok(&mut http, "stage.get", json!({"stage": "acme/prod"})).await;
    assert_eq!(prod["neutralized"], false);
    assert_eq!(env.psql("acme", "prod", ACTIVE_REAL_MAIL), "1");
    assert_eq!(env.psql("acme", "prod", IDENTITY), "prod-secret prod-uuid");
    assert!(prod_files.join("filestore/prod/ab/abcd").exists());

    // A backup of prod restored into a dev stage of the same name made again: a copy. Its
    // manifest says the database was `main` (as a backup of another stage's database would):
    // that folder becomes the stage's own, replacing what the backup held under `prod`.
    let backup = ok(&mut http, "stage.backup", json!({"stage": "acme/prod"})).await;
    let id = backup["id"].as_str().unwrap().to_string();
    assert_eq!(backup["db_name"], "prod");
    ok(&mut http, "stage.cancel", json!({"stage": "acme/prod"})).await;
    create(&mut http, params("acme", "prod", "dev", None)).await;
    ok(&mut http, "stage.stop", json!({"stage": "acme/prod"})).await;
    let manifest = env
        .daemon
        .state_dir()
        .join(format!("backups/acme/prod/{id}/manifest.json"));
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["db_name"] = json!("main");
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let restored = ok(
        &mut http,
        "stage.restore_backup",
        json!({"stage": "acme/prod", "backup": id}),
    )
    .await;
    assert_eq!(restored["neutralized"], true, "{restored}");
    ok(&mut http, "stage.start", json!({"stage": "acme/prod"})).await;
    assert_eq!(env.psql("acme", "prod", ACTIVE_REAL_MAIL), "0");
    assert!(!env.psql("acme", "prod", IDENTITY).contains("prod-"));
    assert_eq!(
        env.psql("acme", "prod", BASE_URL),
        "http://prod.acme.example.com"
    );
    let files = env.data("acme", "prod").join("filestore/filestore");
    assert_eq!(
        std::fs::read(files.join("prod/cd/cdef")).unwrap(),
        b"main file"
    );
    assert!(!files.join("prod/ab/abcd").exists(), "replaced, not merged");
    assert!(!files.join("main").exists());

    // Under a profile whose check never passes, a restored copy is refused and the stage's
    // database stays as it was: no table of the backup, no side database.
    ok(
        &mut http,
        "subscription.create",
        json!({"id": "bad", "stage_limit": 5, "profile": "test-bad"}),
    )
    .await;
    create(&mut http, params("bad", "x", "prod", None)).await;
    env.psql("bad", "x", SCHEMA);
    let backup = ok(&mut http, "stage.backup", json!({"stage": "bad/x"})).await;
    ok(&mut http, "stage.cancel", json!({"stage": "bad/x"})).await;
    create(&mut http, params("bad", "x", "qa", None)).await;
    ok(&mut http, "stage.stop", json!({"stage": "bad/x"})).await;
    let r = call(
        &mut http,
        "stage.restore_backup",
        json!({"stage": "bad/x", "backup": backup["id"]}),
    )
    .await;
    assert_eq!(rpc_error(&r).0, -32012, "{r}");
    assert_error_says(&r, "neutralize_check returned 1");
    let x = ok(&mut http, "stage.start", json!({"stage": "bad/x"})).await;
    assert_eq!(x["neutralized"], false);
    assert_eq!(
        env.psql("bad", "x", "SELECT to_regclass('ir_mail_server') IS NULL"),
        "t"
    );
    assert_eq!(
        env.psql(
            "bad",
            "x",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'x\\_\\_%'"
        ),
        "0"
    );
}

/// The default profile on the Odoo stand-in: `odoo neutralize` in a one-off container, the
/// attachments served under the clone's database name through nginx, its own secrets; a clone
/// whose check fails is rolled back; a restore of another stage's backup neutralised too.
#[tokio::test]
async fn an_odoo_qa_clone_serves_its_files_and_is_neutralised() {
    if !require_engine("an_odoo_qa_clone_serves_its_files_and_is_neutralised").await {
        return;
    }
    let base = odoo_overrides();
    let bad = failing_profile(&base, "odoo", &toml::Table::new(), "odoo-bad");
    let env = StageEnv::start(&format!("{base}\n{bad}"));
    let mut http = env.daemon.http().await;
    ok(
        &mut http,
        "subscription.create",
        json!({"id": "acme", "stage_limit": 5}),
    )
    .await;
    create(&mut http, params("acme", "prod", "prod", None)).await;
    env.psql("acme", "prod", PROD_ROWS);
    let body = b"an attachment of prod\n";
    let att = env.psql(
        "acme",
        "prod",
        &format!(
            "INSERT INTO ir_attachment (name, res_model, res_id, public, store_fname, file_size, \
             checksum, mimetype) VALUES ('note.txt', 'res.partner', 1, true, 'ab/ab12cd', {}, \
             'ab12cd', 'text/plain') RETURNING id",
            body.len()
        ),
    );
    let att = att.lines().next().unwrap().to_string();
    let prod_files = env.data("acme", "prod").join("filestore");
    put_file(&prod_files, "filestore/prod/ab/ab12cd", body);
    let url = format!("/web/content/{att}");
    assert_eq!(
        get_when_up(&env, "prod.acme.example.com", &url),
        (200, String::from_utf8_lossy(body).into_owned())
    );

    let qa = create(&mut http, params("acme", "qa", "qa", Some("acme/prod"))).await;
    assert_eq!(qa["neutralized"], true, "{qa}");
    assert_eq!(
        get_when_up(&env, "qa.acme.example.com", &url),
        (200, String::from_utf8_lossy(body).into_owned())
    );
    let identity = env.psql("acme", "qa", IDENTITY);
    assert!(!identity.contains("prod-"), "{identity}");
    assert_eq!(
        env.psql("acme", "qa", BASE_URL),
        "http://qa.acme.example.com"
    );
    assert_eq!(env.psql("acme", "qa", ACTIVE_REAL_MAIL), "0");
    assert_eq!(
        env.psql(
            "acme",
            "qa",
            "SELECT count(*) FROM ir_mail_server WHERE active AND smtp_host = 'invalid'"
        ),
        "1"
    );
    let got = ok(&mut http, "stage.get", json!({"stage": "acme/qa"})).await;
    assert_eq!(got["neutralized"], true);
    // prod is as it was, and still serves its file.
    assert_eq!(env.psql("acme", "prod", IDENTITY), "prod-secret prod-uuid");
    assert_eq!(env.psql("acme", "prod", ACTIVE_REAL_MAIL), "1");
    let prod = ok(&mut http, "stage.get", json!({"stage": "acme/prod"})).await;
    assert_eq!(prod["neutralized"], false);
    assert_eq!(get_when_up(&env, "prod.acme.example.com", &url).0, 200);

    // prod's backup restored into a qa stage of that name made again: neutralised by the
    // command on the side database, and the files still served.
    let backup = ok(&mut http, "stage.backup", json!({"stage": "acme/prod"})).await;
    ok(&mut http, "stage.cancel", json!({"stage": "acme/prod"})).await;
    create(&mut http, params("acme", "prod", "qa", None)).await;
    ok(&mut http, "stage.stop", json!({"stage": "acme/prod"})).await;
    let restored = ok(
        &mut http,
        "stage.restore_backup",
        json!({"stage": "acme/prod", "backup": backup["id"]}),
    )
    .await;
    assert_eq!(restored["neutralized"], true, "{restored}");
    ok(&mut http, "stage.start", json!({"stage": "acme/prod"})).await;
    assert_eq!(env.psql("acme", "prod", ACTIVE_REAL_MAIL), "0");
    assert!(!env.psql("acme", "prod", IDENTITY).contains("prod-"));
    assert_eq!(get_when_up(&env, "prod.acme.example.com", &url).0, 200);

    // A clone whose check fails is rolled back; its source is untouched.
    ok(
        &mut http,
        "subscription.create",
        json!({"id": "bad", "stage_limit": 5, "profile": "odoo-bad"}),
    )
    .await;
    create(&mut http, params("bad", "prod", "prod", None)).await;
    env.psql("bad", "prod", PROD_ROWS);
    let r = call(
        &mut http,
        "stage.create",
        params("bad", "qa", "qa", Some("bad/prod")),
    )
    .await;
    assert_eq!(rpc_error(&r).0, -32012, "{r}");
    assert_error_says(&r, "neutralize_check returned 1");
    only_a_tombstone(&env, &mut http, "bad", "qa").await;
    let src = ok(&mut http, "stage.get", json!({"stage": "bad/prod"})).await;
    assert_eq!(src["state"], "running");
    assert_eq!(env.psql("bad", "prod", ACTIVE_REAL_MAIL), "1");
    assert_eq!(env.psql("bad", "prod", IDENTITY), "prod-secret prod-uuid");
    assert!(env
        .data("bad", "prod")
        .join("filestore/filestore/prod")
        .exists());
    assert_eq!(
        get_when_up(&env, "prod.bad.example.com", "/web/health").0,
        200
    );
}
