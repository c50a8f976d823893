//! Backups on disk: one directory per backup with its manifest (written like records:
//! atomically and durably), the dump and the filestore tar, checksummed with sha256.

use super::blocking::BlockingBackups;
use crate::core::interfaces::{ByteReader, ByteWriter};
use crate::core::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct FsBackups {
    pub root: PathBuf,
}

pub const MANIFEST: &str = "manifest.json";

/// Every failure of the backup target is a `backup` error, carrying the OS's reason
/// ("No space left on device").
fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Backup(format!("{what}: {e}"))
}

/// A new data file, readable by the agent only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

impl BlockingBackups for FsBackups {
    fn create(&self, subscription: &str, name: &str, id: &str) -> Result<PathBuf> {
        let dir = self.dir(subscription, name, id);
        let parent = dir.parent().expect("a backup has a parent");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io(format!("creating {}", parent.display())))?;
        // Directories made before (or by hand) are narrowed too: backups are customer data.
        for d in [
            &self.root,
            &self.root.join(subscription),
            &parent.to_path_buf(),
        ] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .map_err(io(format!("restricting {}", d.display())))?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io(format!("creating {}", dir.display())))?;
        Ok(dir)
    }

    fn dir(&self, subscription: &str, name: &str, id: &str) -> PathBuf {
        self.root.join(subscription).join(name).join(id)
    }

    fn write_manifest(&self, dir: &Path, manifest: &[u8]) -> Result<()> {
        let path = dir.join(MANIFEST);
        super::records::write_atomic(&path, manifest, 0o600)
            .map_err(io(format!("writing {}", path.display())))
    }

    fn manifests(&self, subscription: &str, name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let dir = self.root.join(subscription).join(name);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::internal(format!("listing {}", dir.display()), e)),
        };
        let mut out = vec![];
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            // A directory without a manifest was never a backup (a crash right at its start).
            if let Ok(bytes) = std::fs::read(entry.path().join(MANIFEST)) {
                out.push((id, bytes));
            }
        }
        Ok(out)
    }

    /// To `state_dir/archive/<label>/`: `backups/` (renamed whole) and the records beside it.
    fn archive(
        &self,
        subscription: &str,
        label: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<Option<PathBuf>> {
        let backups = self.root.join(subscription);
        let has_backups = backups
            .try_exists()
            .map_err(io(format!("reading {}", backups.display())))?;
        if !has_backups && records.is_empty() {
            return Ok(None);
        }
        let to = self.root.with_file_name("archive").join(label);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&to)
            .map_err(io(format!("creating {}", to.display())))?;
        for (name, bytes) in records {
            let path = to.join(format!("{name}.json"));
            super::records::write_atomic(&path, bytes, 0o600)
                .map_err(io(format!("writing {}", path.display())))?;
        }
        if has_backups {
            let dest = to.join("backups");
            std::fs::rename(&backups, &dest).map_err(io(format!(
                "moving {} to {}",
                backups.display(),
                dest.display()
            )))?;
        }
        Ok(Some(to))
    }

    fn remove(&self, subscription: &str, name: &str, id: &str) -> Result<()> {
        let dir = self.dir(subscription, name, id);
        super::tenant_fs::remove_tree(&dir).map_err(io(format!("removing {}", dir.display())))
    }

    fn remove_file(&self, file: &Path) -> Result<()> {
        match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(format!("removing {}", file.display()))(e))
            }
            _ => Ok(()),
        }
    }

    fn sha256(&self, file: &Path) -> Result<(u64, String)> {
        let mut f = std::fs::File::open(file).map_err(io(format!("reading {}", file.display())))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = f
                .read(&mut buf)
                .map_err(io(format!("reading {}", file.display())))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hasher.update(&buf[..n]);
        }
        Ok((total, format!("{:x}", hasher.finalize())))
    }

    fn pack(&self, dir: &Path, to: &Path) -> Result<()> {
        let file = create_private(to).map_err(io(format!("creating {}", to.display())))?;
        // Walked by directory fds: symlinks are stored as links, a swapped one never followed.
        super::tenant_tar::pack(dir, std::io::BufWriter::new(file))
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .and_then(|f| f.sync_all())
            .map_err(io(format!("archiving {}", dir.display())))
    }

    fn unpack(&self, tar: &Path, into: &Path) -> Result<()> {
        let file = std::fs::File::open(tar).map_err(io(format!("reading {}", tar.display())))?;
        // Owners are kept (the app's files belong to its own user, Odoo: uid 101); entries
        // escaping `into` (`..`, absolute, through a symlink) are refused.
        super::tenant_tar::unpack(std::io::BufReader::new(file), into)
            .map_err(io(format!("unpacking {}", tar.display())))
    }

    fn writer(&self, file: &Path) -> Result<ByteWriter> {
        let f = create_private(file).map_err(io(format!("creating {}", file.display())))?;
        Ok(Box::new(tokio::fs::File::from_std(f)))
    }

    fn reader(&self, file: &Path) -> Result<ByteReader> {
        let f = std::fs::File::open(file).map_err(io(format!("reading {}", file.display())))?;
        Ok(Box::new(tokio::fs::File::from_std(f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_and_sums() {
        let t = tempfile::tempdir().unwrap();
        let store = FsBackups {
            root: t.path().join("backups"),
        };
        let src = t.path().join("filestore");
        std::fs::create_dir_all(src.join("qa/ab")).unwrap();
        std::fs::write(src.join("qa/ab/file"), b"attachment").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let dir = store.create("acme", "qa", "b1").unwrap();
        store.pack(&src, &dir.join("filestore.tar")).unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        store.unpack(&dir.join("filestore.tar"), &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("qa/ab/file")).unwrap(),
            b"attachment"
        );
        assert_eq!(
            std::fs::read_link(out.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        let (n, sum) = store.sha256(&out.join("qa/ab/file")).unwrap();
        assert_eq!(n, 10);
        // sha256("attachment")
        assert_eq!(sum, format!("{:x}", Sha256::digest(b"attachment")));
        store.write_manifest(&dir, b"{}").unwrap();
        assert_eq!(
            store.manifests("acme", "qa").unwrap(),
            vec![("b1".into(), b"{}".to_vec())]
        );
        store.remove("acme", "qa", "b1").unwrap();
        assert!(store.manifests("acme", "qa").unwrap().is_empty());
    }
}
