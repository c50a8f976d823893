//! Helpers the stage operations share: the profile of a stage, its grace period, its site, the
//! domain check and the parsing of times from clients.

use super::code_server::CodeServerState;
use super::model::Stage;
use crate::config::types::SafePath;
use crate::core::names::Domain;
use crate::core::settings::{Profile, Settings};
use crate::core::site::{CodeServerSite, SiteSpec, SiteState};
use crate::core::{time, Error, Result};
use std::time::Duration;

/// A grace period above an hour is a typo.
pub const MAX_GRACE_S: u64 = 3600;

/// An RFC 3339 time from a client, in UTC.
fn parse_rfc3339(raw: &str) -> std::result::Result<time::Timestamp, ::time::error::Parse> {
    ::time::OffsetDateTime::parse(raw, &::time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(::time::UtcOffset::UTC))
}

/// A stage's `end_date`.
pub fn parse_end_date(raw: &str) -> Result<time::Timestamp> {
    parse_rfc3339(raw)
        .map_err(|e| Error::invalid("end_date", format!("{raw:?} is not an RFC 3339 time: {e}")))
}

/// The logs' `since`, as Unix seconds.
pub fn parse_since(raw: &str) -> Result<i64> {
    parse_rfc3339(raw)
        .map(|t| t.unix_timestamp())
        .map_err(|_| Error::invalid("since", "is not an RFC 3339 time"))
}

pub fn check_grace(g: Option<u64>) -> Result<Option<u64>> {
    match g {
        Some(s) if s > MAX_GRACE_S => Err(Error::invalid(
            "grace_period_s",
            format!("must be at most {MAX_GRACE_S}"),
        )),
        g => Ok(g),
    }
}

/// The grace period: per call, else per stage, else per profile, else `lifecycle.grace_period`.
pub fn grace(config: &Settings, profile: &Profile, stage: &Stage, call: Option<u64>) -> Duration {
    call.or(stage.grace_period_s)
        .map(Duration::from_secs)
        .or(profile.grace_period.map(|g| g.0))
        .unwrap_or(config.lifecycle.grace_period.0)
}

pub fn profile_of<'a>(config: &'a Settings, stage_profile: &str) -> Result<&'a Profile> {
    config.profiles.get(stage_profile).ok_or_else(|| {
        Error::invalid(
            "profile",
            format!("profile {stage_profile:?} is no longer in the configuration"),
        )
    })
}

/// The proxy's view of a stage in `state`, with its code server's block while it holds a port
/// and its profile's blocked paths (none when the profile is gone from the configuration).
pub fn site(config: &Settings, stage: &Stage, state: SiteState) -> SiteSpec {
    let blocked_paths = config
        .profiles
        .get(&stage.profile)
        .map(|p| {
            // Checked when the configuration was loaded (cross_check).
            p.blocked_paths
                .iter()
                .filter_map(|b| SafePath::try_from(b.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    let code_server = stage.code_server.as_ref().and_then(|cs| {
        Some(CodeServerSite {
            domain: cs.domain.clone(),
            port: cs.port?,
            running: cs.state == CodeServerState::Running && state == SiteState::Running,
        })
    });
    SiteSpec {
        subscription: stage.subscription.clone(),
        name: stage.name.clone(),
        domain: stage.domain.clone(),
        state,
        http_port: stage.http_port.unwrap_or(0),
        code_server,
        blocked_paths,
    }
}

/// A domain is taken by any live stage, and by any live stage's code server.
pub fn check_domain_free(live: &[Stage], domain: &Domain) -> Result<()> {
    for s in live {
        let code = s.code_server.as_ref().map(|c| &c.domain);
        if &s.domain == domain || code == Some(domain) {
            let whose = if &s.domain == domain {
                "stage"
            } else {
                "the code server of"
            };
            return Err(Error::Conflict {
                what: "domain",
                id: format!("{domain} ({whose} {})", s.reference()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_name_their_own_field() {
        assert_eq!(parse_since("2026-12-02T04:05:06Z").unwrap(), 1_796_184_306);
        let e = parse_since("yesterday").unwrap_err();
        assert!(format!("{e:?}").contains("since"), "{e:?}");
        let e = parse_end_date("yesterday").unwrap_err();
        assert!(format!("{e:?}").contains("end_date"), "{e:?}");
        assert!(check_grace(Some(MAX_GRACE_S + 1)).is_err());
        assert_eq!(check_grace(Some(5)).unwrap(), Some(5));
    }
}
