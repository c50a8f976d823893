//! Disk usage of a stage directory by walking it: apparent bytes (what `du -sb` prints) and
//! allocated bytes (blocks × 512, what `du -sB1` prints). Hard links count once, symlinks are
//! not followed, the walk stays on one filesystem, and an unreadable entry is counted and
//! skipped, never fatal. Independent subtrees are walked in parallel by a small bounded pool.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use walkdir::WalkDir;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub apparent_bytes: u64,
    pub allocated_bytes: u64,
    pub files: u64,
    pub dirs: u64,
    /// Entries that could not be read (permissions, vanished while walking).
    pub unreadable: u64,
}

impl Usage {
    fn add(&mut self, o: Usage) {
        self.apparent_bytes += o.apparent_bytes;
        self.allocated_bytes += o.allocated_bytes;
        self.files += o.files;
        self.dirs += o.dirs;
        self.unreadable += o.unreadable;
    }
}

/// Inodes with more than one link already counted, shared by the workers.
type Seen = Mutex<HashSet<(u64, u64)>>;

fn count(meta: &std::fs::Metadata, seen: &Seen, u: &mut Usage) {
    if meta.nlink() > 1
        && !meta.is_dir()
        && !seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((meta.dev(), meta.ino()))
    {
        return;
    }
    u.apparent_bytes += meta.size();
    u.allocated_bytes += meta.blocks() * 512;
    if meta.is_dir() {
        u.dirs += 1;
    } else {
        u.files += 1;
    }
}

/// Walks `root` (not its own entry) without descending into other filesystems.
fn walk(root: &Path, dev: u64, seen: &Seen) -> Usage {
    let mut u = Usage::default();
    let walker = WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .same_file_system(true);
    for entry in walker {
        match entry.and_then(|e| e.metadata().map(|m| (e, m))) {
            // A mount point's own inode belongs to the other filesystem: du -x skips it too.
            Ok((_, meta)) if meta.dev() != dev => {}
            Ok((_, meta)) => count(&meta, seen, &mut u),
            Err(_) => u.unreadable += 1,
        }
    }
    u
}

/// Measures `root` with up to `threads` workers, one subtree at a time each.
pub fn measure(root: &Path, threads: usize) -> Usage {
    let seen: Seen = Mutex::new(HashSet::new());
    let mut total = Usage::default();
    let Ok(root_meta) = std::fs::symlink_metadata(root) else {
        total.unreadable = 1;
        return total;
    };
    count(&root_meta, &seen, &mut total);
    if !root_meta.is_dir() {
        return total;
    }
    let dev = root_meta.dev();
    // The top level: files counted here, directories handed to the pool.
    let mut subtrees: Vec<PathBuf> = vec![];
    match std::fs::read_dir(root) {
        Ok(entries) => {
            for entry in entries {
                match entry.and_then(|e| e.metadata().map(|m| (e.path(), m))) {
                    Ok((_, meta)) if meta.dev() != dev => {}
                    Ok((path, meta)) => {
                        count(&meta, &seen, &mut total);
                        if meta.is_dir() {
                            subtrees.push(path);
                        }
                    }
                    Err(_) => total.unreadable += 1,
                }
            }
        }
        Err(_) => total.unreadable += 1,
    }
    let queue = Mutex::new(subtrees);
    let results = Mutex::new(Usage::default());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let Some(dir) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                    return;
                };
                let u = walk(&dir, dev, &seen);
                results.lock().unwrap_or_else(|p| p.into_inner()).add(u);
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
