//! nginx virtual hosts against a real nginx master: routing by Host, 503/410 pages, TLS with
//! SNI, failures that leave the old config serving, coalesced reloads.

mod common;

use common::nginx::{not_a_certificate, self_signed, setup, site, Backend};
use stagelet::core::interfaces::ProxySites;
use stagelet::core::names::{Domain, StageName, SubscriptionId};
use stagelet::core::site::{CodeServerSite, SiteSpec, SiteState};
use stagelet::core::ErrorKind;

#[tokio::test]
async fn routes_by_host_and_serves_stopped_and_terminated_pages() {
    let s = setup();
    let backend = Backend::start(s.dir.path(), common::ports(1), "hello from qa\n");
    let qa = site(
        "acme",
        "qa",
        "qa.acme.example.com",
        SiteState::Running,
        backend.port,
    );
    s.sites.apply(qa.clone()).await.unwrap();
    assert_eq!(
        s.nginx.get("qa.acme.example.com", "/"),
        (200, "hello from qa\n".into())
    );
    // Another Host never reaches this stage: the catch-all closes the connection (444).
    assert_eq!(s.nginx.get("other.example.com", "/").0, 0);
    assert_eq!(s.nginx.get("127.0.0.1", "/").0, 0);

    s.sites
        .apply(SiteSpec {
            state: SiteState::Stopped,
            ..qa.clone()
        })
        .await
        .unwrap();
    let (status, body) = s.nginx.get("qa.acme.example.com", "/anything");
    assert_eq!(status, 503);
    assert!(body.contains("qa.acme.example.com is stopped"), "{body}");

    s.sites
        .apply(SiteSpec {
            state: SiteState::Terminated,
            ..qa.clone()
        })
        .await
        .unwrap();
    assert_eq!(s.nginx.get("qa.acme.example.com", "/").0, 410);

    s.sites
        .remove(qa.subscription.clone(), qa.name.clone())
        .await
        .unwrap();
    assert!(!s.file("acme", "qa").exists());
    assert_eq!(s.nginx.get("qa.acme.example.com", "/").0, 0);
    let leftovers: Vec<_> = std::fs::read_dir(&s.nginx.sites_dir).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn proxies_forwarding_headers_websocket_route_and_code_server() {
    let s = setup();
    let app = Backend::start(s.dir.path(), common::ports(1), "app\n");
    let code = Backend::start(s.dir.path(), common::ports(1), "code server\n");
    let mut qa = site(
        "acme",
        "qa",
        "qa.acme.example.com",
        SiteState::Running,
        app.port,
    );
    qa.code_server = Some(CodeServerSite {
        domain: Domain::parse("code-qa.acme.example.com").unwrap(),
        port: code.port,
        running: true,
    });
    s.sites.apply(qa).await.unwrap();
    assert_eq!(
        s.nginx.get("qa.acme.example.com", "/"),
        (200, "app\n".into())
    );
    assert_eq!(
        s.nginx.get("code-qa.acme.example.com", "/"),
        (200, "code server\n".into())
    );
    // /websocket is routed to the app (busybox has no such file: its 404 proves the route).
    assert_eq!(s.nginx.get("qa.acme.example.com", "/websocket").0, 404);
    let text = std::fs::read_to_string(s.file("acme", "qa")).unwrap();
    for needle in [
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Real-IP",
        "Upgrade $http_upgrade",
        "proxy_read_timeout 720s",
        "client_max_body_size 100m",
        "gzip on",
        "stagelet-acme--qa.access.log",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    assert!(s
        .nginx
        .prefix
        .join("logs/stagelet-acme--qa.access.log")
        .exists());
}

#[tokio::test]
async fn tls_with_sni_picks_each_sites_certificate() {
    let s = setup();
    let certs = s.dir.path().join("certs");
    let ca_a = self_signed(&certs, "a.example.com");
    let ca_b = self_signed(&certs, "b.example.com");
    s.set_config(|c| {
        c.nginx.tls_certificate = format!("{}/{{domain}}.pem", certs.display());
        c.nginx.tls_certificate_key = format!("{}/{{domain}}.key", certs.display());
    });
    let a = Backend::start(s.dir.path(), common::ports(1), "site a\n");
    let b = Backend::start(s.dir.path(), common::ports(1), "site b\n");
    s.sites
        .apply(site(
            "acme",
            "a",
            "a.example.com",
            SiteState::Running,
            a.port,
        ))
        .await
        .unwrap();
    s.sites
        .apply(site(
            "acme",
            "b",
            "b.example.com",
            SiteState::Running,
            b.port,
        ))
        .await
        .unwrap();
    assert_eq!(
        s.nginx.get_tls("a.example.com", &ca_a),
        (200, "site a\n".into())
    );
    assert_eq!(
        s.nginx.get_tls("b.example.com", &ca_b),
        (200, "site b\n".into())
    );
    // Trusting only a's certificate, b's name must fail: SNI served b's own.
    assert_eq!(s.nginx.get_tls("b.example.com", &ca_a).0, 0);
    // Plain HTTP redirects to HTTPS.
    let (status, _) = s.nginx.get("a.example.com", "/x");
    assert_eq!(status, 301);
}

#[tokio::test]
async fn a_failing_change_leaves_the_old_config_serving_and_names_the_stage() {
    let s = setup();
    let backend = Backend::start(s.dir.path(), common::ports(1), "still here\n");
    let good = site(
        "acme",
        "prod",
        "www.acme.example.com",
        SiteState::Running,
        backend.port,
    );
    s.sites.apply(good.clone()).await.unwrap();
    let before = std::fs::read_to_string(s.file("acme", "prod")).unwrap();
    let reloads = s.sites.reloads();
    // Certificates whose chain nginx cannot read: the agent's check passes, nginx -t fails.
    let certs = s.dir.path().join("certs");
    for domain in ["www.acme.example.com", "qa.beta.example.com"] {
        not_a_certificate(&certs, domain);
    }
    s.set_config(|c| {
        c.nginx.tls_certificate = format!("{}/{{domain}}.pem", certs.display());
        c.nginx.tls_certificate_key = format!("{}/{{domain}}.key", certs.display());
    });
    let err = s
        .sites
        .apply(SiteSpec {
            state: SiteState::Stopped,
            ..good.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Nginx);
    let msg = err.to_string();
    assert!(
        msg.contains("acme/prod") && msg.contains("/www.acme.example.com.pem"),
        "{msg}"
    );
    let err = s
        .sites
        .apply(site(
            "beta",
            "qa",
            "qa.beta.example.com",
            SiteState::Running,
            1,
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("beta/qa"), "{err}");
    // Nothing changed: same file, no new file, no reload, the site still answers.
    assert_eq!(
        std::fs::read_to_string(s.file("acme", "prod")).unwrap(),
        before
    );
    assert!(!s.file("beta", "qa").exists());
    assert_eq!(s.sites.reloads(), reloads);
    assert_eq!(
        s.nginx.get("www.acme.example.com", "/"),
        (200, "still here\n".into())
    );
}

#[tokio::test]
async fn one_bad_site_in_a_burst_fails_alone() {
    let s = setup();
    let certs = s.dir.path().join("certs");
    let mut cas = vec![];
    for i in 0..4 {
        cas.push(self_signed(&certs, &format!("s{i}.example.com")));
    }
    // s4's certificate is not one: only its change may fail. s5 has none yet (think: not
    // issued): it is served over plain HTTP.
    not_a_certificate(&certs, "s4.example.com");
    s.set_config(|c| {
        c.nginx.tls_certificate = format!("{}/{{domain}}.pem", certs.display());
        c.nginx.tls_certificate_key = format!("{}/{{domain}}.key", certs.display());
    });
    let backend = Backend::start(s.dir.path(), common::ports(1), "ok\n");
    let mut tasks = vec![];
    for i in 0..6 {
        let sites = s.sites.clone();
        let spec = site(
            "acme",
            &format!("s{i}"),
            &format!("s{i}.example.com"),
            SiteState::Running,
            backend.port,
        );
        tasks.push(tokio::spawn(async move { sites.apply(spec).await }));
    }
    let mut results = vec![];
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for (i, r) in results.iter().enumerate().take(4) {
        assert!(r.is_ok(), "s{i}: {r:?}");
        assert_eq!(
            s.nginx.get_tls(&format!("s{i}.example.com"), &cas[i]),
            (200, "ok\n".into())
        );
    }
    let err = results[4].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("acme/s4") && err.contains("s4.example.com.pem"),
        "{err}"
    );
    assert!(!s.file("acme", "s4").exists());
    results[5].as_ref().unwrap();
    assert_eq!(s.nginx.get("s5.example.com", "/"), (200, "ok\n".into()));
    assert!(s.sites.reloads() <= 2, "{} reloads", s.sites.reloads());
}

#[tokio::test]
async fn a_broken_foreign_file_blocks_changes_but_takes_nothing_down() {
    let s = setup();
    let backend = Backend::start(s.dir.path(), common::ports(1), "ok\n");
    s.sites
        .apply(site(
            "acme",
            "s0",
            "s0.example.com",
            SiteState::Running,
            backend.port,
        ))
        .await
        .unwrap();
    // Another tool drops a broken file into the directory: the agent must not reload over it.
    std::fs::write(
        s.nginx.sites_dir.join("zz-broken.conf"),
        "server { listen x; }\n",
    )
    .unwrap();
    let err = s
        .sites
        .apply(site(
            "acme",
            "s1",
            "s1.example.com",
            SiteState::Running,
            backend.port,
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("zz-broken.conf"), "{err}");
    assert!(!s.file("acme", "s1").exists());
    assert_eq!(s.nginx.get("s0.example.com", "/").0, 200);
    // The file is not stagelet's: it is left where it is.
    assert!(s.nginx.sites_dir.join("zz-broken.conf").exists());
    // A removal is not blocked by it: the site's file goes (nginx drops it at its next reload).
    s.sites
        .remove(
            SubscriptionId::parse("acme").unwrap(),
            StageName::parse("s0").unwrap(),
        )
        .await
        .unwrap();
    assert!(!s.file("acme", "s0").exists());
}

#[tokio::test]
async fn twenty_changes_at_once_cost_at_most_two_reloads() {
    let s = setup();
    let backend = Backend::start(s.dir.path(), common::ports(1), "burst\n");
    let mut tasks = vec![];
    for i in 0..20 {
        let sites = s.sites.clone();
        let spec = site(
            "acme",
            &format!("b{i}"),
            &format!("b{i}.example.com"),
            SiteState::Running,
            backend.port,
        );
        tasks.push(tokio::spawn(async move { sites.apply(spec).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(s.sites.reloads() <= 2, "{} reloads", s.sites.reloads());
    for i in 0..20 {
        assert_eq!(
            s.nginx.get(&format!("b{i}.example.com"), "/"),
            (200, "burst\n".into()),
            "b{i}"
        );
    }
}

#[tokio::test]
async fn nginx_not_running_fails_clearly_and_disabled_writes_nothing() {
    let s = setup();
    s.nginx.stop();
    let err = s
        .sites
        .apply(site("acme", "qa", "qa.example.com", SiteState::Running, 1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nginx is not running"), "{err}");
    assert!(!s.file("acme", "qa").exists());
    s.set_config(|c| c.nginx.enabled = false);
    s.sites
        .apply(site("acme", "qa", "qa.example.com", SiteState::Running, 1))
        .await
        .unwrap();
    assert_eq!(std::fs::read_dir(&s.nginx.sites_dir).unwrap().count(), 0);
}

#[tokio::test]
async fn hostile_domains_are_refused_before_anything_is_written() {
    let s = setup();
    let hostile = common::hostile::domains();
    assert!(hostile.len() >= 40);
    for raw in &hostile {
        let err = stagelet::core::site::parse_domain("domain", raw).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParams, "{raw:?}");
        let obj = stagelet::api::errors::to_object(&err);
        assert_eq!(obj.code(), -32602);
        assert!(
            obj.data().unwrap().get().contains("\"field\":\"domain\""),
            "{raw:?}"
        );
    }
    assert_eq!(std::fs::read_dir(&s.nginx.sites_dir).unwrap().count(), 0);
    assert_eq!(s.sites.reloads(), 0);
}
