//! Backups of a stage: the database as `pg_dump -Fc` streamed out of its db container, the
//! filestore as a tar, and a manifest with sizes and sha256 sums. A backup is `running` until
//! its manifest says `ok`; a failure says `failed` with the reason and keeps no data files, and
//! one a crash interrupted reads as failed. Restore checks the sums first, restores into a
//! side database and renames it in only when it is whole, so nothing is lost on failure.

use super::console::Capped;
use super::containers::DB;
use super::create::profile_of;
use super::interfaces::{ByteReader, ByteWriter, DbTarget, ExecRequest, SqlRequest};
use super::model::Stage;
use super::transitions::Operation;
use super::{naming, Stages};
use crate::config::Config;
use crate::core::time::{self, Timestamp};
use crate::core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub const DUMP: &str = "db.dump";
pub const FILESTORE: &str = "filestore.tar";
/// A dump or a restore may take this long.
const DUMP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    Running,
    Ok,
    Failed,
}

/// The manifest, as written beside the files and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub id: String,
    pub stage: String,
    pub stage_uuid: uuid::Uuid,
    pub status: BackupStatus,
    /// Why it failed.
    pub error: Option<String>,
    #[serde(with = "::time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(default, with = "::time::serde::rfc3339::option")]
    pub finished_at: Option<Timestamp>,
    /// File name to size in bytes.
    pub sizes: BTreeMap<String, u64>,
    /// File name to sha256 (hex).
    pub sha256: BTreeMap<String, String>,
    pub postgres_version: Option<String>,
    pub git_commit: Option<String>,
}

/// A readable id: the UTC time to the millisecond, then a few random letters. Order comes
/// from `created_at`, not from the id.
pub fn new_id(at: Timestamp) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    let suffix = Alphanumeric
        .sample_string(&mut rand::rng(), 4)
        .to_lowercase();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z-{suffix}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// The ids of the backups this process is writing now. A manifest left `running` by anything
/// else (a crash, a kill) was interrupted: it reads as failed and retention may remove it.
static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Holds a backup's id in [`LIVE`] while it runs.
struct Live(String);

impl Live {
    fn new(id: &str) -> Live {
        let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
        live.insert(id.to_string());
        Live(id.to_string())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
        live.remove(&self.0);
    }
}

fn live_ids() -> HashSet<String> {
    let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    live.iter().cloned().collect()
}

/// Backups `running` that no one is writing are failed: a crash interrupted them.
pub fn settle_interrupted(list: &mut [Backup], live: &HashSet<String>) {
    for b in list {
        if b.status == BackupStatus::Running && !live.contains(&b.id) {
            b.status = BackupStatus::Failed;
            b.error = Some("interrupted (the agent stopped while it ran)".into());
        }
    }
}

/// What a failed backup says and returns: failures of the files are `backup` errors.
fn backup_error(e: Error) -> Error {
    match e {
        Error::Internal { .. } => Error::Backup(e.to_string()),
        e => e,
    }
}

fn newest_first(list: &mut [Backup]) {
    list.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
}

/// Backup ids are ours; anything else from a client is refused before it reaches a path.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "backup",
            format!("{id:?} is not a backup id"),
        ))
    }
}

/// Which backups retention removes: the ok ones past the newest `keep`, and failed ones
/// older than the oldest kept. Running ones (being written now) are never touched.
pub fn to_prune(backups: &[Backup], keep: usize) -> Vec<String> {
    let mut ok: Vec<Backup> = backups
        .iter()
        .filter(|b| b.status == BackupStatus::Ok)
        .cloned()
        .collect();
    newest_first(&mut ok);
    let kept: Vec<&Backup> = ok.iter().take(keep.max(1)).collect();
    let Some(oldest_kept) = kept.last().map(|b| b.created_at) else {
        return vec![];
    };
    backups
        .iter()
        .filter(|b| b.status != BackupStatus::Running)
        .filter(|b| !kept.iter().any(|k| k.id == b.id))
        .filter(|b| b.status == BackupStatus::Ok || b.created_at < oldest_kept)
        .map(|b| b.id.clone())
        .collect()
}

/// How pg_dump and pg_restore reach the database from inside its container.
fn pg_args(target: &DbTarget) -> (Vec<String>, Vec<(String, String)>) {
    (
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            target.port.to_string(),
            "-U".into(),
            target.user.clone(),
        ],
        vec![("PGPASSWORD".into(), target.password.clone())],
    )
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Stages {
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn super::interfaces::BackupStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.deps.backups.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| Error::internal("a backup file operation", e))?
    }

    async fn write_manifest(&self, dir: &Path, b: &Backup) -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(b).map_err(|e| Error::internal("encoding a manifest", e))?;
        let dir = dir.to_path_buf();
        self.blocking(move |s| s.write_manifest(&dir, &bytes)).await
    }

    /// A PostgreSQL client tool run in the stage's db container against its server, with
    /// the password in its environment; its stderr becomes the error when it fails.
    async fn pg_tool(
        &self,
        config: &Config,
        stage: &Stage,
        tool: &str,
        args: &[&str],
        stdin: Option<ByteReader>,
        stdout: ByteWriter,
    ) -> Result<()> {
        let profile = profile_of(config, &stage.profile)?;
        let target = self.db_target(&naming(config), stage, profile).await?;
        let (mut argv, env) = pg_args(&target);
        argv.insert(0, tool.into());
        argv.extend(args.iter().map(|a| a.to_string()));
        let stderr = Capped::new(64 << 10);
        let req = ExecRequest {
            argv,
            env,
            stdin,
            stdout,
            stderr: Box::new(stderr.clone()),
            timeout: DUMP_TIMEOUT,
        };
        let container = naming(config).container(stage, DB);
        match self.deps.engine.exec(&container, req).await?.exit_code {
            Some(0) => Ok(()),
            _ => Err(Error::Database(format!(
                "{tool} for {}: {}",
                stage.reference(),
                stderr.take().0.trim()
            ))),
        }
    }

    /// `pg_dump -Fc` of the stage database, streamed into `to`.
    pub(super) async fn dump_to(
        &self,
        config: &Config,
        stage: &Stage,
        to: ByteWriter,
    ) -> Result<()> {
        let args = ["-Fc", "-d", stage.db_name()];
        self.pg_tool(config, stage, "pg_dump", &args, None, to)
            .await
    }

    /// `pg_restore` of a custom-format dump read from `from` into database `db`.
    pub(super) async fn restore_from(
        &self,
        config: &Config,
        stage: &Stage,
        db: &str,
        from: ByteReader,
    ) -> Result<()> {
        let args = ["--no-owner", "--no-privileges", "--exit-on-error", "-d", db];
        let sink = Box::new(tokio::io::sink());
        self.pg_tool(config, stage, "pg_restore", &args, Some(from), sink)
            .await
    }

    pub async fn backup(&self, config: &Config, reference: &str) -> Result<Backup> {
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
        };
        let _live = Live::new(&id);
        let (s, n, i) = (sub.clone(), name.clone(), id.clone());
        let dir = self
            .blocking(move |st| st.create(&s, &n, &i))
            .await
            .map_err(backup_error)?;
        if let Err(e) = self.write_manifest(&dir, &b).await {
            // Not even a manifest fits: no folder stays behind.
            let (s, n, i) = (sub.clone(), name.clone(), id.clone());
            let _ = self.blocking(move |st| st.remove(&s, &n, &i)).await;
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
                    let path = dir.join(f);
                    let _ = self.blocking(move |s| s.remove_file(&path)).await;
                }
                b.status = BackupStatus::Failed;
                b.error = Some(e.to_string());
                b.finished_at = Some(time::now());
                b.sizes.clear();
                b.sha256.clear();
                if self.write_manifest(&dir, &b).await.is_err() {
                    let (s, n, i) = (sub.clone(), name.clone(), id.clone());
                    let _ = self.blocking(move |st| st.remove(&s, &n, &i)).await;
                }
                self.emit(&stage, "backup", "failed", e.to_string());
                Err(e)
            }
        }
    }

    async fn fill_backup(
        &self,
        config: &Config,
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
        let d = dump.to_path_buf();
        let writer = self.blocking(move |s| s.writer(&d)).await?;
        self.dump_to(config, stage, writer).await?;
        let filestore = self
            .deps
            .dirs
            .root(stage.subscription.as_str(), stage.name.as_str())
            .join("filestore");
        let tar = dir.join(FILESTORE);
        let t = tar.clone();
        self.blocking(move |s| s.pack(&filestore, &t)).await?;
        for (file, path) in [(DUMP, dump), (FILESTORE, tar)] {
            let (size, sum) = self.blocking(move |s| s.sha256(&path)).await?;
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
        let raw = self.blocking(move |s| s.manifests(&sub, &name)).await?;
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

    async fn prune_backups(&self, config: &Config, sub: &str, name: &str) {
        let Ok(stage) = self.find(&format!("{sub}/{name}")) else {
            return;
        };
        let Ok(list) = self.backups_of(&stage).await else {
            return;
        };
        for id in to_prune(&list, config.backups.keep as usize) {
            let (s, n) = (sub.to_string(), name.to_string());
            if let Err(e) = self.blocking(move |st| st.remove(&s, &n, &id)).await {
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
        let (s, n, i) = (
            stage.subscription.to_string(),
            stage.name.to_string(),
            id.to_string(),
        );
        self.blocking(move |st| st.remove(&s, &n, &i)).await
    }

    /// On a stopped stage: sums checked, the filestore unpacked aside, the database restored
    /// into a side database and renamed in, then the filestore swapped in. The stage stays
    /// stopped; its db container runs only for the restore.
    pub async fn restore_backup(
        &self,
        config: &Config,
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
            let path = dir.join(file);
            let (size, sum) = self.blocking(move |s| s.sha256(&path)).await?;
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
        let scratch = self.deps.dirs.scratch(&sub, &name)?;
        let (tar, into) = (dir.join(FILESTORE), scratch.clone());
        let restored = match self.blocking(move |s| s.unpack(&tar, &into)).await {
            Ok(()) => self.restore_database(config, &stage, &dir.join(DUMP)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = restored {
            let _ = self.deps.dirs.drop_scratch(&sub, &name);
            return Err(e);
        }
        self.emit(&stage, "restore_backup", "database", "restored");
        let dirs = self.deps.dirs.clone();
        tokio::task::spawn_blocking(move || {
            dirs.lay_out_dir(&sub, &name, "filestore", &scratch, true)
        })
        .await
        .map_err(|e| Error::internal("restoring the filestore", e))??;
        let profile = profile_of(config, &stage.profile)?;
        self.own_dirs(
            profile,
            stage.subscription.as_str(),
            stage.name.as_str(),
            Some("filestore"),
        )
        .await?;
        self.emit(&stage, "restore_backup", "done", id);
        Ok(stage)
    }

    /// Starts the db container, restores beside the live database, swaps names in one
    /// transaction, drops the old one, stops the container again.
    async fn restore_database(&self, config: &Config, stage: &Stage, dump: &Path) -> Result<()> {
        let profile = profile_of(config, &stage.profile)?;
        let naming = naming(config);
        let db_container = naming.container(stage, DB);
        self.deps.engine.start_container(&db_container).await?;
        let result = async {
            let target = self.db_target(&naming, stage, profile).await?;
            self.deps
                .db
                .wait_ready(&target, Duration::from_secs(120))
                .await?;
            let db = stage.db_name();
            let (side, old) = (format!("{db}__restore"), format!("{db}__old"));
            let drop = |name: &str| format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(name));
            let create = format!("CREATE DATABASE {}", quote(&side));
            self.deps
                .db
                .each(&target, "postgres", &[drop(&side), create])
                .await?;
            let d = dump.to_path_buf();
            let reader = self.blocking(move |s| s.reader(&d)).await?;
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
        let grace = super::create::grace(config, profile, stage, None);
        let signal = profile
            .db
            .stop_signal
            .map_or("SIGINT".to_string(), |s| s.0.as_str().to_string());
        let stopped = self
            .deps
            .engine
            .stop_container(&db_container, &signal, grace)
            .await;
        result?;
        stopped.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: &str, status: BackupStatus) -> Backup {
        let n: i64 = id.parse().unwrap();
        Backup {
            id: id.into(),
            stage: "a/b".into(),
            stage_uuid: uuid::Uuid::nil(),
            status,
            error: None,
            // Order is by created_at, to the nanosecond, not by id.
            created_at: ::time::OffsetDateTime::UNIX_EPOCH + ::time::Duration::nanoseconds(n),
            finished_at: None,
            sizes: BTreeMap::new(),
            sha256: BTreeMap::new(),
            postgres_version: None,
            git_commit: None,
        }
    }

    #[test]
    fn retention_keeps_the_newest_ok_backups() {
        use BackupStatus::*;
        let list = [
            b("1", Ok),
            b("2", Failed),
            b("3", Ok),
            b("4", Ok),
            b("5", Failed),
            b("6", Running),
            b("10", Ok),
        ];
        assert_eq!(to_prune(&list, 2), vec!["1", "2", "3"]);
        assert_eq!(to_prune(&list, 3), vec!["1", "2"]);
        assert_eq!(to_prune(&list, 4), Vec::<String>::new());
        assert_eq!(to_prune(&list, 1), vec!["1", "2", "3", "4", "5"]);
        assert!(to_prune(&[b("1", Failed)], 1).is_empty());
    }

    #[test]
    fn interrupted_backups_read_failed_and_are_pruned() {
        use BackupStatus::*;
        // "2" was left running by a crash; "5" is being written by this process now.
        let mut list = vec![
            b("1", Ok),
            b("2", Running),
            b("3", Ok),
            b("4", Ok),
            b("5", Running),
        ];
        let live: HashSet<String> = ["5".to_string()].into();
        settle_interrupted(&mut list, &live);
        assert_eq!(list[1].status, Failed);
        assert!(list[1].error.as_deref().unwrap().contains("interrupted"));
        assert_eq!(list[4].status, Running);
        assert_eq!(to_prune(&list, 2), vec!["1", "2"]);
        // Through the process's own register: a live backup is never settled.
        let _held = Live::new("5");
        let mut again = vec![b("5", Running)];
        settle_interrupted(&mut again, &live_ids());
        assert_eq!(again[0].status, Running);
        drop(_held);
        settle_interrupted(&mut again, &live_ids());
        assert_eq!(again[0].status, Failed);
    }

    #[test]
    fn ids_sort_by_time_and_are_checked() {
        let t0 = ::time::macros::datetime!(2026-11-23 17:05:09 UTC);
        let a = new_id(t0);
        assert!(a.starts_with("20261123T170509000Z-"), "{a}");
        assert!(a < new_id(t0 + ::time::Duration::seconds(1)));
        assert!(check_id(&a).is_ok());
        for bad in ["", "../x", "a/b", "a b", "x.y"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
