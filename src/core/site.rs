//! What the proxy must do for one stage: the site's desired state, and the interface that makes
//! it so. The nginx implementation lives in `runtime::nginx`.

use super::names::{Domain, StageName, SubscriptionId};
use super::Result;
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

/// Makes the proxy serve a site as specified, or stop serving it. `apply` returns once the
/// change is live, or fails with `Error::Nginx` and the previous configuration still serving;
/// it fails only for the site's own fault, never because another site is broken. `remove`
/// fails only when the site's file cannot be deleted.
#[async_trait::async_trait]
pub trait ProxySites: Send + Sync {
    async fn apply(&self, site: SiteSpec) -> Result<()>;
    async fn remove(&self, subscription: SubscriptionId, name: StageName) -> Result<()>;
}

/// A domain from a client, refused with `invalid_params` naming `field` unless it is valid.
pub fn parse_domain(field: &str, raw: &str) -> Result<Domain> {
    Domain::parse(raw).map_err(|m| super::Error::invalid(field, m))
}
