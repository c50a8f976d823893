//! Chowns a mounted stage directory to the uid its container runs as: walked by directory
//! fds, never following a symlink, so a tenant's link cannot hand a host file to the uid.

use super::tenant_fs::{names, open_dir, MAX_DEPTH};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, Mode};
use nix::unistd::{fchown, fchownat, Gid, Uid};
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// `root` gets `uid:gid` and `mode`; everything below gets `uid:gid`, keeping its mode, so
/// the component can write what it owns. Entries that vanish meanwhile are skipped.
pub fn own_tree(root: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    let fd = open_dir(root)?;
    let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    fchown(&fd, u, g).map_err(io::Error::from)?;
    fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(io::Error::from)?;
    own_below(&fd, u, g, 0)
}

fn gone(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR)
}

fn own_below(dir: &OwnedFd, u: Option<Uid>, g: Option<Gid>, depth: usize) -> io::Result<()> {
    if depth >= MAX_DEPTH {
        return Err(io::Error::other(format!(
            "more than {MAX_DEPTH} levels deep"
        )));
    }
    for name in names(dir)? {
        let st = match fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if gone(e) => continue,
            Err(e) => return Err(e.into()),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let sub = match openat(dir, name.as_os_str(), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(e) if gone(e) => continue,
                Err(e) => return Err(e.into()),
            };
            fchown(&sub, u, g)?;
            own_below(&sub, u, g, depth + 1)?;
        } else if st.st_uid != u.map_or(0, |u| u.as_raw())
            || st.st_gid != g.map_or(0, |g| g.as_raw())
        {
            // lchown: a symlink itself changes owner, never its target.
            match fchownat(dir, name.as_os_str(), u, g, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(()) => {}
                Err(e) if gone(e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn owns_the_tree_but_not_what_a_symlink_points_at() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::write(&outside, "host").unwrap();
        let root = t.path().join("filestore");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/link")).unwrap();
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root; the integration tests run as root.
        }
        own_tree(&root, 101, 102, 0o700).unwrap();
        let m = std::fs::metadata(&root).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.permissions().mode() & 0o777),
            (101, 102, 0o700)
        );
        for p in ["a", "a/b", "a/b/f"] {
            assert_eq!(std::fs::metadata(root.join(p)).unwrap().uid(), 101, "{p}");
        }
        assert_eq!(
            std::fs::symlink_metadata(root.join("a/link"))
                .unwrap()
                .uid(),
            101
        );
        assert_eq!(
            std::fs::metadata(&outside).unwrap().uid(),
            0,
            "the target stays root's"
        );
    }
}
