//! Start-up adoption by labels: containers and networks are known by the stage uuid in their
//! labels, never by name alone. Those of a live stage under another name (the names of an
//! older version, `<prefix><sub>-<name>-<component>`, which two stages could share) are moved
//! to this version's names; those of no live stage go; one whose labels contradict the record
//! of the uuid it names, or whose new name another container holds, is left alone and logged.

use super::containers::{Naming, DB};
use super::model::Stage;
use super::{naming, Stages};
use crate::core::interfaces::{ContainerInfo, NetworkInfo, Owner};
use crate::core::settings::Settings;
use crate::core::Result;
use std::collections::HashMap;

/// Whether the labels name this very stage, not only its uuid.
fn labels_match(
    naming: &Naming,
    stage: &Stage,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let p = &naming.label_prefix;
    labels.get(&format!("{p}.subscription")).map(String::as_str)
        == Some(stage.subscription.as_str())
        && labels.get(&format!("{p}.name")).map(String::as_str) == Some(stage.name.as_str())
}

impl Stages {
    pub(super) async fn adopt_by_labels(&self, config: &Settings) -> Result<()> {
        let naming = naming(config);
        let label = naming.stage_label();
        // Listed first, then the records: a stage admitted meanwhile is then live, so what
        // its create is making is never taken for a leftover.
        let containers = self.deps.engine.list_labelled(&label).await?;
        let networks = self.deps.engine.list_labelled_networks(&label).await?;
        let live: HashMap<String, Stage> = self
            .live()
            .into_iter()
            .map(|s| (s.uuid.to_string(), s))
            .collect();
        let of = |labels: &std::collections::BTreeMap<String, String>| {
            labels.get(&label).and_then(|u| live.get(u))
        };
        for net in networks {
            let owner = Owner {
                label: label.clone(),
                uuid: net.labels.get(&label).cloned().unwrap_or_default(),
            };
            match of(&net.labels) {
                None if !containers.iter().any(|c| owner.owns(&c.labels)) => {
                    tracing::warn!(network = %net.name, "removing a network of no live stage");
                    if let Err(e) = self.deps.engine.remove_network(&net.name, &owner).await {
                        tracing::warn!(network = %net.name, error = %e, "cannot remove a network of no live stage");
                    }
                }
                Some(stage) if net.name != naming.network(stage) => {
                    if !labels_match(&naming, stage, &net.labels) {
                        tracing::error!(network = %net.name, stage = %stage.reference(), "its labels name another stage; left alone");
                        continue;
                    }
                    let mine: Vec<&ContainerInfo> = containers
                        .iter()
                        .filter(|c| owner.owns(&c.labels))
                        .collect();
                    if let Err(e) = self.move_network(config, &naming, stage, &net, &mine).await {
                        tracing::error!(network = %net.name, stage = %stage.reference(), error = %e, "cannot move to its new network name");
                    }
                }
                _ => {}
            }
        }
        let component = naming.component_label();
        for c in &containers {
            let Some(stage) = of(&c.labels) else { continue };
            let Some(role) = c.labels.get(&component) else {
                continue;
            };
            let want = naming.container(stage, role);
            if c.name == want {
                continue;
            }
            if !labels_match(&naming, stage, &c.labels) {
                tracing::error!(container = %c.name, stage = %stage.reference(), "its labels name another stage; left alone");
                continue;
            }
            match self.deps.engine.inspect_container(&want, "").await {
                Ok(None) => {
                    tracing::warn!(container = %c.name, to = %want, "renaming a container to this version's name");
                    if let Err(e) = self.deps.engine.rename_container(&c.id, &want).await {
                        tracing::error!(container = %c.name, error = %e, "cannot rename it");
                    }
                }
                Ok(Some(other)) => {
                    tracing::error!(container = %c.name, held_by = %other.id, name = %want, "its name is taken; left alone");
                }
                Err(e) => {
                    tracing::error!(container = %c.name, error = %e, "cannot inspect its new name")
                }
            }
        }
        Ok(())
    }

    /// A network cannot be renamed: make the new one, move the stage's containers over (the db
    /// keeps its alias), then remove the old one.
    async fn move_network(
        &self,
        config: &Settings,
        naming: &Naming,
        stage: &Stage,
        old: &NetworkInfo,
        containers: &[&ContainerInfo],
    ) -> Result<()> {
        let want = naming.network(stage);
        tracing::warn!(network = %old.name, to = %want, "moving a stage to this version's network name");
        self.deps
            .engine
            .create_network(
                &want,
                &naming.labels(stage, "network"),
                config.docker.subnets(),
            )
            .await?;
        let component = naming.component_label();
        for c in containers {
            let aliases = match c.labels.get(&component) {
                Some(r) if r == DB => vec![DB.to_string()],
                _ => vec![],
            };
            self.deps
                .engine
                .connect_network(&want, &c.id, &aliases)
                .await?;
        }
        for c in containers {
            self.deps
                .engine
                .disconnect_network(&old.name, &c.id)
                .await?;
        }
        self.deps
            .engine
            .remove_network(&old.name, &naming.owner(stage))
            .await
    }
}
