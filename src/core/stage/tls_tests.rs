//! The certificate rounds against a fake authority: one refused domain backs off alone, and a
//! domain no live stage holds is released.

use super::*;
use crate::core::fakes;
use crate::core::settings::Tls;
use crate::core::tls::{IssueError, Issued};
use std::sync::Mutex as StdMutex;
use time::Duration;

/// Issues every domain but those named `bad.*`; keeps records in memory.
#[derive(Default)]
struct FakeCa {
    saved: StdMutex<BTreeMap<Domain, TlsRecord>>,
    released: StdMutex<Vec<Domain>>,
    orders: StdMutex<Vec<Domain>>,
}

#[async_trait::async_trait]
impl CertAuthority for FakeCa {
    async fn issue(&self, _: &Tls, domain: &Domain) -> Result<Issued, IssueError> {
        self.orders.lock().unwrap().push(domain.clone());
        if domain.as_str().starts_with("bad.") {
            return Err(IssueError::Failed("DNS problem: SERVFAIL".into()));
        }
        let now = crate::core::time::now();
        Ok(Issued {
            not_before: now,
            not_after: now + Duration::days(90),
            issuer: "CN=fake".into(),
            ari: None,
        })
    }
    async fn load(&self) -> Vec<TlsRecord> {
        self.saved.lock().unwrap().values().cloned().collect()
    }
    async fn save(&self, r: TlsRecord) -> std::io::Result<()> {
        self.saved.lock().unwrap().insert(r.domain.clone(), r);
        Ok(())
    }
    async fn release(&self, d: Domain) -> std::io::Result<()> {
        self.saved.lock().unwrap().remove(&d);
        self.released.lock().unwrap().push(d);
        Ok(())
    }
    async fn inspect(&self, _: std::path::PathBuf) -> Result<(Timestamp, String), String> {
        Err("no file".into())
    }
}

fn acme_config() -> Settings {
    let mut c = Settings::default();
    c.tls.mode = TlsMode::Acme;
    c
}

#[tokio::test]
async fn a_refused_domain_backs_off_alone_and_a_released_one_leaves_nothing() {
    let config = acme_config();
    let good = fakes::stage("acme", "good", StageState::Running);
    let bad = fakes::stage("acme", "bad", StageState::Running);
    let building = fakes::stage("acme", "new", StageState::Build);
    let meter = Arc::new(fakes::SlowMeter::default());
    let stages = Stages::load(fakes::deps(
        fakes::store_with(&[good.clone(), bad.clone(), building.clone()]),
        meter,
    ))
    .unwrap();
    let ca = Arc::new(FakeCa::default());
    let stale = Domain::parse("gone.acme.example.com").unwrap();
    ca.save(TlsRecord::new(stale.clone())).await.unwrap();
    let tls = TlsManager::open(ca.clone()).await;
    let now = crate::core::time::now();

    // A stage still being built is not ordered (nginx does not serve it yet).
    let mut due = stages.tls_due(&config, &tls, now).await;
    due.sort();
    let mut want = vec![
        (good.domain.clone(), good.uuid),
        (bad.domain.clone(), bad.uuid),
    ];
    want.sort();
    assert_eq!(due, want);
    assert_eq!(*ca.released.lock().unwrap(), vec![stale]);
    for (d, u) in due {
        stages.tls_order(&config, &tls, d, u, now).await;
    }
    let g = tls.view(&config, &good.domain);
    assert_eq!(
        (g.state, g.issuer.as_deref()),
        (TlsState::Issued, Some("CN=fake"))
    );
    let b = tls.view(&config, &bad.domain);
    assert_eq!(b.state, TlsState::Failed);
    assert_eq!(b.last_error.as_deref(), Some("DNS problem: SERVFAIL"));
    assert_eq!(b.next_attempt, Some(rfc3339(&(now + Duration::minutes(1)))));
    assert_eq!(tls.view(&config, &building.domain).state, TlsState::Pending);

    // Nothing is due again before the back-off, then only the refused domain.
    let early = now + Duration::seconds(59);
    assert!(stages.tls_due(&config, &tls, early).await.is_empty());
    let later = now + Duration::seconds(61);
    let due = stages.tls_due(&config, &tls, later).await;
    assert_eq!(due, vec![(bad.domain.clone(), bad.uuid)]);
    // A forced renewal of the good stage makes it due at once.
    let forced = stages.tls_force(&config, &tls, "acme/good").await;
    assert!(forced.is_ok());
    assert_eq!(stages.tls_due(&config, &tls, now).await.len(), 1);
    // Other modes order nothing and refuse a renewal with `tls`.
    let off = Settings::default();
    assert!(stages.tls_due(&off, &tls, later).await.is_empty());
    let e = stages.tls_force(&off, &tls, "acme/good").await.unwrap_err();
    assert_eq!(e.kind(), crate::core::ErrorKind::Tls);
    assert_eq!(tls.view(&off, &good.domain).state, TlsState::None);
}

/// Counts the sites put.
#[derive(Default)]
struct CountingProxy(StdMutex<Vec<String>>);

#[async_trait::async_trait]
impl crate::core::interfaces::ProxySites for CountingProxy {
    async fn apply(&self, s: crate::core::site::SiteSpec) -> crate::core::Result<()> {
        self.0.lock().unwrap().push(s.domain.to_string());
        Ok(())
    }
    async fn remove(
        &self,
        _: crate::core::names::SubscriptionId,
        _: crate::core::names::StageName,
    ) -> crate::core::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_expired_certificate_puts_its_site_again_while_renewals_back_off() {
    let config = acme_config();
    let stage = fakes::stage("acme", "qa", StageState::Running);
    let proxy = Arc::new(CountingProxy::default());
    let mut deps = fakes::deps(
        fakes::store_with(std::slice::from_ref(&stage)),
        Arc::new(fakes::SlowMeter::default()),
    );
    deps.proxy = proxy.clone();
    let stages = Stages::load(deps).unwrap();
    let ca = Arc::new(FakeCa::default());
    let now = crate::core::time::now();
    // Issued an hour ago, ended a minute ago; its renewals fail and back off for hours.
    let mut r = TlsRecord::new(stage.domain.clone());
    let cert = Issued {
        not_before: now - Duration::hours(1),
        not_after: now - Duration::minutes(1),
        issuer: "CN=fake".into(),
        ari: None,
    };
    r.issued(&cert, now - Duration::hours(1), false);
    r.failures = 3;
    r.failed(&IssueError::Failed("refused".into()), now, false);
    ca.save(r).await.unwrap();
    let tls = TlsManager::open(ca.clone()).await;

    // The site is put again at once (nginx then renders it without the expired file); no
    // order goes before its back-off.
    let due = stages.tls_due(&config, &tls, now).await;
    assert_eq!(due, vec![(stage.domain.clone(), stage.uuid)]);
    for (d, u) in due {
        stages.tls_order(&config, &tls, d, u, now).await;
    }
    assert_eq!(*proxy.0.lock().unwrap(), vec![stage.domain.to_string()]);
    assert!(ca.orders.lock().unwrap().is_empty());
    // Once only.
    assert!(stages.tls_due(&config, &tls, now).await.is_empty());
    let later = now + Duration::hours(7);
    let due = stages.tls_due(&config, &tls, later).await;
    for (d, u) in due {
        stages.tls_order(&config, &tls, d, u, later).await;
    }
    assert_eq!(ca.orders.lock().unwrap().len(), 1, "renewals go on");
    assert_eq!(tls.view(&config, &stage.domain).state, TlsState::Issued);
    assert_eq!(proxy.0.lock().unwrap().len(), 2);
}
