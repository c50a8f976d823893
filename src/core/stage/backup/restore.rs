//! `stage.restore_backup`: sums checked, the filestore unpacked aside, the database restored
//! into a side database and renamed in, then the filestore swapped in. A backup of another
//! stage is a copy: its file folder follows the database name, and the side database gets what
//! every copy gets (`on_copy_sql`; dev and qa: neutralisation) before it is renamed in.

use super::manifest::{check_id, Backup, BackupStatus, DUMP, FILESTORE};
use crate::core::settings::Settings;
use crate::core::stage::common::profile_of;
use crate::core::stage::containers::{stop_signal, DB};
use crate::core::stage::model::{Stage, StageType};
use crate::core::stage::transitions::Operation;
use crate::core::stage::{naming, Stages};
use crate::core::{Error, Result};
use std::path::Path;

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The database a backup of another stage (another uuid: a stage of the same name made
/// again) holds, whose folder and identity the restore changes; `None` for the stage's own.
fn copied_db<'a>(backup: &'a Backup, stage: &Stage) -> Option<&'a str> {
    (backup.stage_uuid != stage.uuid).then(|| backup.source_db())
}

impl Stages {
    /// On a stopped stage: sums checked, the filestore unpacked aside, the database restored
    /// into a side database and renamed in, then the filestore swapped in. The stage stays
    /// stopped; its db container runs only for the restore.
    pub async fn restore_backup(
        &self,
        config: &Settings,
        reference: &str,
        id: &str,
    ) -> Result<Stage> {
        check_id(id)?;
        let (_g, mut stage) = self.begin(reference, Operation::RestoreBackup).await?;
        let backup = self
            .backups_of(&stage)
            .await?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| Error::NotFound {
                what: "backup",
                id: id.into(),
            })?;
        if backup.status != BackupStatus::Ok {
            return Err(Error::invalid(
                "backup",
                format!("backup {id} is {:?}, not ok", backup.status).to_lowercase(),
            ));
        }
        let (sub, name) = (stage.subscription.to_string(), stage.name.to_string());
        let dir = self.deps.backups.dir(&sub, &name, id);
        for file in [DUMP, FILESTORE] {
            let (size, sum) = self.deps.backups.sha256(&dir.join(file)).await?;
            if backup.sha256.get(file) != Some(&sum) || backup.sizes.get(file) != Some(&size) {
                return Err(Error::invalid(
                    "backup",
                    format!(
                        "backup {id} is damaged: {file} does not match the sha256 and size in \
                         its manifest; nothing was restored"
                    ),
                ));
            }
        }
        self.emit(&stage, "restore_backup", "verified", id);
        let copied = copied_db(&backup, &stage);
        if let Some(db) = copied {
            let from = format!("{} (database {db})", backup.stage);
            self.emit(&stage, "restore_backup", "copy", from);
        }
        let scratch = self.deps.dirs.scratch(&sub, &name).await?;
        let tar = dir.join(FILESTORE);
        let restored = async {
            self.deps.backups.unpack(&tar, &scratch).await?;
            if let Some(from) = copied {
                self.rename_db_files(&stage, true, from, "restore_backup")
                    .await?;
            }
            let dump = dir.join(DUMP);
            self.restore_database(config, &mut stage, &dump, copied.is_some())
                .await
        }
        .await;
        if let Err(e) = restored {
            let _ = self.deps.dirs.drop_scratch(&sub, &name).await;
            return Err(e);
        }
        self.emit(&stage, "restore_backup", "database", "restored");
        self.deps
            .dirs
            .lay_out_dir(&sub, &name, "filestore", &scratch, true)
            .await?;
        let profile = profile_of(config, &stage.profile)?;
        self.own_dirs(profile, &sub, &name, Some("filestore"))
            .await?;
        if copied.is_some() {
            self.save(&stage).await?;
        }
        self.emit(&stage, "restore_backup", "done", id);
        Ok(stage)
    }

    /// Starts the db container, restores beside the live database (a `copy` then gets what
    /// every copy gets there), swaps names in one transaction, drops the old one, stops the
    /// container again.
    async fn restore_database(
        &self,
        config: &Settings,
        stage: &mut Stage,
        dump: &Path,
        copy: bool,
    ) -> Result<()> {
        let profile = profile_of(config, &stage.profile)?;
        let naming = naming(config);
        let db_container = naming.container(stage, DB);
        let result = async {
            let target = self.start_db(&naming, stage, profile).await?;
            let db = stage.db_name().to_string();
            let (side, old) = (format!("{db}__restore"), format!("{db}__old"));
            let drop = |name: &str| format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(name));
            // The app's role owns the database it connects to, as at create.
            let owner = crate::core::stage::app_config::app_role(profile, stage)
                .map(|r| format!(" OWNER {}", quote(&r.user)))
                .unwrap_or_default();
            let create = format!("CREATE DATABASE {}{owner}", quote(&side));
            self.deps
                .db
                .each(&target, "postgres", &[drop(&side), create])
                .await?;
            let reader = self.deps.backups.reader(dump).await?;
            let made = async {
                self.restore_from(config, stage, &side, reader).await?;
                if copy {
                    self.prepare_copy(config, profile, stage, &side).await?;
                }
                Ok(())
            }
            .await;
            if let Err(e) = made {
                let _ = self.deps.db.each(&target, "postgres", &[drop(&side)]).await;
                return Err(e);
            }
            // Both renames in one transaction: the stage's database is never missing.
            let swap = format!(
                "BEGIN; ALTER DATABASE {} RENAME TO {}; ALTER DATABASE {} RENAME TO {}; COMMIT",
                quote(&db),
                quote(&old),
                quote(&side),
                quote(&db)
            );
            self.deps
                .db
                .each(&target, "postgres", &[drop(&old), swap, drop(&old)])
                .await
        }
        .await;
        let grace = crate::core::stage::common::grace(config, profile, stage, None);
        let signal = stop_signal(Some(&profile.db), DB);
        let stopped = self
            .deps
            .engine
            .stop_container(&db_container, &signal, grace)
            .await;
        result?;
        stopped.map(|_| ())
    }

    /// A copy's own secrets and URL, and on dev and qa neutralisation, in the side database
    /// `db`; the mark is the copy's alone (a prod copy or one that fails has none).
    async fn prepare_copy(
        &self,
        config: &Settings,
        profile: &crate::core::settings::Profile,
        stage: &mut Stage,
        db: &str,
    ) -> Result<()> {
        // The neutralize command reads the app's configuration file: as a start would write it.
        if stage.stage_type != StageType::Prod {
            self.write_app_config(profile, stage).await?;
        }
        stage.neutralized = false;
        self.on_copy(config, profile, stage, "restore_backup", db)
            .await?;
        if stage.stage_type != StageType::Prod {
            self.neutralize(config, profile, stage, "restore_backup", db)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::stage::model::StageState;

    #[test]
    fn only_another_stages_backup_is_a_copy() {
        let stage = crate::core::fakes::stage("acme", "qa", StageState::Stopped);
        let mut b = Backup {
            id: "1".into(),
            stage: "acme/qa".into(),
            stage_uuid: stage.uuid,
            status: BackupStatus::Ok,
            error: None,
            created_at: crate::core::time::now(),
            finished_at: None,
            sizes: Default::default(),
            sha256: Default::default(),
            postgres_version: None,
            git_commit: None,
            db_name: Some("qa".into()),
        };
        assert_eq!(copied_db(&b, &stage), None);
        // The same name made again: another stage, whose database had its own name.
        b.stage_uuid = uuid::Uuid::new_v4();
        b.db_name = Some("main".into());
        assert_eq!(copied_db(&b, &stage), Some("main"));
        b.db_name = None;
        assert_eq!(copied_db(&b, &stage), Some("qa"));
    }
}
