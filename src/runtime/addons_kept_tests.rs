use super::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Every entry under `dir` with its content, symlinks as "-> target".
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
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

/// A stage root with `addons` (old code and a symlink) and a new checkout beside it.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let (dest, tree) = (root.join("addons"), root.join(".deploy-new"));
    write(
        &dest,
        &[
            ("mod_a/a.py", "old a"),
            ("mod_b/b.py", "b"),
            ("local.txt", "mine"),
        ],
    );
    std::os::unix::fs::symlink("/etc/passwd", dest.join("link")).unwrap();
    write(&tree, &[("mod_a/a.py", "new a"), ("mod_c/c.py", "c")]);
    (t, root, dest, tree)
}

fn plain(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

fn leftovers(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".deploy-") && n != ".deploy-new")
        .collect();
    v.sort();
    v
}

#[test]
fn kept_then_put_back_is_the_old_tree_again() {
    let (_t, root, dest, tree) = setup();
    let (before, inode) = (snapshot(&dest), std::fs::metadata(&dest).unwrap().ino());
    lay_out_kept(&root, &dest, &tree, true, &plain).unwrap();
    assert_eq!(
        snapshot(&dest).keys().cloned().collect::<Vec<_>>(),
        ["mod_a/a.py", "mod_c/c.py"]
    );
    assert_eq!(snapshot(&root.join(PREV)), before);
    assert!(put_back(&root, &dest).unwrap());
    assert_eq!(snapshot(&dest), before);
    assert_eq!(
        std::fs::metadata(&dest).unwrap().ino(),
        inode,
        "the directory stays"
    );
    assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));
    assert!(!put_back(&root, &dest).unwrap(), "nothing kept any more");
}

#[test]
fn kept_then_dropped_keeps_the_new_tree() {
    let (_t, root, dest, tree) = setup();
    lay_out_kept(&root, &dest, &tree, false, &plain).unwrap();
    drop_kept(&root).unwrap();
    assert_eq!(snapshot(&dest)["mod_a/a.py"], "new a");
    assert_eq!(snapshot(&dest)["local.txt"], "mine", "laid over");
    assert_eq!(snapshot(&dest)["link"], "-> /etc/passwd");
    assert!(leftovers(&root).is_empty());
}

/// A failure while the new tree goes in puts the old one back at once.
#[test]
fn a_failure_midway_leaves_the_old_tree() {
    let (_t, root, dest, tree) = setup();
    let before = snapshot(&dest);
    let calls = std::cell::Cell::new(0);
    // Four old entries go out, the marking rename, then the first new entry fails.
    let flaky = |from: &Path, to: &Path| {
        calls.set(calls.get() + 1);
        if calls.get() == 6 {
            return Err(io::Error::other("disk full"));
        }
        std::fs::rename(from, to)
    };
    let e = lay_out_kept(&root, &dest, &tree, true, &flaky).unwrap_err();
    assert_eq!(e.to_string(), "disk full");
    assert_eq!(snapshot(&dest), before);
    assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));
}

/// A crash in any phase: the next put_back finishes the job from what is on disk.
#[test]
fn put_back_finishes_after_a_crash_in_any_phase() {
    // In the lay-out's first phase: some old entries out, the rest still in.
    let (_t, root, dest, _tree) = setup();
    let before = snapshot(&dest);
    std::fs::create_dir(root.join(MOVING)).unwrap();
    plain(&dest.join("mod_b"), &root.join(MOVING).join("mod_b")).unwrap();
    assert!(put_back(&root, &dest).unwrap());
    assert_eq!(snapshot(&dest), before);
    assert!(leftovers(&root).is_empty());

    // In the put-back's first phase: some new entries in the trash, the rest still in.
    let (_t, root, dest, tree) = setup();
    let before = snapshot(&dest);
    lay_out_kept(&root, &dest, &tree, true, &plain).unwrap();
    std::fs::create_dir(root.join(TRASH)).unwrap();
    plain(&dest.join("mod_c"), &root.join(TRASH).join("mod_c")).unwrap();
    assert!(put_back(&root, &dest).unwrap());
    assert_eq!(snapshot(&dest), before);
    assert!(leftovers(&root).is_empty());

    // In its second phase: the new ones all out, some old ones back already.
    let (_t, root, dest, tree) = setup();
    let before = snapshot(&dest);
    lay_out_kept(&root, &dest, &tree, true, &plain).unwrap();
    std::fs::create_dir(root.join(FAILED)).unwrap();
    for n in entries(&dest).unwrap() {
        plain(&dest.join(&n), &root.join(FAILED).join(&n)).unwrap();
    }
    plain(&root.join(PREV).join("mod_a"), &dest.join("mod_a")).unwrap();
    // Something wrote into the directory meanwhile: it does not block the way back.
    write(&dest, &[("local.txt", "written meanwhile")]);
    assert!(put_back(&root, &dest).unwrap());
    assert_eq!(snapshot(&dest), before);
    assert!(leftovers(&root).is_empty());
}

/// Leftovers of an interrupted deploy are not swept away by the next one.
#[test]
fn a_lay_out_refuses_an_interrupted_ones_leftovers() {
    let (_t, root, dest, tree) = setup();
    std::fs::create_dir(root.join(MOVING)).unwrap();
    let e = lay_out_kept(&root, &dest, &tree, true, &plain).unwrap_err();
    assert!(e.to_string().contains(MOVING), "{e}");
}

#[test]
fn module_folders_are_real_directories_with_a_real_manifest() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path();
    write(
        tree,
        &[
            ("mod_a/__manifest__.py", "{}"),
            ("no_manifest/x.py", ""),
            ("README.md", ""),
            ("deep/mod_x/__manifest__.py", "{}"),
            ("fake/x", ""),
        ],
    );
    std::fs::create_dir(tree.join("dir_manifest")).unwrap();
    std::fs::create_dir(tree.join("dir_manifest/__manifest__.py")).unwrap();
    std::os::unix::fs::symlink("mod_a", tree.join("linked")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tree.join("fake/__manifest__.py")).unwrap();
    let found = folders_with(tree, "__manifest__.py").unwrap();
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["mod_a"]);
}
