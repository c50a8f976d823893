//! Records as JSON files, written atomically and durably: temp file in the same directory,
//! fsync, rename over the old one, fsync of the directory.

use crate::core::interfaces::{RecordKind, RecordStore};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Stores records under `<state_dir>/subscriptions` and `<state_dir>/stages`, mode 0600 (stage
/// records hold database passwords).
pub struct FsRecordStore {
    root: PathBuf,
}

const TMP_PREFIX: &str = ".tmp-";

impl FsRecordStore {
    /// Creates the directories and removes temp files a crash left behind. The state
    /// directory loses any permission for other users and group write, whoever made it and
    /// under whatever umask: all customer data lives beneath it.
    pub fn open(state_dir: &Path) -> io::Result<Self> {
        let store = FsRecordStore {
            root: state_dir.to_path_buf(),
        };
        fs::create_dir_all(state_dir)?;
        let mode = fs::metadata(state_dir)?.permissions().mode() & 0o7777;
        if mode & !0o750 != 0 {
            fs::set_permissions(state_dir, fs::Permissions::from_mode(mode & 0o750))?;
        }
        for kind in [RecordKind::Subscription, RecordKind::Stage] {
            let dir = store.dir(kind);
            fs::create_dir_all(&dir)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    fs::remove_file(entry.path())?;
                }
            }
        }
        Ok(store)
    }

    fn dir(&self, kind: RecordKind) -> PathBuf {
        self.root.join(match kind {
            RecordKind::Subscription => "subscriptions",
            RecordKind::Stage => "stages",
        })
    }

    pub fn path(&self, kind: RecordKind, key: &str) -> PathBuf {
        self.dir(kind).join(format!("{key}.json"))
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("record path has no parent"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

impl RecordStore for FsRecordStore {
    fn put(&self, kind: RecordKind, key: &str, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.path(kind, key), bytes, 0o600)
    }

    fn delete(&self, kind: RecordKind, key: &str) -> io::Result<()> {
        let path = self.path(kind, key);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        File::open(self.dir(kind))?.sync_all()
    }

    fn load_all(&self, kind: RecordKind) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut out = vec![];
        for entry in fs::read_dir(self.dir(kind))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if let Some(key) = name
                .strip_suffix(".json")
                .filter(|_| !name.starts_with('.'))
            {
                out.push((key.to_string(), fs::read(&path)?));
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_load_delete_and_leftover_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsRecordStore::open(dir.path()).unwrap();
        store
            .put(RecordKind::Subscription, "acme", b"{\"a\":1}")
            .unwrap();
        store
            .put(RecordKind::Subscription, "acme", b"{\"a\":2}")
            .unwrap();
        let path = store.path(RecordKind::Subscription, "acme");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A temp file from a crash is ignored by load and removed by the next open.
        let junk = dir.path().join("subscriptions/.tmp-crash");
        fs::write(&junk, b"{").unwrap();
        let all = store.load_all(RecordKind::Subscription).unwrap();
        assert_eq!(all, vec![("acme".to_string(), b"{\"a\":2}".to_vec())]);
        let store = FsRecordStore::open(dir.path()).unwrap();
        assert!(!junk.exists());
        store.delete(RecordKind::Subscription, "acme").unwrap();
        store.delete(RecordKind::Subscription, "acme").unwrap();
        assert!(store.load_all(RecordKind::Subscription).unwrap().is_empty());
    }
}
