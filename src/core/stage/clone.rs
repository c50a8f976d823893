//! What a new stage starts from besides an empty database: a copy of another stage of the same
//! subscription (its database streamed from `pg_dump` into `pg_restore`, its filestore and
//! addons copied, its file folder renamed after the new database), or the subscription's
//! `db_template`. The source keeps running and is not changed. What every copy goes through
//! next (its own secrets, neutralisation) is in `neutralize`.

use super::model::{Stage, StageState};
use super::Stages;
use crate::core::settings::Settings;
use crate::core::subscription::Subscription;
use crate::core::{Error, Result};
use std::path::PathBuf;

/// How a new stage's data begins.
#[derive(Debug, Clone)]
pub enum Seed {
    Empty,
    Clone(Box<Stage>),
    Template(PathBuf),
}

/// The pipe between the source's pg_dump and the new stage's pg_restore.
const PIPE: usize = 1 << 20;

impl Stages {
    /// The stage `reference` names, if a clone may be made of it now.
    pub(super) fn clone_source(&self, sub: &Subscription, reference: &str) -> Result<Stage> {
        let source = self
            .find(reference)
            .map_err(|e| Error::invalid("clone_from", e.to_string()))?;
        if source.subscription != sub.id {
            return Err(Error::invalid(
                "clone_from",
                format!(
                    "{} belongs to another subscription; stages are cloned within one",
                    source.reference()
                ),
            ));
        }
        if source.state != StageState::Running {
            return Err(Error::InvalidState {
                what: format!("clone source {}", source.reference()),
                state: source.state.as_str().into(),
                allowed: vec!["running".into()],
            });
        }
        Ok(source)
    }

    pub(super) async fn seed(&self, config: &Settings, stage: &Stage, seed: &Seed) -> Result<()> {
        match seed {
            Seed::Empty => Ok(()),
            Seed::Template(path) => {
                let reader = self.deps.backups.reader(path).await?;
                self.restore_from(config, stage, stage.db_name(), reader)
                    .await
            }
            Seed::Clone(source) => {
                // The source stays as it is meanwhile: no stop or cancel cuts the copy short.
                let lock = self.lock_of(source.uuid);
                let _source = lock.lock().await;
                self.copy_database(config, source, stage).await?;
                for dir in ["filestore", "addons"] {
                    self.copy_dir(source, stage, dir).await?;
                }
                self.rename_db_files(stage, false, source.db_name(), "create")
                    .await
                    .map(|_| ())
            }
        }
    }

    /// `pg_dump -Fc` in the source's db container piped into `pg_restore` in the new one.
    async fn copy_database(&self, config: &Settings, source: &Stage, stage: &Stage) -> Result<()> {
        let (to_restore, from_dump) = tokio::io::duplex(PIPE);
        let dump = self.dump_to(config, source, Box::new(to_restore));
        let restore = self.restore_from(config, stage, stage.db_name(), Box::new(from_dump));
        let (dumped, restored) = tokio::join!(dump, restore);
        // The dump's error says why when both failed (a cut pipe fails the restore too).
        dumped?;
        restored
    }

    /// The copy's file folder follows its database's new name (Odoo keeps a database's files
    /// in `filestore/<db name>`), in the stage's filestore or, `in_scratch`, in its scratch
    /// tree. Whether there was a folder to rename.
    pub(super) async fn rename_db_files(
        &self,
        stage: &Stage,
        in_scratch: bool,
        from: &str,
        op: &str,
    ) -> Result<bool> {
        let to = stage.db_name();
        let (sub, name) = (stage.subscription.as_str(), stage.name.as_str());
        let renamed = self
            .deps
            .dirs
            .rename_db_files(sub, name, in_scratch, from, to)
            .await?;
        if renamed {
            self.emit(
                stage,
                op,
                "filestore",
                format!("filestore/{from} -> filestore/{to}"),
            );
        }
        Ok(renamed)
    }

    /// A copy of the source's `dir` into the new stage's; the source's containers keep
    /// running, so what a file holds is what it held when the copy read it.
    async fn copy_dir(&self, source: &Stage, stage: &Stage, dir: &str) -> Result<()> {
        let from = (source.subscription.as_str(), source.name.as_str());
        let to = (stage.subscription.as_str(), stage.name.as_str());
        self.deps.dirs.copy_dir(from, to, dir).await
    }
}
