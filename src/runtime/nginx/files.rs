//! The site files of one transaction: put a candidate in place keeping the previous version,
//! then either commit (drop the backup) or restore (put the previous version back). Backups,
//! temp files and files hidden while bisecting start with '.', and a site nginx refused is set
//! aside as `<key>.conf.broken`, so nginx's `*.conf` include never sees them.

use crate::runtime::records::write_atomic;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub struct Placed {
    live: PathBuf,
    backup: PathBuf,
    broken: PathBuf,
    had_previous: bool,
}

/// The file nginx includes for `key`.
pub fn live(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.conf"))
}

/// Where a site nginx refuses is kept for the operator once it is out of the way.
pub fn broken(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.conf.broken"))
}

fn paths(dir: &Path, key: &str) -> (PathBuf, PathBuf) {
    (live(dir, key), dir.join(format!(".{key}.conf.prev")))
}

/// Where a site is hidden from nginx while the agent bisects.
pub fn hidden(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!(".{key}.conf.bisect"))
}

/// The keys of stagelet's own site files in `dir` (other files are never touched).
pub fn managed(dir: &Path) -> io::Result<Vec<String>> {
    let mut keys = vec![];
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".conf")) else {
            continue;
        };
        if key.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        if fs::read_to_string(entry.path()).is_ok_and(|t| super::render::is_managed(&t)) {
            keys.push(key.to_string());
        }
    }
    keys.sort();
    Ok(keys)
}

/// Puts back files a bisection hid when the agent stopped in the middle of it.
pub fn recover(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(key) = name
            .to_str()
            .and_then(|n| n.strip_prefix('.')?.strip_suffix(".conf.bisect"))
        else {
            continue;
        };
        let live = live(dir, key);
        if !live.exists() {
            let _ = fs::rename(entry.path(), live);
        }
    }
}

/// Puts `content` (or nothing, to remove the site) at `<key>.conf`, keeping the old file aside.
pub fn place(dir: &Path, key: &str, content: Option<&str>) -> io::Result<Placed> {
    let (live, backup) = paths(dir, key);
    fs::create_dir_all(dir)?;
    let _ = fs::remove_file(&backup);
    let had_previous = match fs::hard_link(&live, &backup) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let placed = Placed {
        live,
        backup,
        broken: broken(dir, key),
        had_previous,
    };
    let result = match content {
        Some(text) => write_atomic(&placed.live, text.as_bytes(), 0o644),
        None => match fs::remove_file(&placed.live) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    };
    match result {
        Ok(()) => Ok(placed),
        Err(e) => {
            placed.restore();
            Err(e)
        }
    }
}

impl Placed {
    /// Keeps the new version; a copy set aside earlier is stale from now on.
    pub fn commit(self) {
        let _ = fs::remove_file(&self.backup);
        let _ = fs::remove_file(&self.broken);
    }

    pub fn restore(self) {
        if self.had_previous {
            let _ = fs::rename(&self.backup, &self.live);
        } else {
            let _ = fs::remove_file(&self.live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_and_commit() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("a--b.conf");
        place(dir.path(), "a--b", Some("one")).unwrap().commit();
        assert_eq!(fs::read_to_string(&live).unwrap(), "one");
        place(dir.path(), "a--b", Some("two")).unwrap().restore();
        assert_eq!(fs::read_to_string(&live).unwrap(), "one");
        place(dir.path(), "a--b", None).unwrap().restore();
        assert_eq!(fs::read_to_string(&live).unwrap(), "one");
        place(dir.path(), "a--b", None).unwrap().commit();
        assert!(!live.exists());
        fs::write(broken(dir.path(), "a--b"), "old").unwrap();
        place(dir.path(), "a--b", None).unwrap().commit();
        assert!(!broken(dir.path(), "a--b").exists());
        place(dir.path(), "c--d", Some("new")).unwrap().restore();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
    }

    #[test]
    fn lists_only_managed_files_and_recovers_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(live(d, "a--b"), "# Managed by stagelet for stage a/b.\n").unwrap();
        fs::write(live(d, "zz-other"), "server {}\n").unwrap();
        fs::write(
            d.join(".a--c.conf.prev"),
            "# Managed by stagelet for stage a/c.\n",
        )
        .unwrap();
        fs::write(hidden(d, "a--d"), "# Managed by stagelet for stage a/d.\n").unwrap();
        assert_eq!(managed(d).unwrap(), vec!["a--b".to_string()]);
        recover(d);
        assert_eq!(
            managed(d).unwrap(),
            vec!["a--b".to_string(), "a--d".to_string()]
        );
        assert!(!hidden(d, "a--d").exists());
    }
}
