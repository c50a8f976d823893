//! The folder a database's files live in: Odoo keeps them in `<data_dir>/filestore/<db name>/`,
//! so when a copy gets a new database name its folder is renamed after it. Every name is looked
//! up relative to an open directory without following symlinks: a stage's containers write in
//! this tree, and what they put there (a symlink in place of a folder) is moved, never followed.

use super::tenant_fs::{open_dir, remove_tree};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Odoo's folder of per-database file stores, inside its data directory.
const FILESTORE: &str = "filestore";
/// Where a replaced folder goes before it is removed: in the agent's own directory, out of
/// every container's reach.
const REPLACED: &str = ".filestore-replaced";

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// A database name as a single path component.
fn plain(name: &str) -> io::Result<&str> {
    let ok = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
    if ok {
        Ok(name)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a database name"),
        ))
    }
}

fn exists(dir: &OwnedFd, name: &str) -> io::Result<bool> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Renames `<data_dir>/filestore/<from>` to `<data_dir>/filestore/<to>`. A `<to>` already
/// there is replaced (a fresh copy keeps only its source's files): it is moved into
/// `agent_dir` (the stage's own directory, on the same filesystem) and removed there. Whether
/// there was a folder to rename; no `filestore` or no `<from>` is not an error.
pub fn rename_db_folder(
    data_dir: &Path,
    from: &str,
    to: &str,
    agent_dir: &Path,
) -> io::Result<bool> {
    let (from, to) = (plain(from)?, plain(to)?);
    if from == to {
        return Ok(false);
    }
    let data = open_dir(data_dir)?;
    let stores = match openat(&data, FILESTORE, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
            return Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("{}/{FILESTORE} is not a directory", data_dir.display()),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if !exists(&stores, from)? {
        return Ok(false);
    }
    if exists(&stores, to)? {
        let aside = agent_dir.join(REPLACED);
        remove_tree(&aside)?;
        renameat(&stores, to, &open_dir(agent_dir)?, REPLACED)?;
        remove_tree(&aside)?;
    }
    renameat(&stores, from, &stores, to)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn layout() -> (tempfile::TempDir, std::path::PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("filestore");
        fs::create_dir_all(data.join("filestore/prod/ab")).unwrap();
        fs::write(data.join("filestore/prod/ab/abcd"), "bytes").unwrap();
        (root, data)
    }

    #[test]
    fn the_folder_follows_the_database_and_replaces_what_was_there() {
        let (root, data) = layout();
        fs::create_dir_all(data.join("filestore/qa/zz")).unwrap();
        fs::write(data.join("filestore/qa/zz/old"), "stale").unwrap();
        assert!(rename_db_folder(&data, "prod", "qa", root.path()).unwrap());
        assert_eq!(
            fs::read_to_string(data.join("filestore/qa/ab/abcd")).unwrap(),
            "bytes"
        );
        assert!(!data.join("filestore/prod").exists());
        assert!(!data.join("filestore/qa/zz").exists());
        assert!(!root.path().join(REPLACED).exists());
    }

    #[test]
    fn nothing_to_rename_is_no_error() {
        let (root, data) = layout();
        assert!(!rename_db_folder(&data, "nope", "qa", root.path()).unwrap());
        assert!(!rename_db_folder(&data, "prod", "prod", root.path()).unwrap());
        let empty = root.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(!rename_db_folder(&empty, "prod", "qa", root.path()).unwrap());
        for bad in ["", "..", "a/b", "."] {
            assert!(rename_db_folder(&data, bad, "qa", root.path()).is_err());
            assert!(rename_db_folder(&data, "prod", bad, root.path()).is_err());
        }
        assert!(data.join("filestore/prod/ab/abcd").exists());
    }

    /// What a container planted is moved or refused, never followed: the host directory its
    /// symlinks point at keeps its files.
    #[test]
    fn symlinks_are_moved_not_followed() {
        let (root, data) = layout();
        let host = tempfile::tempdir().unwrap();
        fs::write(host.path().join("keep"), "host file").unwrap();
        // The target name is a symlink to a host directory: replaced, the link alone goes.
        symlink(host.path(), data.join("filestore/qa")).unwrap();
        assert!(rename_db_folder(&data, "prod", "qa", root.path()).unwrap());
        assert!(host.path().join("keep").exists());
        assert!(fs::symlink_metadata(data.join("filestore/qa"))
            .unwrap()
            .is_dir());
        // The source name is a symlink: moved as a link.
        symlink(host.path(), data.join("filestore/dev")).unwrap();
        assert!(rename_db_folder(&data, "dev", "demo", root.path()).unwrap());
        let moved = fs::symlink_metadata(data.join("filestore/demo")).unwrap();
        assert!(moved.file_type().is_symlink());
        assert!(host.path().join("keep").exists());
        // `filestore` itself a symlink: refused.
        let other = root.path().join("other");
        fs::create_dir(&other).unwrap();
        symlink(data.join("filestore"), other.join("filestore")).unwrap();
        assert!(rename_db_folder(&other, "qa", "x", root.path()).is_err());
        assert!(data.join("filestore/qa/ab/abcd").exists());
    }
}
