//! Records survive SIGKILL mid-write: every record parses and holds the old value or the new.

mod common;

use common::Daemon;
use stagelet::api::rpc::SubscriptionApiClient;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SUBS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_a_burst_of_updates_leaves_old_or_new_records() {
    let mut d = Daemon::start("");
    let c = d.client().await;
    for i in 0..SUBS {
        c.create(format!("s{i}"), 1, None, None, None)
            .await
            .unwrap();
    }
    // For each subscription: the last value the daemon acknowledged.
    let acked: Arc<Mutex<HashMap<String, u32>>> = Arc::new(Mutex::new(
        (0..SUBS).map(|i| (format!("s{i}"), 1)).collect(),
    ));
    let mut writers = vec![];
    for i in 0..SUBS {
        let client = d.client().await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let id = format!("s{i}");
            for v in 2..10_000u32 {
                if client
                    .update(id.clone(), Some(v), None, None)
                    .await
                    .is_err()
                {
                    return; // the daemon died
                }
                acked.lock().unwrap().insert(id.clone(), v);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    d.kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.values().any(|v| *v > 3),
        "the burst did not get going: {acked:?}"
    );

    // On disk, before any restart: every record parses and is old or new.
    let dir = d.state_dir().join("subscriptions");
    for (id, last) in &acked {
        let bytes = std::fs::read(dir.join(format!("{id}.json"))).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{id}: torn record: {e}"));
        let got = v["stage_limit"].as_u64().unwrap() as u32;
        assert!(
            got == *last || got == last + 1,
            "{id}: on disk {got}, acknowledged {last}"
        );
    }
    // The restarted daemon serves the same values and cleans up the crash's temp files.
    d.spawn();
    let c = d.client().await;
    let subs = c.list().await.unwrap();
    assert_eq!(subs.len(), SUBS);
    for s in subs {
        let last = acked[s.id.as_str()];
        assert!(
            s.stage_limit == last || s.stage_limit == last + 1,
            "{}: {} vs {last}",
            s.id,
            s.stage_limit
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
