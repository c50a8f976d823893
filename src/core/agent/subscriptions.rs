//! The facade's subscription methods: create, update, get, list, delete, and the deploy key.

use super::Agent;
use crate::core::subscription::{DeployKey, NewSubscription, SubscriptionPatch, SubscriptionView};
use crate::core::{Error, Result};
use std::sync::Arc;

impl Agent {
    pub async fn create_subscription(
        self: &Arc<Self>,
        req: NewSubscription,
    ) -> Result<SubscriptionView> {
        self.detached(move |a| async move {
            let config = a.config();
            let profiles: Vec<String> = config.profiles.keys().cloned().collect();
            let s = a
                .subscriptions
                .create(req, &profiles, &config.default_profile)
                .await?;
            Ok(a.subscription_view(s))
        })
        .await
    }

    pub async fn update_subscription(
        self: &Arc<Self>,
        patch: SubscriptionPatch,
    ) -> Result<SubscriptionView> {
        self.detached(move |a| async move {
            let s = a.subscriptions.update(patch).await?;
            Ok(a.subscription_view(s))
        })
        .await
    }

    pub fn get_subscription(&self, id: &str) -> Result<SubscriptionView> {
        Ok(self.subscription_view(self.subscriptions.get(id)?))
    }

    pub fn list_subscriptions(&self) -> Vec<SubscriptionView> {
        self.subscriptions
            .list()
            .into_iter()
            .map(|s| self.subscription_view(s))
            .collect()
    }

    /// Refused while the subscription has a stage that is not cancelled. Its backups and
    /// stage records go to the archive, its deploy key and mirrors are removed: a new
    /// subscription of the same id starts with nothing.
    pub async fn delete_subscription(&self, id: &str) -> Result<()> {
        // Held throughout: no stage of `id` is admitted meanwhile (create checks its
        // subscription under this lock).
        let _admission = self.stages.hold_admission().await;
        let holding = self.stages.live_of(id);
        if !holding.is_empty() {
            return Err(Error::InvalidState {
                what: format!(
                    "subscription {id} still has stages ({}); cancel them first: it",
                    holding.join(", ")
                ),
                state: "in_use".into(),
                allowed: vec!["no stages".into()],
            });
        }
        self.subscriptions
            .delete_with(id, |sub| async move {
                self.stages.retire_subscription(&sub).await.map(|_| ())
            })
            .await
    }

    /// Made once per subscription; later calls return the same key.
    pub async fn deploy_key(self: &Arc<Self>, id: &str) -> Result<DeployKey> {
        let id = id.to_string();
        self.detached(move |a| async move {
            // A delete holds admission while it removes the key: no key is made for a
            // subscription on its way out, to be inherited by the next one of its id.
            let _admission = a.stages.hold_admission().await;
            let sub = a.subscriptions.get(&id)?;
            let public_key = a.stages.deploy_key(sub.id.as_str()).await?;
            Ok(DeployKey {
                id: sub.id.to_string(),
                public_key,
            })
        })
        .await
    }
}
