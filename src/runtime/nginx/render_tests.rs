//! The renderer against the golden files in `tests/golden/nginx/` and its edge cases.

use super::*;
use crate::core::names::{Domain, StageName, SubscriptionId};

fn site(state: SiteState, code: Option<bool>) -> SiteSpec {
    SiteSpec {
        subscription: SubscriptionId::parse("acme").unwrap(),
        name: StageName::parse("qa").unwrap(),
        domain: Domain::parse("qa.acme.example.com").unwrap(),
        state,
        http_port: 20001,
        code_server: code.map(|running| CodeServerSite {
            domain: Domain::parse("code-qa.acme.example.com").unwrap(),
            port: 25001,
            running,
        }),
        blocked_paths: vec![SafePath::try_from("/web/database/".to_string()).unwrap()],
    }
}

fn opts(tls: bool) -> RenderOptions {
    RenderOptions {
        listen_address: None,
        listen_http: 80,
        listen_https: 443,
        upstream: "127.0.0.1".parse().unwrap(),
        tls: tls.then(|| {
            (
                "/etc/letsencrypt/live/{domain}/fullchain.pem".to_string(),
                "/etc/letsencrypt/live/{domain}/privkey.pem".to_string(),
            )
        }),
        client_max_body_size: BodySize::try_from("100m".to_string()).unwrap(),
        log_dir: SafePath::try_from("/var/log/nginx".to_string()).unwrap(),
        acme_challenge: None,
    }
}

/// ACME mode as `RenderOptions::from_config` sets it: one file for certificate and key.
fn acme_opts() -> RenderOptions {
    let file = "/var/lib/stagelet/tls/{domain}.pem".to_string();
    RenderOptions {
        tls: Some((file.clone(), file)),
        acme_challenge: Some(SafePath::try_from("/var/lib/stagelet-acme".to_string()).unwrap()),
        ..opts(false)
    }
}

fn text(site: &SiteSpec, opts: &RenderOptions) -> String {
    let r = render(site, opts, &any_tls).unwrap();
    assert!(r.plain.is_empty());
    r.text
}

/// Compares with `tests/golden/nginx/NAME.conf`; `UPDATE_GOLDEN=1` rewrites it.
fn golden(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/golden/nginx/{name}.conf"));
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 makes it)", path.display()));
    assert_eq!(text, want, "{name} differs from its golden file");
}

#[test]
fn golden_files() {
    golden(
        "running",
        &text(&site(SiteState::Running, None), &opts(false)),
    );
    golden(
        "stopped",
        &text(&site(SiteState::Stopped, None), &opts(false)),
    );
    golden(
        "terminated",
        &text(&site(SiteState::Terminated, None), &opts(false)),
    );
    golden(
        "running-tls",
        &text(&site(SiteState::Running, None), &opts(true)),
    );
    golden(
        "stopped-tls",
        &text(&site(SiteState::Stopped, None), &opts(true)),
    );
    golden(
        "running-code-server",
        &text(&site(SiteState::Running, Some(true)), &opts(false)),
    );
    golden(
        "code-server-stopped-tls",
        &text(&site(SiteState::Running, Some(false)), &opts(true)),
    );
    // The stage's certificate is missing, its code server's is not.
    let missing = |p: &Path| match p.to_str().unwrap().contains("/qa.acme") {
        true => Err(format!("cannot read {}: missing", p.display())),
        false => Ok(()),
    };
    let r = render(&site(SiteState::Running, Some(true)), &opts(true), &missing).unwrap();
    assert_eq!(
        r.plain,
        vec![(
            "qa.acme.example.com".to_string(),
            "cannot read /etc/letsencrypt/live/qa.acme.example.com/fullchain.pem: missing"
                .to_string()
        )]
    );
    golden("running-tls-certificate-missing", &r.text);
}

/// ACME: the challenge location is on the HTTP port in every state, with a certificate
/// (beside the redirect) and while it is pending (beside the body).
#[test]
fn acme_golden_files_serve_the_challenge_in_every_state() {
    let pending = |_: &Path| Err("cannot read: not issued yet".to_string());
    for (name, state, code) in [
        ("acme-running", SiteState::Running, Some(true)),
        ("acme-stopped", SiteState::Stopped, None),
        ("acme-terminated", SiteState::Terminated, None),
    ] {
        let issued = text(&site(state, code), &acme_opts());
        golden(name, &issued);
        let r = render(&site(state, code), &acme_opts(), &pending).unwrap();
        assert_eq!(r.plain.len(), 1 + usize::from(code.is_some()));
        golden(&format!("{name}-pending"), &r.text);
        for t in [&issued, &r.text] {
            let servers = t.matches("\nserver {").count();
            let on_http = t.matches("listen 80;").count();
            assert_eq!(
                t.matches("location ^~ /.well-known/acme-challenge/ {")
                    .count(),
                on_http,
                "{name}: every HTTP server serves the challenge\n{t}"
            );
            assert!(servers >= on_http);
        }
        assert!(
            issued.contains("ssl_certificate_key /var/lib/stagelet/tls/qa.acme.example.com.pem;")
        );
    }
    // Off and files modes have no challenge location.
    assert!(!text(&site(SiteState::Running, None), &opts(true)).contains("acme-challenge"));
}

#[test]
fn listen_and_upstream_addresses() {
    let mut o = opts(false);
    o.listen_address = Some("127.0.0.1".parse().unwrap());
    o.listen_http = 18080;
    o.upstream = "::1".parse().unwrap();
    let text = text(&site(SiteState::Running, None), &o);
    assert!(text.contains("listen 127.0.0.1:18080;"), "{text}");
    assert!(text.contains("proxy_pass http://[::1]:20001;"), "{text}");
}

#[test]
fn a_bad_tls_template_is_an_error_not_a_file() {
    let mut o = opts(true);
    o.tls = Some(("/certs/{domain} x.pem".into(), "/k.pem".into()));
    assert!(render(&site(SiteState::Running, None), &o, &any_tls).is_err());
}

#[test]
fn a_file_carries_its_spec() {
    let spec = site(SiteState::Stopped, Some(false));
    let text = text(&spec, &opts(true));
    assert!(is_managed(&text));
    assert_eq!(spec_of(&text), Some(spec));
    assert!(!is_managed("server { listen 80; }\n"));
    assert_eq!(
        spec_of("# Managed by stagelet for stage a/b.\n# stagelet-site: {\n"),
        None
    );
}
