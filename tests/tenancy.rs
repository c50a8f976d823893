//! A subscription's end: what it stored goes with it (backups to the archive, deploy key and
//! stage records away), so a new subscription of the same id starts empty; and a stage create
//! racing the delete never leaves a stage without its subscription.

mod common;

use common::stage_setup::create_typed;
use common::{require_engine, rpc_error, StageEnv};
use serde_json::{json, Value};
use stagelet::api::rpc::{BackupApiClient, StageApiClient, SubscriptionApiClient};

async fn create_stage(c: &jsonrpsee::async_client::Client, sub: &str, name: &str) {
    create_typed(c, sub, name, "qa").await.unwrap();
}

/// Every file below `dir`, relative to it.
fn files(dir: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(dir)
        .args(["-type", "f"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.trim_start_matches(&*dir.display().to_string())
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_reused_subscription_id_inherits_nothing() {
    if !require_engine("a_reused_subscription_id_inherits_nothing").await {
        return;
    }
    let env = StageEnv::start("");
    let c = env.daemon.client().await;
    let state = env.daemon.state_dir();
    SubscriptionApiClient::create(&c, "old".into(), 2, None, None, None)
        .await
        .unwrap();
    create_stage(&c, "old", "qa").await;
    let key = SubscriptionApiClient::deploy_key(&c, "old".into())
        .await
        .unwrap();
    let backup = BackupApiClient::backup(&c, "old/qa".into()).await.unwrap();
    let dump = state.join(format!("backups/old/qa/{}/db.dump", backup.id));
    let dump_bytes = std::fs::read(&dump).expect("the backup is on disk");
    StageApiClient::cancel(&c, "old/qa".into()).await.unwrap();
    SubscriptionApiClient::delete(&c, "old".into())
        .await
        .unwrap();

    // Nothing under the id is left where the API looks; the backup is in the archive.
    assert!(!state.join("backups/old").exists());
    assert!(!state.join("keys/old").exists());
    assert!(!state.join("stages/old--qa.json").exists());
    let archives: Vec<_> = std::fs::read_dir(state.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let archive = &archives[0];
    assert!(
        archive
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("old@"),
        "{archive:?}"
    );
    let archived = archive.join(format!("backups/qa/{}/db.dump", backup.id));
    assert_eq!(std::fs::read(&archived).unwrap(), dump_bytes);
    let listed = files(archive);
    assert!(
        listed.contains(&"/subscription.json".to_string()),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"/stage-old--qa.json".to_string()),
        "{listed:?}"
    );

    // A new tenant of the same id.
    SubscriptionApiClient::create(&c, "old".into(), 2, None, None, None)
        .await
        .unwrap();
    let mut http = env.daemon.http().await;
    let v = http
        .call("stage.backups", json!({"stage": "old/qa"}))
        .await
        .unwrap();
    let (code, _) = rpc_error(&v);
    assert_eq!(code, -32001, "the old stage is not found: {v}");
    let v = http
        .call("stage.list", json!({"subscription": "old"}))
        .await
        .unwrap();
    assert_eq!(v["result"], json!([]), "{v}");
    create_stage(&c, "old", "qa").await;
    let listed = BackupApiClient::backups(&c, "old/qa".into()).await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    StageApiClient::stop(&c, "old/qa".into(), None)
        .await
        .unwrap();
    let v = http
        .call(
            "stage.restore_backup",
            json!({"stage": "old/qa", "backup": backup.id}),
        )
        .await
        .unwrap();
    let (code, data) = rpc_error(&v);
    assert_eq!(
        (code, data["kind"].clone()),
        (-32001, Value::from("not_found"))
    );
    let again = SubscriptionApiClient::deploy_key(&c, "old".into())
        .await
        .unwrap();
    assert_ne!(
        again.public_key, key.public_key,
        "a new key for a new tenant"
    );
    assert_eq!(
        std::fs::read(&archived).unwrap(),
        dump_bytes,
        "the archive stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_racing_the_delete_of_its_subscription() {
    if !require_engine("a_create_racing_the_delete_of_its_subscription").await {
        return;
    }
    let env = StageEnv::start("");
    let c = env.daemon.client().await;
    let (mut created, mut deleted) = (0, 0);
    for i in 0..6 {
        SubscriptionApiClient::create(&c, "race".into(), 5, None, None, None)
            .await
            .unwrap();
        let (mut a, mut b) = (env.daemon.http().await, env.daemon.http().await);
        let name = format!("s{i}");
        let create = a.call(
            "stage.create",
            json!({"subscription": "race", "name": name, "type": "qa",
                   "domain": format!("{name}.race.example.com")}),
        );
        let delete = b.call("subscription.delete", json!({"id": "race"}));
        let (create, delete) = tokio::join!(create, delete);
        let (create, delete) = (create.unwrap(), delete.unwrap());
        let live: Vec<Value> = StageApiClient::list(&c, Some("race".into()), None, None)
            .await
            .unwrap()
            .into_iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .filter(|s| s["state"] != "cancelled")
            .collect();
        if delete.get("error").is_none() {
            deleted += 1;
            // Refused at admission (not_found), unless it failed and was rolled back first.
            assert!(create.get("error").is_some(), "{create}");
            assert!(live.is_empty(), "stages without a subscription: {live:?}");
        } else {
            created += 1;
            assert_eq!(rpc_error(&delete).1["state"], "in_use", "{delete}");
            assert!(create.get("result").is_some(), "{create}");
            StageApiClient::cancel(&c, format!("race/{name}"))
                .await
                .unwrap();
            SubscriptionApiClient::delete(&c, "race".into())
                .await
                .unwrap();
        }
    }
    eprintln!("create won {created}, delete won {deleted}");
}
