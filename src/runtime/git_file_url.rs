//! A `file://` repository held under `git.file_roots`: its path walked from `/` without
//! following a symbolic link, required to lie under a root, and handed to git as checked.
//! Anything else root can read (another stage's mirror, `/proc/self/cwd`) is refused.

use std::path::{Component, Path, PathBuf};

/// The `file://` URL git should fetch for `url`, or why it may not: `None` when `url` is not
/// a file URL. `url` has passed `git_input::repository` (no host, plain path).
pub fn checked(url: &str, roots: &[PathBuf]) -> Option<Result<String, String>> {
    let scheme = url.get(..7)?;
    if !scheme.eq_ignore_ascii_case("file://") {
        return None;
    }
    Some(under_roots(Path::new(&url[7..]), roots).map(|p| format!("file://{}", p.display())))
}

/// `path` itself when every part of it is a real directory entry (no symbolic link, no `.`
/// or `..`), it lies strictly under one of `roots` (resolved), and it is a directory whose
/// `.git`, if any, is a real directory too (a `.git` file could point anywhere).
pub fn under_roots(path: &Path, roots: &[PathBuf]) -> Result<PathBuf, String> {
    if roots.is_empty() {
        return Err("file:// repositories are refused: git.file_roots is empty".into());
    }
    let mut at = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => {
                at.push(n);
                let meta =
                    std::fs::symlink_metadata(&at).map_err(|e| format!("{}: {e}", at.display()))?;
                if meta.file_type().is_symlink() {
                    return Err(format!("{} is a symbolic link", at.display()));
                }
            }
            _ => return Err(format!("{} is not a plain absolute path", path.display())),
        }
    }
    if !at.is_dir() {
        return Err(format!("{} is not a directory", at.display()));
    }
    let dot_git = at.join(".git");
    if let Ok(m) = std::fs::symlink_metadata(&dot_git) {
        if !m.is_dir() {
            return Err(format!("{} is not a directory", dot_git.display()));
        }
    }
    let inside = roots.iter().any(|r| {
        r.canonicalize()
            .is_ok_and(|r| at.starts_with(&r) && at != r)
    });
    if !inside {
        return Err(format!(
            "{} is not under git.file_roots ({})",
            at.display(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_directories_under_a_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let repo = root.join("team/addons");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        let outside = t.path().join("other");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::fs::create_dir_all(root.join("gitfile")).unwrap();
        std::fs::write(root.join("gitfile/.git"), "gitdir: /elsewhere").unwrap();
        let roots = vec![root.clone()];
        let real = t.path().canonicalize().unwrap();
        let ok = under_roots(&real.join("root/team/addons"), &roots).unwrap();
        assert_eq!(ok, real.join("root/team/addons"));
        for bad in [
            real.join("other"),
            real.join("root"),
            real.join("root/link"),
            real.join("root/gitfile"),
            real.join("root/missing"),
            PathBuf::from("/proc/self/cwd"),
        ] {
            assert!(under_roots(&bad, &roots).is_err(), "{}", bad.display());
        }
        assert!(under_roots(&ok, &[]).is_err(), "no roots, no file URLs");
        assert_eq!(checked("https://h/x", &roots), None);
        let url = format!("file://{}", ok.display());
        assert_eq!(checked(&url, &roots), Some(Ok(url.clone())));
    }
}
