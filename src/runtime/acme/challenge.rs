//! HTTP-01 tokens in `<challenge_dir>/.well-known/acme-challenge/` (dirs 0755, files 0644:
//! tokens are public), written as root through open directories: `challenge_dir` and each
//! directory below it is opened with `O_NOFOLLOW`, so a symlink put in their place is refused,
//! never followed to write or chmod elsewhere. A `challenge_dir` the agent did not make keeps
//! its mode but for the search bit nginx's workers need.

use crate::runtime::tenant_fs::open_sub;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Tokens are base64url; anything else is not written as a file name.
fn token_ok(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn symlink_refused(what: &str, e: Errno) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} is a symlink or not a directory ({e}): refused, point tls.challenge_dir at a real directory"),
    )
}

/// A directory the agent made gets `mode`; one it found only gains the search bit for others
/// (nginx's workers run as another user), when it lacks it.
fn settle(fd: &OwnedFd, made: bool, mode: u32) -> io::Result<()> {
    let have = fstat(fd)?.st_mode & 0o7777;
    let want = if made { mode } else { have | 0o001 };
    if want != have {
        fchmod(fd, Mode::from_bits_truncate(want))?;
    }
    Ok(())
}

/// `name` under `dir`, made 0755 if missing; a symlink in its place is refused.
fn sub_dir(dir: &OwnedFd, name: &OsStr, shown: &str) -> io::Result<OwnedFd> {
    let made = match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => return Err(io::Error::from(e)),
    };
    let fd = match open_sub(dir, name) {
        Ok(fd) => fd,
        Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => return Err(symlink_refused(shown, e)),
        Err(e) => return Err(io::Error::from(e)),
    };
    settle(&fd, made, 0o755)?;
    Ok(fd)
}

/// `<root>/.well-known/acme-challenge`, open; `root` is made (with its parents) if missing.
/// The parents are the operator's path (followed as given); from `root` down nothing is.
fn challenge_dir(root: &Path) -> io::Result<OwnedFd> {
    let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
        return Err(io::Error::other(format!(
            "tls.challenge_dir {} names no directory",
            root.display()
        )));
    };
    std::fs::create_dir_all(parent)?;
    let parent = OwnedFd::from(File::open(parent)?);
    let fd = sub_dir(
        &parent,
        name,
        &format!("tls.challenge_dir {}", root.display()),
    )?;
    let wk = root.join(".well-known");
    let wk = sub_dir(&fd, ".well-known".as_ref(), &wk.display().to_string())?;
    let tokens = root.join(".well-known/acme-challenge");
    sub_dir(
        &wk,
        "acme-challenge".as_ref(),
        &tokens.display().to_string(),
    )
}

/// A published token: removed (by name in its open directory) once the order is decided.
pub struct Token {
    dir: OwnedFd,
    name: String,
}

impl Token {
    pub fn remove(self) {
        let _ = unlinkat(&self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
    }
}

/// Publishes an HTTP-01 token: written to a temp file in the open directory, then renamed.
pub fn put_token(root: &Path, token: &str, key_authorization: &str) -> io::Result<Token> {
    if !token_ok(token) {
        return Err(io::Error::other(format!(
            "the server sent a token that is not base64url: {token:?}"
        )));
    }
    let dir = challenge_dir(root)?;
    let tmp = format!(".tmp-{token}-{}", uuid::Uuid::new_v4().simple());
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut file = File::from(openat(
        &dir,
        tmp.as_str(),
        flags,
        Mode::from_bits_truncate(0o644),
    )?);
    let written = fchmod(&file, Mode::from_bits_truncate(0o644))
        .map_err(io::Error::from)
        .and_then(|()| file.write_all(key_authorization.as_bytes()))
        .and_then(|()| file.sync_all())
        .and_then(|()| Ok(renameat(&dir, tmp.as_str(), &dir, token)?));
    if let Err(e) = written {
        let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    Ok(Token {
        dir,
        name: token.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn tokens_are_base64url_and_public() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("acme");
        let t = put_token(&root, "abc-DEF_123", "abc-DEF_123.thumb").unwrap();
        let p = root.join(".well-known/acme-challenge/abc-DEF_123");
        assert_eq!(fs::read_to_string(&p).unwrap(), "abc-DEF_123.thumb");
        assert_eq!(mode(&p), 0o644);
        assert_eq!(mode(&root), 0o755);
        assert_eq!(mode(&root.join(".well-known/acme-challenge")), 0o755);
        t.remove();
        assert!(!p.exists());
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 0);
        for bad in ["../x", "a/b", "", "a.b"] {
            assert!(put_token(&root, bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_symlinked_challenge_dir_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        let root = dir.path().join("acme");
        std::os::unix::fs::symlink(&target, &root).unwrap();
        let e = put_token(&root, "tok", "tok.x").err().unwrap();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(e.to_string().contains("tls.challenge_dir"), "{e}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
        assert_eq!(mode(&target), 0o700);
        // The same below it: `.well-known` pointing elsewhere.
        fs::remove_file(&root).unwrap();
        fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&target, root.join(".well-known")).unwrap();
        let e = put_token(&root, "tok", "tok.x").err().unwrap();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
        assert_eq!(mode(&target), 0o700);
    }

    #[test]
    fn a_challenge_dir_found_keeps_its_mode_but_for_the_search_bit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("acme");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o750)).unwrap();
        put_token(&root, "tok", "tok.x").unwrap();
        assert_eq!(mode(&root), 0o751);
        fs::set_permissions(&root, fs::Permissions::from_mode(0o775)).unwrap();
        put_token(&root, "tok", "tok.y").unwrap();
        assert_eq!(mode(&root), 0o775, "nothing else changes");
    }
}
