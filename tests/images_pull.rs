//! Pulling images (issue 15) against the real engine and the test registries: a create on an
//! engine without its image pulls it with progress; concurrent creates share one pull; a
//! failed pull names the image and leaves nothing; `pull = "never"` is refused first; the
//! password never reaches the log or a reply.

mod common;

use common::registry::{self, OPEN, PRIVATE};
use common::{docker, inspect, rpc_error, StageEnv};
use serde_json::{json, Value};

/// A profile `pulled` whose app image is `image` (the db stays the local stand-in).
fn profile(image: &str, pull: &str) -> String {
    format!(
        r#"
[profiles.pulled]
grace_period = "5s"
[profiles.pulled.app]
image = "{image}"
pull = "{pull}"
port = 8069
run_as = "101:101"
mounts = {{ filestore = "/var/lib/odoo", addons = "/mnt/extra-addons" }}
env = {{ HOST = "{{db_host}}" }}
[profiles.pulled.db]
image = "stagelet-test/postgres:1"
port = 5432
user = "odoo"
mounts = {{ db = "/var/lib/postgresql/data" }}
env = {{ POSTGRES_USER = "{{db_user}}", POSTGRES_PASSWORD = "{{db_password}}", POSTGRES_DB = "postgres" }}
"#
    )
}

async fn ready(test: &str) -> bool {
    common::require_engine(test).await && registry::require(test)
}

async fn subscription(http: &mut stagelet::api::client::HttpClient, stages: u32) {
    let r = http
        .call(
            "subscription.create",
            json!({"id": "acme", "stage_limit": stages, "profile": "pulled"}),
        )
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
}

async fn create(http: &mut stagelet::api::client::HttpClient, name: &str) -> Value {
    http.call(
        "stage.create",
        json!({"subscription": "acme", "name": name, "type": "qa",
               "domain": format!("{name}.acme.example.com")}),
    )
    .await
    .unwrap()
}

/// Nothing of stage `name` is left: no container, network, directory, and no port held.
fn nothing_left(env: &StageEnv, name: &str) {
    for role in ["app", "db"] {
        assert_eq!(
            inspect(&env.container("acme", name, role), "{{.Id}}"),
            "",
            "{role}"
        );
    }
    let net = env.container("acme", name, "x");
    let net = net.trim_end_matches("--x");
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", &format!("name=^{net}$")]).trim(),
        ""
    );
    assert!(
        !env.data("acme", name).exists(),
        "the stage directory is gone"
    );
    // A rolled-back create keeps a record of its error, holding no port.
    for entry in std::fs::read_dir(env.daemon.state_dir().join("stages"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(record) = serde_json::from_slice::<Value>(&std::fs::read(entry.path()).unwrap())
        else {
            continue;
        };
        if record["name"] == name {
            assert!(record["http_port"].is_null(), "{record}");
        }
    }
}

#[tokio::test]
async fn a_create_pulls_the_missing_image_with_progress_and_runs() {
    if !ready("a_create_pulls_the_missing_image_with_progress_and_runs").await {
        return;
    }
    let image = registry::push_unique(OPEN, "stagelet-test/app:2", "progress");
    assert_eq!(inspect(&image, "{{.Id}}"), "", "the engine lacks the image");
    let env = StageEnv::start(&profile(&image, "missing"));
    let mut http = env.daemon.http().await;
    subscription(&mut http, 2).await;
    let out = env.daemon.ctl(&[
        "stage",
        "create",
        "acme/qa",
        "--type",
        "qa",
        "--domain",
        "qa.acme.example.com",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The events stagectl printed: the pull, with layers and bytes.
    let pull_lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" pull ")).collect();
    assert!(
        pull_lines
            .iter()
            .any(|l| l.contains(&image) && l.contains("layers") && l.contains("bytes")),
        "{stderr}"
    );
    let done = pull_lines
        .iter()
        .find(|l| l.contains(" done, "))
        .expect("a done line");
    assert!(done.contains(" of "), "{done}");
    assert_eq!(registry::pulls(&image), 1);
    assert_eq!(
        inspect(&env.container("acme", "qa", "app"), "{{.State.Running}}"),
        "true"
    );
    assert_eq!(env.nginx.get("qa.acme.example.com", "/").0, 200);
    // The db's /dev/shm and every container's log caps.
    let db = env.container("acme", "qa", "db");
    assert_eq!(inspect(&db, "{{.HostConfig.ShmSize}}"), "268435456");
    for c in [&db, &env.container("acme", "qa", "app")] {
        assert_eq!(
            inspect(c, "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}} {{index .HostConfig.LogConfig.Config \"max-file\"}}"),
            "json-file 50m 3"
        );
    }
    // stage.get shows the image and its digest, the registry's.
    let mut http = env.daemon.http().await; // the first one idled out during the create
    let got = http
        .call("stage.get", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    let app = &got["result"]["components"]["app"];
    assert_eq!(app["image"], image.as_str(), "{got}");
    let digest = app["digest"].as_str().unwrap_or_default();
    assert!(digest.starts_with("sha256:"), "{got}");
    let repo_digest = inspect(&image, "{{index .RepoDigests 0}}");
    assert!(repo_digest.ends_with(digest), "{repo_digest} vs {digest}");
    drop(env);
    registry::remove(&image);
}

#[tokio::test]
async fn five_concurrent_creates_share_one_pull() {
    if !ready("five_concurrent_creates_share_one_pull").await {
        return;
    }
    let image = registry::push_unique(OPEN, "stagelet-test/app:2", "shared");
    let env = StageEnv::start(&profile(&image, "missing"));
    let mut http = env.daemon.http().await;
    subscription(&mut http, 5).await;
    let names = ["s1", "s2", "s3", "s4", "s5"];
    let mut clients = vec![];
    for _ in names {
        clients.push(env.daemon.http().await);
    }
    let results = futures::future::join_all(
        clients
            .iter_mut()
            .zip(names)
            .map(|(c, n)| async move { create(c, n).await }),
    )
    .await;
    for (r, n) in results.iter().zip(names) {
        assert_eq!(r["result"]["state"], "running", "{n}: {r}");
        assert_eq!(
            inspect(&env.container("acme", n, "app"), "{{.State.Running}}"),
            "true"
        );
    }
    assert_eq!(registry::pulls(&image), 1, "one pull for five creates");
    drop(env);
    registry::remove(&image);
}

#[tokio::test]
async fn failed_pulls_name_the_image_and_leave_nothing() {
    if !ready("failed_pulls_name_the_image_and_leave_nothing").await {
        return;
    }
    let private = registry::push_unique(PRIVATE, "stagelet-test/app:2", "private");
    let password = registry::password();
    let dir = tempfile::tempdir().unwrap();
    let wrong = registry::auth_config(dir.path(), PRIVATE, registry::USER, "not-the-password");
    let cases = [
        (private.clone(), "wrong", "pull access denied for"),
        (
            format!("{OPEN}/stagelet-pull/never-pushed-{}:1", std::process::id()),
            "unknown",
            "not found",
        ),
        (
            "127.0.0.1:5999/stagelet-pull/down:1".to_string(),
            "down",
            "from registry 127.0.0.1:5999 failed",
        ),
    ];
    for (image, name, says) in cases {
        let over = format!(
            "{}\n[docker]\nauth_config = \"{}\"\n",
            profile(&image, "missing"),
            wrong.display()
        );
        let env = StageEnv::start(&over);
        let mut http = env.daemon.http().await;
        subscription(&mut http, 1).await;
        let r = create(&mut http, name).await;
        let (code, _) = rpc_error(&r);
        assert_eq!(code, -32010, "{name}: {r}");
        let msg = r["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(&image), "{name}: {msg}");
        assert!(
            msg.to_lowercase().contains(&says.to_lowercase()),
            "{name}: {msg}"
        );
        assert!(!msg.contains(&password));
        // The password the config sent, wrong as it is, shows nowhere either.
        assert!(!r.to_string().contains("not-the-password"), "{name}: {r}");
        assert!(
            !env.daemon.log().contains("not-the-password"),
            "{name}: the daemon log shows the sent password"
        );
        if name == "down" {
            assert!(
                msg.to_lowercase().contains("connection refused"),
                "names the cause: {msg}"
            );
        }
        if name == "wrong" {
            assert!(
                msg.contains(&wrong.display().to_string()),
                "names the credentials: {msg}"
            );
        }
        nothing_left(&env, name);
        assert_eq!(inspect(&image, "{{.Id}}"), "");
    }
}

#[tokio::test]
async fn private_pulls_use_the_registries_table_and_never_show_the_password() {
    if !ready("private_pulls_use_the_registries_table_and_never_show_the_password").await {
        return;
    }
    let image = registry::push_unique(PRIVATE, "stagelet-test/app:2", "secret");
    let password = registry::password();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let over = format!(
        "{}\n[docker]\nauth_config = \"{}/none.json\"\n[registries.\"{PRIVATE}\"]\nusername = \"{}\"\npassword_file = \"{}\"\n",
        profile(&image, "always"),
        dir.path().display(),
        registry::USER,
        file.display()
    );
    let env = StageEnv::start(&over);
    let mut http = env.daemon.http().await;
    subscription(&mut http, 1).await;
    let mut replies = vec![];
    let pulled = http
        .call("agent.pull_images", json!({"profile": "pulled"}))
        .await
        .unwrap();
    let list = pulled["result"].as_array().expect("a list").clone();
    assert!(
        list.iter().any(|d| d["image"] == image.as_str()
            && d["digest"].as_str().unwrap_or("").starts_with("sha256:")),
        "{pulled}"
    );
    replies.push(pulled.to_string());
    let r = create(&mut http, "qa").await;
    assert_eq!(r["result"]["state"], "running", "{r}");
    replies.push(r.to_string());
    replies.push(
        http.call("stage.get", json!({"stage": "acme/qa"}))
            .await
            .unwrap()
            .to_string(),
    );
    let out = env.daemon.ctl(&["images", "pull", "pulled"]);
    assert!(out.status.success(), "{out:?}");
    replies.push(String::from_utf8_lossy(&out.stdout).into_owned());
    replies.push(String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(
        replies[3].contains(&image),
        "stagectl images pull lists it: {}",
        replies[3]
    );
    for r in &replies {
        assert!(!r.contains(&password), "a reply shows the password: {r}");
    }
    let log = env.daemon.log();
    assert!(
        log.contains("pull") || log.contains(&image),
        "the daemon logged something"
    );
    assert!(
        !log.contains(&password),
        "the daemon log shows the password"
    );
    drop(env);
    registry::remove(&image);
}

#[tokio::test]
async fn pull_never_with_the_image_missing_is_refused_before_anything() {
    if !ready("pull_never_with_the_image_missing_is_refused_before_anything").await {
        return;
    }
    let image = registry::push_unique(OPEN, "stagelet-test/app:2", "never");
    let env = StageEnv::start(&profile(&image, "never"));
    let mut http = env.daemon.http().await;
    subscription(&mut http, 1).await;
    let r = create(&mut http, "qa").await;
    assert_eq!(rpc_error(&r).0, -32010, "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&image) && msg.contains("never"), "{msg}");
    assert_eq!(registry::pulls(&image), 0, "nothing was pulled");
    nothing_left(&env, "qa");
    let list = http.call("stage.list", json!({})).await.unwrap();
    assert_eq!(
        list["result"].as_array().map(|a| a.len()),
        Some(0),
        "{list}"
    );
    // The error's advice works: an explicit pre-pull fetches a `never` image, then it creates.
    let pulled = http
        .call("agent.pull_images", json!({"profile": "pulled"}))
        .await
        .unwrap();
    assert!(pulled["result"].is_array(), "{pulled}");
    assert_eq!(registry::pulls(&image), 1, "the pre-pull pulled it");
    let r = create(&mut http, "qa").await;
    assert_eq!(r["result"]["state"], "running", "{r}");
    drop(env);
    registry::remove(&image);
}

#[tokio::test]
async fn start_and_the_code_server_pull_what_the_engine_lost() {
    if !ready("start_and_the_code_server_pull_what_the_engine_lost").await {
        return;
    }
    let app = registry::push_unique(OPEN, "stagelet-test/app:2", "restart");
    let code = registry::push_unique(OPEN, "stagelet-test/code-server:1", "code");
    let over = format!(
        "{}\n[profiles.pulled.code_server]\nimage = \"{code}\"\nport = 8080\nrun_as = \"1000:1000\"\n\
         password_env = \"AUTH_PASSWORD\"\nmounts = {{ addons = \"/home/coder/project\" }}\n\
         env = {{ APP_PORT = \"8080\" }}\n",
        profile(&app, "missing")
    );
    let env = StageEnv::start(&over);
    let mut http = env.daemon.http().await;
    subscription(&mut http, 1).await;
    assert_eq!(create(&mut http, "qa").await["result"]["state"], "running");
    assert_eq!(registry::pulls(&app), 1);

    // The code server's image is pulled when the code server is made.
    let r = http
        .call(
            "codeserver.create",
            json!({"stage": "acme/qa", "domain": "code.acme.example.com"}),
        )
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
    assert_eq!(registry::pulls(&code), 1);
    assert_eq!(
        inspect(
            &env.container("acme", "qa", "code_server"),
            "{{.State.Running}}"
        ),
        "true"
    );

    // The app container and its image gone (a prune): start makes it again, pulling.
    let r = http
        .call(
            "stage.stop",
            json!({"stage": "acme/qa", "grace_period_s": 1}),
        )
        .await
        .unwrap();
    assert_eq!(r["result"]["state"], "stopped", "{r}");
    docker(&["rm", "-f", &env.container("acme", "qa", "app")]);
    registry::remove(&app);
    assert_eq!(inspect(&app, "{{.Id}}"), "");
    let r = http
        .call("stage.start", json!({"stage": "acme/qa"}))
        .await
        .unwrap();
    assert_eq!(r["result"]["state"], "running", "{r}");
    assert_eq!(registry::pulls(&app), 2, "pulled again at start");
    assert_eq!(env.nginx.get("qa.acme.example.com", "/").0, 200);
    drop(env);
    registry::remove(&app);
    registry::remove(&code);
}
