//! The HTTP client instant-acme talks through: rustls trusting either the system's roots or
//! `tls.acme_ca_file`, and remembering the last `Retry-After` the server sent to the order
//! under way, since the crate's problem documents do not carry it (a `rateLimited` answer is
//! held to it).

use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

type Inner = HyperClient<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    BodyWrapper<Bytes>,
>;

type Slot = Arc<Mutex<Option<SystemTime>>>;

tokio::task_local! {
    /// Where the requests of the order under way put a Retry-After: one client (the cached
    /// account's) serves every order, each order reads its own.
    static RETRY_AFTER: Slot;
}

/// Runs one order, returning with its result the last Retry-After its requests were given.
pub async fn capturing_retry_after<T>(order: impl Future<Output = T>) -> (T, Option<SystemTime>) {
    let slot = Slot::default();
    let out = RETRY_AFTER.scope(slot.clone(), order).await;
    let after = *slot.lock().unwrap_or_else(|p| p.into_inner());
    (out, after)
}

#[derive(Clone)]
pub struct AcmeHttp {
    inner: Inner,
}

impl AcmeHttp {
    /// Trusts the PEM bundle at `ca_file`, or the system's roots when it is empty. A loopback
    /// `http://` directory (a test server) is allowed; check-config refuses any other.
    pub fn new(ca_file: &str) -> Result<AcmeHttp, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = if ca_file.is_empty() {
            builder
                .with_provider_and_platform_verifier(provider)
                .map_err(|e| format!("the system's CA roots: {e}"))?
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::config::tls::check_ca_file(std::path::Path::new(ca_file))? {
                roots
                    .add(c)
                    .map_err(|e| format!("{ca_file}: a CA rustls refuses: {e}"))?;
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        };
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = builder.https_or_http().enable_http1().wrap_connector(http);
        Ok(AcmeHttp {
            inner: HyperClient::builder(TokioExecutor::new()).build(connector),
        })
    }
}

/// The longest wait a server's Retry-After may impose: a huge one would overflow the clock.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// `Retry-After` as seconds or an HTTP date, at most `MAX_RETRY_AFTER` from `now`.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    let value = value.trim();
    let cap = now.checked_add(MAX_RETRY_AFTER)?;
    let at = match value.parse::<u64>() {
        Ok(secs) => now.checked_add(Duration::from_secs(secs)).unwrap_or(cap),
        Err(_) => {
            time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
                .ok()
                .map(SystemTime::from)?
        }
    };
    Some(at.min(cap))
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = self.inner.request(req);
        // Called while the order's future is polled, so inside its scope.
        let slot = RETRY_AFTER.try_with(Slot::clone).ok();
        Box::pin(async move {
            // Every request is bounded: a server that hangs fails this order, not the agent.
            let rsp = tokio::time::timeout(Duration::from_secs(60), fut)
                .await
                .map_err(|_| instant_acme::Error::Str("the ACME server did not answer in 60 s"))?
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            if rsp.status().is_client_error() || rsp.status().is_server_error() {
                let after = rsp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                if let (Some(slot), Some(after)) = (slot, after) {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(after);
                }
            }
            Ok(BytesResponse::from(rsp))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(now + Duration::from_secs(120))
        );
        let date = parse_retry_after("Thu, 01 Jan 1970 00:20:00 GMT", now).unwrap();
        assert_eq!(date, SystemTime::UNIX_EPOCH + Duration::from_secs(1_200));
        assert_eq!(parse_retry_after("soon", now), None);
        // Huge values are clamped, never a panic.
        let cap = Some(now + MAX_RETRY_AFTER);
        assert_eq!(parse_retry_after(&u64::MAX.to_string(), now), cap);
        assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), cap);
    }

    #[tokio::test]
    async fn each_order_reads_its_own_retry_after() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let put = |t| {
            let slot = RETRY_AFTER.try_with(Slot::clone).unwrap();
            *slot.lock().unwrap() = Some(t);
        };
        let (a, b) = tokio::join!(
            capturing_retry_after(async { put(at) }),
            capturing_retry_after(async {})
        );
        assert_eq!((a.1, b.1), (Some(at), None));
        assert!(
            RETRY_AFTER.try_with(Slot::clone).is_err(),
            "no slot outside an order"
        );
    }
}
