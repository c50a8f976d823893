//! Git deploys held to their limits on a real stage: a tree of a million empty files refused
//! by count with the daemon's memory flat, file:// repositories only under git.file_roots
//! (no symbolic link on the way), `file:/path` and a submodule URL climbing above its root
//! refused without ssh being tried.

mod common;

use common::stage_setup::{assert_error_says, peak_kib, with_extra};
use common::{rpc_error, StageEnv};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where this file's repositories are made: the only file root the daemon allows.
fn repos_root() -> PathBuf {
    let root = std::env::temp_dir().join("stagelet-git-safety");
    std::fs::create_dir_all(&root).unwrap();
    root.canonicalize().unwrap()
}

fn overrides() -> String {
    format!(
        "[git]\nallowed_protocols = [\"https\", \"ssh\", \"file\"]\nmax_checkout_mb = 64\n\
         max_checkout_files = 1000\nfile_roots = [\"{}\"]",
        repos_root().display()
    )
}

fn git(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository on branch 17.0 in `parent`, with one commit of `files`.
fn repo(parent: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let path = parent.join(name);
    std::fs::create_dir_all(&path).unwrap();
    git(&path, &["init", "-q", "-b", "17.0"], None);
    for (p, v) in files {
        let p = path.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }
    git(&path, &["add", "-A"], None);
    git(&path, &["commit", "-q", "-m", "One"], None);
    path
}

async fn deploy(env: &StageEnv, url: &str, extra: Value) -> Value {
    let params = with_extra(
        json!({"stage": "acme/qa", "repository": url, "branch": "17.0", "restart": false}),
        extra,
    );
    env.daemon
        .http()
        .await
        .call("stage.deploy", params)
        .await
        .unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_million_empty_files_are_refused_by_count_with_memory_flat() {
    let Some(env) =
        StageEnv::with_stages("a_million_empty_files", &overrides(), None, &["qa"]).await
    else {
        return;
    };
    let dir = tempfile::tempdir_in(repos_root()).unwrap();
    let path = repo(dir.path(), "flood", &[("README", "x")]);
    // 1000 trees of the same 1000 empty files: a few KB of objects, 10^6 entries listed.
    let empty = git(&path, &["hash-object", "-w", "--stdin"], Some(""));
    let inner: String = (0..1000)
        .map(|i| format!("100644 blob {empty}\tf{i}\n"))
        .collect();
    let inner = git(&path, &["mktree"], Some(&inner));
    let outer: String = (0..1000)
        .map(|i| format!("040000 tree {inner}\td{i}\n"))
        .collect();
    let outer = git(&path, &["mktree"], Some(&outer));
    let parent = git(&path, &["rev-parse", "HEAD"], None);
    let commit = git(
        &path,
        &["commit-tree", &outer, "-p", &parent, "-m", "flood"],
        None,
    );
    git(&path, &["update-ref", "refs/heads/17.0", &commit], None);

    let addons = env.data("acme", "qa").join("addons");
    let before = listing(&addons);
    let peak_before = peak_kib(&env);
    let started = std::time::Instant::now();
    let r = deploy(&env, &format!("file://{}", path.display()), json!({})).await;
    let peak_after = peak_kib(&env);
    eprintln!(
        "daemon VmHWM before {peak_before} KiB, after {peak_after} KiB, answered in {:?}",
        started.elapsed()
    );
    let (code, data) = rpc_error(&r);
    assert_eq!(
        (code, data["kind"].as_str()),
        (-32004, Some("limit_exceeded")),
        "{r}"
    );
    assert_error_says(&r, "git.max_checkout_files");
    assert!(
        peak_after < peak_before + 32 * 1024,
        "the listing was held in memory: {peak_before} -> {peak_after} KiB"
    );
    assert_eq!(listing(&addons), before, "nothing written");
    let scratch: Vec<String> = listing(&env.daemon.state_dir())
        .into_iter()
        .filter(|p| p.contains("/d999/"))
        .collect();
    assert!(scratch.is_empty(), "checked out somewhere: {scratch:?}");
}

#[tokio::test]
async fn file_urls_stay_under_the_file_roots() {
    let Some(env) =
        StageEnv::with_stages("file_urls_stay_under", &overrides(), None, &["qa"]).await
    else {
        return;
    };
    let inside = tempfile::tempdir_in(repos_root()).unwrap();
    let good = repo(inside.path(), "addons", &[("m/a.py", "a")]);
    let outside = tempfile::tempdir().unwrap();
    let foreign = repo(outside.path(), "foreign", &[("secret.py", "s")]);
    std::os::unix::fs::symlink(&foreign, inside.path().join("link")).unwrap();
    let cache = env.daemon.state_dir().join("git/acme/qa.git");
    let addons = env.data("acme", "qa").join("addons");

    let refused = |r: &Value, url: &str| {
        let (code, data) = rpc_error(r);
        assert_eq!(
            (code, data["field"].as_str()),
            (-32602, Some("repository")),
            "{url}: {r}"
        );
    };
    for url in [
        "file:///proc/self/cwd".to_string(),
        format!("file://{}", foreign.display()),
        format!("file://{}/link", inside.path().display()),
        format!("file:{}", good.display()),
    ] {
        let r = deploy(&env, &url, json!({})).await;
        refused(&r, &url);
    }
    assert!(!cache.exists(), "git ran");
    assert!(!addons.join("secret.py").exists());

    // Under the root: deployed. Another repository outside it, such as a stage's own mirror,
    // stays refused afterwards.
    let r = deploy(&env, &format!("file://{}", good.display()), json!({})).await;
    assert!(r["result"].is_object(), "{r}");
    assert!(addons.join("m/a.py").exists());
    let mirror = format!("file://{}", cache.display());
    let r = deploy(&env, &mirror, json!({})).await;
    refused(&r, &mirror);

    // A submodule URL that climbs above its parent's root is refused by name; git never
    // turns it into an ssh URL to a host called `file`.
    let with_link = repo(inside.path(), "top", &[("main.py", "m")]);
    let sub_head = git(&good, &["rev-parse", "HEAD"], None);
    let climb = "../".repeat(with_link.components().count() + 1) + "tmp/x";
    for url in [climb.as_str(), "../../../../tmp/x"] {
        let modules = format!("[submodule \"vendor/sub\"]\n\tpath = vendor/sub\n\turl = {url}\n");
        std::fs::write(with_link.join(".gitmodules"), modules).unwrap();
        git(&with_link, &["add", ".gitmodules"], None);
        let link = format!("160000,{sub_head},vendor/sub");
        git(
            &with_link,
            &["update-index", "--add", "--cacheinfo", &link],
            None,
        );
        git(&with_link, &["commit", "-q", "-m", url], None);
        let r = deploy(
            &env,
            &format!("file://{}", with_link.display()),
            json!({"submodules": true}),
        )
        .await;
        let (code, _) = rpc_error(&r);
        assert_eq!(code, -32013, "{url}: {r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains("submodule vendor/sub"), "{url}: {r}");
        assert!(
            !message.contains("ssh") && !message.contains("resolve hostname"),
            "{url}: {r}"
        );
    }
}
