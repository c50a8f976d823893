//! Git deploys into a real stage's addons, from repositories made here (file:// allowed by the
//! test configuration): commits, counts, clear_destination, the app restarted and seeing the
//! files, failures that leave the addons as they were, hostile input, deploy keys.

mod common;

use common::stage_setup::assert_error_says;
use common::{inspect, rpc_error, Daemon, StageEnv};
use serde_json::{json, Value};
use stagelet::api::rpc::{StageApiClient, SubscriptionApiClient};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// file:// allowed for the repositories made here, in the temporary directory.
fn git_file() -> String {
    format!(
        "[git]\nallowed_protocols = [\"https\", \"ssh\", \"file\"]\nmax_checkout_mb = 1\n\
         file_roots = [\"{}\"]",
        std::env::temp_dir().canonicalize().unwrap().display()
    )
}

/// A work repository on branch 17.0.
struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addons-repo");
        std::fs::create_dir(&path).unwrap();
        let r = Repo { _dir: dir, path };
        r.git(&["init", "-q", "-b", "17.0"]);
        r
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.path)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn commit(&self, message: &str, files: &[(&str, &str)], delete: &[&str]) {
        for (p, v) in files {
            let p = self.path.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        }
        for p in delete {
            self.git(&["rm", "-q", p]);
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    fn head(&self, branch: &str) -> String {
        self.git(&["rev-parse", branch])
    }
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect()
}

async fn env_with_stage(test: &str) -> Option<StageEnv> {
    StageEnv::with_stages(test, &git_file(), None, &["qa"]).await
}

async fn deploy(env: &StageEnv, params: Value) -> Value {
    let mut http = env.daemon.http().await;
    http.call("stage.deploy", params).await.unwrap()
}

#[tokio::test]
async fn deploys_lay_out_commits_and_restart_the_app() {
    let Some(env) = env_with_stage("deploys_lay_out_commits_and_restart_the_app").await else {
        return;
    };
    let repo = Repo::new();
    repo.commit(
        "Add mod_a",
        &[("mod_a/__init__.py", "a"), ("mod_a/keep.py", "keep v1")],
        &[],
    );
    repo.commit("Change keep", &[("mod_a/keep.py", "keep v2")], &[]);
    repo.commit("Add mod_b", &[("mod_b/x.py", "print('x')\n")], &[]);
    let addons = env.data("acme", "qa").join("addons");
    let inode = std::fs::metadata(&addons).unwrap().ino();
    let app = env.container("acme", "qa", "app");
    let started = inspect(&app, "{{.State.StartedAt}}");

    let url = repo.url();
    let out = env.daemon.ctl(&[
        "stage", "deploy", "acme/qa", "--repo", &url, "--branch", "17.0",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = repo.head("17.0");
    assert!(
        text.contains(&head) && text.contains("Add mod_b") && text.contains("3 commits"),
        "{text}"
    );
    let c = env.daemon.client().await;
    let git = StageApiClient::get(&c, "acme/qa".into()).await.unwrap().git;
    assert_eq!(git.last_commit.as_deref(), Some(head.as_str()));
    assert_eq!(git.last_commit_message.as_deref(), Some("Add mod_b"));
    assert_eq!(git.commit_count, Some(3));
    assert_eq!(git.repository.as_deref(), Some(url.as_str()));
    assert_eq!(git.branch.as_deref(), Some("17.0"));
    assert!(!git.clear_destination);
    assert_eq!(snapshot(&addons)["mod_a/keep.py"], "keep v2");
    // The app was restarted and sees the files through its bind mount.
    assert_ne!(inspect(&app, "{{.State.StartedAt}}"), started);
    assert_eq!(inspect(&app, "{{.State.Running}}"), "true");
    let seen = common::docker(&["exec", &app, "cat", "/mnt/extra-addons/mod_b/x.py"]);
    assert_eq!(seen, "print('x')\n");

    // Upstream deletes a file and adds commits; a file placed by hand sits in the addons.
    repo.commit("Remove keep", &[], &["mod_a/keep.py"]);
    repo.commit("Fifth", &[("mod_b/y.py", "y")], &[]);
    std::fs::write(addons.join("local.txt"), "by hand").unwrap();
    let r = deploy(
        &env,
        json!({"stage": "acme/qa", "repository": url, "branch": "17.0", "restart": false}),
    )
    .await;
    assert_eq!(r["result"]["git"]["commit_count"], 5, "{r}");
    assert_eq!(r["result"]["git"]["last_commit_message"], "Fifth");
    let files = snapshot(&addons);
    assert!(
        files.contains_key("mod_a/keep.py"),
        "laid over: the deleted file stays"
    );
    assert!(files.contains_key("local.txt") && files.contains_key("mod_b/y.py"));
    let restarted = inspect(&app, "{{.State.StartedAt}}");

    // With clear_destination the addons hold exactly the commit.
    let r = deploy(&env, json!({"stage": "acme/qa", "repository": url, "branch": "17.0", "clear_destination": true, "restart": false})).await;
    assert_eq!(r["result"]["git"]["clear_destination"], true, "{r}");
    assert_eq!(
        snapshot(&addons).keys().cloned().collect::<Vec<_>>(),
        ["mod_a/__init__.py", "mod_b/x.py", "mod_b/y.py"]
    );
    assert_eq!(
        inspect(&app, "{{.State.StartedAt}}"),
        restarted,
        "restart: false"
    );
    assert_eq!(
        std::fs::metadata(&addons).unwrap().ino(),
        inode,
        "the directory itself stays"
    );
    assert_eq!(
        common::docker(&["exec", &app, "ls", "/mnt/extra-addons/mod_b"]),
        "x.py\ny.py\n"
    );

    // The controller links its webhook.
    let s = StageApiClient::update(
        &c,
        "acme/qa".into(),
        None,
        None,
        None,
        Some("linked".into()),
    )
    .await
    .unwrap();
    assert_eq!(serde_json::to_value(s.git.webhook_state).unwrap(), "linked");
}

#[tokio::test]
async fn failed_and_hostile_deploys_leave_the_addons_as_they_were() {
    let Some(env) =
        env_with_stage("failed_and_hostile_deploys_leave_the_addons_as_they_were").await
    else {
        return;
    };
    let repo = Repo::new();
    repo.commit("One", &[("m/a.py", "a")], &[]);
    let url = repo.url();
    let cache = env.daemon.state_dir().join("git/acme/qa.git");
    let addons = env.data("acme", "qa").join("addons");
    std::fs::write(addons.join("local.txt"), "by hand").unwrap();

    // Hostile input: refused with the field named, before git runs or anything is written.
    let marker = env.daemon.dir.path().join("pwned");
    let hostile_urls = [
        format!("-oProxyCommand=touch {}", marker.display()),
        format!("--upload-pack=touch {}", marker.display()),
        format!("ext::sh -c touch% {}", marker.display()),
        format!("ssh://-oProxyCommand=touch%20{}/x", marker.display()),
        "https://user:secret@example.com/x.git".into(),
        "http://example.com/x.git".into(),
        format!("{url}\n"),
        repo.path.display().to_string(),
    ];
    for bad in hostile_urls {
        let r = deploy(
            &env,
            json!({"stage": "acme/qa", "repository": bad, "branch": "17.0"}),
        )
        .await;
        let (code, data) = rpc_error(&r);
        assert_eq!(
            (code, data["field"].as_str()),
            (-32602, Some("repository")),
            "{bad:?}: {r}"
        );
    }
    for bad in [
        "-b",
        "--upload-pack=x",
        "a..b",
        "x y",
        "x~1",
        "refs/heads/@{1}",
        "a\u{1}",
    ] {
        let r = deploy(
            &env,
            json!({"stage": "acme/qa", "repository": url, "branch": bad}),
        )
        .await;
        let (code, data) = rpc_error(&r);
        assert_eq!(
            (code, data["field"].as_str()),
            (-32602, Some("branch")),
            "{bad:?}: {r}"
        );
    }
    assert!(!marker.exists(), "a command ran");
    assert!(!cache.exists(), "git ran");
    assert_eq!(snapshot(&addons).len(), 1);

    let r = deploy(
        &env,
        json!({"stage": "acme/qa", "repository": url, "branch": "17.0"}),
    )
    .await;
    assert!(r["result"].is_object(), "{r}");
    let before = snapshot(&addons);
    let record = std::fs::read(env.daemon.state_dir().join("stages/acme--qa.json")).unwrap();

    // A missing branch: git's words, the addons and the record untouched.
    let r = deploy(
        &env,
        json!({"stage": "acme/qa", "repository": url, "branch": "18.0", "clear_destination": true}),
    )
    .await;
    let (code, data) = rpc_error(&r);
    assert_eq!((code, data["kind"].as_str()), (-32013, Some("git")), "{r}");
    assert_error_says(&r, "18.0");
    assert_eq!(snapshot(&addons), before);
    let after: Value = serde_json::from_slice(
        &std::fs::read(env.daemon.state_dir().join("stages/acme--qa.json")).unwrap(),
    )
    .unwrap();
    let was: Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(after["git"], was["git"]);

    // Over git.max_checkout_mb (1 in this test): refused before a file is written.
    repo.git(&["checkout", "-q", "-b", "big"]);
    repo.commit("Big", &[("m/blob.bin", &"z".repeat(2 << 20))], &[]);
    let r = deploy(
        &env,
        json!({"stage": "acme/qa", "repository": url, "branch": "big", "clear_destination": true}),
    )
    .await;
    let (code, _) = rpc_error(&r);
    assert_eq!(code, -32004, "{r}");
    assert_eq!(snapshot(&addons), before);

    // ssh goes through the deploy-key command line; nothing listens there.
    let r = deploy(
        &env,
        json!({"stage": "acme/qa", "repository": "ssh://git@127.0.0.1:1/x.git", "branch": "17.0"}),
    )
    .await;
    let (code, _) = rpc_error(&r);
    assert_eq!(code, -32013, "{r}");
    assert_error_says(&r, "127.0.0.1");
    assert_eq!(snapshot(&addons), before);
}

#[tokio::test]
async fn deploy_keys_are_made_once_and_kept_private() {
    let daemon = Daemon::start("");
    let c = daemon.client().await;
    SubscriptionApiClient::create(&c, "acme".into(), 1, None, None, None)
        .await
        .unwrap();
    let first = SubscriptionApiClient::deploy_key(&c, "acme".into())
        .await
        .unwrap();
    assert!(
        first.public_key.starts_with("ssh-ed25519 "),
        "{}",
        first.public_key
    );
    assert!(first.public_key.ends_with("stagelet-deploy-acme"));
    let again = SubscriptionApiClient::deploy_key(&c, "acme".into())
        .await
        .unwrap();
    assert_eq!(again, first);
    let key = daemon.state_dir().join("keys/acme/id_ed25519");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    let private = std::fs::read_to_string(&key).unwrap();
    assert!(private.contains("OPENSSH PRIVATE KEY"));
    assert!(!daemon.log().contains(private.lines().nth(1).unwrap()));
    let mut http = daemon.http().await;
    let r = http
        .call("subscription.deploy_key", json!({"id": "nobody"}))
        .await
        .unwrap();
    assert_eq!(rpc_error(&r).0, -32001);
}

#[tokio::test]
async fn submodules_only_when_asked_and_under_the_same_rules() {
    let Some(env) = env_with_stage("submodules_only_when_asked_and_under_the_same_rules").await
    else {
        return;
    };
    let repo = Repo::new();
    // A second repository beside the first, named by a relative URL in .gitmodules.
    let sub = Repo {
        _dir: tempfile::tempdir().unwrap(),
        path: repo.path.parent().unwrap().join("sub"),
    };
    std::fs::create_dir(&sub.path).unwrap();
    sub.git(&["init", "-q", "-b", "main"]);
    sub.commit("Vendored", &[("vendor.py", "vendored = True\n")], &[]);
    let sub_head = sub.head("main");
    // `git add -A` would drop a gitlink with no checkout behind it: stage by hand.
    let commit_with_link = |message: &str, url: &str, main: &str| {
        let gitmodules =
            format!("[submodule \"vendor/sub\"]\n\tpath = vendor/sub\n\turl = {url}\n");
        std::fs::write(repo.path.join(".gitmodules"), gitmodules).unwrap();
        std::fs::write(repo.path.join("main.py"), main).unwrap();
        repo.git(&["add", ".gitmodules", "main.py"]);
        let link = format!("160000,{sub_head},vendor/sub");
        repo.git(&["update-index", "--add", "--cacheinfo", &link]);
        repo.git(&["commit", "-q", "-m", message]);
    };
    commit_with_link("With a submodule", "../sub", "main");
    let addons = env.data("acme", "qa").join("addons");
    let url = repo.url();
    let call = |submodules: bool| json!({"stage": "acme/qa", "repository": url, "branch": "17.0", "restart": false, "submodules": submodules});

    // Not asked: the submodule's files are not there.
    let r = deploy(&env, call(false)).await;
    assert!(r["result"].is_object(), "{r}");
    assert!(!addons.join("vendor/sub/vendor.py").exists());
    // Asked: checked out at the recorded commit, its URL resolved against the parent's.
    let r = deploy(&env, call(true)).await;
    assert!(r["result"].is_object(), "{r}");
    assert_eq!(
        std::fs::read_to_string(addons.join("vendor/sub/vendor.py")).unwrap(),
        "vendored = True\n"
    );

    // A hostile URL in .gitmodules is held to the client's rules: refused, nothing run.
    let marker = env.daemon.dir.path().join("pwned");
    let hostile = format!("ext::sh -c touch% {}", marker.display());
    commit_with_link("Hostile submodule", &hostile, "main v2");
    let before = snapshot(&addons);
    let r = deploy(&env, call(true)).await;
    let (code, _) = rpc_error(&r);
    assert_eq!(code, -32013, "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("submodule vendor/sub"), "{r}");
    assert!(!marker.exists(), "a command ran");
    assert_eq!(snapshot(&addons), before, "the addons are as they were");
}
