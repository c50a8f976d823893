//! One coalesced batch of site changes: render, place, test, reload. When the test fails the
//! site files that break it are found; a change of this batch that breaks it is put back and
//! fails alone, and any other site that breaks it (its certificate vanished, say) is rendered
//! again without TLS, or set aside, so it cannot block anyone else. A removal always removes.

use super::control::Control;
use super::render::{self, RenderOptions};
use super::{files, isolate};
use crate::core::site::SiteSpec;
use crate::runtime::acme::store::leaf;
use crate::runtime::records::write_atomic;
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;

/// Larger files are no certificate or key nginx is meant to load.
const MAX_PEM: u64 = 1 << 20;

/// A certificate or key must be a readable PEM file, and a file holding a certificate (the
/// certificate, or ACME's one file with the key) must hold a leaf that parses and has not
/// expired: else its domain is served without TLS, never with an expired certificate.
pub fn usable(path: &Path) -> Result<(), String> {
    let mut pem = vec![];
    fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM).read_to_end(&mut pem))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN ") {
        return Err(format!("{} holds no PEM block", path.display()));
    }
    if text.contains("-----BEGIN CERTIFICATE-----") {
        let leaf = leaf(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        if leaf.not_after <= crate::core::time::now() {
            return Err(format!(
                "the certificate in {} expired at {}",
                path.display(),
                crate::core::time::rfc3339(&leaf.not_after)
            ));
        }
    }
    Ok(())
}

/// The site files in `dir` that the options would render otherwise, with the spec each
/// carries: after a reload that changed the ports, say, or a certificate that expired while
/// the agent was down. Files without a spec are left as they are.
pub fn stale(dir: &Path, opts: &RenderOptions) -> Vec<(String, Option<SiteSpec>)> {
    let keys = files::managed(dir).unwrap_or_default();
    keys.into_iter()
        .filter_map(|key| {
            let text = fs::read_to_string(files::live(dir, &key)).ok()?;
            let spec = render::spec_of(&text).filter(|s| s.key() == key)?;
            let fresh = render::render(&spec, opts, &usable).ok()?;
            (fresh.text != text).then_some((key, Some(spec)))
        })
        .collect()
}

/// What one key of the batch does and how it ended.
struct Item {
    key: String,
    removal: bool,
    placed: Option<files::Placed>,
    result: Result<(), String>,
}

/// Applies the changes (`None`: remove the site) with one test and one reload when all are
/// good. Returns each change's result in order, and whether nginx reloaded.
pub fn apply(
    dir: &Path,
    control: &Control,
    opts: &RenderOptions,
    changes: Vec<(String, Option<SiteSpec>)>,
) -> (Vec<Result<(), String>>, bool) {
    let mut items: Vec<Item> = changes
        .into_iter()
        .map(|(key, spec)| place(dir, opts, key, spec))
        .collect();
    if items.iter().all(|i| i.placed.is_none()) {
        return (items.into_iter().map(|i| i.result).collect(), false);
    }
    let mut aside = BTreeSet::new();
    let tested = test_isolating(dir, control, opts, &mut items, &mut aside);
    let live = items.iter().any(|i| i.placed.is_some()) || !aside.is_empty();
    let reloaded = match &tested {
        Ok(()) if live => control.reload().inspect_err(|e| {
            tracing::error!(error = %e, "nginx reload failed");
        }),
        Ok(()) => Ok(()),
        Err(e) => Err(e.clone()),
    };
    for item in &mut items {
        let Some(p) = item.placed.take() else {
            continue;
        };
        if item.removal {
            // The file is gone whatever nginx says: another site's fault is not this removal's.
            if reloaded.is_err() {
                tracing::warn!(site = %item.key, "site file removed; nginx serves it until its next successful reload");
            }
            p.commit();
        } else if let Err(e) = &reloaded {
            p.restore();
            item.result = Err(e.clone());
        } else {
            p.commit();
        }
    }
    let results = items.into_iter().map(|i| i.result).collect();
    (results, live && reloaded.is_ok())
}

/// Tests nginx, setting aside each site that breaks the test until it passes; `Err` when the
/// fault is not in stagelet's sites.
pub(super) fn test_setting_aside(
    dir: &Path,
    control: &Control,
    opts: &RenderOptions,
) -> Result<(), String> {
    test_isolating(dir, control, opts, &mut [], &mut BTreeSet::new())
}

/// Tests until nginx accepts the configuration: each failure puts this batch's offending change
/// back (it alone fails) or gets another offending site out of the way. `Err` when the fault
/// is not in stagelet's sites.
fn test_isolating(
    dir: &Path,
    control: &Control,
    opts: &RenderOptions,
    items: &mut [Item],
    aside: &mut BTreeSet<String>,
) -> Result<(), String> {
    // Each round puts one change back, renders one site without TLS or sets one aside: at most
    // two rounds per site file.
    let mut rounds = None;
    loop {
        let Err(msg) = control.test() else {
            return Ok(());
        };
        let left = rounds.get_or_insert_with(|| {
            2 * files::managed(dir).map_or(0, |k| k.len()) + items.len() + 1
        });
        *left -= 1;
        let culprits = match isolate::culprits(dir, control, &msg) {
            Some(c) if *left > 0 => c,
            _ => {
                tracing::error!(error = %msg, "nginx refuses its configuration for a reason outside stagelet's sites; no reload");
                return Err(msg);
            }
        };
        for key in culprits {
            let own = items
                .iter_mut()
                .find(|i| i.key == key && !i.removal && i.placed.is_some());
            match own {
                Some(item) => {
                    if let Some(p) = item.placed.take() {
                        p.restore();
                    }
                    tracing::warn!(site = %key, error = %msg, "nginx refuses this site's new file; the previous one is back");
                    item.result = Err(msg.clone());
                }
                None => set_aside(dir, opts, &key, &msg, aside),
            }
        }
    }
}

/// Renders (checking each certificate) and puts one change in place.
fn place(dir: &Path, opts: &RenderOptions, key: String, spec: Option<SiteSpec>) -> Item {
    let removal = spec.is_none();
    let text = match spec.map(|s| render::render(&s, opts, &usable)).transpose() {
        Ok(r) => r.map(|r| {
            for (domain, why) in &r.plain {
                if opts.acme_challenge.is_some() {
                    // ACME: the usual case until the first certificate is issued.
                    tracing::debug!(site = %key, %domain, reason = %why, "serving this domain over HTTP until its certificate is issued");
                    continue;
                }
                tracing::warn!(site = %key, %domain, reason = %why, "serving this domain without TLS: its certificate or key cannot be used");
            }
            r.text
        }),
        Err(e) => {
            return Item {
                key,
                removal,
                placed: None,
                result: Err(e),
            }
        }
    };
    match files::place(dir, &key, text.as_deref()) {
        Ok(p) => Item {
            key,
            removal,
            placed: Some(p),
            result: Ok(()),
        },
        Err(e) => Item {
            result: Err(format!("cannot write {}/{key}.conf: {e}", dir.display())),
            key,
            removal,
            placed: None,
        },
    }
}

/// Gets a site that is not this batch's change out of nginx's way: first the spec its file
/// carries rendered again without TLS (the usual fault: its certificate vanished; this also
/// repairs a hand-edited file), then, if nginx still refuses it, the file moved to
/// `<key>.conf.broken`. Its next change writes it afresh.
fn set_aside(dir: &Path, opts: &RenderOptions, key: &str, msg: &str, aside: &mut BTreeSet<String>) {
    let live = files::live(dir, key);
    let text = fs::read_to_string(&live).unwrap_or_default();
    if aside.insert(key.to_string()) {
        let refused = |_: &Path| Err("nginx refused the site with TLS".to_string());
        let plain = render::spec_of(&text)
            .filter(|s| s.key() == key)
            .and_then(|s| render::render(&s, opts, &refused).ok());
        if let Some(r) = plain.filter(|r| r.text != text) {
            if write_atomic(&live, r.text.as_bytes(), 0o644).is_ok() {
                tracing::warn!(site = %key, error = %msg, "nginx refuses this site's file; rendered again from its spec without TLS until its next change");
                return;
            }
        }
    }
    match fs::rename(&live, files::broken(dir, key)) {
        Ok(()) => {
            tracing::error!(site = %key, error = %msg, "nginx refuses this site's file; set aside as {key}.conf.broken, its domain is not served")
        }
        Err(e) => {
            tracing::error!(site = %key, error = %msg, "nginx refuses this site's file and it cannot be moved aside: {e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate (PEM) valid from `from` to `to` seconds from now, and its key.
    fn cert(from: i64, to: i64) -> (String, String) {
        let now = time::OffsetDateTime::now_utc();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.example.com".into()]).unwrap();
        params.not_before = now + time::Duration::seconds(from);
        params.not_after = now + time::Duration::seconds(to);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn a_certificate_must_be_a_readable_pem_that_has_not_expired() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("c.pem");
        assert!(usable(&pem).unwrap_err().contains("cannot read"));
        fs::write(&pem, "garbage").unwrap();
        assert!(usable(&pem).unwrap_err().contains("no PEM block"));
        fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        assert!(usable(&pem).is_err(), "a certificate that does not parse");
        let (valid, key) = cert(-3600, 3600);
        fs::write(&pem, format!("{valid}\n{key}")).unwrap();
        usable(&pem).unwrap();
        // A key file of `files` mode holds no certificate: only its PEM form is checked.
        fs::write(&pem, &key).unwrap();
        usable(&pem).unwrap();
        let (expired, key) = cert(-7200, -60);
        fs::write(&pem, format!("{expired}\n{key}")).unwrap();
        assert!(usable(&pem).unwrap_err().contains("expired at"));
    }

    #[test]
    fn sites_the_options_render_otherwise_are_stale() {
        use crate::config::types::{BodySize, SafePath};
        use crate::core::names::{Domain, StageName, SubscriptionId};
        let dir = tempfile::tempdir().unwrap();
        let spec = SiteSpec {
            subscription: SubscriptionId::parse("acme").unwrap(),
            name: StageName::parse("qa").unwrap(),
            domain: Domain::parse("qa.acme.example.com").unwrap(),
            state: crate::core::site::SiteState::Running,
            http_port: 20001,
            code_server: None,
            blocked_paths: vec![],
            longpolling_port: None,
        };
        let opts = RenderOptions {
            listen_address: None,
            listen_http: 80,
            listen_https: 443,
            upstream: "127.0.0.1".parse().unwrap(),
            tls: None,
            client_max_body_size: BodySize::try_from("100m".to_string()).unwrap(),
            log_dir: SafePath::try_from("/var/log/nginx".to_string()).unwrap(),
            acme_challenge: None,
        };
        let text = render::render(&spec, &opts, &usable).unwrap().text;
        fs::write(files::live(dir.path(), &spec.key()), text).unwrap();
        fs::write(dir.path().join("foreign.conf"), "server {}\n").unwrap();
        assert!(stale(dir.path(), &opts).is_empty());
        let moved = RenderOptions {
            listen_http: 8080,
            ..opts
        };
        assert_eq!(stale(dir.path(), &moved), vec![(spec.key(), Some(spec))]);
    }
}
