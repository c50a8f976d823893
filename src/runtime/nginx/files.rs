//! The site files of one transaction: put a candidate in place keeping the previous version,
//! then either commit (drop the backup) or restore (put the previous version back). Backups and
//! temp files start with '.', so nginx's `*.conf` include never sees them.

use crate::runtime::records::write_atomic;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub struct Placed {
    live: PathBuf,
    backup: PathBuf,
    had_previous: bool,
}

fn paths(dir: &Path, key: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{key}.conf")),
        dir.join(format!(".{key}.conf.prev")),
    )
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
    pub fn commit(self) {
        let _ = fs::remove_file(&self.backup);
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
        place(dir.path(), "c--d", Some("new")).unwrap().restore();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
    }
}
