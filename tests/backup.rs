//! Backups on a real stage: back up, damage the data, restore, and everything comes back; a
//! damaged dump is refused; retention; backups outlive a cancelled stage.

mod common;

use common::stage_setup::{assert_error_says, call, create_typed};
use common::{require_engine, rpc_error, StageEnv};
use serde_json::{json, Value};
use stagelet::api::client::HttpClient;
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

/// `stage.restore_backup` of `backup` on `acme/prod`; the response.
async fn restore(http: &mut HttpClient, backup: &str) -> Value {
    let params = json!({"stage": "acme/prod", "backup": backup});
    call(http, "stage.restore_backup", params).await
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
    create_typed(&c, "acme", "prod", "prod").await.unwrap();
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
    let r = restore(&mut http, &b.id).await;
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
    let r = restore(&mut http, &b.id).await;
    let (code, data) = rpc_error(&r);
    assert_eq!(
        (code, data["field"].as_str()),
        (-32602, Some("backup")),
        "{r}"
    );
    assert_error_says(&r, "db.dump");
    StageApiClient::start(&c, "acme/prod".into()).await.unwrap();
    assert_eq!(
        env.psql("acme", "prod", "SELECT count(*) FROM invoices"),
        "1001",
        "untouched"
    );
    let r = restore(&mut http, "../../etc").await;
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
    let r = call(
        &mut http,
        "stage.backup_delete",
        json!({"stage": "acme/prod", "backup": second.id}),
    )
    .await;
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

/// Unmounts at the end of the test, whatever happened.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The entries of a directory, by name.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn a_full_disk_fails_the_backup_cleanly() {
    let Some(env) =
        StageEnv::with_stages("a_full_disk_fails_the_backup_cleanly", "", None, &["qa"]).await
    else {
        return;
    };
    // The backups on a 20 MB tmpfs; the filestore (on the host's disk) holds 30 MB.
    let backups = env.daemon.state_dir().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=20m", "tmpfs"])
        .arg(&backups)
        .status()
        .unwrap();
    assert!(mounted.success(), "this test mounts a tmpfs (as root)");
    let _mount = Mount(backups.clone());
    let big = env.data("acme", "qa").join("filestore/big.bin");
    let noise = vec![7u8; 30 << 20];
    std::fs::write(&big, &noise).unwrap();
    let c = env.daemon.client().await;
    let mut http = env.daemon.http().await;

    let r = call(&mut http, "stage.backup", json!({"stage": "acme/qa"})).await;
    let (code, data) = rpc_error(&r);
    assert_eq!(
        (code, data["kind"].as_str()),
        (-32017, Some("backup")),
        "{r}"
    );
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("No space left on device"), "{r}");
    let list = BackupApiClient::backups(&c, "acme/qa".into())
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].status, BackupStatus::Failed);
    assert!(
        list[0].error.as_deref().unwrap().contains("No space left"),
        "{list:?}"
    );
    let dir = backups.join(format!("acme/qa/{}", list[0].id));
    assert_eq!(entries(&dir), ["manifest.json"], "no data file stays");

    // Not even a manifest fits: no folder stays behind.
    let filler = backups.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=40"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let r = call(&mut http, "stage.backup", json!({"stage": "acme/qa"})).await;
    assert_eq!(rpc_error(&r).0, -32017, "{r}");
    assert_eq!(
        entries(&backups.join("acme/qa")),
        [list[0].id.clone()],
        "{r}"
    );

    // The stage is untouched, and a backup works again once there is room.
    let s = StageApiClient::get(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(s.state.as_str(), "running");
    assert_eq!(std::fs::read(&big).unwrap(), noise);
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&big).unwrap();
    let b = BackupApiClient::backup(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(b.status, BackupStatus::Ok);
}

#[tokio::test]
async fn a_backup_a_crash_interrupted_is_failed_and_pruned() {
    let Some(env) = StageEnv::with_stages(
        "a_backup_a_crash_interrupted_is_failed_and_pruned",
        "[backups]\nkeep = 1",
        None,
        &["qa"],
    )
    .await
    else {
        return;
    };
    let state = env.daemon.state_dir();
    let record: Value =
        serde_json::from_slice(&std::fs::read(state.join("stages/acme--qa.json")).unwrap())
            .unwrap();
    // What a crash mid-backup leaves: a manifest still `running`, and half a dump.
    let dir = state.join("backups/acme/qa/20250101T000000000Z-crsh");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = json!({
        "id": "20250101T000000000Z-crsh", "stage": "acme/qa", "stage_uuid": record["uuid"],
        "status": "running", "error": null, "created_at": "2025-01-01T00:00:00Z",
        "finished_at": null, "sizes": {}, "sha256": {}, "postgres_version": null,
        "git_commit": null
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join("db.dump"), b"PGDMP half").unwrap();
    let c = env.daemon.client().await;
    let list = BackupApiClient::backups(&c, "acme/qa".into())
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].status, BackupStatus::Failed);
    assert!(list[0].error.as_deref().unwrap().contains("interrupted"));

    // The next ok backup's retention removes it (it is older than the oldest kept).
    let b = BackupApiClient::backup(&c, "acme/qa".into()).await.unwrap();
    let list = BackupApiClient::backups(&c, "acme/qa".into())
        .await
        .unwrap();
    let ids: Vec<&str> = list.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, [b.id.as_str()]);
    assert!(!dir.exists(), "the interrupted backup's files are gone");
}
