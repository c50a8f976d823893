//! Chowns a mounted stage directory to the uid its container runs as: walked by directory
//! fds, never following a symlink, so a tenant's link cannot hand a host file to the uid.

use super::tenant_fs::{names, open_dir, MAX_DEPTH};
use nix::errno::Errno;
use nix::fcntl::{open, openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, Mode};
use nix::unistd::{fchown, fchownat, Gid, Uid};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// `root` gets `uid:gid` and `mode`; everything below gets `uid:gid`, keeping its mode, so
/// the component can write what it owns. When `mode` lets the group write (a directory shared
/// with another component that joins the group), everything below becomes group-writable too
/// and directories setgid, so the other component can edit deployed files and what it makes.
/// Entries that vanish meanwhile are skipped.
pub fn own_tree(root: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    let fd = open_dir(root)?;
    let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let group = mode & 0o020 != 0;
    let mode = if group { mode | 0o2000 } else { mode };
    fchown(&fd, u, g).map_err(io::Error::from)?;
    fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(io::Error::from)?;
    own_below(&fd, &Owner { u, g, group }, 0)
}

struct Owner {
    u: Option<Uid>,
    g: Option<Gid>,
    /// Give the group read and write below the root.
    group: bool,
}

/// Opens a regular file below `dir` for fchmod/fchown without ever opening a device or fifo:
/// an O_PATH handle is checked first, then reopened through /proc (the same inode, so a swap
/// of the name meanwhile changes nothing). `None` when it vanished or is not a regular file.
fn open_regular(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<Option<OwnedFd>> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let path_fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if gone(e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let st = fstat(&path_fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(None);
    }
    let proc = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    Ok(Some(open(
        proc.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?))
}

fn gone(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR)
}

fn own_below(dir: &OwnedFd, o: &Owner, depth: usize) -> io::Result<()> {
    let (u, g) = (o.u, o.g);
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
            if o.group {
                let m = (st.st_mode & 0o7777) | 0o2070;
                fchmod(&sub, Mode::from_bits_truncate(m))?;
            }
            own_below(&sub, o, depth + 1)?;
        } else if o.group && st.st_mode & libc::S_IFMT == libc::S_IFREG {
            let Some(f) = open_regular(dir, name.as_os_str())? else {
                continue;
            };
            let now = fstat(&f)?;
            fchown(&f, u, g)?;
            let m = (now.st_mode & 0o7777) | 0o060;
            fchmod(&f, Mode::from_bits_truncate(m))?;
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

    #[test]
    fn a_shared_tree_is_group_writable_below_without_opening_a_fifo() {
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root; the integration tests run as root.
        }
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("addons");
        std::fs::create_dir_all(root.join("my_module/views")).unwrap();
        let f = root.join("my_module/__manifest__.py");
        std::fs::write(&f, "{}").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(
            root.join("my_module"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        nix::unistd::mkfifo(
            &root.join("my_module/pipe"),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        own_tree(&root, 101, 101, 0o770).unwrap();
        let mode = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode(""), 0o2770);
        assert_eq!(mode("my_module"), 0o2775);
        assert_eq!(mode("my_module/views") & 0o2070, 0o2070);
        assert_eq!(mode("my_module/__manifest__.py"), 0o660);
        assert_eq!(std::fs::metadata(&f).unwrap().uid(), 101);
        assert_eq!(mode("my_module/pipe"), 0o600, "a fifo keeps its mode");
        // A private tree keeps the modes below.
        own_tree(&root, 101, 101, 0o700).unwrap();
        assert_eq!(mode("my_module/__manifest__.py"), 0o660);
    }
}
