//! ACME against a real ACME server (Debian's pebble, with pebble-challtestsrv as its DNS) and
//! the real nginx and engine: issuance over HTTP-01, HTTPS through nginx trusting pebble's
//! root, the switch from HTTP, renewals (forced, and by time) without a failed request, a
//! refused domain that backs off while the others keep HTTPS, release on cancel, and the
//! configuration checks.

mod common;

use common::acme::{hammer, require_pebble, AcmeEnv};
use common::nginx::curl;
use common::{require_engine, DAEMON};
use serde_json::{json, Value};
use stagelet::api::rpc::EventsApiClient;
use std::time::{Duration, Instant};

const QA: &str = "qa.acme.example.com";
const BAD: &str = "bad.acme.example.com";
const CODE: &str = "code-qa.acme.example.com";

async fn start(test: &str, validity: Duration) -> Option<AcmeEnv> {
    if !require_pebble(test) || !require_engine(test).await {
        return None;
    }
    let env = AcmeEnv::start(validity);
    let mut http = env.daemon.http().await;
    let r = http
        .call(
            "subscription.create",
            json!({"id": "acme", "stage_limit": 5}),
        )
        .await
        .unwrap();
    assert!(r["result"].is_object(), "{r}");
    Some(env)
}

async fn call(env: &AcmeEnv, method: &str, params: Value) -> Value {
    let mut http = env.daemon.http().await;
    let r = http.call(method, params).await.unwrap();
    assert!(r["result"].is_object(), "{method}: {r}");
    r["result"].clone()
}

async fn create(env: &AcmeEnv, name: &str, domain: &str) {
    call(
        env,
        "stage.create",
        json!({"subscription": "acme", "name": name, "type": "qa", "domain": domain}),
    )
    .await;
}

/// Polls `stage.get` until `f` holds on it (at most 90 s).
async fn wait_stage(env: &AcmeEnv, stage: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = call(env, "stage.get", json!({"stage": stage})).await;
        if f(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{stage}: {what} never came: {}\n{}\n{}",
            s["tls"],
            env.daemon.log(),
            env.pebble.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn https(env: &AcmeEnv, host: &str) -> (u16, String) {
    env.nginx.get_tls(host, &env.pebble.issuer_root)
}

#[tokio::test]
async fn a_stage_gets_a_certificate_and_one_refused_domain_backs_off_alone() {
    let test = "a_stage_gets_a_certificate_and_one_refused_domain_backs_off_alone";
    let Some(env) = start(test, Duration::from_secs(3600)).await else {
        return;
    };
    env.pebble.refuse(BAD);
    let client = env.daemon.client().await;
    let mut events = EventsApiClient::watch(&client, None).await.unwrap();
    create(&env, "qa", QA).await;
    create(&env, "bad", BAD).await;

    // Served at once over HTTP (the certificate may already be there: then a redirect).
    let first = env.nginx.get(QA, "/");
    assert!(first.0 == 200 || first.0 == 301, "{first:?}");

    let qa = wait_stage(&env, "acme/qa", "an issued certificate", |s| {
        s["tls"]["state"] == "issued"
    })
    .await;
    assert_eq!(qa["tls"]["mode"], "acme");
    assert!(qa["tls"]["not_after"].is_string(), "{qa}");
    assert!(
        qa["tls"]["issuer"].as_str().unwrap().contains("Pebble"),
        "{qa}"
    );
    assert!(qa["tls"]["last_error"].is_null(), "{qa}");
    // HTTPS through nginx, trusting only pebble's root; plain HTTP redirects there.
    assert_eq!(https(&env, QA), (200, "stagelet test app acme-qa\n".into()));
    let redirect = curl(&[
        "-H",
        &format!("Host: {QA}"),
        "-o",
        "/dev/null",
        "-w",
        "%{redirect_url}\n",
        &format!("http://127.0.0.1:{}/x?y=1", env.nginx.http_port),
    ]);
    assert!(
        redirect.1.contains(&format!("https://{QA}/x?y=1")),
        "{redirect:?}"
    );
    // The key and the account key are the agent's alone.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        env.cert_file(QA),
        env.daemon.state_dir().join("tls/account.json"),
    ] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let hdrs = curl(&[
        "-sI",
        "--resolve",
        &format!("{QA}:{}:127.0.0.1", env.nginx.https_port),
        "--cacert",
        &env.pebble.issuer_root.display().to_string(),
        &format!("https://{QA}:{}/", env.nginx.https_port),
    ]);
    assert!(
        hdrs.1.to_lowercase().contains("strict-transport-security"),
        "{hdrs:?}"
    );

    // The refused domain: failed, with the server's reason and a back-off of about a minute;
    // it keeps serving over HTTP, and the other stage keeps HTTPS.
    let bad = wait_stage(&env, "acme/bad", "a failed order", |s| {
        s["tls"]["state"] == "failed"
    })
    .await;
    let why = bad["tls"]["last_error"].as_str().unwrap();
    assert!(!why.is_empty(), "{bad}");
    let next = time::OffsetDateTime::parse(
        bad["tls"]["next_attempt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let wait = next - time::OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::seconds(20) && wait <= time::Duration::seconds(61),
        "back-off {wait} ({bad})"
    );
    assert!(bad["tls"]["not_after"].is_null(), "{bad}");
    assert_eq!(
        env.nginx.get(BAD, "/"),
        (200, "stagelet test app acme-bad\n".into())
    );
    assert_eq!(https(&env, QA).0, 200);
    let out = env.daemon.ctl(&["stage", "get", "acme/bad"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("failed (acme)") && text.contains("next attempt"),
        "{text}"
    );
    let out = env.daemon.ctl(&["stage", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TLS") && text.contains("issued") && text.contains("failed"),
        "{text}"
    );
    // Events say the same: issued for one, failed with the reason for the other.
    let (mut issued, mut failed) = (false, None);
    while !(issued && failed.is_some()) {
        let e = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the tls events come")
            .unwrap()
            .unwrap();
        match (e.operation.as_str(), e.step.as_str(), e.stage.as_str()) {
            ("tls", "issued", "acme/qa") => issued = true,
            ("tls", "failed", "acme/bad") => failed = Some(e.message),
            _ => {}
        }
    }
    let failed = failed.unwrap();
    assert!(
        failed.contains(why) && failed.contains("next attempt"),
        "{failed}"
    );
    // No tight loop: the refused domain was tried once in this minute.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = call(&env, "stage.get", json!({"stage": "acme/bad"})).await;
    assert_eq!(again["tls"]["next_attempt"], bad["tls"]["next_attempt"]);

    // A stopped stage still answers the challenge (its page is a 503 otherwise).
    call(&env, "stage.stop", json!({"stage": "acme/bad"})).await;
    let tokens = env
        .daemon
        .dir
        .path()
        .join("acme-challenge/.well-known/acme-challenge");
    std::fs::create_dir_all(&tokens).unwrap();
    std::fs::write(tokens.join("probe-token"), "probe.key-authorization").unwrap();
    assert_eq!(
        env.nginx
            .get(BAD, "/.well-known/acme-challenge/probe-token"),
        (200, "probe.key-authorization".into())
    );
    assert_eq!(env.nginx.get(BAD, "/").0, 503);

    // Cancelling releases the certificate: no file is left.
    assert!(env.cert_file(QA).exists());
    call(&env, "stage.terminate", json!({"stage": "acme/qa"})).await;
    call(&env, "stage.cancel", json!({"stage": "acme/qa"})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.cert_file(QA).exists()
        || env
            .daemon
            .state_dir()
            .join(format!("tls/{QA}.json"))
            .exists()
    {
        assert!(
            Instant::now() < deadline,
            "the certificate of a cancelled stage stays"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn renewals_forced_and_by_time_replace_the_certificate_without_a_failed_request() {
    let test = "renewals_forced_and_by_time_replace_the_certificate_without_a_failed_request";
    let Some(env) = start(test, Duration::from_secs(3600)).await else {
        return;
    };
    create(&env, "qa", QA).await;
    call(
        &env,
        "codeserver.create",
        json!({"stage": "acme/qa", "domain": CODE}),
    )
    .await;
    let first = wait_stage(&env, "acme/qa", "issued certificates", |s| {
        s["tls"]["state"] == "issued" && s["code_server"]["tls"]["state"] == "issued"
    })
    .await;
    assert!(
        first["code_server"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "{first}"
    );
    let pem = std::fs::read(env.cert_file(QA)).unwrap();
    let code_pem = std::fs::read(env.cert_file(CODE)).unwrap();
    let served = env.served_serial(QA);
    assert!(served.starts_with("serial="), "{served:?}");
    assert_eq!(served, env.file_serial(QA));
    let code_served = env.served_serial(CODE);
    assert_eq!(code_served, env.file_serial(CODE));
    assert_ne!(served, code_served);

    // Forced: `stagectl tls renew` orders both again; requests go on meanwhile.
    let load = hammer(&env, QA);
    let out = env.daemon.ctl(&["tls", "renew", "acme/qa"]);
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(env.cert_file(QA)).unwrap() == pem
        || std::fs::read(env.cert_file(CODE)).unwrap() == code_pem
    {
        assert!(
            Instant::now() < deadline,
            "no forced renewal: {}",
            env.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // nginx serves the new ones after the reload the renewal makes.
    env.wait_served(QA, &served).await;
    env.wait_served(CODE, &code_served).await;
    let (made, failed) = load.finish();
    assert!(made > 10, "only {made} requests");
    assert!(
        failed.is_empty(),
        "{} of {made} failed: {:?}\n{}",
        failed.len(),
        &failed[..failed.len().min(3)],
        env.daemon.log()
    );
    assert_eq!(https(&env, QA).0, 200);

    // By time: at two thirds of the hour-long lifetime (the scheduler's clock 41 min ahead).
    let pem = std::fs::read(env.cert_file(QA)).unwrap();
    let served = env.served_serial(QA);
    let load = hammer(&env, QA);
    env.clock_ahead(41 * 60);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(env.cert_file(QA)).unwrap() == pem {
        assert!(
            Instant::now() < deadline,
            "no renewal by time: {}",
            env.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.clock_ahead(0);
    env.wait_served(QA, &served).await;
    let (made, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "{} of {made} failed: {:?}\n{}",
        failed.len(),
        &failed[..failed.len().min(3)],
        env.daemon.log()
    );
    let s = call(&env, "stage.get", json!({"stage": "acme/qa"})).await;
    assert_eq!(s["tls"]["state"], "issued");
    assert_ne!(s["tls"]["not_after"], first["tls"]["not_after"]);
    // No warning: nothing expires soon while failing.
    let info = call(&env, "agent.info", json!({})).await;
    assert_eq!(info["warnings"], json!([]), "{info}");
}

#[tokio::test]
async fn an_expired_certificate_is_no_longer_served_while_its_renewal_fails() {
    let test = "an_expired_certificate_is_no_longer_served_while_its_renewal_fails";
    // Certificates of 40 s: the first renewal is due a minute after the order, about when
    // the certificate ends; it fails, as the domain is refused once issued.
    let Some(env) = start(test, Duration::from_secs(40)).await else {
        return;
    };
    let client = env.daemon.client().await;
    let mut events = EventsApiClient::watch(&client, None).await.unwrap();
    create(&env, "qa", QA).await;
    let issued = wait_stage(&env, "acme/qa", "an issued certificate", |s| {
        s["tls"]["state"] == "issued"
    })
    .await;
    env.pebble.refuse(QA);
    let old = env.served_serial(QA);
    assert!(old.starts_with("serial="), "{old:?}");
    assert_eq!(env.nginx.get(QA, "/").0, 301);
    // Past its end the site is put again (the event comes once nginx has reloaded)...
    let expired = loop {
        let e = tokio::time::timeout(Duration::from_secs(90), events.next())
            .await
            .unwrap_or_else(|_| panic!("no expiry event: {}", env.daemon.log()))
            .unwrap()
            .unwrap();
        if (e.operation.as_str(), e.step.as_str()) == ("tls", "expired") {
            break e;
        }
    };
    assert_eq!(expired.stage, "acme/qa");
    let end = time::OffsetDateTime::parse(
        issued["tls"]["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(time::OffsetDateTime::now_utc() >= end, "not before its end");
    // ...and nginx no longer presents the expired certificate: the domain is served over HTTP.
    assert_eq!(
        env.nginx.get(QA, "/"),
        (200, "stagelet test app acme-qa\n".into()),
        "{}",
        env.daemon.log()
    );
    assert_ne!(env.served_serial(QA), old);
}

#[test]
fn check_config_refuses_a_plain_directory_and_a_ca_file_that_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let p = dir.path().join("stagelet.toml");
    std::fs::write(
        &p,
        format!(
            "[tls]\nmode = \"acme\"\nacme_directory = \"http://acme.example.com/dir\"\nacme_ca_file = \"{}\"\n",
            ca.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(DAEMON)
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    let path = p.display().to_string();
    assert!(
        err.contains(&format!("{path}:3:1: tls.acme_directory: ")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:4:1: tls.acme_ca_file: ")),
        "{err}"
    );
    // A loopback http:// directory (a local test server) and no CA file pass.
    std::fs::write(
        &p,
        "[tls]\nmode = \"acme\"\nacme_directory = \"http://127.0.0.1:14000/dir\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(DAEMON)
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
