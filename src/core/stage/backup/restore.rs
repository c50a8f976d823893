//! `stage.restore_backup`: sums checked, the filestore unpacked aside, the database restored
//! into a side database and renamed in, then the filestore swapped in.

use super::manifest::{check_id, BackupStatus, DUMP, FILESTORE};
use crate::core::settings::Settings;
use crate::core::stage::common::profile_of;
use crate::core::stage::containers::{stop_signal, DB};
use crate::core::stage::model::Stage;
use crate::core::stage::transitions::Operation;
use crate::core::stage::{naming, Stages};
use crate::core::{Error, Result};
use std::path::Path;

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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
        let (_g, stage) = self.begin(reference, Operation::RestoreBackup).await?;
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
        let scratch = self.deps.dirs.scratch(&sub, &name).await?;
        let tar = dir.join(FILESTORE);
        let restored = match self.deps.backups.unpack(&tar, &scratch).await {
            Ok(()) => self.restore_database(config, &stage, &dir.join(DUMP)).await,
            Err(e) => Err(e),
        };
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
        self.emit(&stage, "restore_backup", "done", id);
        Ok(stage)
    }

    /// Starts the db container, restores beside the live database, swaps names in one
    /// transaction, drops the old one, stops the container again.
    async fn restore_database(&self, config: &Settings, stage: &Stage, dump: &Path) -> Result<()> {
        let profile = profile_of(config, &stage.profile)?;
        let naming = naming(config);
        let db_container = naming.container(stage, DB);
        let result = async {
            let target = self.start_db(&naming, stage, profile).await?;
            let db = stage.db_name();
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
            if let Err(e) = self.restore_from(config, stage, &side, reader).await {
                let _ = self.deps.db.each(&target, "postgres", &[drop(&side)]).await;
                return Err(e);
            }
            // Both renames in one transaction: the stage's database is never missing.
            let swap = format!(
                "BEGIN; ALTER DATABASE {} RENAME TO {}; ALTER DATABASE {} RENAME TO {}; COMMIT",
                quote(db),
                quote(&old),
                quote(&side),
                quote(db)
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
}
