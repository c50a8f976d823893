//! Certificates of the stage and code-server domains: each domain's TLS record, the pure
//! decisions on it (when to issue or renew, how long to back off). The certificate authority
//! it is ordered from is `interfaces::CertAuthority`.

use super::names::Domain;
use super::time::{rfc3339, Timestamp};
use serde::{Deserialize, Serialize};
use time::Duration;

/// How far a domain's certificate has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsState {
    /// No TLS for this domain (mode off, or nothing known).
    #[default]
    None,
    /// Waiting for its first certificate; served over HTTP meanwhile.
    Pending,
    Issued,
    /// The last attempt failed; the last valid certificate (or HTTP) keeps serving.
    Failed,
}

/// `tls` in `stage.get` and in the code-server view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsView {
    pub mode: String,
    pub state: TlsState,
    pub not_after: Option<String>,
    pub issuer: Option<String>,
    pub last_error: Option<String>,
    pub next_attempt: Option<String>,
}

impl TlsView {
    pub fn none(mode: &str) -> TlsView {
        TlsView {
            mode: mode.to_string(),
            state: TlsState::None,
            not_after: None,
            issuer: None,
            last_error: None,
            next_attempt: None,
        }
    }
}

/// What the agent keeps about one ACME domain (in `<state_dir>/tls/`, beside its certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRecord {
    pub domain: Domain,
    pub state: TlsState,
    #[serde(with = "super::time::rfc3339_opt", default)]
    pub not_before: Option<Timestamp>,
    #[serde(with = "super::time::rfc3339_opt", default)]
    pub not_after: Option<Timestamp>,
    pub issuer: Option<String>,
    /// When the certificate in place is renewed (two thirds of its life, or the ARI window).
    #[serde(with = "super::time::rfc3339_opt", default)]
    pub renew_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Failures in a row; sets the back-off.
    pub failures: u32,
    /// Nothing is tried before this (back-off, or a server's Retry-After).
    #[serde(with = "super::time::rfc3339_opt", default)]
    pub next_attempt: Option<Timestamp>,
    /// A rate limit's end: not even a forced renewal goes before it.
    #[serde(with = "super::time::rfc3339_opt", default)]
    pub rate_limited_until: Option<Timestamp>,
    /// `tls.renew` asked for a renewal now.
    pub forced: bool,
    /// The certificate is in place but its site was not put again: nginx does not serve it.
    #[serde(default)]
    pub unserved: bool,
    /// The certificate in place expired and nginx was given the site again (now over HTTP,
    /// never with the expired certificate).
    #[serde(default)]
    pub expiry_served: bool,
    /// That put failed: it is tried again then (apart from the orders' back-off, which may
    /// be a day while nginx must stop serving the certificate now).
    #[serde(with = "super::time::rfc3339_opt", default)]
    pub expiry_retry: Option<Timestamp>,
}

impl TlsRecord {
    pub fn new(domain: Domain) -> TlsRecord {
        TlsRecord {
            domain,
            state: TlsState::Pending,
            not_before: None,
            not_after: None,
            issuer: None,
            renew_at: None,
            last_error: None,
            failures: 0,
            next_attempt: None,
            rate_limited_until: None,
            forced: false,
            unserved: false,
            expiry_served: false,
            expiry_retry: None,
        }
    }

    pub fn view(&self) -> TlsView {
        TlsView {
            mode: "acme".into(),
            state: self.state,
            not_after: self.not_after.as_ref().map(rfc3339),
            issuer: self.issuer.clone(),
            last_error: self.last_error.clone(),
            next_attempt: self
                .next_attempt
                .max(self.rate_limited_until)
                .as_ref()
                .map(rfc3339),
        }
    }

    /// Whether an order is due at `now`.
    pub fn due(&self, now: Timestamp) -> bool {
        if self.unserved {
            // Only the site is put again: the ACME server is not asked.
            return self.next_attempt.is_none_or(|t| t <= now);
        }
        if self.rate_limited_until.is_some_and(|t| t > now) {
            return false;
        }
        if self.forced {
            return true;
        }
        if self.next_attempt.is_some_and(|t| t > now) {
            return false;
        }
        match (self.not_after, self.renew_at) {
            (None, _) => true,
            (Some(_), Some(r)) => r <= now,
            (Some(end), None) => end <= now,
        }
    }

    /// A new certificate is in place. `was_forced`: the order answered a forced renewal (one
    /// asked for while it ran still holds).
    pub fn issued(&mut self, cert: &Issued, now: Timestamp, was_forced: bool) {
        self.state = TlsState::Issued;
        self.not_before = Some(cert.not_before);
        self.not_after = Some(cert.not_after);
        self.issuer = Some(cert.issuer.clone());
        self.renew_at = Some(renew_at(cert.not_before, cert.not_after, cert.ari, now));
        (self.last_error, self.failures, self.next_attempt) = (None, 0, None);
        (self.rate_limited_until, self.unserved) = (None, false);
        (self.expiry_served, self.expiry_retry) = (false, None);
        self.forced &= !was_forced;
    }

    /// The certificate in place has expired and nginx has not been given the site again
    /// since (it still names the expired certificate).
    pub fn expiry_due(&self, now: Timestamp) -> bool {
        !self.expiry_served
            && self.not_after.is_some_and(|end| end <= now)
            && self.expiry_retry.is_none_or(|t| t <= now)
    }

    /// nginx was given the site again after the expiry (or not: tried again a minute on).
    pub fn expiry_applied(&mut self, result: Result<(), String>, now: Timestamp) {
        match result {
            Ok(()) => (self.expiry_served, self.expiry_retry, self.unserved) = (true, None, false),
            Err(e) => {
                self.last_error = Some(format!(
                    "the certificate expired and nginx could not be given the site without it: {e}"
                ));
                self.expiry_retry = Some(now + Duration::minutes(1));
            }
        }
    }

    /// The certificate is in place but nginx was not given its site again: still pending,
    /// and the site is put again a minute on.
    pub fn not_served(&mut self, err: &str, now: Timestamp) {
        self.state = TlsState::Pending;
        self.unserved = true;
        self.last_error = Some(format!(
            "the certificate is in place but nginx does not serve it yet: {err}"
        ));
        self.next_attempt = Some(now + Duration::minutes(1));
    }

    /// nginx now serves the certificate in place.
    pub fn served(&mut self) {
        self.state = TlsState::Issued;
        (self.unserved, self.last_error, self.next_attempt) = (false, None, None);
    }

    /// An attempt failed: back off, and respect a server's Retry-After.
    pub fn failed(&mut self, err: &IssueError, now: Timestamp, was_forced: bool) {
        self.failures = self.failures.saturating_add(1);
        self.state = TlsState::Failed;
        self.forced &= !was_forced;
        self.last_error = Some(err.to_string());
        let mut next = now + backoff(self.failures);
        if let IssueError::RateLimited { retry_after, .. } = err {
            let until = retry_after.unwrap_or(now + Duration::hours(1));
            self.rate_limited_until = Some(until);
            next = next.max(until);
        }
        self.next_attempt = Some(next);
    }

    /// Expires within 14 days and the renewals so far failed.
    pub fn expiring(&self, now: Timestamp) -> bool {
        self.not_after
            .is_some_and(|end| end - now < Duration::days(14) && self.failures > 0)
    }
}

/// The back-off after `failures` failures in a row: 1 min, 10 min, 1 h, 6 h, then daily.
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::minutes(1),
        2 => Duration::minutes(10),
        3 => Duration::hours(1),
        4 => Duration::hours(6),
        _ => Duration::days(1),
    }
}

/// When to renew: inside the server's ARI window when it gave one (its middle, so clients
/// spread out; soon if the window has begun), else at two thirds of the lifetime. Never
/// sooner than a minute on: a short-lived certificate or a past window makes no tight loop.
pub fn renew_at(
    not_before: Timestamp,
    not_after: Timestamp,
    ari: Option<(Timestamp, Timestamp)>,
    now: Timestamp,
) -> Timestamp {
    let at: Timestamp = match ari {
        Some((start, end)) if start <= end => start + (end - start) / 2,
        _ => not_before + (not_after - not_before) * 2 / 3,
    };
    at.max(now + Duration::minutes(1))
}

/// A certificate now in place for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub issuer: String,
    /// The server's ARI renewal window, where it offers ARI.
    pub ari: Option<(Timestamp, Timestamp)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("rate limited by the ACME server: {detail}")]
    RateLimited {
        detail: String,
        retry_after: Option<Timestamp>,
    },
    #[error("{0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        time::OffsetDateTime::UNIX_EPOCH + Duration::seconds(s)
    }

    fn rec() -> TlsRecord {
        TlsRecord::new(Domain::parse("a.example.com").unwrap())
    }

    #[test]
    fn backoff_grows_to_daily_and_stays() {
        let mins: Vec<i64> = (1..=7).map(|n| backoff(n).whole_minutes()).collect();
        assert_eq!(mins, vec![1, 10, 60, 360, 1440, 1440, 1440]);
    }

    #[test]
    fn renewal_at_two_thirds_or_in_the_ari_window() {
        assert_eq!(renew_at(t(0), t(90), None, t(0)), t(60));
        assert_eq!(renew_at(t(0), t(900), Some((t(400), t(500))), t(0)), t(450));
        // A window already begun or past: a minute on, not in the past.
        assert_eq!(renew_at(t(0), t(90), Some((t(10), t(100))), t(70)), t(130));
        assert_eq!(renew_at(t(0), t(90), Some((t(10), t(20))), t(70)), t(130));
    }

    #[test]
    fn failures_back_off_and_rate_limits_hold_even_a_forced_renewal() {
        let mut r = rec();
        assert!(r.due(t(0)));
        r.failed(&IssueError::Failed("dns".into()), t(0), false);
        assert_eq!(r.state, TlsState::Failed);
        assert!(!r.due(t(59)));
        assert!(r.due(t(60)));
        r.failed(&IssueError::Failed("dns".into()), t(60), false);
        assert!(!r.due(t(60 + 599)));
        assert!(r.due(t(660)));
        let limited = IssueError::RateLimited {
            detail: "too many".into(),
            retry_after: Some(t(10_000)),
        };
        r.failed(&limited, t(700), false);
        r.forced = true;
        assert!(!r.due(t(9_999)));
        assert!(r.due(t(10_000)));
        assert_eq!(r.view().next_attempt, Some(rfc3339(&t(10_000))));
    }

    #[test]
    fn issued_resets_and_renews_later() {
        let mut r = rec();
        r.failed(&IssueError::Failed("x".into()), t(0), false);
        let cert = Issued {
            not_before: t(0),
            not_after: t(90 * 86_400),
            issuer: "CN=test".into(),
            ari: None,
        };
        // A renewal forced while this order ran is not cleared by its end; the forced one is.
        r.forced = true;
        r.issued(&cert, t(100), false);
        assert!(r.forced);
        r.issued(&cert, t(100), true);
        assert!(!r.forced);
        // nginx refused the site again: pending, its site put again a minute on, no order.
        r.not_served("nginx -t failed", t(100));
        assert_eq!(r.state, TlsState::Pending);
        assert!(r.view().last_error.unwrap().contains("nginx -t failed"));
        assert!(!r.due(t(159)));
        assert!(r.due(t(160)));
        r.served();
        assert_eq!((r.state, r.last_error.clone()), (TlsState::Issued, None));
        assert!(!r.due(t(160)));
        assert_eq!(
            (r.state, r.failures, r.last_error.clone()),
            (TlsState::Issued, 0, None)
        );
        assert!(!r.due(t(59 * 86_400)));
        assert!(r.due(t(60 * 86_400)));
        r.forced = true;
        assert!(r.due(t(200)));
        assert!(!r.expiring(t(80 * 86_400)));
        r.failed(&IssueError::Failed("x".into()), t(80 * 86_400), true);
        assert!(r.expiring(t(80 * 86_400)));
        assert!(!r.forced);
        assert_eq!(r.state, TlsState::Failed);
        assert!(r.not_after.is_some(), "the last valid certificate is kept");
    }

    #[test]
    fn an_expired_certificate_puts_its_site_again_once() {
        let mut r = rec();
        let cert = Issued {
            not_before: t(0),
            not_after: t(3_600),
            issuer: "CN=test".into(),
            ari: None,
        };
        r.issued(&cert, t(0), false);
        assert!(!r.expiry_due(t(3_599)));
        // The renewals fail past the end: the site goes at once, whatever their back-off.
        r.failures = 4;
        r.failed(&IssueError::Failed("dns".into()), t(3_500), false);
        assert!(!r.due(t(3_600)), "an order backs off a day");
        assert!(r.expiry_due(t(3_600)));
        r.expiry_applied(Err("nginx -t failed".into()), t(3_600));
        assert!(r.last_error.as_deref().unwrap().contains("nginx -t failed"));
        assert!(!r.expiry_due(t(3_659)));
        assert!(r.expiry_due(t(3_660)));
        r.expiry_applied(Ok(()), t(3_660));
        assert!(!r.expiry_due(t(9_999)));
        assert!(r.due(t(3_500 + 86_400)), "renewals go on");
        // A new certificate: its own expiry puts the site again too.
        let renewed = Issued {
            not_before: t(4_000),
            not_after: t(7_600),
            ..cert
        };
        r.issued(&renewed, t(4_000), false);
        assert!(!r.expiry_due(t(7_599)));
        assert!(r.expiry_due(t(7_600)));
    }
}
