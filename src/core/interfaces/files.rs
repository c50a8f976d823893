//! The stage's files on the host: its data directories, its backups and the measure of their
//! size. Async: the runtime does the file work on its blocking threads (`runtime::blocking`),
//! never on the core's async workers. Methods that only compute a path stay plain.

use super::engine::{ByteReader, ByteWriter};
use crate::core::Result;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The stage's directories under `state_dir/data/<subscription>/<name>/`.
#[async_trait::async_trait]
pub trait StageDirs: Send + Sync {
    fn root(&self, subscription: &str, name: &str) -> PathBuf;
    async fn create(&self, subscription: &str, name: &str) -> Result<()>;
    /// Removes the whole tree and the stage's git cache; idempotent.
    async fn remove(&self, subscription: &str, name: &str) -> Result<()>;
    /// The bare mirror deploys fetch into.
    fn git_cache(&self, subscription: &str, name: &str) -> PathBuf;
    /// A new, empty directory on the same filesystem as the stage's data, for a checkout.
    async fn scratch(&self, subscription: &str, name: &str) -> Result<PathBuf>;
    /// Removes the stage's scratch directory, if there is one.
    async fn drop_scratch(&self, subscription: &str, name: &str) -> Result<()>;
    /// Copies the contents of `dir` of stage `from` into the same, empty, directory of stage
    /// `to` without following any symlink in it (they are copied as symlinks).
    async fn copy_dir(&self, from: (&str, &str), to: (&str, &str), dir: &str) -> Result<()>;
    /// Puts the tree at `tree` in the stage's directory `dir` (`addons`, `filestore`), changing
    /// its contents and never the directory itself (it is bind-mounted). With `clear` what the
    /// tree lacks goes; else the tree is laid over what is there. On failure the directory is
    /// as it was. `tree` is consumed.
    async fn lay_out_dir(
        &self,
        subscription: &str,
        name: &str,
        dir: &str,
        tree: &Path,
        clear: bool,
    ) -> Result<()>;
    /// Like `lay_out_dir`, but the directory's old entries are kept aside in the stage's root
    /// (never mounted) until `drop_kept` or `put_back`: a deploy that may roll back. A kept
    /// tree left by an earlier deploy that succeeded goes first.
    async fn lay_out_kept(
        &self,
        subscription: &str,
        name: &str,
        dir: &str,
        tree: &Path,
        clear: bool,
    ) -> Result<()>;
    /// Puts the entries kept by `lay_out_kept` back into `dir`, the new ones removed. Safe to
    /// run again after a crash midway (each phase is marked by a rename); `false` when
    /// nothing was kept.
    async fn put_back(&self, subscription: &str, name: &str, dir: &str) -> Result<bool>;
    /// Removes what `lay_out_kept` kept (idempotent).
    async fn drop_kept(&self, subscription: &str, name: &str) -> Result<()>;
    /// The names of the top-level directories of `tree` (not symlinks) holding a regular file
    /// `marker` (not a symlink): a checkout's module folders.
    async fn folders_with(&self, tree: &Path, marker: &str) -> Result<BTreeSet<String>>;
    /// Renames the folder of database `from`'s files (Odoo's `filestore/<db>`) to `to`'s, in
    /// the stage's `filestore` directory or, with `in_scratch`, in its scratch tree; what was
    /// at `to` is replaced. Symlinks are moved, never followed. Whether there was a folder.
    async fn rename_db_files(
        &self,
        subscription: &str,
        name: &str,
        in_scratch: bool,
        from: &str,
        to: &str,
    ) -> Result<bool>;
    /// Makes `uid:gid` own the stage's directory `dir` and everything in it, the directory
    /// with `mode`; symlinks are not followed. Fakes keep the default, which does nothing.
    async fn own(
        &self,
        _subscription: &str,
        _name: &str,
        _dir: &str,
        _uid: u32,
        _gid: u32,
        _mode: u32,
    ) -> Result<()> {
        Ok(())
    }
    /// Writes `bytes` as the stage's file `file` (`<dir>/<name>` under the stage's root, as
    /// `config/app.conf`; the directory is made when missing), mode 0600 owned by `owner`
    /// (uid, gid), durably, following no symlink. Fakes keep the default, which does nothing.
    async fn write_private(
        &self,
        _subscription: &str,
        _name: &str,
        _file: &str,
        _bytes: Vec<u8>,
        _owner: (u32, u32),
    ) -> Result<()> {
        Ok(())
    }
}

/// Disk usage of one directory tree: what `du -sb` (apparent) and `du -sB1` (allocated) print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirUsage {
    pub apparent_bytes: u64,
    pub allocated_bytes: u64,
    pub files: u64,
    pub dirs: u64,
    /// Entries that could not be read (permissions, vanished while walking).
    pub unreadable: u64,
}

impl DirUsage {
    pub fn add(&mut self, o: DirUsage) {
        self.apparent_bytes += o.apparent_bytes;
        self.allocated_bytes += o.allocated_bytes;
        self.files += o.files;
        self.dirs += o.dirs;
        self.unreadable += o.unreadable;
    }
}

/// How hard a measure may press on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasurePriority {
    /// Someone waits for the answer.
    Interactive,
    /// The periodic pass: idle I/O class and the lowest CPU priority.
    Background,
}

/// Measures directory trees.
#[async_trait::async_trait]
pub trait UsageMeter: Send + Sync {
    async fn measure(&self, dir: &Path, priority: MeasurePriority) -> DirUsage;
}

/// Where backups live: `state_dir/backups/<subscription>/<name>/<id>/`, each with its
/// manifest.
#[async_trait::async_trait]
pub trait BackupStore: Send + Sync {
    /// A new, empty directory for backup `id`.
    async fn create(&self, subscription: &str, name: &str, id: &str) -> Result<PathBuf>;
    fn dir(&self, subscription: &str, name: &str, id: &str) -> PathBuf;
    /// Writes `manifest.json` atomically and durably.
    async fn write_manifest(&self, dir: &Path, manifest: &[u8]) -> Result<()>;
    /// Every backup's manifest bytes, by id.
    async fn manifests(&self, subscription: &str, name: &str) -> Result<Vec<(String, Vec<u8>)>>;
    async fn remove(&self, subscription: &str, name: &str, id: &str) -> Result<()>;
    /// Removes one file of a backup; a missing one is no error.
    async fn remove_file(&self, file: &Path) -> Result<()>;
    /// Size and sha256 (hex) of a file.
    async fn sha256(&self, file: &Path) -> Result<(u64, String)>;
    /// A tar of `dir`'s contents at `to`.
    async fn pack(&self, dir: &Path, to: &Path) -> Result<()>;
    /// Unpacks a tar into the empty directory `into`.
    async fn unpack(&self, tar: &Path, into: &Path) -> Result<()>;
    /// A file to write to, made (or emptied) here.
    async fn writer(&self, file: &Path) -> Result<ByteWriter>;
    /// A file to read.
    async fn reader(&self, file: &Path) -> Result<ByteReader>;
    /// Moves every backup of a deleted subscription out of the API's reach, into the archive
    /// `label` beside `records` (name and bytes of each, written as `<name>.json`). Where it
    /// went; `None` when there was nothing to keep.
    async fn archive(
        &self,
        subscription: &str,
        label: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<Option<PathBuf>>;
}

/// Plain questions about the host's files, asked off the async workers.
#[async_trait::async_trait]
pub trait HostFiles: Send + Sync {
    /// Whether `path` is a regular file (following symlinks), as the daemon sees it.
    async fn is_file(&self, path: &Path) -> bool;
}
