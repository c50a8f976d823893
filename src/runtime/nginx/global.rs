//! The agent's one global nginx file (`nginx.global_file`): the WebSocket map, the catch-all
//! server for unknown Host names and the include of the sites, rendered from the configuration
//! and kept current at start-up, on SIGHUP and before each batch of site changes.
//!
//! It sets nothing at nginx's `http` level but the map: a distribution's nginx.conf already
//! sets `ssl_protocols` and `ssl_prefer_server_ciphers` there (Debian does), and a second
//! `ssl_ciphers`, `server_tokens` or `ssl_prefer_server_ciphers` in the same block makes
//! `nginx -t` fail. The shared TLS settings live in the agent's own server blocks instead: the
//! catch-all's (the default server of `listen_https`, whose settings nginx uses before SNI
//! picks a stage) and each stage's.

use super::batch;
use super::control::Control;
use super::render::{lines, RenderOptions, SSL_CIPHERS, SSL_PROTOCOLS};
use crate::config::types::SafePath;
use crate::config::Config;
use crate::runtime::records::write_atomic;
use std::path::Path;

/// The first line of the file: it marks the file as the agent's, which alone may overwrite it.
const MANAGED_LINE: &str =
    "# Managed by stagelet: its global nginx file, written from its configuration";

/// The name the catch-all answers to besides being the default; no stage domain can take it
/// (domains hold no '_'), and it cannot clash with Debian's `server_name _`.
const CATCH_ALL_NAME: &str = "_stagelet_catch_all";

/// The file's text for these listen settings and sites directory.
pub fn render(opts: &RenderOptions, sites_dir: &SafePath) -> String {
    let mut out = format!(
        "{MANAGED_LINE} ([nginx] in stagelet.toml).\n\
         # Do not edit: it is rewritten at start-up and on reload. See docs/nginx.md.\n\n"
    );
    lines(
        &mut out,
        0,
        &["map $http_upgrade $stagelet_connection_upgrade {"],
    );
    lines(&mut out, 1, &["default upgrade;", "'' close;"]);
    lines(
        &mut out,
        0,
        &[
            "}",
            "",
            "# Unknown Host names never reach a stage. This server comes before every stage's, so",
            "# it is the default for these ports unless another server claims default_server",
            "# (Debian's default site does on port 80: unknown names get its page then).",
            "server {",
        ],
    );
    let http = format!("listen {};", opts.listen(opts.listen_http));
    let https = format!("listen {} ssl;", opts.listen(opts.listen_https));
    let name = format!("server_name {CATCH_ALL_NAME};");
    lines(
        &mut out,
        1,
        &[
            &http,
            &https,
            &name,
            "server_tokens off;",
            "ssl_reject_handshake on;",
            SSL_PROTOCOLS,
            SSL_CIPHERS,
            "access_log off;",
            "return 444;",
        ],
    );
    let include = format!("include {}/*.conf;", sites_dir.as_str());
    lines(&mut out, 0, &["}", "", &include]);
    out
}

/// The file's text for a configuration; `Err` when a path in it is not plain (check-config
/// refuses such a configuration, so this is a second guard).
pub fn render_config(config: &Config) -> Result<String, String> {
    let sites = SafePath::try_from(config.nginx.sites_dir.display().to_string())
        .map_err(|e| format!("nginx.sites_dir: {e}"))?;
    Ok(render(&RenderOptions::from_config(config), &sites))
}

/// Makes `nginx.global_file` match the configuration. When it changed: test nginx with it
/// (putting the previous file back when nginx refuses it) and reload a running master.
/// `Ok(true)`: nginx was reloaded.
pub fn ensure(config: &Config, control: &Control) -> Result<bool, String> {
    let text = render_config(config)?;
    let path = Path::new(config.nginx.global_file.as_str());
    let previous = match std::fs::read_to_string(path) {
        Ok(old) if old == text => return Ok(false),
        Ok(old) if !old.starts_with(MANAGED_LINE) => {
            return Err(format!(
                "{} exists and stagelet did not write it: move it away or set nginx.global_file",
                path.display()
            ))
        }
        Ok(old) => Some(old),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let write = |bytes: &[u8]| -> Result<(), String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        write_atomic(path, bytes, 0o644)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(text.as_bytes())?;
    // A site nginx refuses (its certificate vanished) is set aside as a batch would: putting
    // the old file back, or none, would leave nginx including no site at all.
    let sites = config.nginx.sites_dir.as_path();
    let opts = RenderOptions::from_config(config);
    if let Err(e) = batch::test_setting_aside(sites, control, &opts) {
        let undone = match &previous {
            Some(old) => write(old.as_bytes()),
            None => std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display())),
        };
        if let Err(undo) = &undone {
            tracing::error!(file = %path.display(), error = %undo, "cannot put the nginx global file back as it was");
        }
        return Err(format!("{e}; {} is left as it was", path.display()));
    }
    if !control.running() {
        // nginx reads the file when it starts.
        return Ok(false);
    }
    control.reload().map(|()| true)
}

/// What to add to nginx's refusal of a site when nothing defines the agent's map: nginx does
/// not include the global file.
pub fn hint(nginx_said: &str, config: &Config) -> String {
    if !nginx_said.contains("stagelet_connection_upgrade") {
        return String::new();
    }
    format!(
        " (nginx does not read {}: include it from nginx's http block, see docs/nginx.md)",
        config.nginx.global_file.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default()
    }

    #[test]
    fn the_default_render_is_the_golden_file() {
        let text = render_config(&config()).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/global/stagelet.conf");
        if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(text, std::fs::read_to_string(&path).unwrap());
    }

    #[test]
    fn the_packaged_include_matches_the_default_global_file() {
        // The package ships etc/nginx/stagelet.conf as /etc/nginx/conf.d/stagelet.conf: its
        // glob must find the file the agent writes by default.
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/nginx/stagelet.conf"),
        )
        .unwrap();
        let global = Path::new(config().nginx.global_file.as_str()).to_path_buf();
        assert_eq!(global.extension().unwrap(), "conf");
        let glob = format!("include {}/*.conf;", global.parent().unwrap().display());
        let includes: Vec<&str> = shipped
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .collect();
        assert_eq!(includes, vec![glob.as_str()], "{shipped}");
    }

    #[test]
    fn follows_the_listen_settings_and_the_sites_dir() {
        let mut c = config();
        c.nginx.listen_address = "127.0.0.1".into();
        c.nginx.listen_http = 8080;
        c.nginx.listen_https = 8443;
        c.nginx.sites_dir = "/srv/nginx/sites".into();
        let text = render_config(&c).unwrap();
        assert!(text.contains("    listen 127.0.0.1:8080;\n"), "{text}");
        assert!(text.contains("    listen 127.0.0.1:8443 ssl;\n"), "{text}");
        assert!(
            text.contains("\ninclude /srv/nginx/sites/*.conf;\n"),
            "{text}"
        );
        assert!(!text.contains(" default_server;"), "{text}");
        c.nginx.sites_dir = "/srv/a b;".into();
        assert!(render_config(&c).unwrap_err().contains("nginx.sites_dir"));
    }

    fn control(test: &str) -> Control {
        Control {
            test_command: vec!["sh".into(), "-c".into(), test.into()],
            reload_command: vec![],
            pid_file: "/nonexistent/nginx.pid".into(),
            reload_timeout: std::time::Duration::from_secs(1),
        }
    }

    #[test]
    fn writes_once_refuses_foreign_files_and_puts_back_what_nginx_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("global/stagelet.conf");
        let mut c = config();
        c.nginx.global_file = SafePath::try_from(path.display().to_string()).unwrap();
        // nginx not running: written, not reloaded; then unchanged.
        assert_eq!(ensure(&c, &control("true")), Ok(false));
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(first, render_config(&c).unwrap());
        assert_eq!(
            ensure(&c, &control("false")),
            Ok(false),
            "unchanged: no test"
        );
        // A refused change leaves the previous file.
        c.nginx.listen_http = 8080;
        let err = ensure(&c, &control("echo '[emerg] no' >&2; false")).unwrap_err();
        assert!(err.contains("[emerg] no"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        // A refused first file leaves none.
        std::fs::remove_file(&path).unwrap();
        assert!(ensure(&c, &control("false")).is_err());
        assert!(!path.exists());
        // A file stagelet did not write is never overwritten.
        std::fs::write(&path, "http { }\n").unwrap();
        let err = ensure(&c, &control("true")).unwrap_err();
        assert!(err.contains("did not write it"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "http { }\n");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }
}
