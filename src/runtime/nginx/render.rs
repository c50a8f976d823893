//! Rendering a stage's nginx file: pure functions of the site, the nginx settings and whether
//! each domain's certificate can be used. Every value written comes from a validated type
//! (domain, port, IP, safe path, size), so no client string can reach the file as it is.

use crate::config::tls::TlsMode;
use crate::config::types::{BodySize, SafePath};
use crate::core::site::{CodeServerSite, SiteSpec, SiteState};
use std::fmt::Write;
use std::net::IpAddr;
use std::path::Path;

/// Whether a certificate or key file can be used; `Err(why)` serves its domain over plain HTTP.
pub type TlsCheck<'a> = &'a dyn Fn(&Path) -> Result<(), String>;

/// A check that takes every certificate as usable (for rendering without a file system).
pub fn any_tls(_: &Path) -> Result<(), String> {
    Ok(())
}

/// The second line of every site file: the spec it was rendered from, as JSON, so the agent can
/// render it again on its own. Its first line marks the file as stagelet's.
const SPEC_LINE: &str = "# stagelet-site: ";
const MANAGED_LINE: &str = "# Managed by stagelet for stage ";

/// A rendered file, and the domains served without TLS although TLS is configured (with why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub plain: Vec<(String, String)>,
}

/// Whether stagelet wrote this file (it never touches others).
pub fn is_managed(text: &str) -> bool {
    text.starts_with(MANAGED_LINE)
}

/// The spec a site file was rendered from; `None` for files that carry none.
pub fn spec_of(text: &str) -> Option<SiteSpec> {
    let json = text
        .lines()
        .take(2)
        .find_map(|l| l.strip_prefix(SPEC_LINE))?;
    serde_json::from_str(json).ok()
}

/// The nginx settings rendering needs, checked when the configuration was loaded.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub listen_address: Option<IpAddr>,
    pub listen_http: u16,
    pub listen_https: u16,
    pub upstream: IpAddr,
    /// Certificate and key templates with `{domain}`; `None`: plain HTTP.
    pub tls: Option<(String, String)>,
    pub client_max_body_size: BodySize,
    pub log_dir: SafePath,
    /// ACME mode: HTTP-01 tokens are served from here on the HTTP port, in every state.
    pub acme_challenge: Option<SafePath>,
}

impl RenderOptions {
    pub fn from_config(config: &crate::config::Config) -> RenderOptions {
        let n = &config.nginx;
        let mode = config.tls.mode(n);
        // ACME: one file per domain holds the chain and its key (see runtime::acme::store).
        let acme = (mode == TlsMode::Acme)
            .then(|| crate::runtime::acme::AcmeAuthority::cert_template(&config.agent.state_dir));
        RenderOptions {
            listen_address: n.listen_ip().ok().flatten(),
            listen_http: n.listen_http,
            listen_https: n.listen_https,
            upstream: config.ports.bind_address,
            tls: match (mode, acme) {
                (TlsMode::Acme, Some(file)) => Some((file.clone(), file)),
                (TlsMode::Files, _) => {
                    Some((n.tls_certificate.clone(), n.tls_certificate_key.clone()))
                }
                _ => None,
            },
            client_max_body_size: n.client_max_body_size.clone(),
            log_dir: n.log_dir.clone(),
            acme_challenge: (mode == TlsMode::Acme).then(|| config.tls.challenge_dir.clone()),
        }
    }

    pub(super) fn listen(&self, port: u16) -> String {
        match self.listen_address {
            None => port.to_string(),
            Some(IpAddr::V4(a)) => format!("{a}:{port}"),
            Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        }
    }

    fn upstream(&self, port: u16) -> String {
        match self.upstream {
            IpAddr::V4(a) => format!("http://{a}:{port}"),
            IpAddr::V6(a) => format!("http://[{a}]:{port}"),
        }
    }
}

/// What one server block does.
enum Body<'a> {
    Proxy {
        port: u16,
        odoo_websocket: bool,
        /// Prefixes answered 403 (the profile's `blocked_paths`).
        blocked: &'a [SafePath],
    },
    Page {
        status: u16,
        title: &'a str,
        text: &'a str,
    },
}

/// What one render writes to and learns.
struct Out<'a> {
    text: String,
    plain: Vec<(String, String)>,
    opts: &'a RenderOptions,
    check: TlsCheck<'a>,
}

/// The whole file for a stage: its own server block(s), then the code server's. A domain whose
/// certificate or key fails `check` is served over plain HTTP.
pub fn render(site: &SiteSpec, opts: &RenderOptions, check: TlsCheck) -> Result<Rendered, String> {
    let key = site.key();
    // Every field is a validated type: the JSON holds no newline and nothing nginx would parse.
    let spec = serde_json::to_string(site).map_err(|e| e.to_string())?;
    let mut out = Out {
        text: format!(
            "{MANAGED_LINE}{}/{}. Do not edit: it is rewritten on every change.\n{SPEC_LINE}{spec}\n",
            site.subscription, site.name
        ),
        plain: vec![],
        opts,
        check,
    };
    let body = match site.state {
        SiteState::Running => Body::Proxy {
            port: site.http_port,
            odoo_websocket: true,
            blocked: &site.blocked_paths,
        },
        SiteState::Stopped => Body::Page {
            status: 503,
            title: "Stage stopped",
            text: "is stopped. It will answer again once it is started.",
        },
        SiteState::Terminated => Body::Page {
            status: 410,
            title: "Stage terminated",
            text: "has been terminated and is no longer served.",
        },
    };
    server(&mut out, site.domain.as_str(), &key, &body)?;
    if let Some(cs) = &site.code_server {
        code_server(&mut out, cs, &key)?;
    }
    Ok(Rendered {
        text: out.text,
        plain: out.plain,
    })
}

fn code_server(out: &mut Out, cs: &CodeServerSite, key: &str) -> Result<(), String> {
    let body = if cs.running {
        Body::Proxy {
            port: cs.port,
            odoo_websocket: false,
            blocked: &[],
        }
    } else {
        Body::Page {
            status: 503,
            title: "Code server stopped",
            text: "is a code server that is stopped.",
        }
    };
    server(out, cs.domain.as_str(), &format!("{key}--code"), &body)
}

pub(super) const SSL_PROTOCOLS: &str = "ssl_protocols TLSv1.2 TLSv1.3;";
pub(super) const SSL_CIPHERS: &str = "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;";
// Set per server, not at nginx's http level, where the distribution's nginx.conf may set them
// too (a second one there fails `nginx -t`; see global.rs). One cache for every stage: the
// same zone name and size in each server share it.
const SSL_SESSION_CACHE: &str = "ssl_session_cache shared:stagelet_tls:10m;";
const SERVER_TOKENS: &str = "server_tokens off;";
const HSTS: &str = "add_header Strict-Transport-Security \"max-age=63072000\" always;";

/// Appends `lines`, each indented by `depth` levels of four spaces.
pub(super) fn lines(out: &mut String, depth: usize, lines: &[&str]) {
    for l in lines {
        let _ = writeln!(out, "{:width$}{l}", "", width = depth * 4);
    }
}

/// One domain: with TLS a redirect on HTTP plus the TLS server, else the plain HTTP server.
fn server(out: &mut Out, domain: &str, log_name: &str, body: &Body) -> Result<(), String> {
    let opts = out.opts;
    let dir = opts.log_dir.as_str();
    let access_log = format!("access_log {dir}/stagelet-{log_name}.access.log;");
    let error_log = format!("error_log {dir}/stagelet-{log_name}.error.log;");
    let name = format!("server_name {domain};");
    let http = format!("listen {};", opts.listen(opts.listen_http));
    let tls = match &opts.tls {
        Some((cert, key)) => {
            let cert = SafePath::try_from(cert.replace("{domain}", domain))?;
            let key = SafePath::try_from(key.replace("{domain}", domain))?;
            match (out.check)(Path::new(cert.as_str())).and((out.check)(Path::new(key.as_str()))) {
                Ok(()) => Some((cert, key)),
                Err(why) => {
                    out.plain.push((domain.to_string(), why));
                    None
                }
            }
        }
        None => None,
    };
    let text = &mut out.text;
    match tls {
        Some((cert, key)) => {
            let redirect = format!("return 301 https://{domain}$request_uri;");
            text.push_str("\nserver {\n");
            lines(
                text,
                1,
                &[&http, &name, &access_log, &error_log, SERVER_TOKENS],
            );
            acme_location(text, opts);
            blocked_locations(text, body);
            lines(text, 1, &["location / {"]);
            lines(text, 2, &[&redirect]);
            lines(text, 1, &["}"]);
            text.push_str("}\n\nserver {\n");
            let https = format!("listen {} ssl http2;", opts.listen(opts.listen_https));
            let cert = format!("ssl_certificate {};", cert.as_str());
            let key = format!("ssl_certificate_key {};", key.as_str());
            lines(
                text,
                1,
                &[
                    &https,
                    &name,
                    &access_log,
                    &error_log,
                    &cert,
                    &key,
                    SSL_PROTOCOLS,
                    SSL_CIPHERS,
                    SSL_SESSION_CACHE,
                    SERVER_TOKENS,
                    "ssl_prefer_server_ciphers off;",
                    "ssl_session_timeout 1d;",
                    "ssl_session_tickets off;",
                    HSTS,
                ],
            );
            body_lines(text, domain, body, opts, "https");
        }
        None => {
            text.push_str("\nserver {\n");
            if opts.acme_challenge.is_some() {
                lines(
                    text,
                    1,
                    &["# TLS waits for this domain's ACME certificate: plain HTTP until it is issued."],
                );
            } else if opts.tls.is_some() {
                // The reason is in the agent's log; the file holds only validated values.
                lines(
                    text,
                    1,
                    &["# TLS is off: the certificate or key could not be used (see the agent's log)."],
                );
            }
            lines(
                text,
                1,
                &[&http, &name, &access_log, &error_log, SERVER_TOKENS],
            );
            acme_location(text, opts);
            body_lines(text, domain, body, opts, "$scheme");
        }
    }
    text.push_str("}\n");
    Ok(())
}

/// The blocked prefixes answer 403 on every port; `^~` wins over the regex-free prefix
/// locations of the proxy (`/`, `/websocket`) whatever their length.
fn blocked_locations(out: &mut String, body: &Body) {
    if let Body::Proxy { blocked, .. } = body {
        for path in blocked.iter() {
            lines(out, 1, &[&format!("location ^~ {} {{", path.as_str())]);
            lines(out, 2, &["return 403;"]);
            lines(out, 1, &["}"]);
        }
    }
}

/// ACME HTTP-01: tokens from the challenge directory, whatever the stage's state (a `^~`
/// prefix wins over the regex-free `location /` of every body).
fn acme_location(out: &mut String, opts: &RenderOptions) {
    if let Some(dir) = &opts.acme_challenge {
        let root = format!("root {};", dir.as_str());
        lines(out, 1, &["location ^~ /.well-known/acme-challenge/ {"]);
        lines(out, 2, &[&root, "default_type text/plain;"]);
        lines(out, 1, &["}"]);
    }
}

fn body_lines(out: &mut String, domain: &str, body: &Body, opts: &RenderOptions, proto: &str) {
    match body {
        Body::Proxy {
            port,
            odoo_websocket,
            ..
        } => {
            blocked_locations(out, body);
            let size = format!(
                "client_max_body_size {};",
                opts.client_max_body_size.as_str()
            );
            lines(
                out,
                1,
                &[
                    &size,
                    "gzip on;",
                    "gzip_proxied any;",
                    "gzip_types text/plain text/css text/xml text/javascript application/javascript application/json application/xml image/svg+xml;",
                ],
            );
            let pass = format!("proxy_pass {};", opts.upstream(*port));
            let forwarded_proto = format!("proxy_set_header X-Forwarded-Proto {proto};");
            // proxy_set_header is inherited only by blocks that set none, so each location
            // repeats the whole set.
            let proxy = [
                pass.as_str(),
                "proxy_http_version 1.1;",
                "proxy_set_header Host $host;",
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                &forwarded_proto,
                "proxy_set_header X-Forwarded-Host $host;",
                "proxy_set_header X-Real-IP $remote_addr;",
                "proxy_set_header Upgrade $http_upgrade;",
                "proxy_set_header Connection $stagelet_connection_upgrade;",
                "proxy_connect_timeout 10s;",
                "proxy_read_timeout 720s;",
                "proxy_send_timeout 720s;",
                "proxy_redirect off;",
            ];
            let locations: &[&str] = if *odoo_websocket {
                &["/websocket", "/"]
            } else {
                &["/"]
            };
            for loc in locations {
                lines(out, 1, &[&format!("location {loc} {{")]);
                lines(out, 2, &proxy);
                lines(out, 1, &["}"]);
            }
        }
        Body::Page {
            status,
            title,
            text,
        } => {
            let page = format!(
                "return {status} '<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><p>{domain} {text}</p></body></html>\\n';"
            );
            lines(out, 1, &["location / {"]);
            lines(
                out,
                2,
                &[
                    "default_type text/html;",
                    "add_header Cache-Control \"no-store\" always;",
                ],
            );
            // add_header in a location drops the server's, so HSTS is repeated here.
            if proto == "https" {
                lines(out, 2, &[HSTS]);
            }
            lines(out, 2, &[&page]);
            lines(out, 1, &["}"]);
        }
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
