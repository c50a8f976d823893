//! The mounted directories belong to the uid the component runs as (issue 15): the uid-101
//! stand-in of odoo:17.0 serves through nginx, writes its filestore, and no other host user
//! reads it; the owners survive clone, backup restore and deploy.

mod common;

use common::{docker, StageEnv};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

fn git_file() -> String {
    format!(
        "[git]\nallowed_protocols = [\"https\", \"ssh\", \"file\"]\nfile_roots = [\"{}\"]",
        std::env::temp_dir().canonicalize().unwrap().display()
    )
}

/// Owner and mode of `p`.
fn owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// Whether host uid:gid `id` (no supplementary groups) can list `dir`.
fn can_list_as(id: u32, dir: &Path) -> bool {
    Command::new("setpriv")
        .args([
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
            "ls",
        ])
        .arg(dir)
        .output()
        .expect("setpriv runs")
        .status
        .success()
}

/// What every check after an operation asserts: filestore 101:101 0700, addons 101:101 02770,
/// everything inside the uid's; the app (uid 101) writes its filestore; nobody reads it.
fn assert_owned(env: &StageEnv, name: &str, when: &str) {
    let data = env.data("acme", name);
    assert_eq!(
        owner(&data.join("filestore")),
        (101, 101, 0o700),
        "{when}: filestore"
    );
    assert_eq!(
        owner(&data.join("addons")),
        (101, 101, 0o2770),
        "{when}: addons"
    );
    for entry in walkdir::WalkDir::new(data.join("filestore"))
        .into_iter()
        .chain(walkdir::WalkDir::new(data.join("addons")))
    {
        let entry = entry.unwrap();
        let (uid, gid, _) = owner(entry.path());
        assert_eq!((uid, gid), (101, 101), "{when}: {}", entry.path().display());
    }
    let app = env.container("acme", name, "app");
    let out = Command::new("docker")
        .args(["exec", "-u", "101", &app, "sh", "-c"])
        .arg(format!("echo {when} > /var/lib/odoo/written-by-101 && cat /var/lib/odoo/written-by-101 && ls /mnt/extra-addons"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{when}: uid 101 writes its filestore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !can_list_as(65534, &data.join("filestore")),
        "{when}: nobody reads the filestore"
    );
    assert!(
        !can_list_as(1000, &data.join("filestore")),
        "{when}: nor uid 1000"
    );
    assert_eq!(
        env.nginx.get(&format!("{name}.acme.example.com"), "/").0,
        200,
        "{when}: the app answers through nginx"
    );
}

#[tokio::test]
async fn the_uid_101_app_owns_its_directories_across_clone_restore_and_deploy() {
    let Some(env) = StageEnv::with_stages(
        "the_uid_101_app_owns_its_directories_across_clone_restore_and_deploy",
        &git_file(),
        None,
        &["qa"],
    )
    .await
    else {
        return;
    };
    // The stand-in runs as 101, as odoo:17.0 does, and exits when it cannot write.
    assert_eq!(
        common::inspect(&env.container("acme", "qa", "app"), "{{.Config.User}}"),
        "101:101"
    );
    // The init command wrote into the filestore as 101.
    let data = env.data("acme", "qa");
    assert_eq!(owner(&data.join("filestore/init.txt")).0, 101);
    assert_owned(&env, "qa", "create");

    let mut http = env.daemon.http().await;
    // Clone: the copy's directories are the uid's too.
    let r = http
        .call(
            "stage.create",
            json!({"subscription": "acme", "name": "copy", "type": "dev",
                   "domain": "copy.acme.example.com", "clone_from": "acme/qa"}),
        )
        .await
        .unwrap();
    assert_eq!(r["result"]["state"], "running", "{r}");
    assert_owned(&env, "copy", "clone");

    // Deploy: the laid-out files are the uid's.
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "17.0"]);
    std::fs::create_dir_all(repo.path().join("my_module")).unwrap();
    std::fs::write(repo.path().join("my_module/__manifest__.py"), "{}").unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "a module"]);
    let r = http
        .call(
            "stage.deploy",
            json!({"stage": "acme/qa", "repository": format!("file://{}", repo.path().display()),
                   "branch": "17.0"}),
        )
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
    assert_eq!(owner(&data.join("addons/my_module/__manifest__.py")).0, 101);
    // The code server's uid (1000, joining gid 101) edits the deployed module's files and
    // adds new ones next to them.
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            "1000:1000",
            "--group-add",
            "101",
        ])
        .arg("-v")
        .arg(format!("{}:/a", data.join("addons").display()))
        .args(["--entrypoint", "sh", "stagelet-test/app:1", "-c"])
        .arg(
            "echo '# edited' >> /a/my_module/__manifest__.py && echo x > /a/my_module/new.py \
             && stat -c %g /a/my_module/new.py && rm /a/my_module/new.py",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uid 1000 cannot edit the deployed module: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(data.join("addons/my_module/__manifest__.py"))
            .unwrap()
            .ends_with("# edited\n")
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "101", "setgid");
    wait_running(&env, "qa");
    assert_owned(&env, "qa", "deploy");

    // Backup restore: the restored filestore is the uid's.
    std::fs::write(data.join("filestore/doc"), "kept").unwrap();
    std::os::unix::fs::chown(data.join("filestore/doc"), Some(101), Some(101)).unwrap();
    let b = http
        .call("stage.backup", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    let id = b["result"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{b}"))
        .to_string();
    let r = http
        .call(
            "stage.stop",
            json!({"stage": "acme/qa", "grace_period_s": 2}),
        )
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
    let r = http
        .call(
            "stage.restore_backup",
            json!({"stage": "acme/qa", "backup": id}),
        )
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
    assert_eq!(
        std::fs::read_to_string(data.join("filestore/doc")).unwrap(),
        "kept"
    );
    let r = http
        .call("stage.start", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    assert_eq!(r["result"]["state"], "running", "{r}");
    wait_running(&env, "qa");
    assert_owned(&env, "qa", "restore");
}

/// Until the app container runs (a restart may take a moment).
fn wait_running(env: &StageEnv, name: &str) {
    let app = env.container("acme", name, "app");
    for _ in 0..100 {
        if common::inspect(&app, "{{.State.Running}}") == "true"
            && env.nginx.get(&format!("{name}.acme.example.com"), "/").0 == 200
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "{app} does not run: {}",
        docker(&["logs", "--tail", "20", &app])
    );
}

#[tokio::test]
async fn the_code_server_writes_the_shared_addons_through_the_apps_group() {
    let Some(env) = StageEnv::with_stages(
        "the_code_server_writes_the_shared_addons_through_the_apps_group",
        "",
        None,
        &["qa"],
    )
    .await
    else {
        return;
    };
    let mut http = env.daemon.http().await;
    let r = http
        .call(
            "codeserver.create",
            json!({"stage": "acme/qa", "domain": "code.acme.example.com"}),
        )
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
    let cs = env.container("acme", "qa", "code_server");
    assert_eq!(common::inspect(&cs, "{{.Config.User}}"), "1000:1000");
    assert_eq!(common::inspect(&cs, "{{.HostConfig.GroupAdd}}"), "[101]");
    let out = Command::new("docker")
        .args([
            "exec",
            &cs,
            "sh",
            "-c",
            "echo hi > /home/coder/project/from-code-server",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        owner(&env.data("acme", "qa").join("addons/from-code-server")).0,
        1000
    );
}
