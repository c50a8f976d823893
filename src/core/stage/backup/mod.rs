//! Backups of a stage: the database as `pg_dump -Fc` streamed out of its db container, the
//! filestore as a tar, and a manifest with sizes and sha256 sums. A backup is `running` until
//! its manifest says `ok`; a failure says `failed` with the reason and keeps no data files, and
//! one a crash interrupted reads as failed. Restore checks the sums first, restores into a
//! side database and renames it in only when it is whole, so nothing is lost on failure.

mod manifest;
mod restore;

pub use manifest::{new_id, settle_interrupted, to_prune, Backup, BackupStatus, DUMP, FILESTORE};

use super::common::profile_of;
use super::containers::DB;
use super::model::Stage;
use super::transitions::Operation;
use super::{naming, Stages};
use crate::core::interfaces::{ByteReader, ByteWriter, DumpJob, SqlRequest};
use crate::core::settings::Settings;
use crate::core::time;
use crate::core::{Error, Result};
use manifest::{backup_error, check_id, live_ids, newest_first, Live};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

impl Stages {
    async fn write_manifest(&self, dir: &Path, b: &Backup) -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(b).map_err(|e| Error::internal("encoding a manifest", e))?;
        self.deps.backups.write_manifest(dir, &bytes).await
    }

    /// Where pg_dump and pg_restore run for `stage` and what they reach.
    async fn dump_job(&self, config: &Settings, stage: &Stage, db: &str) -> Result<DumpJob> {
        let profile = profile_of(config, &stage.profile)?;
        let naming = naming(config);
        Ok(DumpJob {
            target: self.db_target(&naming, stage, profile).await?,
            container: naming.container(stage, DB),
            db: db.to_string(),
            label: stage.reference(),
            role: crate::core::stage::app_config::app_role(profile, stage).map(|r| r.user),
        })
    }

    /// `pg_dump -Fc` of the stage database, streamed into `to`.
    pub(super) async fn dump_to(
        &self,
        config: &Settings,
        stage: &Stage,
        to: ByteWriter,
    ) -> Result<()> {
        let job = self.dump_job(config, stage, stage.db_name()).await?;
        self.deps.dumps.dump(job, to).await
    }

    /// `pg_restore` of a custom-format dump read from `from` into database `db`.
    pub(super) async fn restore_from(
        &self,
        config: &Settings,
        stage: &Stage,
        db: &str,
        from: ByteReader,
    ) -> Result<()> {
        let job = self.dump_job(config, stage, db).await?;
        self.deps.dumps.restore(job, from).await
    }

    pub async fn backup(&self, config: &Settings, reference: &str) -> Result<Backup> {
        let (_g, stage) = self.begin(reference, Operation::Backup).await?;
        let (sub, name) = (stage.subscription.to_string(), stage.name.to_string());
        let now = time::now();
        let id = new_id(now);
        let mut b = Backup {
            id: id.clone(),
            stage: stage.reference(),
            stage_uuid: stage.uuid,
            status: BackupStatus::Running,
            error: None,
            created_at: now,
            finished_at: None,
            sizes: BTreeMap::new(),
            sha256: BTreeMap::new(),
            postgres_version: None,
            git_commit: stage.git.last_commit.clone(),
            db_name: Some(stage.db_name().to_string()),
        };
        let _live = Live::new(&id);
        let dir = self
            .deps
            .backups
            .create(&sub, &name, &id)
            .await
            .map_err(backup_error)?;
        if let Err(e) = self.write_manifest(&dir, &b).await {
            // Not even a manifest fits: no folder stays behind.
            let _ = self.deps.backups.remove(&sub, &name, &id).await;
            return Err(backup_error(e));
        }
        self.emit(&stage, "backup", "started", id.clone());
        let filled = match self.fill_backup(config, &stage, &dir, &mut b).await {
            Ok(()) => {
                b.status = BackupStatus::Ok;
                b.finished_at = Some(time::now());
                self.write_manifest(&dir, &b).await
            }
            Err(e) => Err(e),
        };
        match filled {
            Ok(()) => {
                self.emit(&stage, "backup", "ok", id);
                self.prune_backups(config, &sub, &name).await;
                Ok(b)
            }
            Err(e) => {
                let e = backup_error(e);
                // No data file stays beside a failed manifest; removing them also frees the
                // space a full disk needs for that manifest.
                for f in [DUMP, FILESTORE] {
                    let _ = self.deps.backups.remove_file(&dir.join(f)).await;
                }
                b.status = BackupStatus::Failed;
                b.error = Some(e.to_string());
                b.finished_at = Some(time::now());
                b.sizes.clear();
                b.sha256.clear();
                if self.write_manifest(&dir, &b).await.is_err() {
                    let _ = self.deps.backups.remove(&sub, &name, &id).await;
                }
                self.emit(&stage, "backup", "failed", e.to_string());
                Err(e)
            }
        }
    }

    async fn fill_backup(
        &self,
        config: &Settings,
        stage: &Stage,
        dir: &Path,
        b: &mut Backup,
    ) -> Result<()> {
        let profile = profile_of(config, &stage.profile)?;
        let target = self.db_target(&naming(config), stage, profile).await?;
        let version = self
            .deps
            .db
            .sql(
                &target,
                "postgres",
                &SqlRequest {
                    query: "SHOW server_version".into(),
                    read_only: true,
                    timeout: Duration::from_secs(30),
                    max_rows: 1,
                    max_bytes: 1 << 16,
                },
            )
            .await?;
        b.postgres_version = version
            .rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let dump = dir.join(DUMP);
        let writer = self.deps.backups.writer(&dump).await?;
        self.dump_to(config, stage, writer).await?;
        let filestore = self
            .deps
            .dirs
            .root(stage.subscription.as_str(), stage.name.as_str())
            .join("filestore");
        let tar = dir.join(FILESTORE);
        self.deps.backups.pack(&filestore, &tar).await?;
        for (file, path) in [(DUMP, dump), (FILESTORE, tar)] {
            let (size, sum) = self.deps.backups.sha256(&path).await?;
            b.sizes.insert(file.into(), size);
            b.sha256.insert(file.into(), sum);
        }
        Ok(())
    }

    /// Every backup of the stage, newest first; one left `running` by a crash reads as failed.
    pub async fn backups(&self, reference: &str) -> Result<Vec<Backup>> {
        let stage = self.find(reference)?;
        self.backups_of(&stage).await
    }

    async fn backups_of(&self, stage: &Stage) -> Result<Vec<Backup>> {
        let (sub, name) = (stage.subscription.to_string(), stage.name.to_string());
        let raw = self.deps.backups.manifests(&sub, &name).await?;
        let mut list: Vec<Backup> = raw
            .into_iter()
            .filter_map(|(id, bytes)| match serde_json::from_slice::<Backup>(&bytes) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(backup = %id, error = %e, "unreadable backup manifest; skipped");
                    None
                }
            })
            .filter(|b| b.stage_uuid == stage.uuid || b.stage == stage.reference())
            .collect();
        settle_interrupted(&mut list, &live_ids());
        newest_first(&mut list);
        Ok(list)
    }

    async fn prune_backups(&self, config: &Settings, sub: &str, name: &str) {
        let Ok(stage) = self.find(&format!("{sub}/{name}")) else {
            return;
        };
        let Ok(list) = self.backups_of(&stage).await else {
            return;
        };
        for id in to_prune(&list, config.backups.keep as usize) {
            if let Err(e) = self.deps.backups.remove(sub, name, &id).await {
                tracing::warn!(stage = %stage.reference(), error = %e, "old backup not removed");
            }
        }
    }

    pub async fn delete_backup(&self, reference: &str, id: &str) -> Result<()> {
        check_id(id)?;
        let (_g, stage) = self.lock_stage(reference).await?;
        if !self.backups_of(&stage).await?.iter().any(|b| b.id == id) {
            return Err(Error::NotFound {
                what: "backup",
                id: id.into(),
            });
        }
        let (sub, name) = (stage.subscription.as_str(), stage.name.as_str());
        self.deps.backups.remove(sub, name, id).await
    }
}
