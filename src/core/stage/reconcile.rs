//! Start-up reconcile: finish or roll back what a crash interrupted, and remove containers
//! with this agent's labels that belong to no live stage. Containers without the label prefix
//! are never touched. It may run again while requests are served (it is retried until it
//! succeeds once), so it acts only on records read under the stage's lock, and leaves stages
//! an operation holds alone: those are live work, not a crash's leftovers.

use super::model::{StageState, Step};
use super::{naming, Stages};
use crate::core::settings::Settings;
use crate::core::Result;

impl Stages {
    pub async fn reconcile(&self, config: &Settings) -> Result<()> {
        let uuids: Vec<uuid::Uuid> = self.all().iter().map(|s| s.uuid).collect();
        for uuid in uuids {
            let Some(_g) = self.try_lock_stage(uuid) else {
                continue;
            };
            let Ok(mut stage) = self.find(&uuid.to_string()) else {
                continue;
            };
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
                (_, Some(Step::DeploySnapshot | Step::DeployUpdate)) => {
                    tracing::warn!(stage = %stage.reference(), step = ?stage.step, "deploy interrupted by a restart; rolling back");
                    // Logged, not returned: one stage's failed rollback keeps no other from
                    // reconcile. The step stays, so the next start-up or deploy tries again.
                    if let Err(e) = self.recover_deploy(config, &mut stage).await {
                        tracing::error!(stage = %stage.reference(), error = %e, "rolling back an interrupted deploy failed");
                    }
                }
                _ => {}
            }
        }
        // Labelled containers of no live stage: leftovers of a crash between steps. The live
        // set is read after the listing: a stage's record is written before its containers.
        let naming = naming(config);
        let label = naming.stage_label();
        let labelled = self.deps.engine.list_labelled(&label).await?;
        let live: std::collections::HashSet<String> =
            self.live().iter().map(|s| s.uuid.to_string()).collect();
        for c in labelled {
            if let Some(uuid) = c.labels.get(&label).filter(|u| !live.contains(*u)) {
                tracing::warn!(container = %c.name, "removing a container of no live stage");
                let owner = crate::core::interfaces::Owner {
                    label: label.clone(),
                    uuid: uuid.clone(),
                };
                self.deps.engine.remove_container(&c.id, &owner).await?;
            }
        }
        self.adopt_by_labels(config).await
    }
}

#[cfg(test)]
mod tests {
    use crate::core::fakes;
    use crate::core::settings::Settings;
    use crate::core::stage::model::{StageState, Step};
    use crate::core::stage::transitions::Operation;
    use crate::core::stage::Stages;
    use std::time::Duration;

    /// A retried reconcile meets a create under way: it neither waits for it nor tears down the
    /// stage once the create has finished. A build nobody holds is a crash's: rolled back.
    #[tokio::test]
    async fn a_retried_reconcile_leaves_a_create_under_way_alone() {
        let config = Settings::default();
        let mut building = fakes::stage("acme", "new", StageState::Build);
        building.step = Some(Step::App);
        let mut crashed = fakes::stage("acme", "old", StageState::Build);
        (crashed.step, crashed.http_port) = (Some(Step::Db), Some(20001));
        let meter = std::sync::Arc::new(fakes::SlowMeter::default());
        let store = fakes::store_with(&[building, crashed]);
        let stages = Stages::load(fakes::deps(store, meter)).unwrap();
        let (held, mut stage) = stages.lock_stage("acme/new").await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), stages.reconcile(&config))
            .await
            .expect("reconcile does not wait for a busy stage")
            .unwrap();
        assert_eq!(stages.find("acme/new").unwrap().state, StageState::Build);
        assert_eq!(
            stages.find("acme/old").unwrap().state,
            StageState::Cancelled
        );
        // The create finishes and lets go; reconcile runs again and finds nothing to undo.
        stage.apply(Operation::Create).unwrap();
        stage.step = None;
        stages.save(&stage).await.unwrap();
        drop(held);
        stages.reconcile(&config).await.unwrap();
        assert_eq!(stages.find("acme/new").unwrap().state, StageState::Running);
    }
}
