//! Finding which of stagelet's site files make `nginx -t` fail, so they alone are set aside:
//! the file nginx names (`... in /dir/<key>.conf:12`), the files using the certificate or key it
//! could not load (nginx names no file then), or else by bisection over the site files.

use super::control::Control;
use super::files;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The keys of the site files that break the test that failed with `msg`; `None` when the
/// fault lies elsewhere (nginx.conf, a file stagelet did not write) or cannot be found.
pub fn culprits(dir: &Path, control: &Control, msg: &str) -> Option<Vec<String>> {
    let keys = files::managed(dir).ok()?;
    let named = named_files(msg);
    if !named.is_empty() {
        let found: Vec<String> = named
            .iter()
            .filter_map(|p| key_in(dir, p))
            .filter(|k| keys.contains(k))
            .collect();
        return (!found.is_empty()).then_some(found);
    }
    let tls = tls_paths(msg);
    if !tls.is_empty() {
        let found: Vec<String> = keys
            .iter()
            .filter(|k| {
                fs::read_to_string(files::live(dir, k)).is_ok_and(|text| uses_any(&text, &tls))
            })
            .cloned()
            .collect();
        if !found.is_empty() {
            return Some(found);
        }
    }
    bisect(dir, control, &keys).map(|k| vec![k])
}

/// The files nginx names as `in <path>:<line>`.
fn named_files(msg: &str) -> Vec<PathBuf> {
    msg.match_indices(" in /")
        .filter_map(|(i, _)| {
            let rest = &msg[i + 4..];
            let word = rest.split(|c: char| c.is_whitespace() || c == ';').next()?;
            let (path, line) = word.rsplit_once(':')?;
            let digits = line.trim_end_matches(|c: char| !c.is_ascii_digit());
            (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
                .then(|| PathBuf::from(path))
        })
        .collect()
}

/// The key of `path` when it is a `<key>.conf` directly in `dir`.
fn key_in(dir: &Path, path: &Path) -> Option<String> {
    if path.parent()? != dir {
        return None;
    }
    let key = path.file_name()?.to_str()?.strip_suffix(".conf")?;
    Some(key.to_string())
}

/// The paths in nginx's `cannot load certificate "P"` and `cannot load certificate key "P"`.
fn tls_paths(msg: &str) -> Vec<String> {
    msg.match_indices("cannot load certificate")
        .filter_map(|(i, m)| {
            let rest = msg[i + m.len()..].trim_start_matches(" key");
            let rest = rest.strip_prefix(" \"")?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

fn uses_any(text: &str, paths: &[String]) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        let value = l
            .strip_prefix("ssl_certificate ")
            .or_else(|| l.strip_prefix("ssl_certificate_key "));
        value.is_some_and(|v| {
            paths
                .iter()
                .any(|p| v.strip_suffix(';') == Some(p.as_str()))
        })
    })
}

/// Site files renamed out of nginx's sight for a test; all put back on drop.
struct Hidden<'a> {
    dir: &'a Path,
    keys: BTreeSet<String>,
}

impl Hidden<'_> {
    fn hide(&mut self, key: &str) -> bool {
        let ok = fs::rename(files::live(self.dir, key), files::hidden(self.dir, key)).is_ok();
        if ok {
            self.keys.insert(key.to_string());
        }
        ok
    }

    fn show(&mut self, key: &str) {
        if self.keys.remove(key) {
            let _ = fs::rename(files::hidden(self.dir, key), files::live(self.dir, key));
        }
    }
}

impl Drop for Hidden<'_> {
    fn drop(&mut self) {
        for key in std::mem::take(&mut self.keys) {
            let _ = fs::rename(files::hidden(self.dir, &key), files::live(self.dir, &key));
        }
    }
}

/// One site whose presence makes the test fail, in 1 + log2(n) tests; nothing is reloaded
/// meanwhile, so what nginx serves does not change.
fn bisect(dir: &Path, control: &Control, keys: &[String]) -> Option<String> {
    let mut hidden = Hidden {
        dir,
        keys: BTreeSet::new(),
    };
    for k in keys {
        if !hidden.hide(k) {
            return None;
        }
    }
    // Invariant: the shown files pass; the shown ones plus all candidates fail.
    control.test().ok()?;
    let mut candidates = keys.to_vec();
    while candidates.len() > 1 {
        let second = candidates.split_off(candidates.len() / 2);
        for k in &candidates {
            hidden.show(k);
        }
        if control.test().is_ok() {
            candidates = second;
        } else {
            for k in &candidates {
                if !hidden.hide(k) {
                    return None;
                }
            }
        }
    }
    candidates.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_named_files_and_certificate_paths() {
        let msg = "nginx -t failed: nginx: [emerg] unknown directive \"x\" in /etc/nginx/stagelet/a--b.conf:12; \
                   nginx: [emerg] invalid port in \"x\" of the \"listen\" directive in /etc/nginx/zz.conf:1";
        assert_eq!(
            named_files(msg),
            vec![
                PathBuf::from("/etc/nginx/stagelet/a--b.conf"),
                PathBuf::from("/etc/nginx/zz.conf")
            ]
        );
        let dir = Path::new("/etc/nginx/stagelet");
        assert_eq!(
            key_in(dir, Path::new("/etc/nginx/stagelet/a--b.conf")),
            Some("a--b".into())
        );
        assert_eq!(key_in(dir, Path::new("/etc/nginx/zz.conf")), None);
        assert!(named_files("in /x without a line").is_empty());

        let msg =
            "2026/12/02 [emerg] 1#1: cannot load certificate \"/c/a.pem\": BIO_new_file() failed; \
                   [emerg] 1#1: cannot load certificate key \"/c/b.key\": PEM_read failed";
        assert_eq!(tls_paths(msg), vec!["/c/a.pem", "/c/b.key"]);
        let file = "    ssl_certificate /c/a.pem;\n    ssl_certificate_key /c/a.key;\n";
        assert!(uses_any(file, &["/c/a.pem".into()]));
        assert!(uses_any(file, &["/c/a.key".into()]));
        assert!(!uses_any(file, &["/c/a.pe".into()]));
    }

    #[test]
    fn bisection_finds_the_file_that_fails_and_hides_nothing_after() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let keys: Vec<String> = (0..7).map(|i| format!("s--{i}")).collect();
        for k in &keys {
            fs::write(files::live(d, k), "ok").unwrap();
        }
        fs::write(files::live(d, "s--5"), "bad").unwrap();
        // The "test" fails while a live file says bad.
        let control = Control {
            test_command: vec![
                "sh".into(),
                "-c".into(),
                format!("! grep -qs bad {}/*.conf", d.display()),
            ],
            reload_command: vec![],
            pid_file: d.join("none.pid"),
            reload_timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(bisect(d, &control, &keys), Some("s--5".into()));
        for k in &keys {
            assert!(files::live(d, k).exists(), "{k} is back");
        }
        fs::write(files::live(d, "s--5"), "ok").unwrap();
        fs::write(d.join("foreign.conf"), "bad").unwrap();
        assert_eq!(bisect(d, &control, &keys), None, "not a site's fault");
        assert_eq!(fs::read_dir(d).unwrap().count(), 8);
    }
}
