//! ACME with `instant-acme`: the account (made once, its key kept 0600), HTTP-01 orders whose
//! tokens nginx serves from `tls.challenge_dir`, and the ARI window where the server offers
//! one. Implements the core's [`CertAuthority`].

pub mod challenge;
pub mod client;
pub mod store;

use crate::config::tls::Tls;
use crate::core::interfaces::CertAuthority;
use crate::core::names::Domain;
use crate::core::time::Timestamp;
use crate::core::tls::{IssueError, Issued, TlsRecord};
use crate::runtime::blocking::run as off_thread;
use client::AcmeHttp;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use store::Store;

/// `account.json`: the credentials belong to one directory; another directory makes another.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

pub struct AcmeAuthority {
    store: std::sync::Arc<Store>,
    /// The account for a directory and CA file, read or made once (the lock serialises
    /// that, so the account is made once); later orders take a clone without network I/O.
    account: tokio::sync::Mutex<Option<(String, String, Account)>>,
}

impl AcmeAuthority {
    pub fn open(state_dir: &Path) -> std::io::Result<AcmeAuthority> {
        Ok(AcmeAuthority {
            store: std::sync::Arc::new(Store::open(Tls::store_dir(state_dir))?),
            account: tokio::sync::Mutex::new(None),
        })
    }

    /// The file nginx is given for `{domain}` in ACME mode (certificate and key in one).
    pub fn cert_template(state_dir: &Path) -> String {
        Store::cert_template(&Tls::store_dir(state_dir))
    }

    /// The account of the configured directory: cached, else the stored one, made (and
    /// stored) first if there is none.
    async fn account(&self, tls: &Tls) -> Result<Account, String> {
        let mut cached = self.account.lock().await;
        let key = (&tls.acme_directory, &tls.acme_ca_file);
        if let Some((_, _, account)) = cached.as_ref().filter(|(d, c, _)| (d, c) == key) {
            return Ok(account.clone());
        }
        let account = self.read_or_make(tls).await?;
        *cached = Some((
            tls.acme_directory.clone(),
            tls.acme_ca_file.clone(),
            account.clone(),
        ));
        Ok(account)
    }

    async fn read_or_make(&self, tls: &Tls) -> Result<Account, String> {
        let http = AcmeHttp::new(&tls.acme_ca_file)?;
        let path = self.store.account();
        let read = path.clone();
        if let Ok(bytes) = off_thread(move || std::fs::read(read)).await {
            match serde_json::from_slice::<StoredAccount>(&bytes) {
                Ok(a) if a.directory == tls.acme_directory => {
                    return Account::builder_with_http(Box::new(http.clone()))
                        .from_credentials(a.credentials)
                        .await
                        .map_err(|e| format!("the ACME account: {e}"));
                }
                Ok(_) => tracing::info!("tls.acme_directory changed: making an account there"),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable ACME account file: making a new account")
                }
            }
        }
        let contact = format!("mailto:{}", tls.acme_email);
        let contacts: Vec<&str> = if tls.acme_email.is_empty() {
            vec![]
        } else {
            vec![&contact]
        };
        let new = NewAccount {
            contact: &contacts,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, credentials) = Account::builder_with_http(Box::new(http.clone()))
            .create(&new, tls.acme_directory.clone(), None)
            .await
            .map_err(|e| format!("making the ACME account at {}: {e}", tls.acme_directory))?;
        let stored = StoredAccount {
            directory: tls.acme_directory.clone(),
            credentials,
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
        let store = self.store.clone();
        off_thread(move || store.write(&path, &bytes))
            .await
            .map_err(|e| format!("cannot store the ACME account: {e}"))?;
        tracing::info!(directory = %tls.acme_directory, "ACME account made");
        Ok(account)
    }

    async fn order(&self, tls: &Tls, domain: &Domain) -> Result<Issued, instant_acme::Error> {
        let account = self.account(tls).await.map_err(other)?;
        let ids = [Identifier::Dns(domain.to_string())];
        let mut order = account.new_order(&NewOrder::new(&ids)).await?;
        let mut tokens = Tokens(vec![]);
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let mut challenge =
                authz
                    .challenge(ChallengeType::Http01)
                    .ok_or(instant_acme::Error::Str(
                        "the server offers no http-01 challenge",
                    ))?;
            let (root, token) = (
                PathBuf::from(tls.challenge_dir.as_str()),
                challenge.token.clone(),
            );
            let key_auth = challenge.key_authorization().as_str().to_string();
            let token = off_thread(move || challenge::put_token(&root, &token, &key_auth))
                .await
                .map_err(|e| other(format!("cannot write the challenge token: {e}")))?;
            tokens.0.push(token);
            challenge.set_ready().await?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(120));
        let status = order.poll_ready(&retries).await?;
        if status != OrderStatus::Ready {
            return Err(other(why_invalid(&mut order).await));
        }
        let key_pem = order.finalize().await?;
        let chain_pem = order.poll_certificate(&retries).await?;
        drop(tokens);
        let leaf = store::leaf(chain_pem.as_bytes()).map_err(other)?;
        let file = format!("{chain_pem}\n{key_pem}");
        let (store, cert) = (self.store.clone(), self.store.cert(domain));
        off_thread(move || store.write(&cert, file.as_bytes()))
            .await
            .map_err(|e| other(format!("cannot store the certificate: {e}")))?;
        let ari = ari_window(&account, &leaf.der).await;
        Ok(Issued {
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            issuer: leaf.issuer,
            ari,
        })
    }
}

fn other(msg: impl Into<String>) -> instant_acme::Error {
    instant_acme::Error::Other(msg.into().into())
}

/// Removes the published tokens however the order ends (on the blocking pool).
struct Tokens(Vec<challenge::Token>);

impl Drop for Tokens {
    fn drop(&mut self) {
        let tokens = std::mem::take(&mut self.0);
        if !tokens.is_empty() {
            tokio::task::spawn_blocking(move || {
                tokens.into_iter().for_each(challenge::Token::remove)
            });
        }
    }
}

/// The server's reasons for an order that did not become ready.
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut reasons = vec![];
    let mut authzs = order.authorizations();
    while let Some(Ok(mut a)) = authzs.next().await {
        if let Ok(state) = a.refresh().await {
            for c in &state.challenges {
                if let Some(p) = &c.error {
                    reasons.push(p.to_string());
                }
            }
        }
    }
    if reasons.is_empty() {
        "the order did not become ready (its authorization failed)".into()
    } else {
        format!("validation failed: {}", reasons.join("; "))
    }
}

/// The ARI window of a certificate; `None` where the server offers no ARI or fails it.
async fn ari_window(account: &Account, der: &[u8]) -> Option<(Timestamp, Timestamp)> {
    let der = rustls_pki_types::CertificateDer::from(der.to_vec());
    let id = CertificateIdentifier::try_from(&der).ok()?;
    match account.renewal_info(&id).await {
        Ok((info, _)) => Some((info.suggested_window.start, info.suggested_window.end)),
        Err(instant_acme::Error::Unsupported(_)) => None,
        Err(e) => {
            tracing::debug!(error = %e, "no ARI window: renewing at two thirds of the lifetime");
            None
        }
    }
}

fn is_rate_limited(e: &instant_acme::Error) -> Option<String> {
    match e {
        instant_acme::Error::Api(p)
            if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:rateLimited") =>
        {
            Some(p.to_string())
        }
        _ => None,
    }
}

#[async_trait::async_trait]
impl CertAuthority for AcmeAuthority {
    async fn issue(&self, tls: &Tls, domain: &Domain) -> Result<Issued, IssueError> {
        match client::capturing_retry_after(self.order(tls, domain)).await {
            (Ok(issued), _) => Ok(issued),
            (Err(e), retry_after) => Err(match is_rate_limited(&e) {
                Some(detail) => IssueError::RateLimited {
                    detail,
                    retry_after: retry_after.map(Timestamp::from),
                },
                None => IssueError::Failed(e.to_string()),
            }),
        }
    }

    async fn load(&self) -> Vec<TlsRecord> {
        let store = self.store.clone();
        let files = off_thread(move || store.records()).await;
        files
            .into_iter()
            .filter_map(|(path, bytes)| match serde_json::from_slice(&bytes) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "unreadable TLS record; ignored");
                    None
                }
            })
            .collect()
    }

    async fn save(&self, record: TlsRecord) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
        let (store, path) = (self.store.clone(), self.store.record(&record.domain));
        off_thread(move || store.write(&path, &bytes)).await
    }

    async fn release(&self, domain: Domain) -> std::io::Result<()> {
        let store = self.store.clone();
        off_thread(move || store.release(&domain)).await
    }

    async fn inspect(&self, path: PathBuf) -> Result<(Timestamp, String), String> {
        let read = path.clone();
        let bytes = off_thread(move || std::fs::read(read))
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let leaf = store::leaf(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((leaf.not_after, leaf.issuer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_rate_limited_problem_is_a_rate_limit() {
        let problem = |kind: &str| {
            let p =
                serde_json::json!({"type": kind, "detail": "too many certificates", "status": 429});
            instant_acme::Error::Api(serde_json::from_value(p).unwrap())
        };
        let limited = problem("urn:ietf:params:acme:error:rateLimited");
        assert!(is_rate_limited(&limited)
            .unwrap()
            .contains("too many certificates"));
        assert_eq!(
            is_rate_limited(&problem("urn:ietf:params:acme:error:connection")),
            None
        );
        assert_eq!(is_rate_limited(&other("rateLimited")), None);
    }
}
