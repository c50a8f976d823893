//! Cloning a stage on the real engine: rows, filestore and addons copied; a qa copy neutralised
//! (a stand-in `ir_mail_server` table); the source unchanged; a failed check rolls the copy
//! back; a subscription's `db_template` seeds every new stage.

mod common;

use common::stage_setup::assert_error_says;
use common::{docker, require_engine, rpc_error, StageEnv};
use serde_json::json;
use stagelet::api::rpc::{BackupApiClient, StageApiClient, SubscriptionApiClient};
use stagelet::core::subscription::Settings;

const NEUTRALIZE: &str = r#"
[profiles.test]
neutralize_sql = "UPDATE ir_mail_server SET active = false WHERE name <> 'stubborn'"
neutralize_check = "SELECT count(*) FROM ir_mail_server WHERE active"
"#;

#[tokio::test]
async fn a_clone_copies_neutralises_and_leaves_the_source_alone() {
    if !require_engine("a_clone_copies_neutralises_and_leaves_the_source_alone").await {
        return;
    }
    let env = StageEnv::start(NEUTRALIZE);
    let c = env.daemon.client().await;
    SubscriptionApiClient::create(&c, "acme".into(), 5, None, None, None)
        .await
        .unwrap();
    SubscriptionApiClient::create(&c, "other".into(), 5, None, None, None)
        .await
        .unwrap();
    let create = |name: &str, ty: &str, clone_from: Option<&str>| {
        let mut p = json!({"subscription": "acme", "name": name, "type": ty, "domain": format!("{name}.acme.example.com")});
        if let Some(src) = clone_from {
            p["clone_from"] = json!(src);
        }
        p
    };
    let mut http = env.daemon.http().await;
    let r = http
        .call("stage.create", create("prod", "prod", None))
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
    env.psql("acme", "prod", "CREATE TABLE ir_mail_server (id serial, name text, active bool);
        INSERT INTO ir_mail_server (name, active) VALUES ('smtp', true), ('relay', true), ('stubborn', true);
        CREATE TABLE partners AS SELECT g AS id, 'partner ' || g AS name FROM generate_series(1, 500) g;");
    let src = env.data("acme", "prod");
    std::fs::create_dir_all(src.join("filestore/filestore/prod/ab")).unwrap();
    std::fs::write(src.join("filestore/filestore/prod/ab/doc"), "attachment").unwrap();
    std::fs::create_dir_all(src.join("addons/mod_a")).unwrap();
    std::fs::write(src.join("addons/mod_a/__init__.py"), "# module").unwrap();

    // Refused before anything: a stage of another subscription, a missing one.
    let mut p = create("qa", "qa", Some("acme/prod"));
    p["subscription"] = json!("other");
    p["domain"] = json!("qa.other.example.com");
    let (code, data) = rpc_error(&http.call("stage.create", p).await.unwrap());
    assert_eq!((code, data["field"].as_str()), (-32602, Some("clone_from")));
    let (code, data) = rpc_error(
        &http
            .call("stage.create", create("qa", "qa", Some("acme/nope")))
            .await
            .unwrap(),
    );
    assert_eq!((code, data["field"].as_str()), (-32602, Some("clone_from")));

    // The stubborn mail server survives neutralize_sql: the check fails, the copy rolls back.
    let r = http
        .call("stage.create", create("qa", "qa", Some("acme/prod")))
        .await
        .unwrap();
    let (code, _) = rpc_error(&r);
    assert_eq!(code, -32012, "{r}");
    assert_error_says(&r, "neutralize_check returned 1");
    let gone = StageApiClient::get(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(gone.state.as_str(), "cancelled");
    assert!(!env.data("acme", "qa").exists());
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("name={}", env.container("acme", "qa", ""))
        ])
        .trim(),
        ""
    );

    // Without it, the qa copy is made: rows, files, no active mail server.
    env.psql(
        "acme",
        "prod",
        "DELETE FROM ir_mail_server WHERE name = 'stubborn'",
    );
    let out = env.daemon.ctl(&[
        "stage",
        "create",
        "acme/qa",
        "--type",
        "qa",
        "--domain",
        "qa.acme.example.com",
        "--clone-from",
        "acme/prod",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("neutralize"),
        "steps shown"
    );
    assert_eq!(
        env.psql("acme", "qa", "SELECT count(*), max(name) FROM partners"),
        "500|partner 99"
    );
    assert_eq!(
        env.psql(
            "acme",
            "qa",
            "SELECT count(*) FROM ir_mail_server WHERE active"
        ),
        "0"
    );
    let copy = env.data("acme", "qa");
    // The file folder follows the copy's database name.
    assert_eq!(
        std::fs::read_to_string(copy.join("filestore/filestore/qa/ab/doc")).unwrap(),
        "attachment"
    );
    assert!(!copy.join("filestore/filestore/prod").exists());
    assert_eq!(
        std::fs::read_to_string(copy.join("addons/mod_a/__init__.py")).unwrap(),
        "# module"
    );
    // The init command did not run again: the copied filestore says where it ran.
    assert_eq!(
        std::fs::read_to_string(copy.join("filestore/init.txt")).unwrap(),
        "init ran for prod\n"
    );
    assert_eq!(env.nginx.get("qa.acme.example.com", "/").0, 200);

    // The source is unchanged and still running.
    assert_eq!(
        env.psql(
            "acme",
            "prod",
            "SELECT count(*) FROM ir_mail_server WHERE active"
        ),
        "2"
    );
    assert_eq!(
        StageApiClient::get(&c, "acme/prod".into())
            .await
            .unwrap()
            .state
            .as_str(),
        "running"
    );
    assert_eq!(env.nginx.get("prod.acme.example.com", "/").0, 200);

    // A prod copy is not neutralised.
    let r = http
        .call("stage.create", create("prod2", "prod", Some("acme/prod")))
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
    assert_eq!(
        env.psql(
            "acme",
            "prod2",
            "SELECT count(*) FROM ir_mail_server WHERE active"
        ),
        "2"
    );

    // A stopped source cannot be dumped.
    StageApiClient::stop(&c, "acme/prod2".into(), Some(2))
        .await
        .unwrap();
    let (code, _) = rpc_error(
        &http
            .call("stage.create", create("dev", "dev", Some("acme/prod2")))
            .await
            .unwrap(),
    );
    assert_eq!(code, -32003);

    // A subscription's db_template seeds its new stages.
    let backup = BackupApiClient::backup(&c, "acme/prod".into())
        .await
        .unwrap();
    let template = env
        .daemon
        .state_dir()
        .join(format!("backups/acme/prod/{}/db.dump", backup.id));
    let settings = Settings {
        db_template: Some(template.display().to_string()),
        ..Default::default()
    };
    SubscriptionApiClient::create(&c, "beta".into(), 2, None, None, Some(settings))
        .await
        .unwrap();
    let r = http.call("stage.create", json!({"subscription": "beta", "name": "dev", "type": "dev", "domain": "dev.beta.example.com"})).await.unwrap();
    assert!(r["result"].is_object(), "{r}");
    assert_eq!(
        env.psql("beta", "dev", "SELECT count(*) FROM partners"),
        "500"
    );
    let bad =
        json!({"id": "gamma", "stage_limit": 1, "settings": {"db_template": "/no/such/file.dump"}});
    let (code, data) = rpc_error(&http.call("subscription.create", bad).await.unwrap());
    assert_eq!(
        (code, data["field"].as_str()),
        (-32602, Some("settings.db_template"))
    );
}
