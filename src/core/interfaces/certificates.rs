//! The certificate authority, and the agent's store of certificates: ACME in the runtime
//! (`runtime::acme`).

use crate::core::names::Domain;
use crate::core::settings::Tls;
use crate::core::time::Timestamp;
use crate::core::tls::{IssueError, Issued, TlsRecord};

/// The certificate authority and the agent's store of certificates: ACME in the runtime.
#[async_trait::async_trait]
pub trait CertAuthority: Send + Sync {
    /// Orders a certificate for `domain` and puts it (with its key) in place for nginx.
    async fn issue(&self, tls: &Tls, domain: &Domain) -> Result<Issued, IssueError>;
    /// Every record stored.
    async fn load(&self) -> Vec<TlsRecord>;
    async fn save(&self, record: TlsRecord) -> std::io::Result<()>;
    /// Removes a domain's certificate, key and record.
    async fn release(&self, domain: Domain) -> std::io::Result<()>;
    /// The end and issuer of a certificate file (for `files` mode).
    async fn inspect(&self, path: std::path::PathBuf) -> Result<(Timestamp, String), String>;
}
