//! Runs the certificates of the stage and code-server domains in ACME mode: which domains
//! want one, ordering those due (each on its own, so one failing domain delays no other),
//! putting the stage's site again once its certificate is in place, and releasing the
//! certificates of domains no live stage holds.

use super::common::site;
use super::events::Event;
use super::model::{Stage, StageState};
use super::Stages;
use crate::core::interfaces::CertAuthority;
use crate::core::names::Domain;
use crate::core::settings::{Settings, TlsMode};
use crate::core::time::{rfc3339, Timestamp};
use crate::core::tls::{IssueError, TlsRecord, TlsState, TlsView};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub struct TlsManager {
    ca: Arc<dyn CertAuthority>,
    records: Mutex<BTreeMap<Domain, TlsRecord>>,
    /// Domains with an order under way; a tick never starts a second one.
    busy: Mutex<BTreeSet<Domain>>,
    /// `files` mode: what each domain's certificate file said when last read.
    files: Mutex<BTreeMap<Domain, (TlsView, Timestamp)>>,
}

/// How often `files` mode reads the certificate files again.
const FILES_EVERY: time::Duration = time::Duration::minutes(1);

/// Takes a domain off the busy set however its order ends.
pub struct BusyGuard<'a>(&'a TlsManager, Domain);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.busy).remove(&self.1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TlsManager {
    pub async fn open(ca: Arc<dyn CertAuthority>) -> TlsManager {
        let records = ca
            .load()
            .await
            .into_iter()
            .map(|r| (r.domain.clone(), r))
            .collect();
        TlsManager {
            ca,
            records: Mutex::new(records),
            busy: Mutex::new(BTreeSet::new()),
            files: Mutex::new(BTreeMap::new()),
        }
    }

    /// The `tls` of one domain as the API shows it.
    pub fn view(&self, config: &Settings, domain: &Domain) -> TlsView {
        let mode = config.tls.mode;
        match mode {
            TlsMode::Off => TlsView::none(mode.as_str()),
            TlsMode::Files => lock(&self.files)
                .get(domain)
                .map(|(v, _)| v.clone())
                .unwrap_or_else(|| TlsView::none(mode.as_str())),
            TlsMode::Acme => match lock(&self.records).get(domain) {
                Some(r) => r.view(),
                None => TlsView {
                    state: TlsState::Pending,
                    ..TlsView::none(mode.as_str())
                },
            },
        }
    }

    /// `files` mode: reads the certificate of each domain (at most once a minute).
    async fn check_files(&self, config: &Settings, domains: Vec<Domain>, now: Timestamp) {
        for d in domains {
            if lock(&self.files)
                .get(&d)
                .is_some_and(|(_, next)| *next > now)
            {
                continue;
            }
            let path = config.nginx.tls_certificate.replace("{domain}", d.as_str());
            let mut v = TlsView::none("files");
            match self.ca.inspect(path.into()).await {
                Ok((end, issuer)) => {
                    (v.state, v.not_after, v.issuer) =
                        (TlsState::Issued, Some(rfc3339(&end)), Some(issuer))
                }
                Err(e) => (v.state, v.last_error) = (TlsState::Failed, Some(e)),
            }
            lock(&self.files).insert(d, (v, now + FILES_EVERY));
        }
    }

    /// Asks for a renewal at the next tick (a rate limit still holds it back).
    pub async fn force(&self, domain: &Domain) {
        self.update(domain, |r| r.forced = true).await;
    }

    /// Domains whose certificate ends within 14 days while their renewals fail.
    pub fn expiring(&self, now: Timestamp) -> Vec<String> {
        lock(&self.records)
            .values()
            .filter(|r| r.expiring(now))
            .map(|r| {
                format!(
                    "the certificate of {} expires at {} and its renewal fails: {}",
                    r.domain,
                    r.not_after.as_ref().map(rfc3339).unwrap_or_default(),
                    r.last_error.as_deref().unwrap_or("unknown")
                )
            })
            .collect()
    }

    /// Whether `domain` has work at `now`: an order, or its site to put again after its
    /// certificate expired.
    fn due(&self, domain: &Domain, now: Timestamp) -> bool {
        lock(&self.records)
            .get(domain)
            .is_none_or(|r| r.due(now) || r.expiry_due(now))
    }

    /// Marks `domain` busy if it has work due and none runs; the guard frees it.
    /// With it, whether a renewal was forced when the order started.
    fn start(&self, domain: &Domain, now: Timestamp) -> Option<(BusyGuard<'_>, bool)> {
        let due = self.due(domain, now);
        let forced = lock(&self.records).get(domain).is_some_and(|r| r.forced);
        (due && lock(&self.busy).insert(domain.clone()))
            .then(|| (BusyGuard(self, domain.clone()), forced))
    }

    /// Changes a domain's record in memory, then stores it (off the lock).
    async fn update(&self, domain: &Domain, f: impl FnOnce(&mut TlsRecord)) -> TlsRecord {
        let r = {
            let mut records = lock(&self.records);
            let r = records
                .entry(domain.clone())
                .or_insert_with(|| TlsRecord::new(domain.clone()));
            f(r);
            r.clone()
        };
        if let Err(e) = self.ca.save(r.clone()).await {
            tracing::warn!(%domain, error = %e, "cannot save the TLS record");
        }
        r
    }

    /// Releases every certificate whose domain is not in `wanted` and has no order running.
    async fn release_others(&self, wanted: &BTreeSet<Domain>) {
        let stale: Vec<Domain> = lock(&self.records)
            .keys()
            .filter(|d| !wanted.contains(*d) && !lock(&self.busy).contains(*d))
            .cloned()
            .collect();
        for d in stale {
            match self.ca.release(d.clone()).await {
                Ok(()) => {
                    lock(&self.records).remove(&d);
                    tracing::info!(domain = %d, "certificate released: no live stage holds its domain");
                }
                Err(e) => tracing::warn!(domain = %d, error = %e, "cannot release a certificate"),
            }
        }
    }
}

impl Stages {
    /// The domains that hold a certificate: every live stage's and its code server's, each
    /// with whether nginx serves it yet (an order before that would fail its validation).
    pub fn tls_wanted(&self) -> Vec<(Domain, Uuid, bool)> {
        let mut out = vec![];
        for s in self.live() {
            let served = s.state != StageState::Build;
            out.push((s.domain.clone(), s.uuid, served));
            if let Some(cs) = &s.code_server {
                out.push((cs.domain.clone(), s.uuid, served && cs.port.is_some()));
            }
        }
        out
    }

    /// One round in ACME mode: releases what no stage holds, and returns the domains whose
    /// order is due now (the caller runs each with [`Stages::tls_order`]).
    pub async fn tls_due(
        &self,
        config: &Settings,
        tls: &TlsManager,
        now: Timestamp,
    ) -> Vec<(Domain, Uuid)> {
        let wanted = self.tls_wanted();
        if config.tls.mode == TlsMode::Files {
            let domains = wanted.iter().map(|(d, _, _)| d.clone()).collect();
            tls.check_files(config, domains, now).await;
        }
        // Without nginx no challenge is served: an order could only fail.
        if config.tls.mode != TlsMode::Acme || !config.nginx.enabled {
            return vec![];
        }
        tls.release_others(&wanted.iter().map(|(d, _, _)| d.clone()).collect())
            .await;
        wanted
            .into_iter()
            .filter(|(d, _, served)| *served && tls.due(d, now) && !lock(&tls.busy).contains(d))
            .map(|(d, u, _)| (d, u))
            .collect()
    }

    /// Orders one domain's certificate; on success puts its stage's site again (now with
    /// TLS), on failure records why and when it is tried again.
    pub async fn tls_order(
        &self,
        config: &Settings,
        tls: &TlsManager,
        domain: Domain,
        uuid: Uuid,
        now: Timestamp,
    ) {
        let Some((_busy, was_forced)) = tls.start(&domain, now) else {
            return;
        };
        if lock(&tls.records)
            .get(&domain)
            .is_some_and(|r| r.expiry_due(now))
        {
            // nginx must stop serving it even while renewals keep failing: the site is put
            // again, and renders the domain over HTTP (see runtime::nginx::batch::usable).
            let put = self
                .reapply_site(config, uuid)
                .await
                .map_err(|e| e.to_string());
            if let Err(e) = &put {
                tracing::warn!(%domain, error = %e, "the certificate expired and the site was not put again; tried again in a minute");
            } else if let Ok(s) = self.find(&uuid.to_string()) {
                let msg = format!("the certificate for {domain} expired: served over HTTP until a renewal succeeds");
                tracing::warn!(%domain, "{msg}");
                self.events.send(Event::new(&s, "tls", "expired", msg));
            }
            let r = tls.update(&domain, |r| r.expiry_applied(put, now)).await;
            if !r.due(now) {
                return;
            }
        }
        if lock(&tls.records).get(&domain).is_some_and(|r| r.unserved) {
            return self.tls_serve(config, tls, &domain, uuid, now).await;
        }
        // In its own task: a panic in the ACME code is a failure that backs off like any
        // other, not a busy domain left without a record (retried every tick).
        let (ca, acme, d) = (tls.ca.clone(), config.tls.acme.clone(), domain.clone());
        let result = tokio::spawn(async move { ca.issue(&acme, &d).await })
            .await
            .unwrap_or_else(|e| Err(IssueError::Failed(format!("the order failed: {e}"))));
        let stage = self.find(&uuid.to_string()).ok();
        match result {
            Ok(cert) => {
                // nginx first, then the record: `issued` means nginx serves it.
                let put = self.reapply_site(config, uuid).await;
                let r = tls
                    .update(&domain, |r| {
                        r.issued(&cert, now, was_forced);
                        if let Err(e) = &put {
                            r.not_served(&e.to_string(), now);
                        }
                    })
                    .await;
                if let Err(e) = put {
                    tracing::warn!(%domain, error = %e, "the certificate is in place but the site was not put again; tried again in a minute");
                    return;
                }
                tracing::info!(%domain, not_after = ?r.not_after.as_ref().map(rfc3339), "certificate issued");
                if let Some(s) = &stage {
                    self.events.send(Event::new(
                        s,
                        "tls",
                        "issued",
                        format!("certificate for {domain} issued"),
                    ));
                }
            }
            Err(e) => {
                let r = tls.update(&domain, |r| r.failed(&e, now, was_forced)).await;
                let next = r
                    .next_attempt
                    .max(r.rate_limited_until)
                    .as_ref()
                    .map(rfc3339);
                tracing::warn!(%domain, error = %e, next_attempt = ?next, failures = r.failures, "certificate order failed");
                if let Some(s) = &stage {
                    let msg = format!(
                        "certificate for {domain} failed: {e}; next attempt {}",
                        next.unwrap_or_default()
                    );
                    self.events.send(Event::new(s, "tls", "failed", msg));
                }
            }
        }
    }

    /// Puts the site again for a certificate in place that nginx does not serve yet.
    async fn tls_serve(
        &self,
        config: &Settings,
        tls: &TlsManager,
        domain: &Domain,
        uuid: Uuid,
        now: Timestamp,
    ) {
        match self.reapply_site(config, uuid).await {
            Ok(()) => {
                tls.update(domain, |r| r.served()).await;
                tracing::info!(%domain, "certificate now served");
            }
            Err(e) => {
                tls.update(domain, |r| r.not_served(&e.to_string(), now))
                    .await;
                tracing::warn!(%domain, error = %e, "the certificate is in place but the site was not put again; tried again in a minute");
            }
        }
    }

    /// Puts a stage's site as its record says, under its lock (after whatever runs on it).
    async fn reapply_site(&self, config: &Settings, uuid: Uuid) -> crate::core::Result<()> {
        let (_guard, stage) = self.lock_stage(&uuid.to_string()).await?;
        if stage.state == StageState::Cancelled {
            return Ok(());
        }
        self.deps
            .proxy
            .apply(site(
                config,
                &stage,
                super::code_server::ops::site_state(stage.state),
            ))
            .await
    }

    /// The stage a `tls.renew` names: forces its domains' renewal.
    pub async fn tls_force(
        &self,
        config: &Settings,
        tls: &TlsManager,
        reference: &str,
    ) -> crate::core::Result<Stage> {
        let stage = self.find(reference)?;
        if stage.state == StageState::Cancelled {
            return Err(crate::core::Error::invalid(
                "stage",
                format!("{reference} is cancelled"),
            ));
        }
        if config.tls.mode != TlsMode::Acme {
            return Err(crate::core::Error::Tls(format!(
                "tls.mode is {}: only ACME certificates are renewed by the agent",
                config.tls.mode.as_str()
            )));
        }
        tls.force(&stage.domain).await;
        if let Some(cs) = &stage.code_server {
            tls.force(&cs.domain).await;
        }
        Ok(stage)
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
