//! A tenant's files stay the tenant's: code in a stage's app container that swaps a directory
//! of its filestore for a symlink while the agent copies it (clone) or packs it (backup) never
//! gets a host file or another tenant's file into the copy; and customer data on disk is
//! readable by the agent's user only.

mod common;

use common::{docker, require_engine, StageEnv};
use serde_json::json;
use stagelet::api::rpc::{BackupApiClient, SubscriptionApiClient};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

const MARKER: &str = "MARKER-NOT-THE-TENANTS";
/// Few files, a few MB each: the old by-name walk opened them by path while `d` flipped.
const FILES: usize = 3;

/// A directory of files named as the tenant's own, each holding the marker.
fn plant(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..FILES {
        std::fs::write(dir.join(format!("f{i}")), MARKER).unwrap();
    }
}

/// Every regular file under `dir` (symlinks not followed) holding the marker.
fn leaked_files(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .is_ok_and(|b| b.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()))
        })
        .map(|e| e.path().display().to_string())
        .collect()
}

/// The entries of a tar whose content holds the marker, and whether `keep.txt` is in it.
fn leaked_entries(tar: &Path) -> (Vec<String>, bool) {
    let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
    let (mut leaked, mut kept) = (vec![], false);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        kept |= path.trim_start_matches("./") == "keep.txt";
        let mut bytes = vec![];
        entry.read_to_end(&mut bytes).unwrap();
        if bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()) {
            leaked.push(path);
        }
    }
    (leaked, kept)
}

#[tokio::test]
async fn symlink_swaps_in_the_app_container_never_leak_other_files() {
    if !require_engine("symlink_swaps_in_the_app_container_never_leak_other_files").await {
        return;
    }
    let env = StageEnv::start("[backups]\nkeep = 50");
    let c = env.daemon.client().await;
    SubscriptionApiClient::create(&c, "acme".into(), 10, None, None, None)
        .await
        .unwrap();
    let mut http = env.daemon.http().await;
    let create = |name: &str, clone_from: Option<&str>| {
        let mut p = json!({"subscription": "acme", "name": name, "type": "dev",
            "domain": format!("{name}.acme.example.com")});
        if let Some(src) = clone_from {
            p["clone_from"] = json!(src);
        }
        p
    };
    let r = http
        .call("stage.create", create("src", None))
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");

    // Targets outside the tenant: beside the stage records, and another tenant's filestore.
    let state = env.daemon.state_dir();
    let targets = [
        state.join("stages/planted"),
        state.join("data/zeta/qa/filestore/d"),
    ];
    for t in &targets {
        plant(t);
    }
    // The tenant's own tree: a directory `d` with files of the same names, and `keep.txt`.
    let app = env.container("acme", "src", "app");
    let setup = format!(
        "cd /var/lib/odoo && mkdir d && i=0; while [ $i -lt {FILES} ]; do head -c 3000000 /dev/zero > d/f$i; i=$((i+1)); done; echo own > keep.txt"
    );
    docker(&["exec", &app, "sh", "-c", &setup]);
    // Swap `d` for a symlink to a target and back, as fast as the shell goes, for 240 s at
    // most (the stage's removal at the end stops it sooner).
    let swap = format!(
        "cd /var/lib/odoo; end=$(( $(date +%s) + 240 )); n=0; \
         while [ $(date +%s) -lt $end ]; do for t in {a} {b}; do \
         mv d d.real && ln -s $t d && sleep 0.01; rm -f d; mv d.real d; sleep 0.01; done; done",
        a = targets[0].display(),
        b = targets[1].display()
    );
    docker(&["exec", "-d", &app, "sh", "-c", &swap]);
    // The loop runs: `d` is seen as a symlink to a target within a few seconds.
    let seen = Instant::now();
    while !docker(&["exec", &app, "readlink", "/var/lib/odoo/d"]).contains("planted")
        && !docker(&["exec", &app, "readlink", "/var/lib/odoo/d"]).contains("zeta")
    {
        assert!(
            seen.elapsed() < Duration::from_secs(10),
            "the swap loop never swapped"
        );
    }

    let deadline = Instant::now() + Duration::from_secs(150);
    let (mut clones_ok, mut backups_ok, mut tries) = (0, 0, 0);
    for round in 0..3 {
        let name = format!("copy{round}");
        let r = http
            .call("stage.create", create(&name, Some("acme/src")))
            .await
            .unwrap();
        tries += 1;
        let filestore = env.data("acme", &name).join("filestore");
        let leaked = leaked_files(&filestore);
        assert!(
            leaked.is_empty(),
            "clone {name} holds other files: {leaked:?} ({r})"
        );
        if r["result"].is_object() {
            clones_ok += 1;
            assert!(
                filestore.join("keep.txt").exists(),
                "clone {name} lacks its own file"
            );
        } else {
            eprintln!("clone {name} failed cleanly: {r}");
        }
        for _ in 0..4 {
            match BackupApiClient::backup(&c, "acme/src".into()).await {
                Ok(b) => {
                    let tar = state.join(format!("backups/acme/src/{}/filestore.tar", b.id));
                    let (leaked, kept) = leaked_entries(&tar);
                    assert!(
                        leaked.is_empty(),
                        "backup {} holds other files: {leaked:?}",
                        b.id
                    );
                    assert!(kept, "backup {} lacks the tenant's own file", b.id);
                    backups_ok += 1;
                }
                Err(e) => eprintln!("a backup failed cleanly: {e}"),
            }
            tries += 1;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    // Still where they were, untouched.
    for t in &targets {
        assert_eq!(std::fs::read_to_string(t.join("f0")).unwrap(), MARKER);
        let meta = std::fs::metadata(t.join("f0")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    }
    eprintln!("{clones_ok} clones and {backups_ok} backups succeeded of {tries}");
    assert!(
        clones_ok >= 1 && backups_ok >= 1,
        "nothing succeeded under the swaps"
    );
}

/// Whether uid/gid 65534 (nobody) can read `path` with cat.
fn nobody_reads(path: &Path) -> bool {
    std::process::Command::new("cat")
        .arg(path)
        .uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn customer_data_is_private_to_the_agent() {
    let Some(env) =
        StageEnv::with_stages("customer_data_is_private_to_the_agent", "", None, &["qa"]).await
    else {
        return;
    };
    let c = env.daemon.client().await;
    let b = BackupApiClient::backup(&c, "acme/qa".into()).await.unwrap();
    let state = env.daemon.state_dir();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let st = mode(&state);
    assert_eq!(st & 0o027, 0, "the state dir is {st:o}");
    for d in [
        "data",
        "data/acme",
        "data/acme/qa",
        "backups",
        "backups/acme/qa",
    ] {
        assert_eq!(mode(&state.join(d)), 0o700, "{d}");
    }
    let dir = state.join(format!("backups/acme/qa/{}", b.id));
    for f in ["db.dump", "filestore.tar", "manifest.json"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        assert!(!nobody_reads(&dir.join(f)), "nobody reads {f}");
    }
    // Even a file left world-readable inside the filestore is out of other users' reach.
    let own = env.data("acme", "qa").join("filestore/public.txt");
    std::fs::write(&own, "customer data").unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(!nobody_reads(&own));
    assert!(!nobody_reads(&state.join("stages/acme--qa.json")));
}
