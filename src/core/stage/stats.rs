//! `stage.stats`: one Docker stats sample of each of a stage's containers, taken together.

use super::containers::components;
use super::{naming, Stages};
use crate::core::interfaces::ContainerStats;
use crate::core::settings::Settings;
use crate::core::Result;
use std::collections::BTreeMap;

impl Stages {
    /// Per component: CPU %, memory and memory limit; `None` when it is not running.
    pub async fn stats(
        &self,
        config: &Settings,
        reference: &str,
    ) -> Result<BTreeMap<String, Option<ContainerStats>>> {
        let stage = self.find(reference)?;
        let naming = naming(config);
        let roles = components(&stage);
        let (naming, stage) = (&naming, &stage);
        let samples = futures::future::join_all(roles.iter().map(|&role| async move {
            self.deps.engine.stats(&naming.container(stage, role)).await
        }))
        .await;
        roles
            .iter()
            .zip(samples)
            .map(|(role, sample)| Ok((role.to_string(), sample?)))
            .collect()
    }
}
