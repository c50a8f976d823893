//! Backups on a real stage: back up, damage the data, restore, and everything comes back; a
//! damaged dump is refused; retention; backups outlive a cancelled stage.

mod common;

use common::{require_engine, rpc_error, StageEnv};
use serde_json::{json, Value};
use stagelet::api::rpc::{BackupApiClient, StageApiClient, SubscriptionApiClient};
use stagelet::core::stage::backup::BackupStatus;
use std::process::Command;

fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn back_up_damage_restore() {
    if !require_engine("back_up_damage_restore").await {
        return;
    }
    let env = StageEnv::start("[backups]\nkeep = 2");
    let c = env.daemon.client().await;
    SubscriptionApiClient::create(&c, "acme".into(), 3, None, None, None)
        .await
        .unwrap();
    StageApiClient::create(
        &c,
        "acme".into(),
        "prod".into(),
        "prod".into(),
        "prod.acme.example.com".into(),
        None,
        None,
        None,
    )
    .await
    .unwrap();
    env.psql("acme", "prod", "CREATE TABLE invoices (id int, total numeric); INSERT INTO invoices SELECT g, g * 1.5 FROM generate_series(1, 1000) g;");
    let filestore = env.data("acme", "prod").join("filestore");
    std::fs::create_dir_all(filestore.join("filestore/prod/ab")).unwrap();
    std::fs::write(
        filestore.join("filestore/prod/ab/doc"),
        "the customer's attachment",
    )
    .unwrap();

    let record = env.daemon.state_dir().join("stages/acme--prod.json");
    let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    let password = record["db_password"].as_str().unwrap().to_string();
    let b = BackupApiClient::backup(&c, "acme/prod".into())
        .await
        .unwrap();
    assert_eq!(b.status, BackupStatus::Ok);
    assert!(
        b.postgres_version.as_deref().unwrap().starts_with("15"),
        "{b:?}"
    );
    let dir = env
        .daemon
        .state_dir()
        .join(format!("backups/acme/prod/{}", b.id));
    for file in ["db.dump", "filestore.tar"] {
        assert_eq!(b.sha256[file], sha256sum(&dir.join(file)), "{file}");
        assert_eq!(
            b.sizes[file],
            std::fs::metadata(dir.join(file)).unwrap().len()
        );
    }
    assert_eq!(
        &std::fs::read(dir.join("db.dump")).unwrap()[..5],
        b"PGDMP",
        "pg_dump -Fc"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "ok");

    // Damage: a table dropped, a file deleted, another added.
    env.psql("acme", "prod", "DROP TABLE invoices");
    std::fs::remove_file(filestore.join("filestore/prod/ab/doc")).unwrap();
    std::fs::write(filestore.join("stray.txt"), "after the backup").unwrap();

    // Only on a stopped stage.
    let mut http = env.daemon.http().await;
    let r = http
        .call(
            "stage.restore_backup",
            json!({"stage": "acme/prod", "backup": b.id}),
        )
        .await
        .unwrap();
    let (code, data) = rpc_error(&r);
    assert_eq!((code, data["state"].as_str()), (-32003, Some("running")));
    StageApiClient::stop(&c, "acme/prod".into(), Some(2))
        .await
        .unwrap();
    let s = BackupApiClient::restore_backup(&c, "acme/prod".into(), b.id.clone())
        .await
        .unwrap();
    assert_eq!(s.state.as_str(), "stopped");
    assert_eq!(
        std::fs::read_to_string(filestore.join("filestore/prod/ab/doc")).unwrap(),
        "the customer's attachment"
    );
    assert!(!filestore.join("stray.txt").exists());
    StageApiClient::start(&c, "acme/prod".into()).await.unwrap();
    assert_eq!(
        env.psql("acme", "prod", "SELECT count(*), sum(total) FROM invoices"),
        "1000|750750.0"
    );
    // The sums still match after a restore.
    assert_eq!(b.sha256["db.dump"], sha256sum(&dir.join("db.dump")));

    // A damaged dump is refused before anything changes.
    let mut bytes = std::fs::read(dir.join("db.dump")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(dir.join("db.dump"), bytes).unwrap();
    env.psql("acme", "prod", "INSERT INTO invoices VALUES (1001, 1)");
    StageApiClient::stop(&c, "acme/prod".into(), Some(2))
        .await
        .unwrap();
    let r = http
        .call(
            "stage.restore_backup",
            json!({"stage": "acme/prod", "backup": b.id}),
        )
        .await
        .unwrap();
    let (code, data) = rpc_error(&r);
    assert_eq!(
        (code, data["field"].as_str()),
        (-32602, Some("backup")),
        "{r}"
    );
    assert!(
        r["error"]["message"].as_str().unwrap().contains("db.dump"),
        "{r}"
    );
    StageApiClient::start(&c, "acme/prod".into()).await.unwrap();
    assert_eq!(
        env.psql("acme", "prod", "SELECT count(*) FROM invoices"),
        "1001",
        "untouched"
    );
    let r = http
        .call(
            "stage.restore_backup",
            json!({"stage": "acme/prod", "backup": "../../etc"}),
        )
        .await
        .unwrap();
    assert_eq!(rpc_error(&r).1["field"], "backup");

    // Retention keeps the newest two; delete removes one.
    let second = BackupApiClient::backup(&c, "acme/prod".into())
        .await
        .unwrap();
    let third = BackupApiClient::backup(&c, "acme/prod".into())
        .await
        .unwrap();
    let ids: Vec<String> = BackupApiClient::backups(&c, "acme/prod".into())
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, vec![third.id.clone(), second.id.clone()]);
    assert!(!dir.exists(), "the oldest went");
    BackupApiClient::backup_delete(&c, "acme/prod".into(), second.id.clone())
        .await
        .unwrap();
    let r = http
        .call(
            "stage.backup_delete",
            json!({"stage": "acme/prod", "backup": second.id}),
        )
        .await
        .unwrap();
    assert_eq!(rpc_error(&r).0, -32001);

    // Backups of a cancelled stage stay until deleted.
    StageApiClient::cancel(&c, "acme/prod".into())
        .await
        .unwrap();
    let kept = BackupApiClient::backups(&c, "acme/prod".into())
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert!(env
        .daemon
        .state_dir()
        .join(format!("backups/acme/prod/{}/db.dump", third.id))
        .exists());
    // pg_dump got the password through its environment; it never reached the log.
    let log = env.daemon.log();
    assert!(log.contains("backup"), "the daemon logs at debug here");
    assert!(!log.contains(&password), "the database password was logged");
    let out = env.daemon.ctl(&["stage", "backups", "acme/prod"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&third.id));
}
