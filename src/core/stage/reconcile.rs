//! Start-up reconcile: finish or roll back what a crash interrupted, and remove containers
//! with this agent's labels that belong to no live stage. Containers without the label prefix
//! are never touched.

use super::model::{StageState, Step};
use super::{naming, Stages};
use crate::config::Config;
use crate::core::Result;

impl Stages {
    pub async fn reconcile(&self, config: &Config) -> Result<()> {
        for stage in self.all() {
            let mut stage = stage;
            let lock = self.lock_of(stage.uuid);
            let _g = lock.lock().await;
            match (stage.state, stage.step) {
                (StageState::Build, _) => {
                    tracing::warn!(stage = %stage.reference(), step = ?stage.step, "create interrupted by a restart; rolling back");
                    self.roll_back(config, &mut stage, "interrupted by an agent restart")
                        .await;
                }
                (_, Some(Step::Cancelling)) => {
                    tracing::warn!(stage = %stage.reference(), "cancel interrupted by a restart; finishing it");
                    self.cancel_locked(config, &mut stage).await?;
                }
                _ => {}
            }
        }
        // Labelled containers of no live stage: leftovers of a crash between steps.
        let naming = naming(config);
        let label = naming.stage_label();
        let live: std::collections::HashSet<String> =
            self.live().iter().map(|s| s.uuid.to_string()).collect();
        for c in self.deps.engine.list_labelled(&label).await? {
            if let Some(uuid) = c.labels.get(&label).filter(|u| !live.contains(*u)) {
                tracing::warn!(container = %c.name, "removing a container of no live stage");
                let owner = super::interfaces::Owner {
                    label: label.clone(),
                    uuid: uuid.clone(),
                };
                self.deps.engine.remove_container(&c.id, &owner).await?;
            }
        }
        self.adopt_by_labels(config).await
    }
}
