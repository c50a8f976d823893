//! Fake file interfaces: stage directories that do nothing, a slow meter, no backups, and
//! every path a file.

use crate::core::interfaces::{
    BackupStore, ByteReader, ByteWriter, DirUsage, MeasurePriority, StageDirs, UsageMeter,
};
use crate::core::Result;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct NullDirs;

#[async_trait::async_trait]
impl StageDirs for NullDirs {
    fn root(&self, subscription: &str, name: &str) -> PathBuf {
        PathBuf::from("/nonexistent").join(subscription).join(name)
    }
    async fn create(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn remove(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn git_cache(&self, subscription: &str, name: &str) -> PathBuf {
        self.root(subscription, name).join("git")
    }
    async fn scratch(&self, subscription: &str, name: &str) -> Result<PathBuf> {
        Ok(self.root(subscription, name).join("scratch"))
    }
    async fn drop_scratch(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn copy_dir(&self, _: (&str, &str), _: (&str, &str), _: &str) -> Result<()> {
        Ok(())
    }
    async fn lay_out_dir(&self, _: &str, _: &str, _: &str, _: &Path, _: bool) -> Result<()> {
        Ok(())
    }
    async fn lay_out_kept(&self, _: &str, _: &str, _: &str, _: &Path, _: bool) -> Result<()> {
        Ok(())
    }
    async fn put_back(&self, _: &str, _: &str, _: &str) -> Result<bool> {
        Ok(false)
    }
    async fn drop_kept(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn folders_with(&self, _: &Path, _: &str) -> Result<BTreeSet<String>> {
        Ok(BTreeSet::new())
    }
    async fn rename_db_files(&self, _: &str, _: &str, _: bool, _: &str, _: &str) -> Result<bool> {
        Ok(false)
    }
}

/// A meter that takes `delay` per directory and counts its calls.
#[derive(Default)]
pub struct SlowMeter {
    pub delay: Duration,
    pub calls: AtomicUsize,
}

#[async_trait::async_trait]
impl UsageMeter for SlowMeter {
    async fn measure(&self, _: &Path, _: MeasurePriority) -> DirUsage {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        DirUsage {
            apparent_bytes: 100,
            allocated_bytes: 4096,
            files: 1,
            dirs: 1,
            unreadable: 0,
        }
    }
}

/// A backup store that holds nothing and refuses to write.
pub struct NoBackups;

#[async_trait::async_trait]
impl BackupStore for NoBackups {
    async fn create(&self, _: &str, _: &str, _: &str) -> Result<PathBuf> {
        Err(crate::core::Error::internal(
            "backups",
            "none in unit tests",
        ))
    }
    fn dir(&self, s: &str, n: &str, id: &str) -> PathBuf {
        PathBuf::from("/nonexistent").join(s).join(n).join(id)
    }
    async fn write_manifest(&self, _: &Path, _: &[u8]) -> Result<()> {
        Ok(())
    }
    async fn manifests(&self, _: &str, _: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![])
    }
    async fn remove(&self, _: &str, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn remove_file(&self, _: &Path) -> Result<()> {
        Ok(())
    }
    async fn sha256(&self, _: &Path) -> Result<(u64, String)> {
        Ok((0, String::new()))
    }
    async fn pack(&self, _: &Path, _: &Path) -> Result<()> {
        Ok(())
    }
    async fn unpack(&self, _: &Path, _: &Path) -> Result<()> {
        Ok(())
    }
    async fn writer(&self, _: &Path) -> Result<ByteWriter> {
        Ok(Box::new(tokio::io::sink()))
    }
    async fn reader(&self, _: &Path) -> Result<ByteReader> {
        Ok(Box::new(tokio::io::empty()))
    }
    async fn archive(&self, _: &str, _: &str, _: &[(String, Vec<u8>)]) -> Result<Option<PathBuf>> {
        Ok(None)
    }
}

#[async_trait::async_trait]
impl crate::core::interfaces::DatabaseDumps for NoBackups {
    async fn dump(&self, _: crate::core::interfaces::DumpJob, _: ByteWriter) -> Result<()> {
        Ok(())
    }
    async fn restore(&self, _: crate::core::interfaces::DumpJob, _: ByteReader) -> Result<()> {
        Ok(())
    }
}

/// Every path is a file.
pub struct AnyFile;

#[async_trait::async_trait]
impl crate::core::interfaces::HostFiles for AnyFile {
    async fn is_file(&self, _: &Path) -> bool {
        true
    }
}
