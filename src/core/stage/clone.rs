//! What a new stage starts from besides an empty database: a copy of another stage of the same
//! subscription (its database streamed from `pg_dump` into `pg_restore`, its filestore and
//! addons copied; dev and qa copies neutralised and checked), or the subscription's
//! `db_template`. The source keeps running and is not changed.

use super::model::{Stage, StageState};
use super::{naming, Stages};
use crate::core::settings::Profile;
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
                Ok(())
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

    /// A copy of the source's `dir` into the new stage's; the source's containers keep
    /// running, so what a file holds is what it held when the copy read it.
    async fn copy_dir(&self, source: &Stage, stage: &Stage, dir: &str) -> Result<()> {
        let from = (source.subscription.as_str(), source.name.as_str());
        let to = (stage.subscription.as_str(), stage.name.as_str());
        self.deps.dirs.copy_dir(from, to, dir).await
    }

    /// The profile's `neutralize_sql` on the copy, then its check, which must return 0.
    pub(super) async fn neutralize(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
    ) -> Result<()> {
        if profile.neutralize_sql.trim().is_empty() {
            self.emit(
                stage,
                "create",
                "neutralize",
                "the profile has no neutralize_sql",
            );
            tracing::warn!(stage = %stage.reference(), profile = %stage.profile, "a dev/qa clone was not neutralised: the profile has no neutralize_sql");
            return Ok(());
        }
        let target = self.db_target(&naming(config), stage, profile).await?;
        let db = stage.db_name();
        self.deps
            .db
            .execute(&target, db, &profile.neutralize_sql)
            .await
            .map_err(|e| Error::Database(format!("neutralize_sql: {e}")))?;
        if !profile.neutralize_check.trim().is_empty() {
            let left = self
                .deps
                .db
                .count(&target, db, &profile.neutralize_check)
                .await?;
            if left != 0 {
                return Err(Error::Database(format!(
                    "the copy is not neutralised: neutralize_check returned {left}, not 0"
                )));
            }
        }
        Ok(())
    }
}
