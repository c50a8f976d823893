//! What the facade answers with: a stage's view with its storage flag and code server, a
//! subscription's with what its stages use, and the filtered, sorted list of stages.

use super::Agent;
use crate::core::names::SubscriptionId;
use crate::core::stage::code_server::CodeServerView;
use crate::core::stage::model::{Stage, StageState, StageType, StageView};
use crate::core::stage::usage::{over_limit, used_by};
use crate::core::subscription::{Subscription, SubscriptionView};
use crate::core::{Error, Result};
use std::collections::BTreeMap;

impl Agent {
    /// The record with what its stages use.
    pub(super) fn subscription_view(&self, subscription: Subscription) -> SubscriptionView {
        let used_bytes = used_by(&self.stages.all(), &subscription.id);
        SubscriptionView {
            over_limit: over_limit(subscription.storage_limit_mb, used_bytes),
            used_bytes,
            subscription,
        }
    }

    /// Whether the stage's subscription is over its storage limit.
    pub(super) fn over_limit(&self, stage: &Stage) -> bool {
        self.over_limit_among(&self.stages.all(), &stage.subscription)
    }

    /// As [`over_limit`](Self::over_limit), summing over `all` records already at hand.
    pub(super) fn over_limit_among(&self, all: &[Stage], subscription: &SubscriptionId) -> bool {
        let limit = self
            .subscriptions
            .get(subscription.as_str())
            .ok()
            .and_then(|s| s.storage_limit_mb);
        over_limit(limit, used_by(all, subscription))
    }

    pub(super) async fn view(&self, stage: &Stage) -> StageView {
        self.view_as(stage, self.over_limit(stage)).await
    }

    async fn view_as(&self, stage: &Stage, over_limit: bool) -> StageView {
        let mut view = self.stages.view(&self.config(), stage).await;
        view.over_limit = over_limit;
        view.code_server = self.code_view(stage, false).ok();
        view
    }

    /// The code server of `stage` as the API shows it; the password only when asked.
    pub(super) fn code_view(&self, stage: &Stage, with_password: bool) -> Result<CodeServerView> {
        let config = self.config();
        let https = config.nginx.enabled && !config.nginx.tls_certificate.is_empty();
        let cs = stage.code_server.as_ref().ok_or_else(|| Error::NotFound {
            what: "code server of stage",
            id: stage.reference(),
        })?;
        Ok(CodeServerView::new(
            stage.reference(),
            cs,
            https,
            with_password,
        ))
    }

    pub async fn list_stages(
        &self,
        subscription: Option<&str>,
        state: Option<&str>,
        stage_type: Option<&str>,
    ) -> Result<Vec<StageView>> {
        let state = state
            .map(|s| {
                StageState::parse(s)
                    .ok_or_else(|| Error::invalid("state", format!("{s:?} is not a stage state")))
            })
            .transpose()?;
        let stage_type = stage_type
            .map(|t| {
                StageType::parse(t).ok_or_else(|| {
                    Error::invalid("type", format!("{t:?} is not one of dev, qa, prod"))
                })
            })
            .transpose()?;
        let all = self.stages.all();
        let mut stages: Vec<&Stage> = all
            .iter()
            .filter(|s| subscription.is_none_or(|id| s.subscription.as_str() == id))
            .filter(|s| state.is_none_or(|st| s.state == st))
            .filter(|s| stage_type.is_none_or(|t| s.stage_type == t))
            .collect();
        stages.sort_by(|a, b| {
            (a.subscription.as_str(), a.name.as_str(), a.created_at).cmp(&(
                b.subscription.as_str(),
                b.name.as_str(),
                b.created_at,
            ))
        });
        // One pass over the records per subscription listed, not one per stage.
        let mut over: BTreeMap<&SubscriptionId, bool> = BTreeMap::new();
        for s in &stages {
            over.entry(&s.subscription)
                .or_insert_with(|| self.over_limit_among(&all, &s.subscription));
        }
        let views = stages
            .iter()
            .map(|s| self.view_as(s, over[&s.subscription]));
        Ok(futures::future::join_all(views).await)
    }
}
