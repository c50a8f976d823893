//! Disk usage of a stage directory by walking it: apparent bytes (what `du -sb` prints) and
//! allocated bytes (blocks × 512, what `du -sB1` prints). Hard links count once, symlinks are
//! not followed, the walk stays on one filesystem, and an unreadable entry is counted and
//! skipped, never fatal. Independent subtrees are walked in parallel by a small bounded pool.

use super::blocking::BlockingMeter;
use super::tenant_fs::{names, MAX_DEPTH};
use crate::core::interfaces::{DirUsage, MeasurePriority};
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The figures of one walk; the core's type.
pub type Usage = DirUsage;

/// Inodes with more than one link already counted, shared by the workers.
type Seen = Mutex<HashSet<(u64, u64)>>;

/// What the walk needs of an inode.
struct Inode {
    dev: u64,
    ino: u64,
    nlink: u64,
    size: u64,
    blocks: u64,
    is_dir: bool,
}

impl From<FileStat> for Inode {
    fn from(m: FileStat) -> Self {
        Inode {
            dev: m.st_dev,
            ino: m.st_ino,
            nlink: m.st_nlink,
            size: m.st_size as u64,
            blocks: m.st_blocks as u64,
            is_dir: m.st_mode & libc::S_IFMT == libc::S_IFDIR,
        }
    }
}

fn count(meta: &Inode, seen: &Seen, u: &mut Usage) {
    if meta.nlink > 1
        && !meta.is_dir
        && !seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((meta.dev, meta.ino))
    {
        return;
    }
    u.apparent_bytes += meta.size;
    u.allocated_bytes += meta.blocks * 512;
    if meta.is_dir {
        u.dirs += 1;
    } else {
        u.files += 1;
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// A subdirectory still to walk: its parent, its name there and its depth below the root.
/// Held by name so a wide split never holds one open fd per directory.
type Subtree = (Arc<OwnedFd>, OsString, usize);

/// Counts the entries of `dir` (at `depth`), each stat'ed by one name relative to it without
/// following symlinks, and hands each subdirectory on `dev` to `subdir`.
fn expand(
    dir: &OwnedFd,
    depth: usize,
    dev: u64,
    seen: &Seen,
    total: &mut Usage,
    subdir: &mut dyn FnMut(OsString, &mut Usage),
) {
    let Ok(entries) = names(dir) else {
        total.unreadable += 1;
        return;
    };
    for name in entries {
        match fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map(Inode::from) {
            // A mount point's own inode belongs to the other filesystem: du -x skips it too.
            Ok(meta) if meta.dev != dev => {}
            Ok(meta) => {
                count(&meta, seen, total);
                if meta.is_dir {
                    if depth + 1 >= MAX_DEPTH {
                        total.unreadable += 1;
                    } else {
                        subdir(name, total);
                    }
                }
            }
            Err(_) => total.unreadable += 1,
        }
    }
}

/// Opens a subdirectory by its one name without following a symlink: one swapped in since
/// it was stat'ed is never entered.
fn open_sub(parent: &OwnedFd, name: &OsStr) -> Option<OwnedFd> {
    openat(parent, name, DIR_FLAGS, Mode::empty()).ok()
}

/// Walks a directory depth first, holding one open directory per level.
fn walk_dir(dir: &OwnedFd, depth: usize, dev: u64, seen: &Seen, u: &mut Usage) {
    expand(
        dir,
        depth,
        dev,
        seen,
        u,
        &mut |name, u| match open_sub(dir, &name) {
            Some(fd) => walk_dir(&fd, depth + 1, dev, seen, u),
            None => u.unreadable += 1,
        },
    );
}

fn walk(sub: Subtree, dev: u64, seen: &Seen) -> Usage {
    let mut u = Usage::default();
    match open_sub(&sub.0, &sub.1) {
        Some(fd) => walk_dir(&fd, sub.2, dev, seen, &mut u),
        None => u.unreadable += 1,
    }
    u
}

/// Measures `root` with up to `threads` workers, one subtree at a time each.
pub fn measure(root: &Path, threads: usize) -> Usage {
    measure_with(root, threads, || {})
}

/// How deep the tree is split before the pool takes over. Odoo keeps its files three levels
/// down (`filestore/<db>/<xx>/`), so splitting only the top level would leave one busy thread.
const MAX_SPLIT_DEPTH: usize = 4;

/// As [`measure`]; every thread that walks (the caller's included) runs `setup` first.
fn measure_with(root: &Path, threads: usize, setup: impl Fn() + Sync) -> Usage {
    setup();
    let threads = threads.max(1);
    let seen: Seen = Mutex::new(HashSet::new());
    let mut total = Usage::default();
    let root_meta = match nix::fcntl::open(root, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fstat(&fd).map(|m| (Inode::from(m), Some(fd))),
        // Not a directory: counted as itself.
        Err(_) => nix::sys::stat::lstat(root).map(|m| (Inode::from(m), None)),
    };
    let Ok((root_meta, root_fd)) = root_meta else {
        total.unreadable = 1;
        return total;
    };
    count(&root_meta, &seen, &mut total);
    let Some(root_fd) = root_fd else {
        return total;
    };
    let dev = root_meta.dev;
    // Split level by level until there are enough subtrees to keep every worker busy.
    let mut subtrees: Vec<Subtree> = vec![];
    let root_fd = Arc::new(root_fd);
    expand(&root_fd, 0, dev, &seen, &mut total, &mut |name, _| {
        subtrees.push((root_fd.clone(), name, 1))
    });
    for _ in 1..MAX_SPLIT_DEPTH {
        if subtrees.len() >= threads * 8 {
            break;
        }
        let mut next = vec![];
        for (parent, name, depth) in subtrees {
            let Some(fd) = open_sub(&parent, &name) else {
                total.unreadable += 1;
                continue;
            };
            let fd = Arc::new(fd);
            expand(&fd, depth, dev, &seen, &mut total, &mut |name, _| {
                next.push((fd.clone(), name, depth + 1))
            });
        }
        subtrees = next;
    }
    let queue = Mutex::new(subtrees);
    let results = Mutex::new(Usage::default());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                setup();
                loop {
                    let Some(dir) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                        return;
                    };
                    let u = walk(dir, dev, &seen);
                    results.lock().unwrap_or_else(|p| p.into_inner()).add(u);
                }
            });
        }
    });
    total.add(results.into_inner().unwrap_or_else(|p| p.into_inner()));
    total
}

/// A small pool: the cores there are, at most 4, so measuring never takes the whole host.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4)
}

/// The meter the daemon uses: the parallel walk, at background priority when asked.
pub struct Walker {
    pub threads: usize,
}

impl BlockingMeter for Walker {
    fn measure(&self, dir: &Path, priority: MeasurePriority) -> DirUsage {
        match priority {
            MeasurePriority::Interactive => measure(dir, self.threads),
            MeasurePriority::Background => {
                // Priorities are per thread on Linux: lower each walking thread, in its own
                // short-lived thread so no tokio worker keeps them.
                let dir = dir.to_path_buf();
                let threads = self.threads;
                std::thread::spawn(move || {
                    measure_with(&dir, threads, super::priority::lower_this_thread)
                })
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn du(args: &[&str], path: &Path) -> u64 {
        let out = Command::new("du").args(args).arg(path).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn tricky_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("a/b/c")).unwrap();
        std::fs::create_dir_all(r.join("d")).unwrap();
        std::fs::write(r.join("a/one.txt"), vec![b'x'; 5000]).unwrap();
        std::fs::write(r.join("a/b/c/two.bin"), vec![1u8; 123_457]).unwrap();
        std::fs::write(r.join("top.txt"), b"hello").unwrap();
        std::fs::write(r.join("empty"), b"").unwrap();
        // Hard links, inside one subtree and across two.
        std::fs::hard_link(r.join("a/b/c/two.bin"), r.join("d/two-again.bin")).unwrap();
        std::fs::hard_link(r.join("a/one.txt"), r.join("a/b/one-again.txt")).unwrap();
        // A sparse file: 10 MB apparent, a few blocks allocated.
        let f = std::fs::File::create(r.join("d/sparse")).unwrap();
        f.set_len(10 * 1024 * 1024).unwrap();
        // Symlinks, one to a big file outside, one dangling: never followed.
        std::os::unix::fs::symlink("/usr/lib", r.join("d/link-out")).unwrap();
        std::os::unix::fs::symlink("nowhere", r.join("dangling")).unwrap();
        dir
    }

    #[test]
    fn equals_du_on_links_sparse_files_and_symlinks() {
        let dir = tricky_tree();
        for threads in [1, 4] {
            let u = measure(dir.path(), threads);
            assert_eq!(
                u.apparent_bytes,
                du(&["-sbx"], dir.path()),
                "apparent, {threads} threads"
            );
            assert_eq!(
                u.allocated_bytes,
                du(&["-sxB1"], dir.path()),
                "allocated, {threads} threads"
            );
            assert_eq!(u.unreadable, 0);
        }
    }

    #[test]
    fn a_deep_odoo_layout_is_split_and_still_equals_du() {
        // filestore/<db>/<xx>/<hash>: one directory at each of the top levels.
        let dir = tempfile::tempdir().unwrap();
        for x in 0..40 {
            let d = dir.path().join(format!("filestore/qa/{x:02x}"));
            std::fs::create_dir_all(&d).unwrap();
            for f in 0..10 {
                std::fs::write(d.join(format!("h{f}")), vec![b'y'; 1000 * f + x]).unwrap();
            }
        }
        std::fs::hard_link(
            dir.path().join("filestore/qa/00/h3"),
            dir.path().join("filestore/qa/27/linked"),
        )
        .unwrap();
        let threads = 4;
        let setups = std::sync::atomic::AtomicUsize::new(0);
        let u = measure_with(dir.path(), threads, || {
            setups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(u.apparent_bytes, du(&["-sbx"], dir.path()));
        assert_eq!(u.allocated_bytes, du(&["-sxB1"], dir.path()));
        assert_eq!(u.files, 400, "the hard link counts once");
        // The caller and every worker ran the setup (where priorities are lowered).
        assert_eq!(setups.into_inner(), threads + 1);
        let background = Walker { threads }.measure(dir.path(), MeasurePriority::Background);
        assert_eq!(background, u);
    }

    #[test]
    fn a_nested_mount_is_not_entered() {
        let dir = tricky_tree();
        let mnt = dir.path().join("a/mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED a_nested_mount_is_not_entered: cannot mount a tmpfs here");
            return;
        }
        std::fs::write(mnt.join("inside"), vec![0u8; 1_000_000]).unwrap();
        let u = measure(dir.path(), 2);
        let (b, blocks) = (du(&["-sbx"], dir.path()), du(&["-sxB1"], dir.path()));
        let _ = Command::new("umount").arg(&mnt).status();
        assert_eq!((u.apparent_bytes, u.allocated_bytes), (b, blocks));
        assert!(
            u.apparent_bytes < 1_000_000 + 10 * 1024 * 1024,
            "the tmpfs content was counted"
        );
    }

    #[test]
    fn unreadable_entries_are_counted_not_fatal() {
        let dir = tricky_tree();
        let locked = dir.path().join("a/locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join("secret"), b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let u = measure(dir.path(), 2);
        // Root reads a 0000 directory anyway; any other user gets one unreadable entry.
        let expected = if nix::unistd::geteuid().is_root() {
            0
        } else {
            1
        };
        assert_eq!(u.unreadable, expected);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A missing root is one unreadable entry, and the measure still answers.
        let gone = measure(&dir.path().join("no-such-dir"), 2);
        assert_eq!(
            gone,
            Usage {
                unreadable: 1,
                ..Default::default()
            }
        );
    }
}
