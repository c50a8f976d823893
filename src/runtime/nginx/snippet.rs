//! The include snippet shipped as `etc/nginx/stagelet.conf`: the WebSocket map, the shared TLS
//! settings, the catch-all default server and the include of the sites directory.

use super::render::{lines, RenderOptions, SSL_CIPHERS, SSL_PROTOCOLS};
use crate::config::types::SafePath;

/// The include snippet: the WebSocket map, the TLS session cache, a catch-all default server
/// that answers 444 to unknown hosts, and the include of `sites_dir`.
pub fn snippet(opts: &RenderOptions, sites_dir: &SafePath) -> String {
    let mut out = String::from(
        "# stagelet: include this file from the http block of nginx.conf.\n\
         # Debian: it is installed as /etc/nginx/conf.d/stagelet.conf; remove\n\
         # /etc/nginx/sites-enabled/default, whose default_server would clash with the one below.\n\n",
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
            "server_tokens off;",
            "ssl_session_cache shared:stagelet_tls:10m;",
            SSL_PROTOCOLS,
            SSL_CIPHERS,
            "",
        ],
    );
    lines(
        &mut out,
        0,
        &[
            "# Unknown Host names must not reach the first stage's server: close them.",
            "server {",
        ],
    );
    let http = format!("listen {} default_server;", opts.listen(opts.listen_http));
    let https = format!(
        "listen {} ssl default_server;",
        opts.listen(opts.listen_https)
    );
    lines(
        &mut out,
        1,
        &[
            &http,
            &https,
            "server_name _;",
            "ssl_reject_handshake on;",
            "access_log off;",
            "return 444;",
        ],
    );
    let include = format!("include {}/*.conf;", sites_dir.as_str());
    lines(&mut out, 0, &["}", "", &include]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_snippet_is_the_default_render() {
        let config = crate::config::Config::default();
        let sites = SafePath::try_from(config.nginx.sites_dir.display().to_string()).unwrap();
        let text = snippet(&RenderOptions::from_config(&config), &sites);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/nginx/stagelet.conf");
        if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(text, std::fs::read_to_string(&path).unwrap());
    }
}
