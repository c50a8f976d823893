//! The `[tls]` table: how the stage and code-server domains get their certificates (none,
//! files named by `nginx.tls_certificate`, or ACME), and the ACME server to ask.

use super::types::SafePath;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Let's Encrypt's production directory: the default ACME server.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain HTTP only.
    Off,
    /// Today's `nginx.tls_certificate` / `tls_certificate_key` templates.
    Files,
    /// Certificates issued and renewed by the agent.
    Acme,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Files => "files",
            TlsMode::Acme => "acme",
        }
    }
}

/// Only HTTP-01 is built; `dns-01` (and `[dns]`) is for later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Challenge {
    #[serde(rename = "http-01")]
    Http01,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tls {
    /// Unset: `files` when `nginx.tls_certificate` is set (the behaviour before `[tls]`),
    /// else `off`.
    pub mode: Option<TlsMode>,
    pub acme_directory: String,
    /// Empty: the account has no contact.
    pub acme_email: String,
    /// A PEM bundle of CAs to trust for the ACME server instead of the system's (a private
    /// server, or a test). Empty: the system's roots.
    pub acme_ca_file: String,
    pub challenge: Challenge,
    /// Where HTTP-01 tokens are written. nginx workers read it, so it lies outside the agent's
    /// 0750 state directory; tokens are public by design.
    pub challenge_dir: SafePath,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            mode: None,
            acme_directory: LETS_ENCRYPT.into(),
            acme_email: String::new(),
            acme_ca_file: String::new(),
            challenge: Challenge::Http01,
            challenge_dir: SafePath::try_from("/var/lib/stagelet-acme".to_string())
                .expect("a valid default"),
        }
    }
}

impl Tls {
    /// The mode in force, given the nginx table's templates.
    pub fn mode(&self, nginx: &super::Nginx) -> TlsMode {
        self.mode.unwrap_or(if nginx.tls_certificate.is_empty() {
            TlsMode::Off
        } else {
            TlsMode::Files
        })
    }

    /// Where the agent keeps its ACME account and certificates (mode 0700 directory).
    pub fn store_dir(state_dir: &Path) -> PathBuf {
        state_dir.join("tls")
    }

    pub(super) fn cross_check(&self, nginx: &super::Nginx) -> Vec<(&'static str, String)> {
        let mut errs = vec![];
        if self.mode == Some(TlsMode::Files) && nginx.tls_certificate.is_empty() {
            errs.push((
                "mode",
                "\"files\" needs nginx.tls_certificate and nginx.tls_certificate_key".into(),
            ));
        }
        if let Err(m) = check_directory(&self.acme_directory) {
            errs.push(("acme_directory", m));
        }
        if !self.acme_ca_file.is_empty() {
            if let Err(m) = check_ca_file(Path::new(&self.acme_ca_file)) {
                errs.push(("acme_ca_file", m));
            }
        }
        if self
            .acme_email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
            || (!self.acme_email.is_empty() && !self.acme_email.contains('@'))
        {
            errs.push(("acme_email", "must be an e-mail address, or empty".into()));
        }
        errs
    }
}

/// An ACME directory URL: https, or http only to a loopback host (a local test server).
pub fn check_directory(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = uri.host().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if loopback => Ok(()),
        _ => Err(format!(
            "{url:?} must be an https:// URL (http:// only for a loopback host)"
        )),
    }
}

/// A CA bundle: a readable file of at least one PEM certificate, every one of which parses.
pub fn check_ca_file(
    path: &Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    for c in &certs {
        x509_parser::parse_x509_certificate(c).map_err(|e| {
            format!(
                "{} holds a certificate that does not parse: {e}",
                path.display()
            )
        })?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_must_be_https_unless_loopback() {
        assert!(check_directory(LETS_ENCRYPT).is_ok());
        assert!(check_directory("https://127.0.0.1:14000/dir").is_ok());
        assert!(check_directory("http://127.0.0.1:14000/dir").is_ok());
        assert!(check_directory("http://[::1]:14000/dir").is_ok());
        assert!(check_directory("http://localhost/dir").is_ok());
        assert!(check_directory("http://acme.example.com/dir").is_err());
        assert!(check_directory("ftp://acme.example.com/dir").is_err());
        assert!(check_directory("not a url").is_err());
        assert!(check_directory("").is_err());
    }

    #[test]
    fn mode_defaults_to_files_when_templates_are_set() {
        let mut nginx = super::super::Nginx::default();
        let tls = Tls::default();
        assert_eq!(tls.mode(&nginx), TlsMode::Off);
        nginx.tls_certificate = "/etc/ssl/{domain}.pem".into();
        assert_eq!(tls.mode(&nginx), TlsMode::Files);
        let acme = Tls {
            mode: Some(TlsMode::Acme),
            ..Tls::default()
        };
        assert_eq!(acme.mode(&nginx), TlsMode::Acme);
    }

    #[test]
    fn a_ca_file_must_parse() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        assert!(check_ca_file(&f).unwrap_err().contains("cannot read"));
        std::fs::write(&f, "hello").unwrap();
        assert!(check_ca_file(&f).unwrap_err().contains("no PEM"));
        std::fs::write(
            &f,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(check_ca_file(&f).is_err());
    }
}
