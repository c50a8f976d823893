//! A laid-out tree that can be taken back: a deploy with an update keeps the addons' old
//! entries in the stage's root until it succeeds, and puts them back when it fails, also after
//! a crash midway. The directory itself never changes (it is bind-mounted); entries move by one
//! rename each, in directories the agent made, so no symlink is followed. Each phase ends with
//! a rename of its holding directory, which tells a second run where the first one stopped.

use std::ffi::OsString;
use std::io;
use std::path::Path;

/// Old entries on their way out (phase 1 of a lay-out); the tree is not yet in.
pub const MOVING: &str = ".deploy-prev-moving";
/// Every old entry; the new tree is going in or is in.
pub const PREV: &str = ".deploy-prev";
/// New entries on their way out (phase 1 of a put-back).
const TRASH: &str = ".deploy-trash";
/// Every new entry is out; the old ones are going back in.
const FAILED: &str = ".deploy-failed";

type Rename<'a> = &'a dyn Fn(&Path, &Path) -> io::Result<()>;

fn entries(dir: &Path) -> io::Result<Vec<OsString>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// A rename of a holding directory is the mark a later run goes by: on disk before the next
/// phase starts.
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Moves every entry of `from` into `to`. An entry of the same name already in `to` (written
/// there meanwhile) goes into `spill` first. On error the entries moved are moved back.
fn move_all(from: &Path, to: &Path, spill: Option<&Path>, rename: Rename) -> io::Result<()> {
    let mut moved: Vec<OsString> = vec![];
    let result = (|| {
        for name in entries(from)? {
            let target = to.join(&name);
            if let (true, Some(spill)) = (exists(&target), spill) {
                let mut n = 0;
                while exists(&spill.join(format!("{}.{n}", name.to_string_lossy()))) {
                    n += 1;
                }
                rename(
                    &target,
                    &spill.join(format!("{}.{n}", name.to_string_lossy())),
                )?;
            }
            rename(&from.join(&name), &target)?;
            moved.push(name);
        }
        Ok(())
    })();
    if result.is_err() {
        for name in moved.iter().rev() {
            if let Err(e) = std::fs::rename(to.join(name), from.join(name)) {
                tracing::error!(entry = %to.join(name).display(), error = %e, "could not move an entry back");
            }
        }
    }
    result
}

/// Lays `tree` into `dest` (the stage's directory under `root`), keeping the old entries in
/// `root/PREV`. Without `clear` what `dest` has that `tree` lacks is hard-linked into `tree`
/// first. A failure puts everything back as it was.
pub fn lay_out_kept(
    root: &Path,
    dest: &Path,
    tree: &Path,
    clear: bool,
    rename: Rename,
) -> io::Result<()> {
    for leftover in [MOVING, TRASH] {
        if exists(&root.join(leftover)) {
            return Err(io::Error::other(format!(
                "{leftover} is left from an interrupted deploy; the agent's start-up puts it back"
            )));
        }
    }
    // An earlier deploy that succeeded but did not get to remove them.
    super::tenant_fs::remove_tree(&root.join(PREV))?;
    super::tenant_fs::remove_tree(&root.join(FAILED))?;
    if !clear {
        super::tenant_fs::link_missing(dest, tree)?;
    }
    let (moving, prev) = (root.join(MOVING), root.join(PREV));
    std::fs::create_dir(&moving)?;
    if let Err(e) = move_all(dest, &moving, None, rename) {
        let _ = std::fs::remove_dir(&moving);
        return Err(e);
    }
    let marked = rename(&moving, &prev).and_then(|_| sync_dir(root));
    if let Err(e) = marked.and_then(|_| move_all(tree, dest, None, rename)) {
        if let Err(undo) = put_back(root, dest) {
            tracing::error!(dir = %dest.display(), error = %undo, "could not put the old entries back");
        }
        return Err(e);
    }
    Ok(())
}

/// Puts the entries `lay_out_kept` kept back into `dest`, removing the new ones. `false` when
/// nothing was kept. A second run after a crash finishes the first.
pub fn put_back(root: &Path, dest: &Path) -> io::Result<bool> {
    let plain = |from: &Path, to: &Path| std::fs::rename(from, to);
    let (moving, prev, trash, failed) = (
        root.join(MOVING),
        root.join(PREV),
        root.join(TRASH),
        root.join(FAILED),
    );
    if exists(&moving) {
        // Stopped in the lay-out's first phase: nothing new is in yet.
        move_all(&moving, dest, None, &plain)?;
        std::fs::remove_dir(&moving)?;
        return Ok(true);
    }
    if !exists(&prev) {
        return Ok(false);
    }
    if !exists(&failed) {
        if !exists(&trash) {
            std::fs::create_dir(&trash)?;
        }
        move_all(dest, &trash, None, &plain)?;
        std::fs::rename(&trash, &failed)?;
        sync_dir(root)?;
    }
    move_all(&prev, dest, Some(&failed), &plain)?;
    std::fs::remove_dir(&prev)?;
    super::tenant_fs::remove_tree(&failed)?;
    Ok(true)
}

/// Removes what was kept (the deploy succeeded).
pub fn drop_kept(root: &Path) -> io::Result<()> {
    super::tenant_fs::remove_tree(&root.join(PREV))?;
    super::tenant_fs::remove_tree(&root.join(FAILED))
}

/// The top-level directories of `tree` holding a regular file `marker`, neither a symlink.
/// `tree` is a checkout the agent made in the stage's root, which no tenant reaches.
pub fn folders_with(tree: &Path, marker: &str) -> io::Result<std::collections::BTreeSet<String>> {
    let mut found = std::collections::BTreeSet::new();
    for name in entries(tree)? {
        let dir = tree.join(&name);
        let is_dir = dir.symlink_metadata().is_ok_and(|m| m.is_dir());
        let has = is_dir
            && dir
                .join(marker)
                .symlink_metadata()
                .is_ok_and(|m| m.is_file());
        if let (true, Some(name)) = (has, name.to_str()) {
            found.insert(name.to_string());
        }
    }
    Ok(found)
}

#[cfg(test)]
#[path = "addons_kept_tests.rs"]
mod tests;
