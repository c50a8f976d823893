//! A private file the agent writes inside a stage's directory (the app's configuration file):
//! mode 0600 and owned by the app's uid before a byte is written, put in place durably
//! (temporary file, fsync, rename, fsync of the directory) and without following a symlink on
//! the way: each name is opened relative to an open directory with `O_NOFOLLOW`.

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn err(what: &str) -> impl FnOnce(Errno) -> io::Error + '_ {
    move |e| io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// `rel` as `(directory, file name)`: exactly two plain names, as `config/app.conf`.
fn split(rel: &str) -> io::Result<(&OsStr, &OsStr)> {
    let parts: Vec<&OsStr> = Path::new(rel)
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::other(format!(
                "{rel:?} is not a plain relative path"
            ))),
        })
        .collect::<io::Result<_>>()?;
    match parts.as_slice() {
        [dir, file] => Ok((dir, file)),
        _ => Err(io::Error::other(format!(
            "{rel:?} is not <directory>/<file>"
        ))),
    }
}

/// Writes `bytes` as `<root>/<rel>` (`rel` = `<dir>/<file>`; the directory is made 0700 when
/// missing), mode 0600 owned by `uid:gid`. A crash leaves the old file or the new one; a
/// symlink in place of the directory or the file is never followed.
pub fn write(root: &Path, rel: &str, bytes: &[u8], uid: u32, gid: u32) -> io::Result<()> {
    let (dir_name, file_name) = split(rel)?;
    let root_fd = super::tenant_fs::open_dir(root)?;
    match mkdirat(&root_fd, dir_name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(err("making the directory")(e)),
    }
    let dir: OwnedFd = openat(&root_fd, dir_name, DIR_FLAGS, Mode::empty())
        .map_err(err("opening the directory (a symlink there is refused)"))?;
    let tmp_name = format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        crate::core::password_hash::generate(12)
    );
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(
        &dir,
        tmp_name.as_str(),
        flags,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(err("creating the temporary file"))?;
    let written = (|| {
        // Owner and mode first: the content is never readable by anyone else.
        fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(err("giving the file to its owner"))?;
        fchmod(&fd, Mode::from_bits_truncate(0o600)).map_err(err("setting the mode"))?;
        let mut f = File::from(fd);
        f.write_all(bytes)?;
        f.sync_all()?;
        renameat(&dir, tmp_name.as_str(), &dir, file_name).map_err(err("renaming into place"))
    })();
    if let Err(e) = written {
        let _ = unlinkat(&dir, tmp_name.as_str(), UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    File::from(dir).sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn me() -> (u32, u32) {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }

    #[test]
    fn writes_a_private_file_and_replaces_it() {
        let root = tempfile::tempdir().unwrap();
        let (uid, gid) = me();
        write(root.path(), "config/app.conf", b"one", uid, gid).unwrap();
        write(root.path(), "config/app.conf", b"two", uid, gid).unwrap();
        let path = root.path().join("config/app.conf");
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
        let names: Vec<_> = std::fs::read_dir(root.path().join("config"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["app.conf"], "no temporary file is left");
    }

    #[test]
    fn symlinks_on_the_way_are_refused_or_replaced() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let (uid, gid) = me();
        // The directory as a symlink: refused.
        std::os::unix::fs::symlink(outside.path(), root.path().join("config")).unwrap();
        assert!(write(root.path(), "config/app.conf", b"x", uid, gid).is_err());
        assert!(!outside.path().join("app.conf").exists());
        // The file as a symlink: the link itself is replaced, its target untouched.
        std::fs::remove_file(root.path().join("config")).unwrap();
        std::fs::create_dir(root.path().join("config")).unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, root.path().join("config/app.conf")).unwrap();
        write(root.path(), "config/app.conf", b"new", uid, gid).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        let link = std::fs::symlink_metadata(root.path().join("config/app.conf")).unwrap();
        assert!(link.file_type().is_file());
        for bad in ["app.conf", "../x/app.conf", "/etc/x", "a/b/c"] {
            assert!(write(root.path(), bad, b"x", uid, gid).is_err(), "{bad}");
        }
    }
}
