//! One site nginx refuses (its certificate vanished, a hand-edited file) blocks no other site:
//! the agent finds it, serves it without TLS or sets it aside, and applies the rest. Against a
//! real nginx master, through the proxy layer and through the daemon.

mod common;

use common::nginx::{self_signed, setup, site, Backend};
use common::StageEnv;
use stagelet::api::rpc::StageApiClient;
use stagelet::core::interfaces::ProxySites;
use stagelet::core::names::{StageName, SubscriptionId};
use stagelet::core::site::SiteState;

fn id(sub: &str, name: &str) -> (SubscriptionId, StageName) {
    (
        SubscriptionId::parse(sub).unwrap(),
        StageName::parse(name).unwrap(),
    )
}

#[tokio::test]
async fn a_vanished_certificate_blocks_no_other_site() {
    let s = setup();
    let certs = s.dir.path().join("certs");
    let ca: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| self_signed(&certs, &format!("{n}.example.com")))
        .collect();
    s.set_config(|c| {
        c.nginx.tls_certificate = format!("{}/{{domain}}.pem", certs.display());
        c.nginx.tls_certificate_key = format!("{}/{{domain}}.key", certs.display());
    });
    let backend = Backend::start(s.dir.path(), common::ports(1), "ok\n");
    let spec = |n: &str, state| site("acme", n, &format!("{n}.example.com"), state, backend.port);
    for n in ["a", "b", "c"] {
        s.sites.apply(spec(n, SiteState::Running)).await.unwrap();
    }
    assert_eq!(
        s.nginx.get_tls("a.example.com", &ca[0]),
        (200, "ok\n".into())
    );
    // a's certificate goes away (expired and cleaned up, say): its file now breaks nginx -t.
    std::fs::remove_file(certs.join("a.example.com.pem")).unwrap();
    std::fs::remove_file(certs.join("a.example.com.key")).unwrap();

    s.sites.apply(spec("d", SiteState::Running)).await.unwrap();
    assert_eq!(
        s.nginx.get_tls("d.example.com", &ca[3]),
        (200, "ok\n".into())
    );
    s.sites.apply(spec("b", SiteState::Stopped)).await.unwrap();
    assert_eq!(s.nginx.get_tls("b.example.com", &ca[1]).0, 503);
    let (sub, name) = id("acme", "c");
    s.sites.remove(sub, name).await.unwrap();
    assert!(!s.file("acme", "c").exists());
    assert_eq!(s.nginx.get("c.example.com", "/").0, 0, "catch-all: 444");
    assert_eq!(s.nginx.get_tls("c.example.com", &ca[2]).0, 0, "TLS refused");

    // a is served from its own spec without TLS, on plain HTTP.
    let text = std::fs::read_to_string(s.file("acme", "a")).unwrap();
    assert!(!text.contains("ssl_certificate"), "{text}");
    assert_eq!(s.nginx.get("a.example.com", "/"), (200, "ok\n".into()));
    assert!(!s.nginx.sites_dir.join("acme--a.conf.broken").exists());
    // a's own change with the certificate still missing: plain HTTP, no failure.
    s.sites.apply(spec("a", SiteState::Stopped)).await.unwrap();
    assert_eq!(s.nginx.get("a.example.com", "/").0, 503);
    // Once the certificate is back, a's next change serves TLS again.
    let ca_a = self_signed(&certs, "a.example.com");
    s.sites.apply(spec("a", SiteState::Running)).await.unwrap();
    assert_eq!(
        s.nginx.get_tls("a.example.com", &ca_a),
        (200, "ok\n".into())
    );
    assert_eq!(s.nginx.get("a.example.com", "/").0, 301);
}

#[tokio::test]
async fn sites_nginx_refuses_are_found_by_name_or_bisection_and_set_aside() {
    let s = setup();
    let certs = s.dir.path().join("certs");
    for i in 0..6 {
        self_signed(&certs, &format!("s{i}.example.com"));
    }
    s.set_config(|c| {
        c.nginx.tls_certificate = format!("{}/{{domain}}.pem", certs.display());
        c.nginx.tls_certificate_key = format!("{}/{{domain}}.key", certs.display());
    });
    let backend = Backend::start(s.dir.path(), common::ports(1), "ok\n");
    let spec = |i: u8| {
        site(
            "acme",
            &format!("s{i}"),
            &format!("s{i}.example.com"),
            SiteState::Running,
            backend.port,
        )
    };
    for i in 0..5 {
        s.sites.apply(spec(i)).await.unwrap();
    }
    // s1: an error nginx reports without naming a file, only bisection finds it.
    let s1 = s.file("acme", "s1");
    let text = std::fs::read_to_string(&s1).unwrap().replacen(
        "    ssl_session_tickets off;\n",
        "    ssl_session_tickets off;\n    ssl_dhparam /nonexistent/dh.pem;\n",
        1,
    );
    std::fs::write(&s1, text).unwrap();
    // s3: a syntax error nginx names, in a file that lost the spec it carried.
    std::fs::write(
        s.file("acme", "s3"),
        "# Managed by stagelet for stage acme/s3.\nserver { listen x; }\n",
    )
    .unwrap();

    s.sites.apply(spec(5)).await.unwrap();
    assert_eq!(s.nginx.get("s5.example.com", "/").0, 301, "s5 is live");
    // s1 rendered again from its spec, without TLS; s3 set aside (it answers nothing).
    let text = std::fs::read_to_string(&s1).unwrap();
    assert!(!text.contains("ssl_"), "{text}");
    assert_eq!(s.nginx.get("s1.example.com", "/"), (200, "ok\n".into()));
    assert!(!s.file("acme", "s3").exists());
    let aside = s.nginx.sites_dir.join("acme--s3.conf.broken");
    assert!(std::fs::read_to_string(&aside)
        .unwrap()
        .contains("listen x"));
    assert_eq!(s.nginx.get("s3.example.com", "/").0, 0);
    // Nothing hidden while bisecting stayed hidden; the others kept TLS.
    let mut names: Vec<String> = std::fs::read_dir(&s.nginx.sites_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "acme--s0.conf",
            "acme--s1.conf",
            "acme--s2.conf",
            "acme--s3.conf.broken",
            "acme--s4.conf",
            "acme--s5.conf"
        ]
    );
    assert_eq!(s.nginx.get("s4.example.com", "/").0, 301);
    // s3's next change writes it afresh and drops the copy set aside.
    s.sites.apply(spec(3)).await.unwrap();
    assert!(!aside.exists());
    assert_eq!(s.nginx.get("s3.example.com", "/").0, 301);
}

fn stage_state(env: &StageEnv, name: &str) -> String {
    let path = env
        .daemon
        .state_dir()
        .join(format!("stages/acme--{name}.json"));
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record["state"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn one_stages_missing_certificate_blocks_no_other_stage() {
    let certs = tempfile::tempdir().unwrap();
    let ca: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| self_signed(certs.path(), &format!("{n}.acme.example.com")))
        .collect();
    let tls = format!(
        "[nginx]\ntls_certificate = \"{0}/{{domain}}.pem\"\ntls_certificate_key = \"{0}/{{domain}}.key\"\n",
        certs.path().display()
    );
    let test = "one_stages_missing_certificate_blocks_no_other_stage";
    let Some(env) = StageEnv::with_stages(test, &tls, None, &["a", "b", "c"]).await else {
        return;
    };
    let app = |n: &str| (200, format!("stagelet test app acme-{n}\n"));
    let host = |n: &str| format!("{n}.acme.example.com");
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(env.nginx.get_tls(&host(n), &ca[i]), app(n));
    }
    std::fs::remove_file(certs.path().join("a.acme.example.com.pem")).unwrap();
    std::fs::remove_file(certs.path().join("a.acme.example.com.key")).unwrap();

    let c = env.daemon.client().await;
    let d = StageApiClient::create(
        &c,
        "acme".into(),
        "d".into(),
        "qa".into(),
        host("d"),
        None,
        None,
        None,
        None,
    )
    .await
    .expect("creating another stage works");
    assert_eq!(d.state.as_str(), "running");
    assert_eq!(env.nginx.get_tls(&host("d"), &ca[3]), app("d"));

    let b = StageApiClient::stop(&c, "acme/b".into(), None)
        .await
        .unwrap();
    assert_eq!(b.state.as_str(), "stopped");
    assert_eq!(env.nginx.get_tls(&host("b"), &ca[1]).0, 503);
    let b = StageApiClient::terminate(&c, "acme/b".into())
        .await
        .unwrap();
    assert_eq!(b.state.as_str(), "terminated");
    assert_eq!(env.nginx.get_tls(&host("b"), &ca[1]).0, 410);

    let cancelled = StageApiClient::cancel(&c, "acme/c".into()).await.unwrap();
    assert_eq!(cancelled.state.as_str(), "cancelled");
    assert_eq!(stage_state(&env, "c"), "cancelled");
    assert!(!env.nginx.sites_dir.join("acme--c.conf").exists());
    assert_eq!(env.nginx.get(&host("c"), "/").0, 0, "catch-all: 444");
    assert_eq!(env.nginx.get_tls(&host("c"), &ca[2]).0, 0, "TLS refused");

    // a keeps answering, over plain HTTP, and the daemon's log says why.
    assert_eq!(env.nginx.get(&host("a"), "/"), app("a"));
    let log = env.daemon.log();
    assert!(
        log.lines().any(|l| l.contains("acme--a")
            && l.contains("without TLS")
            && l.contains("a.acme.example.com.pem")),
        "{log}"
    );
    // a's own stop: plain HTTP 503, with the reason logged again.
    let a = StageApiClient::stop(&c, "acme/a".into(), None)
        .await
        .unwrap();
    assert_eq!(a.state.as_str(), "stopped");
    assert_eq!(env.nginx.get(&host("a"), "/").0, 503);
    assert!(env
        .daemon
        .log()
        .lines()
        .any(|l| l.contains("acme--a") && l.contains("cannot read")));
    // d still serves HTTPS.
    assert_eq!(env.nginx.get_tls(&host("d"), &ca[3]), app("d"));
}
