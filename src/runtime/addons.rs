//! Laying a checked-out tree into a stage's addons directory. The directory is bind-mounted
//! into containers, so only its contents change: its entries move aside, the new ones move in
//! (renames on one filesystem), and any failure moves everything back.

use std::io;
use std::path::{Path, PathBuf};

/// Without `clear`, what `dest` has that `tree` lacks is hard-linked into `tree` first, so the
/// commit is laid over it. Then the swap; `aside` (made here, on the same filesystem) holds the
/// old entries until it succeeds. `tree` is left empty.
pub fn lay_out(dest: &Path, tree: &Path, aside: &Path, clear: bool) -> io::Result<()> {
    if !clear {
        // Walked by directory fds: a directory of `dest` swapped for a symlink meanwhile is
        // never followed, so nothing from outside the stage is linked in.
        super::tenant_fs::link_missing(dest, tree)?;
    }
    // Entries move by one name each, in directories the agent made: rename never follows a
    // symlink there.
    swap(dest, tree, aside, &|from, to| std::fs::rename(from, to))?;
    super::tenant_fs::remove_tree(aside)
}

fn entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect()
}

/// Moves `dest`'s entries into `aside`, then `tree`'s into `dest`; undoes every move made when
/// one fails. `rename` is a parameter so tests can make it fail.
fn swap(
    dest: &Path,
    tree: &Path,
    aside: &Path,
    rename: &dyn Fn(&Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    std::fs::create_dir(aside)?;
    let mut moved_out: Vec<PathBuf> = vec![];
    let mut moved_in: Vec<PathBuf> = vec![];
    let result = (|| {
        for old in entries(dest)? {
            let name = old.file_name().expect("a directory entry has a name");
            rename(&old, &aside.join(name))?;
            moved_out.push(name.into());
        }
        for new in entries(tree)? {
            let name = new.file_name().expect("a directory entry has a name");
            rename(&new, &dest.join(name))?;
            moved_in.push(name.into());
        }
        Ok(())
    })();
    if let Err(e) = result {
        for name in moved_in.iter().rev() {
            let _ = std::fs::rename(dest.join(name), tree.join(name));
        }
        for name in moved_out.iter().rev() {
            if let Err(undo) = std::fs::rename(aside.join(name), dest.join(name)) {
                tracing::error!(entry = %aside.join(name).display(), error = %undo, "could not move an addons entry back");
            }
        }
        let _ = std::fs::remove_dir(aside);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;
    use walkdir::WalkDir;

    /// Every file under `dir` with its content, symlinks as "-> target".
    fn snapshot(dir: &Path) -> BTreeMap<String, String> {
        WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| !e.file_type().is_dir())
            .map(|e| {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                let v = if e.file_type().is_symlink() {
                    format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
                } else {
                    std::fs::read_to_string(e.path()).unwrap()
                };
                (rel, v)
            })
            .collect()
    }

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (p, v) in files {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        }
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let (dest, tree, aside) = (
            t.path().join("addons"),
            t.path().join("new"),
            t.path().join("old"),
        );
        std::fs::create_dir(&dest).unwrap();
        std::fs::create_dir(&tree).unwrap();
        write(
            &dest,
            &[
                ("mod_a/a.py", "old a"),
                ("mod_b/b.py", "b"),
                ("local.txt", "mine"),
                ("x", "file"),
            ],
        );
        std::os::unix::fs::symlink("/etc/passwd", dest.join("link")).unwrap();
        write(
            &tree,
            &[
                ("mod_a/a.py", "new a"),
                ("mod_c/c.py", "c"),
                ("x/inside", "dir now"),
            ],
        );
        (t, dest, tree, aside)
    }

    #[test]
    fn laid_over_keeps_what_the_commit_lacks() {
        let (_t, dest, tree, aside) = setup();
        let inode = std::fs::metadata(&dest).unwrap().ino();
        lay_out(&dest, &tree, &aside, false).unwrap();
        let got = snapshot(&dest);
        let want: BTreeMap<String, String> = [
            ("link", "-> /etc/passwd"),
            ("local.txt", "mine"),
            ("mod_a/a.py", "new a"),
            ("mod_b/b.py", "b"),
            ("mod_c/c.py", "c"),
            ("x/inside", "dir now"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            std::fs::metadata(&dest).unwrap().ino(),
            inode,
            "the directory itself stays"
        );
        assert!(!aside.exists());
        assert_eq!(std::fs::read_dir(&tree).unwrap().count(), 0);
    }

    #[test]
    fn cleared_holds_exactly_the_commit() {
        let (_t, dest, tree, aside) = setup();
        lay_out(&dest, &tree, &aside, true).unwrap();
        assert_eq!(
            snapshot(&dest).keys().cloned().collect::<Vec<_>>(),
            ["mod_a/a.py", "mod_c/c.py", "x/inside"]
        );
    }

    #[test]
    fn a_failure_midway_puts_everything_back() {
        let (_t, dest, tree, aside) = setup();
        let before = snapshot(&dest);
        let calls = std::cell::Cell::new(0);
        // Fail on the first entry moved in, after the five old ones moved out.
        let flaky = |from: &Path, to: &Path| {
            calls.set(calls.get() + 1);
            if calls.get() == 6 {
                return Err(io::Error::other("disk full"));
            }
            std::fs::rename(from, to)
        };
        let err = swap(&dest, &tree, &aside, &flaky).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(snapshot(&dest), before);
        assert!(!aside.exists());
        assert_eq!(snapshot(&tree).len(), 3, "the new tree is whole again");
    }
}
