//! The proxy as the core drives it: make a stage's site serve as specified, or remove it.
//! Implemented on nginx in `runtime::nginx`.

use crate::core::names::{StageName, SubscriptionId};
use crate::core::site::SiteSpec;
use crate::core::Result;

/// Makes the proxy serve a site as specified, or stop serving it. `apply` returns once the
/// change is live, or fails with `Error::Nginx` and the previous configuration still serving;
/// it fails only for the site's own fault, never because another site is broken. `remove`
/// fails only when the site's file cannot be deleted.
#[async_trait::async_trait]
pub trait ProxySites: Send + Sync {
    async fn apply(&self, site: SiteSpec) -> Result<()>;
    async fn remove(&self, subscription: SubscriptionId, name: StageName) -> Result<()>;
}
