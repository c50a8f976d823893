//! A backup's manifest and the pure rules about backups: ids, which ones a crash interrupted,
//! which ones retention removes.

use crate::core::time::Timestamp;
use crate::core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Mutex, PoisonError};

pub const DUMP: &str = "db.dump";
pub const FILESTORE: &str = "filestore.tar";

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
    /// The database the dump was taken of (its filestore folder has the same name); missing
    /// in manifests written before it was recorded.
    #[serde(default)]
    pub db_name: Option<String>,
}

impl Backup {
    /// The name of the database the backup holds: the manifest's, else (older manifests) the
    /// backed-up stage's name, which was its database's name.
    pub fn source_db(&self) -> &str {
        match &self.db_name {
            Some(db) => db,
            None => self.stage.rsplit('/').next().unwrap_or(&self.stage),
        }
    }
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
pub(super) struct Live(String);

impl Live {
    pub(super) fn new(id: &str) -> Live {
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

pub(super) fn live_ids() -> HashSet<String> {
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
pub(super) fn backup_error(e: Error) -> Error {
    match e {
        Error::Internal { .. } => Error::Backup(e.to_string()),
        e => e,
    }
}

pub(super) fn newest_first(list: &mut [Backup]) {
    list.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
}

/// Backup ids are ours; anything else from a client is refused before it reaches a path.
pub(super) fn check_id(id: &str) -> Result<()> {
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
            db_name: None,
        }
    }

    #[test]
    fn the_source_database_falls_back_to_the_stage_name() {
        let mut old = b("1", BackupStatus::Ok);
        old.stage = "acme/prod".into();
        assert_eq!(old.source_db(), "prod");
        // A manifest without the field still reads.
        let mut json = serde_json::to_value(&old).unwrap();
        json.as_object_mut().unwrap().remove("db_name");
        let back: Backup = serde_json::from_value(json).unwrap();
        assert_eq!(back.source_db(), "prod");
        old.db_name = Some("main".into());
        assert_eq!(old.source_db(), "main");
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
