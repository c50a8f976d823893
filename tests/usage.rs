//! Storage and monitoring on a real stage: sizes against du, growth of the database, active
//! users, shared refreshes, the storage limit, the background pass and Docker stats.

mod common;

use common::stage_setup::assert_error_says;
use common::{du, rpc_error, StageEnv};
use serde_json::json;
use stagelet::api::rpc::{StageApiClient, SubscriptionApiClient};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ACTIVE_USERS: &str = r#"
[profiles.test]
active_users_query = "SELECT count(*) FROM res_users WHERE active AND NOT share"
"#;

async fn stage_env(test: &str, overrides: &str, limit_mb: Option<u64>) -> Option<StageEnv> {
    StageEnv::with_stages(test, overrides, limit_mb, &["qa"]).await
}

#[tokio::test]
async fn sizes_match_du_and_follow_the_data() {
    let Some(env) = stage_env("sizes_match_du_and_follow_the_data", ACTIVE_USERS, None).await
    else {
        return;
    };
    let c = env.daemon.client().await;
    let data = env.data("acme", "qa");
    std::fs::write(data.join("addons/module.py"), vec![b'#'; 12_345]).unwrap();
    let before = StageApiClient::usage(&c, "acme/qa".into(), Some(true))
        .await
        .unwrap();
    let s = before.storage.clone().expect("measured");
    // The filestore (init.txt) and addons are still: they equal du exactly.
    assert_eq!(s.filestore_bytes, du(&["-sxB1"], &data.join("filestore")));
    assert_eq!(
        s.apparent.filestore_bytes,
        du(&["-sbx"], &data.join("filestore"))
    );
    assert_eq!(s.addons_bytes, du(&["-sxB1"], &data.join("addons")));
    assert_eq!(s.apparent.addons_bytes, du(&["-sbx"], &data.join("addons")));
    assert!(
        s.database_bytes > 10 << 20,
        "an initialised cluster: {}",
        s.database_bytes
    );
    assert_eq!(
        s.used_bytes,
        s.database_bytes + s.filestore_bytes + s.addons_bytes
    );
    assert_eq!(s.unreadable, 0);
    assert_eq!(before.active_users, None, "no res_users table yet");

    // Rows in: the database grows, and the profile's query counts the active internal users.
    env.psql(
        "acme",
        "qa",
        "CREATE TABLE res_users (id serial, active bool, share bool);
         INSERT INTO res_users (active, share) VALUES (true, false), (true, false),
             (true, false), (true, true), (false, false);
         CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 50000) g;
         CHECKPOINT;",
    );
    let after = StageApiClient::usage(&c, "acme/qa".into(), Some(true))
        .await
        .unwrap();
    let grown = after.storage.clone().unwrap();
    assert!(
        grown.database_bytes >= s.database_bytes + (8 << 20),
        "50,000 rows of 200 bytes: {} -> {}",
        s.database_bytes,
        grown.database_bytes
    );
    assert!(grown.measured_at > s.measured_at);
    assert_eq!(after.active_users, Some(3));
    // The record and stage.get carry the last measure.
    let got = StageApiClient::get(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(got.storage, Some(grown.clone()));
    assert_eq!(got.active_users, Some(3));
    let cached = StageApiClient::usage(&c, "acme/qa".into(), None)
        .await
        .unwrap();
    assert_eq!(cached.storage, Some(grown));

    let out = env.daemon.ctl(&["stage", "usage", "acme/qa"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        "database",
        "filestore",
        "addons",
        "MB",
        "active users:",
        "3",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }

    // Stats: both containers running, with memory figures.
    let stats = StageApiClient::stats(&c, "acme/qa".into()).await.unwrap();
    for role in ["app", "db"] {
        let s = stats[role].expect("running");
        assert!(s.memory_bytes > 0, "{role}: {s:?}");
        assert!(s.memory_limit_bytes >= s.memory_bytes, "{role}: {s:?}");
        assert!(s.cpu_pct >= 0.0);
    }
    let out = env.daemon.ctl(&["stage", "stats", "acme/qa"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("COMPONENT") && text.contains("db"), "{text}");

    // Stopped: no stats, and a measure keeps the last user count.
    StageApiClient::stop(&c, "acme/qa".into(), Some(5))
        .await
        .unwrap();
    let stats = StageApiClient::stats(&c, "acme/qa".into()).await.unwrap();
    assert_eq!((stats["app"], stats["db"]), (None, None));
    let stopped = StageApiClient::usage(&c, "acme/qa".into(), Some(true))
        .await
        .unwrap();
    assert_eq!(stopped.active_users, Some(3));
}

#[tokio::test]
async fn concurrent_refreshes_share_one_walk() {
    let Some(env) = stage_env("concurrent_refreshes_share_one_walk", "", None).await else {
        return;
    };
    // Enough files that one walk takes a while.
    let store = env.data("acme", "qa").join("filestore/filestore/qa");
    for d in 0..256 {
        let dir = store.join(format!("{d:02x}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..240 {
            std::fs::write(dir.join(format!("{f}")), b"attachment").unwrap();
        }
    }
    let c = env.daemon.client().await;
    let refreshes = (0..4).map(|_| StageApiClient::usage(&c, "acme/qa".into(), Some(true)));
    let all = futures::future::join_all(refreshes).await;
    let first = all[0].as_ref().unwrap().storage.clone().unwrap();
    assert!(first.files >= 60_000, "{}", first.files);
    for r in &all {
        // Same instant, same figures: one walk answered all four.
        assert_eq!(r.as_ref().unwrap().storage.as_ref(), Some(&first));
    }
    let next = StageApiClient::usage(&c, "acme/qa".into(), Some(true))
        .await
        .unwrap();
    assert!(next.storage.unwrap().measured_at > first.measured_at);
}

#[tokio::test]
async fn background_measure_and_the_storage_limit() {
    let Some(env) = stage_env(
        "background_measure_and_the_storage_limit",
        "[usage]\ninterval = \"1s\"",
        Some(5),
    )
    .await
    else {
        return;
    };
    let c = env.daemon.client().await;
    // Nobody asks for a refresh: the background pass measures the stage.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stage = loop {
        let s = StageApiClient::get(&c, "acme/qa".into()).await.unwrap();
        if s.storage.is_some() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "never measured in the background"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A PostgreSQL cluster is far above 5 MB.
    assert!(stage.over_limit);
    let sub = SubscriptionApiClient::get(&c, "acme".into()).await.unwrap();
    assert!(sub.over_limit);
    assert!(sub.used_bytes >= stage.storage.as_ref().unwrap().used_bytes);
    let mut http = env.daemon.http().await;
    let resp = http
        .call(
            "stage.create",
            json!({"subscription": "acme", "name": "dev", "type": "dev", "domain": "dev.acme.example.com"}),
        )
        .await
        .unwrap();
    let (code, data) = rpc_error(&resp);
    assert_eq!(
        (code, data["kind"].as_str()),
        (-32004, Some("limit_exceeded"))
    );
    assert_error_says(&resp, "storage limit");
    assert!(!env
        .daemon
        .state_dir()
        .join("stages/acme--dev.json")
        .exists());
    // A larger limit lifts it.
    let sub = SubscriptionApiClient::update(&c, "acme".into(), None, Some(100_000), None)
        .await
        .unwrap();
    assert!(!sub.over_limit);
    assert!(
        !StageApiClient::get(&c, "acme/qa".into())
            .await
            .unwrap()
            .over_limit
    );
}

/// As another user, an unreadable directory is counted and skipped, like du does.
#[test]
fn unreadable_directories_as_another_user_equal_du() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "SKIPPED unreadable_directories_as_another_user_equal_du: needs root to switch users"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(root.join("open/sub")).unwrap();
    std::fs::write(root.join("open/sub/a"), vec![1u8; 70_000]).unwrap();
    std::fs::create_dir_all(root.join("locked/inner")).unwrap();
    std::fs::write(root.join("locked/inner/secret"), vec![2u8; 900_000]).unwrap();
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(args)
            .output()
            .unwrap()
    };
    // The build may sit under a directory nobody cannot enter (/root): run a copy.
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = bin_dir.path().join("stagelet");
    std::fs::copy(common::DAEMON, &daemon).unwrap();
    let ours = as_nobody(&[daemon.to_str().unwrap(), "measure", root.to_str().unwrap()]);
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let du_as_nobody = |flag: &str| -> u64 {
        common::stage_setup::du_total(&as_nobody(&["du", flag, root.to_str().unwrap()]).stdout)
    };
    assert_eq!(ours["apparent_bytes"], du_as_nobody("-sbx"));
    assert_eq!(ours["allocated_bytes"], du_as_nobody("-sxB1"));
    assert_eq!(ours["unreadable"], 1);
    // Root sees the whole tree, and du agrees again.
    let all = stagelet::runtime::disk_walk::measure(root, 2);
    assert_eq!(all.apparent_bytes, du(&["-sbx"], Path::new(root)));
    assert!(all.apparent_bytes > ours["apparent_bytes"].as_u64().unwrap() + 800_000);
    assert_eq!(all.unreadable, 0);
}
