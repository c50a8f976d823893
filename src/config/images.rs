//! The real-image keys: who a component runs as, when its image is pulled, the registries'
//! credentials and the container log caps, with the checks `check-config` runs on them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// `run_as = "UID:GID"`: the owner of a component's mounted directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl TryFrom<String> for RunAs {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("{s:?} is not \"UID:GID\" in numbers, like \"101:101\"");
        let (u, g) = s.split_once(':').ok_or_else(bad)?;
        let num = |t: &str| {
            // Plain digits only: no sign, no spaces, no names.
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u32>().ok())
                .flatten()
        };
        match (num(u), num(g)) {
            (Some(uid), Some(gid)) if uid != u32::MAX && gid != u32::MAX => Ok(RunAs { uid, gid }),
            _ => Err(bad()),
        }
    }
}

impl From<RunAs> for String {
    fn from(r: RunAs) -> String {
        r.to_string()
    }
}

impl fmt::Display for RunAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// When a component's image is pulled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Only when the engine lacks it.
    #[default]
    Missing,
    /// Before every container is made from it.
    Always,
    /// Never: a missing image is refused before anything is made.
    Never,
}

/// `[registries."HOST[:PORT]"]`: credentials beside `docker.auth_config`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub username: String,
    /// Mode 0600; its first line is the password.
    pub password_file: PathBuf,
}

/// `[logs]`: the engine's json-file log driver caps per container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Logs {
    pub max_size_mb: u64,
    pub max_files: u32,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            max_size_mb: 50,
            max_files: 3,
        }
    }
}

/// Why `reference` is not an image reference `[HOST[:PORT]/]PATH[:TAG][@DIGEST]`, if it
/// is not (the distribution reference grammar, without its length limits on tags).
pub fn reference_problem(reference: &str) -> Option<String> {
    let problem = |m: &str| Some(format!("{reference:?} is not an image reference: {m}"));
    if reference.is_empty() {
        return problem("it is empty");
    }
    if reference
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return problem("it holds a space");
    }
    if reference.contains("..") {
        return problem("it holds \"..\"");
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !ok {
            return problem("the digest is not ALGORITHM:HEX");
        }
    }
    // A tag follows the last ':' after the last '/'.
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.as_bytes()[0] != b'.'
            && t.as_bytes()[0] != b'-'
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return problem("the tag is not [A-Za-z0-9_][A-Za-z0-9_.-]*");
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // The first part is a registry host when it has a '.' or ':' or is localhost.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        };
        let host_ok = !h.is_empty()
            && h.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !host_ok || port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
            return problem("the registry is not HOST[:PORT]");
        }
    }
    let component_ok = |c: &str| {
        // [a-z0-9]+ separated by '.', '_', '__' or '-'s.
        !c.is_empty()
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && !c.contains("___")
            && !c.contains("._")
            && !c.contains("_.")
    };
    if parts.is_empty() || !parts.iter().all(|c| component_ok(c)) {
        return problem("its path is not lowercase letters, digits and separators");
    }
    None
}

/// Whether a password file passes [`read_password_file`]'s checks.
pub fn password_file_problem(path: &std::path::Path) -> Option<String> {
    read_password_file(path).err()
}

/// The first line of a password file, checked and read through one handle (no swap between
/// check and read): not a symlink, a regular file (a fifo is never waited on), mode 0600 or
/// stricter, owned by root or the agent's user.
pub fn read_password_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let m = f
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !m.file_type().is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "{} has mode {:04o}: others could read the password; chmod 0600 it",
            path.display(),
            m.mode() & 0o777
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != 0 && m.uid() != me {
        return Err(format!(
            "{} is owned by uid {}: only root or the agent's user (uid {me}) may own it",
            path.display(),
            m.uid()
        ));
    }
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// `(key path, message)` pairs for the image keys of every profile and the registries.
pub fn cross_check(config: &super::Config) -> Vec<(Vec<String>, String)> {
    let mut errs = vec![];
    let key = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (name, p) in &config.profiles {
        let comps = [("app", Some(&p.app)), ("db", Some(&p.db))];
        let cs = [("code_server", p.code_server.as_ref())];
        for (role, c) in comps.into_iter().chain(cs) {
            let Some(c) = c else { continue };
            if let Some(m) = reference_problem(&c.image) {
                errs.push((key(&["profiles", name, role, "image"]), m));
            }
        }
    }
    for (host, r) in &config.registries {
        if reference_problem(&format!("{host}/x")).is_some() || host.contains('/') {
            errs.push((
                key(&["registries", host]),
                "is not a registry HOST[:PORT]".into(),
            ));
        } else if !host.contains(['.', ':']) && host != "localhost" {
            // An image `myregistry/x` is Docker Hub's: such a key would never match a pull.
            errs.push((
                key(&["registries", host]),
                "is not a registry host: it needs a '.' or ':' (or is localhost), \
                 otherwise images under it are Docker Hub's"
                    .into(),
            ));
        }
        if r.username.is_empty() {
            errs.push((key(&["registries", host, "username"]), "is empty".into()));
        }
        if let Some(m) = password_file_problem(&r.password_file) {
            errs.push((key(&["registries", host, "password_file"]), m));
        }
    }
    if config.logs.max_size_mb == 0 {
        errs.push((key(&["logs", "max_size_mb"]), "must be at least 1".into()));
    }
    if config.logs.max_files == 0 {
        errs.push((key(&["logs", "max_files"]), "must be at least 1".into()));
    }
    errs
}

/// `[registries]`, keyed by `HOST[:PORT]`.
pub type Registries = BTreeMap<String, Registry>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_as_is_two_numbers() {
        let ok = RunAs::try_from("101:101".to_string()).unwrap();
        assert_eq!((ok.uid, ok.gid), (101, 101));
        assert_eq!(ok.to_string(), "101:101");
        for bad in [
            "101",
            "odoo:odoo",
            "101:",
            ":101",
            "-1:5",
            " 101:101",
            "1:2:3",
            "+1:2",
        ] {
            assert!(RunAs::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_follow_the_grammar() {
        for ok in [
            "odoo:17.0",
            "postgres:16",
            "codercom/code-server:4.96.4",
            "127.0.0.1:5000/stagelet-test/app:2",
            "registry.example.com/acme/odoo:17.0",
            "localhost/x",
            "stagelet-test/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(reference_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "odoo :17",
            "../odoo",
            "a/../b",
            "Odoo:17",
            "odoo:",
            "odoo:-x",
            "reg.example.com:0/x",
            "x@sha256:zz",
            "/odoo",
            "odoo/",
        ] {
            assert!(reference_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn password_files_are_checked_and_read_through_one_handle() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("pw");
        std::fs::write(&f, "s3cret\nrest\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password_file(&f).unwrap(), "s3cret");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(read_password_file(&link).is_err(), "a symlink is refused");
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_password_file(&fifo).unwrap_err();
        assert!(
            e.contains("not a file"),
            "a fifo is refused, not waited on: {e}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(read_password_file(&f).unwrap_err().contains("0640"));
        if nix::unistd::geteuid().is_root() {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&f, Some(4321), None).unwrap();
            assert!(read_password_file(&f).unwrap_err().contains("uid 4321"));
        }
    }
}
