//! The file work behind the core's async `StageDirs`, `BackupStore` and `UsageMeter`: the
//! implementations here are plain blocking code, and [`OffThread`] runs each call on tokio's
//! blocking pool, so no async worker ever waits on the disk.

use crate::core::interfaces::{
    BackupStore, ByteReader, ByteWriter, DirUsage, MeasurePriority, StageDirs, UsageMeter,
};
use crate::core::Result;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// [`StageDirs`], blocking.
pub trait BlockingDirs: Send + Sync + 'static {
    fn root(&self, subscription: &str, name: &str) -> PathBuf;
    fn create(&self, subscription: &str, name: &str) -> Result<()>;
    fn remove(&self, subscription: &str, name: &str) -> Result<()>;
    fn git_cache(&self, subscription: &str, name: &str) -> PathBuf;
    fn scratch(&self, subscription: &str, name: &str) -> Result<PathBuf>;
    fn drop_scratch(&self, subscription: &str, name: &str) -> Result<()>;
    fn copy_dir(&self, from: (&str, &str), to: (&str, &str), dir: &str) -> Result<()>;
    fn lay_out_dir(&self, s: &str, n: &str, dir: &str, tree: &Path, clear: bool) -> Result<()>;
    fn lay_out_kept(&self, s: &str, n: &str, dir: &str, tree: &Path, clear: bool) -> Result<()>;
    fn put_back(&self, s: &str, n: &str, dir: &str) -> Result<bool>;
    fn drop_kept(&self, s: &str, n: &str) -> Result<()>;
    fn folders_with(&self, tree: &Path, marker: &str) -> Result<BTreeSet<String>>;
    fn own(&self, s: &str, n: &str, dir: &str, uid: u32, gid: u32, mode: u32) -> Result<()>;
    fn rename_db_files(
        &self,
        s: &str,
        n: &str,
        scratch: bool,
        from: &str,
        to: &str,
    ) -> Result<bool>;
    fn write_private(
        &self,
        s: &str,
        n: &str,
        file: &str,
        bytes: &[u8],
        owner: (u32, u32),
    ) -> Result<()>;
}

/// [`BackupStore`], blocking.
pub trait BlockingBackups: Send + Sync + 'static {
    fn create(&self, subscription: &str, name: &str, id: &str) -> Result<PathBuf>;
    fn dir(&self, subscription: &str, name: &str, id: &str) -> PathBuf;
    fn write_manifest(&self, dir: &Path, manifest: &[u8]) -> Result<()>;
    fn manifests(&self, subscription: &str, name: &str) -> Result<Vec<(String, Vec<u8>)>>;
    fn remove(&self, subscription: &str, name: &str, id: &str) -> Result<()>;
    fn remove_file(&self, file: &Path) -> Result<()>;
    fn sha256(&self, file: &Path) -> Result<(u64, String)>;
    fn pack(&self, dir: &Path, to: &Path) -> Result<()>;
    fn unpack(&self, tar: &Path, into: &Path) -> Result<()>;
    fn writer(&self, file: &Path) -> Result<ByteWriter>;
    fn reader(&self, file: &Path) -> Result<ByteReader>;
    fn archive(
        &self,
        sub: &str,
        label: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<Option<PathBuf>>;
}

/// [`UsageMeter`], blocking.
pub trait BlockingMeter: Send + Sync + 'static {
    fn measure(&self, dir: &Path, priority: MeasurePriority) -> DirUsage;
}

/// A blocking implementation, each call of it run on the blocking pool.
pub struct OffThread<T>(Arc<T>);

impl<T> OffThread<T> {
    pub fn new(inner: T) -> Self {
        OffThread(Arc::new(inner))
    }

    /// Runs `f` on the blocking pool; a panic in it is resumed here.
    async fn run<R: Send + 'static>(&self, f: impl FnOnce(&T) -> R + Send + 'static) -> R
    where
        T: Send + Sync + 'static,
    {
        let inner = self.0.clone();
        run(move || f(&inner)).await
    }
}

/// Runs blocking `f` on tokio's blocking pool, never on an async worker; a panic in it is
/// resumed here.
pub async fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn owned(s: &str) -> String {
    s.to_string()
}

#[async_trait::async_trait]
impl<T: BlockingDirs> StageDirs for OffThread<T> {
    fn root(&self, subscription: &str, name: &str) -> PathBuf {
        self.0.root(subscription, name)
    }
    async fn create(&self, subscription: &str, name: &str) -> Result<()> {
        let (s, n) = (owned(subscription), owned(name));
        self.run(move |d| d.create(&s, &n)).await
    }
    async fn remove(&self, subscription: &str, name: &str) -> Result<()> {
        let (s, n) = (owned(subscription), owned(name));
        self.run(move |d| d.remove(&s, &n)).await
    }
    fn git_cache(&self, subscription: &str, name: &str) -> PathBuf {
        self.0.git_cache(subscription, name)
    }
    async fn scratch(&self, subscription: &str, name: &str) -> Result<PathBuf> {
        let (s, n) = (owned(subscription), owned(name));
        self.run(move |d| d.scratch(&s, &n)).await
    }
    async fn drop_scratch(&self, subscription: &str, name: &str) -> Result<()> {
        let (s, n) = (owned(subscription), owned(name));
        self.run(move |d| d.drop_scratch(&s, &n)).await
    }
    async fn copy_dir(&self, from: (&str, &str), to: (&str, &str), dir: &str) -> Result<()> {
        let (f, t, dir) = (
            (owned(from.0), owned(from.1)),
            (owned(to.0), owned(to.1)),
            owned(dir),
        );
        self.run(move |d| d.copy_dir((&f.0, &f.1), (&t.0, &t.1), &dir))
            .await
    }
    async fn lay_out_dir(
        &self,
        sub: &str,
        stage: &str,
        dir: &str,
        tree: &Path,
        clear: bool,
    ) -> Result<()> {
        let (s, n, dir, tree) = (owned(sub), owned(stage), owned(dir), tree.to_owned());
        self.run(move |d| d.lay_out_dir(&s, &n, &dir, &tree, clear))
            .await
    }
    async fn own(
        &self,
        sub: &str,
        stage: &str,
        dir: &str,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<()> {
        let (s, n, dir) = (owned(sub), owned(stage), owned(dir));
        self.run(move |d| d.own(&s, &n, &dir, uid, gid, mode)).await
    }
    async fn lay_out_kept(
        &self,
        sub: &str,
        stage: &str,
        dir: &str,
        tree: &Path,
        clear: bool,
    ) -> Result<()> {
        let (s, n, dir, tree) = (owned(sub), owned(stage), owned(dir), tree.to_owned());
        self.run(move |d| d.lay_out_kept(&s, &n, &dir, &tree, clear))
            .await
    }
    async fn put_back(&self, sub: &str, stage: &str, dir: &str) -> Result<bool> {
        let (s, n, dir) = (owned(sub), owned(stage), owned(dir));
        self.run(move |d| d.put_back(&s, &n, &dir)).await
    }
    async fn drop_kept(&self, sub: &str, stage: &str) -> Result<()> {
        let (s, n) = (owned(sub), owned(stage));
        self.run(move |d| d.drop_kept(&s, &n)).await
    }
    async fn folders_with(&self, tree: &Path, marker: &str) -> Result<BTreeSet<String>> {
        let (tree, marker) = (tree.to_owned(), owned(marker));
        self.run(move |d| d.folders_with(&tree, &marker)).await
    }
    async fn rename_db_files(
        &self,
        sub: &str,
        stage: &str,
        in_scratch: bool,
        from: &str,
        to: &str,
    ) -> Result<bool> {
        let (s, n, f, t) = (owned(sub), owned(stage), owned(from), owned(to));
        self.run(move |d| d.rename_db_files(&s, &n, in_scratch, &f, &t))
            .await
    }
    async fn write_private(
        &self,
        sub: &str,
        stage: &str,
        file: &str,
        bytes: Vec<u8>,
        owner: (u32, u32),
    ) -> Result<()> {
        let (s, n, file) = (owned(sub), owned(stage), owned(file));
        self.run(move |d| d.write_private(&s, &n, &file, &bytes, owner))
            .await
    }
}

#[async_trait::async_trait]
impl<T: BlockingBackups> BackupStore for OffThread<T> {
    async fn create(&self, subscription: &str, name: &str, id: &str) -> Result<PathBuf> {
        let (s, n, i) = (owned(subscription), owned(name), owned(id));
        self.run(move |b| b.create(&s, &n, &i)).await
    }
    fn dir(&self, subscription: &str, name: &str, id: &str) -> PathBuf {
        self.0.dir(subscription, name, id)
    }
    async fn write_manifest(&self, dir: &Path, manifest: &[u8]) -> Result<()> {
        let (dir, bytes) = (dir.to_owned(), manifest.to_vec());
        self.run(move |b| b.write_manifest(&dir, &bytes)).await
    }
    async fn manifests(&self, subscription: &str, name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let (s, n) = (owned(subscription), owned(name));
        self.run(move |b| b.manifests(&s, &n)).await
    }
    async fn remove(&self, subscription: &str, name: &str, id: &str) -> Result<()> {
        let (s, n, i) = (owned(subscription), owned(name), owned(id));
        self.run(move |b| b.remove(&s, &n, &i)).await
    }
    async fn remove_file(&self, file: &Path) -> Result<()> {
        let file = file.to_owned();
        self.run(move |b| b.remove_file(&file)).await
    }
    async fn sha256(&self, file: &Path) -> Result<(u64, String)> {
        let file = file.to_owned();
        self.run(move |b| b.sha256(&file)).await
    }
    async fn pack(&self, dir: &Path, to: &Path) -> Result<()> {
        let (dir, to) = (dir.to_owned(), to.to_owned());
        self.run(move |b| b.pack(&dir, &to)).await
    }
    async fn unpack(&self, tar: &Path, into: &Path) -> Result<()> {
        let (tar, into) = (tar.to_owned(), into.to_owned());
        self.run(move |b| b.unpack(&tar, &into)).await
    }
    async fn writer(&self, file: &Path) -> Result<ByteWriter> {
        let file = file.to_owned();
        self.run(move |b| b.writer(&file)).await
    }
    async fn reader(&self, file: &Path) -> Result<ByteReader> {
        let file = file.to_owned();
        self.run(move |b| b.reader(&file)).await
    }
    async fn archive(
        &self,
        sub: &str,
        label: &str,
        kept: &[(String, Vec<u8>)],
    ) -> Result<Option<PathBuf>> {
        let (s, l, r) = (owned(sub), owned(label), kept.to_vec());
        self.run(move |b| b.archive(&s, &l, &r)).await
    }
}

#[async_trait::async_trait]
impl<T: BlockingMeter> UsageMeter for OffThread<T> {
    async fn measure(&self, dir: &Path, priority: MeasurePriority) -> DirUsage {
        let dir = dir.to_owned();
        self.run(move |m| m.measure(&dir, priority)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::thread::ThreadId;

    /// Records the thread it was called on.
    struct Where(Arc<Mutex<Option<ThreadId>>>);

    impl BlockingMeter for Where {
        fn measure(&self, _: &Path, _: MeasurePriority) -> DirUsage {
            *self.0.lock().unwrap() = Some(std::thread::current().id());
            DirUsage::default()
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn calls_run_off_the_async_worker() {
        let seen = Arc::new(Mutex::new(None));
        OffThread::new(Where(seen.clone()))
            .measure(Path::new("/"), MeasurePriority::Interactive)
            .await;
        let on = seen.lock().unwrap().expect("called");
        assert_ne!(on, std::thread::current().id());
    }
}
