//! Where ACME things live on disk. In `<state_dir>/tls/` (0700), each file 0600 and written
//! durably: `account.json` (the account key, made once), `<domain>.pem` (the chain followed by
//! its key: one file renamed into place, so nginx never reads a key of another certificate)
//! and `<domain>.json` (the domain's TLS record). HTTP-01 tokens are `challenge.rs`'s.

use crate::core::names::Domain;
use crate::core::time::Timestamp;
use crate::runtime::records::write_atomic;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    /// Makes the directory 0700 (whatever the umask) and clears temp files a crash left.
    pub fn open(dir: PathBuf) -> io::Result<Store> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Store { dir })
    }

    /// The file nginx reads as both `ssl_certificate` and `ssl_certificate_key`.
    pub fn cert_template(dir: &Path) -> String {
        dir.join("{domain}.pem").display().to_string()
    }

    pub fn cert(&self, domain: &Domain) -> PathBuf {
        self.dir.join(format!("{domain}.pem"))
    }

    pub fn record(&self, domain: &Domain) -> PathBuf {
        self.dir.join(format!("{domain}.json"))
    }

    pub fn account(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    pub fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        write_atomic(path, bytes, 0o600)
    }

    /// Removes a domain's certificate and record; absent files are fine.
    pub fn release(&self, domain: &Domain) -> io::Result<()> {
        for p in [self.cert(domain), self.record(domain)] {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::File::open(&self.dir)?.sync_all()
    }

    /// Every `<domain>.json` record.
    pub fn records(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return vec![];
        };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.ends_with(".json") && name != "account.json" && !name.starts_with('.')
            })
            .filter_map(|p| fs::read(&p).ok().map(|b| (p, b)))
            .collect()
    }
}

/// What a certificate file says of its leaf: validity and issuer.
pub struct Leaf {
    pub der: Vec<u8>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub issuer: String,
}

/// The first certificate of a PEM file or text.
pub fn leaf(pem: &[u8]) -> Result<Leaf, String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or("no PEM certificate")?
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let v = cert.validity();
    Ok(Leaf {
        not_before: v.not_before.to_datetime(),
        not_after: v.not_after.to_datetime(),
        issuer: cert.issuer().to_string(),
        der: der.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_private_and_release_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("tls")).unwrap();
        let d = Domain::parse("a.example.com").unwrap();
        store.write(&store.cert(&d), b"x").unwrap();
        store.write(&store.record(&d), b"{}").unwrap();
        assert_eq!(store.records().len(), 1);
        let mode = fs::metadata(store.cert(&d)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        store.release(&d).unwrap();
        store.release(&d).unwrap();
        assert_eq!(fs::read_dir(&store.dir).unwrap().count(), 0);
    }
}
