//! What the proxy must serve for one stage: the site's desired state. The interface that makes it
//! so is `interfaces::ProxySites`; nginx implements it in `runtime::nginx`.

use super::names::{Domain, StageName, SubscriptionId};
use super::Result;
use crate::config::types::SafePath;
use serde::{Deserialize, Serialize};

/// What a stage's domain answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteState {
    /// Proxies to the app's published port.
    Running,
    /// 503 with a "stage stopped" page.
    Stopped,
    /// 410: archived, restorable until purged.
    Terminated,
}

/// The code server's own server block in the stage's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeServerSite {
    pub domain: Domain,
    pub port: u16,
    pub running: bool,
}

/// Serialized into the site's own file, so the proxy can re-render it on its own (without TLS
/// when nginx refuses its certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSpec {
    pub subscription: SubscriptionId,
    pub name: StageName,
    pub domain: Domain,
    pub state: SiteState,
    pub http_port: u16,
    pub code_server: Option<CodeServerSite>,
    /// URL path prefixes nginx answers 403 while the app is served (the profile's
    /// `blocked_paths`): checked paths, safe to write into the file as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_paths: Vec<SafePath>,
}

/// `<subscription>--<name>`: the stem of the stage's record and nginx file.
pub fn site_key(subscription: &SubscriptionId, name: &StageName) -> String {
    format!("{subscription}--{name}")
}

impl SiteSpec {
    pub fn key(&self) -> String {
        site_key(&self.subscription, &self.name)
    }
}

/// A domain from a client, refused with `invalid_params` naming `field` unless it is valid.
pub fn parse_domain(field: &str, raw: &str) -> Result<Domain> {
    Domain::parse(raw).map_err(|m| super::Error::invalid(field, m))
}
