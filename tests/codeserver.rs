//! The code server of a stage on the real engine and nginx, driven through the daemon: the
//! password through nginx, rotation, ports, and how it follows its stage. The stand-in image
//! asks for HTTP basic auth (user "coder") with the password the agent hands it.

mod common;

use common::{docker, inspect, rpc_error, StageEnv};
use serde_json::{json, Value};
use stagelet::api::rpc::{CodeServerApiClient, StageApiClient};
use stagelet::core::stage::code_server::CodeServerState;

const CODE: &str = "code-qa.acme.example.com";

async fn env_with_stages(test: &str, names: &[&str]) -> Option<StageEnv> {
    StageEnv::with_stages(test, "", None, names).await
}

/// `code` and `data` of a call that must fail.
async fn refused(env: &StageEnv, method: &str, params: Value) -> (i64, Value) {
    let mut http = env.daemon.http().await;
    let resp = http.call(method, params).await.unwrap();
    rpc_error(&resp)
}

#[tokio::test]
async fn the_password_guards_it_through_nginx_and_rotates_at_once() {
    let test = "the_password_guards_it_through_nginx_and_rotates_at_once";
    let Some(env) = env_with_stages(test, &["qa"]).await else {
        return;
    };
    let c = env.daemon.client().await;
    let out = env
        .daemon
        .ctl(&["codeserver", "create", "acme/qa", "--domain", CODE]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("http://{CODE}/")), "{text}");
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("password:"))
        .expect("create prints the password")
        .trim()
        .to_string();
    assert!(password.len() >= 24, "{password}");

    // Through nginx with the code-server domain: right password 200, wrong or none 401.
    assert_eq!(
        env.nginx.get_as(CODE, "coder", &password),
        (200, "stagelet test app code-acme-qa\n".into())
    );
    assert_eq!(env.nginx.get_as(CODE, "coder", "wrong-password").0, 401);
    assert_eq!(env.nginx.get(CODE, "/").0, 401);
    // The stage's own domain still reaches the app.
    assert_eq!(
        env.nginx.get("qa.acme.example.com", "/"),
        (200, "stagelet test app acme-qa\n".into())
    );
    let name = env.container("acme", "qa", "code_server");
    assert_eq!(inspect(&name, "{{.State.Running}}"), "true");
    let stage = StageApiClient::get(&c, "acme/qa".into()).await.unwrap();
    let cs = stage.code_server.clone().unwrap();
    assert_eq!(cs.state, CodeServerState::Running);
    assert_eq!(cs.password, None, "stage.get never shows the password");
    assert_eq!(
        inspect(
            &name,
            "{{(index (index .HostConfig.PortBindings \"8080/tcp\") 0).HostIp}}:{{(index (index .HostConfig.PortBindings \"8080/tcp\") 0).HostPort}}"
        ),
        format!("127.0.0.1:{}", cs.port.unwrap())
    );
    assert!(inspect(&name, "{{json .Mounts}}").contains("/home/coder/project"));
    assert_eq!(stage.components["code_server"].status, "running");
    let stats = StageApiClient::stats(&c, "acme/qa".into()).await.unwrap();
    assert!(
        stats["code_server"].is_some_and(|s| s.memory_bytes > 0),
        "{stats:?}"
    );

    // Rotation: the old password stops working and the new one works, at once.
    let rotated = CodeServerApiClient::rotate_password(&c, "acme/qa".into())
        .await
        .unwrap();
    let new = rotated.password.clone().unwrap();
    assert_ne!(new, password);
    assert_eq!(env.nginx.get_as(CODE, "coder", &password).0, 401);
    assert_eq!(env.nginx.get_as(CODE, "coder", &new).0, 200);
    assert_eq!(rotated.state, CodeServerState::Running);

    // Neither password reaches the log or the API's stage view; the record (0600) has it.
    let log = env.daemon.log();
    assert!(
        !log.contains(&password) && !log.contains(&new),
        "a password was logged"
    );
    let view =
        serde_json::to_string(&StageApiClient::get(&c, "acme/qa".into()).await.unwrap()).unwrap();
    assert!(!view.contains(&new));
    let record =
        std::fs::read_to_string(env.daemon.state_dir().join("stages/acme--qa.json")).unwrap();
    assert!(record.contains(&new));

    // A second create is a conflict; hostile and taken domains are refused before anything.
    let (code, _) = refused(
        &env,
        "codeserver.create",
        json!({"stage": "acme/qa", "domain": "x.acme.example.com"}),
    )
    .await;
    assert_eq!(code, -32002);
    CodeServerApiClient::remove(&c, "acme/qa".into())
        .await
        .unwrap();
    let (code, data) = refused(
        &env,
        "codeserver.create",
        json!({"stage": "acme/qa", "domain": "a.com; include /etc/shadow"}),
    )
    .await;
    assert_eq!((code, data["field"].as_str()), (-32602, Some("domain")));
    let (code, _) = refused(
        &env,
        "codeserver.create",
        json!({"stage": "acme/qa", "domain": "qa.acme.example.com"}),
    )
    .await;
    assert_eq!(code, -32002, "the stage's own domain is taken");
    let file = std::fs::read_to_string(env.nginx.sites_dir.join("acme--qa.conf")).unwrap();
    assert!(!file.contains("shadow") && !file.contains(CODE), "{file}");
    // Removed: no container, no block (unknown host: 444), the stage untouched.
    assert_eq!(inspect(&name, "{{.State.Status}}"), "");
    assert_eq!(env.nginx.get(CODE, "/").0, 0);
    assert_eq!(env.nginx.get("qa.acme.example.com", "/").0, 200);
    assert!(StageApiClient::get(&c, "acme/qa".into())
        .await
        .unwrap()
        .code_server
        .is_none());
    // Made again, it gets the port back: freed ports are reused.
    let again = CodeServerApiClient::create(&c, "acme/qa".into(), CODE.into())
        .await
        .unwrap();
    assert_eq!(again.port, cs.port);
}

#[tokio::test]
async fn it_follows_its_stage_and_holds_its_port() {
    let test = "it_follows_its_stage_and_holds_its_port";
    let Some(env) = env_with_stages(test, &["qa", "dev"]).await else {
        return;
    };
    let c = env.daemon.client().await;
    let qa = CodeServerApiClient::create(&c, "acme/qa".into(), CODE.into())
        .await
        .unwrap();
    let dev =
        CodeServerApiClient::create(&c, "acme/dev".into(), "code-dev.acme.example.com".into())
            .await
            .unwrap();
    assert_ne!(qa.port, dev.port, "a held port is not given twice");
    let pw = qa.password.clone().unwrap();
    let name = env.container("acme", "qa", "code_server");

    // Stopped by hand: 503 through nginx; a stop on a stopped one is fine; start needs no draft.
    let stopped = CodeServerApiClient::stop(&c, "acme/qa".into())
        .await
        .unwrap();
    assert_eq!(stopped.state, CodeServerState::Stopped);
    assert_eq!(inspect(&name, "{{.State.Running}}"), "false");
    assert_eq!(env.nginx.get_as(CODE, "coder", &pw).0, 503);
    CodeServerApiClient::stop(&c, "acme/qa".into())
        .await
        .unwrap();
    CodeServerApiClient::start(&c, "acme/qa".into())
        .await
        .unwrap();
    assert_eq!(env.nginx.get_as(CODE, "coder", &pw).0, 200);

    // The stage stops: so does its code server; it cannot start while the stage is stopped.
    StageApiClient::stop(&c, "acme/qa".into(), Some(2))
        .await
        .unwrap();
    assert_eq!(inspect(&name, "{{.State.Running}}"), "false");
    let s = StageApiClient::get(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(s.code_server.unwrap().state, CodeServerState::Stopped);
    let (code, data) = refused(&env, "codeserver.start", json!({"stage": "acme/qa"})).await;
    assert_eq!(code, -32003);
    assert_eq!(data["state"], "stopped");
    assert_eq!(data["allowed"], json!(["running"]));
    // The stage starts: the code server that stopped with it comes back.
    StageApiClient::start(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(inspect(&name, "{{.State.Running}}"), "true");
    assert_eq!(env.nginx.get_as(CODE, "coder", &pw).0, 200);

    // Terminated: container gone, port released, a draft that comes back after restore+start.
    StageApiClient::terminate(&c, "acme/qa".into())
        .await
        .unwrap();
    assert_eq!(inspect(&name, "{{.State.Status}}"), "");
    let s = StageApiClient::get(&c, "acme/qa".into()).await.unwrap();
    let cs = s.code_server.unwrap();
    assert_eq!((cs.state, cs.port), (CodeServerState::Draft, None));
    let (code, data) = refused(&env, "codeserver.stop", json!({"stage": "acme/qa"})).await;
    assert_eq!((code, data["state"].as_str()), (-32003, Some("draft")));
    StageApiClient::restore(&c, "acme/qa".into()).await.unwrap();
    StageApiClient::start(&c, "acme/qa".into()).await.unwrap();
    let s = StageApiClient::get(&c, "acme/qa".into()).await.unwrap();
    let cs = s.code_server.unwrap();
    assert_eq!(cs.state, CodeServerState::Running);
    assert_ne!(cs.port, dev.port);
    assert_eq!(env.nginx.get_as(CODE, "coder", &pw).0, 200);

    // Its domain is taken for stages too.
    let (code, _) = refused(
        &env,
        "stage.create",
        json!({"subscription": "acme", "name": "x", "type": "dev", "domain": CODE}),
    )
    .await;
    assert_eq!(code, -32002);

    // Cancelled with its stage: the container goes and the port is free for another.
    StageApiClient::cancel(&c, "acme/qa".into()).await.unwrap();
    assert_eq!(inspect(&name, "{{.State.Status}}"), "");
    CodeServerApiClient::remove(&c, "acme/dev".into())
        .await
        .unwrap();
    let label = format!("label={}.component=code_server", env.daemon.label_prefix);
    assert_eq!(docker(&["ps", "-aq", "--filter", &label]).trim(), "");
    let reused = CodeServerApiClient::create(&c, "acme/dev".into(), CODE.into())
        .await
        .unwrap();
    assert_eq!(
        reused.port,
        qa.port.min(dev.port),
        "the lowest free port again"
    );
}
