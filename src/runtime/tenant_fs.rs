//! File work done as root inside a tenant's directories, immune to symlink swaps: every
//! lookup is one name relative to an open directory with `O_NOFOLLOW`, so code in the stage's
//! containers that swaps a directory for a symlink mid-walk gets an error or its own file,
//! never a host file. Symlinks are copied as symlinks; regular files are opened through an
//! `O_PATH` handle and checked before their content is read (a device node is never opened).

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, futimens, mkdirat, FileStat, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Deeper trees are refused: each level holds an open directory.
pub const MAX_DEPTH: usize = 256;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// What is kept of an inode: permissions (no set-id bits), owner, modification time, size.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
}

impl From<&FileStat> for Meta {
    fn from(s: &FileStat) -> Self {
        Meta {
            mode: s.st_mode & 0o1777,
            uid: s.st_uid,
            gid: s.st_gid,
            mtime: s.st_mtime,
            size: s.st_size as u64,
        }
    }
}

/// One entry of a tree walk or a tar.
pub enum Node<'a> {
    Dir,
    File(&'a mut dyn Read),
    Symlink(OsString),
}

/// Where the entries of a walk go: a tar, or another directory.
pub trait Sink {
    fn put(&mut self, rel: &Path, meta: &Meta, node: Node<'_>) -> io::Result<()>;
}

fn err(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// Opens a directory the agent made (its own path), refusing a symlink in its place.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(path, DIR_FLAGS, Mode::empty()).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("opening {}: {e}", path.display()),
        )
    })
}

/// The directory `name` in `dir`, refusing a symlink in its place (`ELOOP`).
pub fn open_sub(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(dir, name, DIR_FLAGS, Mode::empty())
}

/// The names in a directory, read through a duplicate so `dir` stays usable.
pub fn names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let dup = nix::unistd::dup(dir).map_err(err)?;
    let mut d = nix::dir::Dir::from_fd(dup).map_err(err)?;
    let mut out = vec![];
    for entry in d.iter() {
        let name = entry.map_err(err)?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            out.push(OsString::from(std::ffi::OsStr::from_bytes(&name)));
        }
    }
    Ok(out)
}

/// A regular file's content, opened only once the handle proves it is one.
fn open_regular(dir: &OwnedFd, name: &OsStr) -> nix::Result<Option<(File, FileStat)>> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let handle = openat(dir, name, flags, Mode::empty())?;
    let st = fstat(&handle)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(None);
    }
    // Reopening the handle through /proc opens that very inode, whatever the name is now.
    let path = format!("/proc/self/fd/{}", handle.as_raw_fd());
    let fd = nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Some((File::from(fd), st)))
}

/// Exactly `size` bytes of a file that may change meanwhile: cut when it grew, padded with
/// zeros when it shrank, so a tar header written first stays true.
struct Exactly<R> {
    inner: R,
    left: u64,
    eof: bool,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = if self.eof {
            0
        } else {
            self.inner.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            self.eof = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// Whether an error means the entry changed or vanished under the walk (then it is skipped).
fn changed(e: Errno) -> bool {
    matches!(
        e,
        Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR | Errno::EINVAL
    )
}

/// Walks the tree under `root` (not its own entry) into `sink`, parents before children.
/// Fifos, sockets and device nodes are left out; entries that vanish or change type during
/// the walk are skipped, so a busy tree never fails the walk.
pub fn walk(root: &Path, sink: &mut dyn Sink) -> io::Result<()> {
    let fd = open_dir(root)?;
    walk_fd(&fd, Path::new(""), 0, sink)
}

fn walk_fd(dir: &OwnedFd, rel: &Path, depth: usize, sink: &mut dyn Sink) -> io::Result<()> {
    if depth >= MAX_DEPTH {
        return Err(io::Error::other(format!(
            "{} is more than {MAX_DEPTH} levels deep",
            rel.display()
        )));
    }
    for name in names(dir)? {
        let path = rel.join(&name);
        let st = match fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if changed(e) => continue,
            Err(e) => return Err(err(e)),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let sub = match open_sub(dir, &name) {
                    Ok(fd) => fd,
                    Err(e) if changed(e) => continue,
                    Err(e) => return Err(err(e)),
                };
                let st = fstat(&sub).map_err(err)?;
                sink.put(&path, &Meta::from(&st), Node::Dir)?;
                walk_fd(&sub, &path, depth + 1, sink)?;
            }
            libc::S_IFLNK => match readlinkat(dir, name.as_os_str()) {
                Ok(target) => sink.put(&path, &Meta::from(&st), Node::Symlink(target))?,
                Err(e) if changed(e) => continue,
                Err(e) => return Err(err(e)),
            },
            libc::S_IFREG => match open_regular(dir, &name) {
                Ok(Some((file, st))) => {
                    let meta = Meta::from(&st);
                    let mut data = Exactly {
                        inner: file,
                        left: meta.size,
                        eof: false,
                    };
                    sink.put(&path, &meta, Node::File(&mut data))?;
                }
                Ok(None) => {}
                Err(e) if changed(e) => continue,
                Err(e) => return Err(err(e)),
            },
            _ => {}
        }
    }
    Ok(())
}

/// The plain names of a relative path; `..`, absolute paths and the like are refused.
fn plain(rel: &Path) -> io::Result<Vec<&OsStr>> {
    let mut out = vec![];
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} points outside the tree", rel.display()),
                ))
            }
        }
    }
    Ok(out)
}

/// Writes entries beneath a directory: each parent opened name by name without following
/// symlinks (missing ones made), new files made with `O_EXCL`, owners and modes set on the
/// open files.
pub struct DirSink {
    root: OwnedFd,
    /// The last parent opened, for the run of entries in one directory.
    last: Option<(PathBuf, OwnedFd)>,
}

impl DirSink {
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(DirSink {
            root: open_dir(root)?,
            last: None,
        })
    }

    fn parent(&mut self, parents: &[&OsStr]) -> io::Result<&OwnedFd> {
        let key: PathBuf = parents.iter().collect();
        if self.last.as_ref().map(|(p, _)| p) != Some(&key) {
            let mut cur = nix::unistd::dup(&self.root).map_err(err)?;
            for name in parents {
                cur = match open_sub(&cur, name) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => {
                        mkdirat(&cur, *name, Mode::from_bits_truncate(0o700)).map_err(err)?;
                        open_sub(&cur, name).map_err(err)?
                    }
                    Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{} goes through a symlink or a file: {e}", key.display()),
                        ))
                    }
                    Err(e) => return Err(err(e)),
                };
            }
            self.last = Some((key, cur));
        }
        Ok(&self.last.as_ref().expect("set above").1)
    }
}

fn owner(meta: &Meta) -> (Option<Uid>, Option<Gid>) {
    (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
}

impl Sink for DirSink {
    fn put(&mut self, rel: &Path, meta: &Meta, node: Node<'_>) -> io::Result<()> {
        let names = plain(rel)?;
        let Some((name, parents)) = names.split_last() else {
            return Ok(()); // the root itself
        };
        let dir = self.parent(parents)?;
        let mode = Mode::from_bits_truncate(meta.mode);
        let (uid, gid) = owner(meta);
        match node {
            Node::Dir => {
                match mkdirat(dir, *name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(err(e)),
                }
                let fd = open_sub(dir, name).map_err(err)?;
                fchown(&fd, uid, gid).map_err(err)?;
                fchmod(&fd, mode).map_err(err)?;
            }
            Node::File(data) => {
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let fd = openat(dir, *name, flags, Mode::from_bits_truncate(0o600)).map_err(err)?;
                let mut file = File::from(fd);
                io::copy(data, &mut file)?;
                fchown(&file, uid, gid).map_err(err)?;
                fchmod(&file, mode).map_err(err)?;
                let t = TimeSpec::new(meta.mtime, 0);
                futimens(&file, &t, &t).map_err(err)?;
            }
            Node::Symlink(target) => {
                symlinkat(target.as_os_str(), dir, *name).map_err(err)?;
                fchownat(dir, *name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err)?;
            }
        }
        Ok(())
    }
}

/// A copy of the tree under `from` into the existing directory `into`.
pub fn copy_tree(from: &Path, into: &Path) -> io::Result<()> {
    walk(from, &mut DirSink::new(into)?)
}

/// Removes a tree, treating a missing one as removed. std's `remove_dir_all` works relative to
/// open directories with `O_NOFOLLOW` (since Rust 1.58.1), so a swapped symlink is unlinked,
/// never followed.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Hard-links every entry of `dest` that `tree` lacks into `tree`, both walked by directory
/// fds. Where one has a file and the other a directory, `tree` wins. A symlink is linked as
/// itself, never followed.
pub fn link_missing(dest: &Path, tree: &Path) -> io::Result<()> {
    link_missing_fd(&open_dir(dest)?, &open_dir(tree)?, 0)
}

fn link_missing_fd(dest: &OwnedFd, tree: &OwnedFd, depth: usize) -> io::Result<()> {
    if depth >= MAX_DEPTH {
        return Err(io::Error::other(format!(
            "more than {MAX_DEPTH} levels deep"
        )));
    }
    for name in names(dest)? {
        let st = match fstatat(dest, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if changed(e) => continue,
            Err(e) => return Err(err(e)),
        };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let theirs = fstatat(tree, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW);
        match theirs {
            Ok(t) if is_dir && t.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
            Ok(_) => continue,
            Err(Errno::ENOENT) if is_dir => {
                mkdirat(tree, name.as_os_str(), Mode::from_bits_truncate(0o700)).map_err(err)?;
            }
            Err(Errno::ENOENT) => {
                match linkat(
                    dest,
                    name.as_os_str(),
                    tree,
                    name.as_os_str(),
                    AtFlags::empty(),
                ) {
                    Ok(()) => {}
                    Err(e) if changed(e) => {}
                    Err(e) => return Err(err(e)),
                }
                continue;
            }
            Err(e) => return Err(err(e)),
        }
        let (sub_dest, sub_tree) = match (open_sub(dest, &name), open_sub(tree, &name)) {
            (Ok(d), Ok(t)) => (d, t),
            (Err(e), _) if changed(e) => continue,
            (Err(e), _) | (_, Err(e)) => return Err(err(e)),
        };
        if theirs.is_err() {
            let own = Meta::from(&fstat(&sub_dest).map_err(err)?);
            let (uid, gid) = owner(&own);
            fchown(&sub_tree, uid, gid).map_err(err)?;
            fchmod(&sub_tree, Mode::from_bits_truncate(own.mode)).map_err(err)?;
        }
        link_missing_fd(&sub_dest, &sub_tree, depth + 1)?;
    }
    Ok(())
}
