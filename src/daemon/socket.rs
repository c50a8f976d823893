//! The API socket: taken from systemd (LISTEN_FDS) as it is, or bound by the daemon with the
//! configured mode and group. A lock file beside it keeps a second daemon from stealing the
//! socket of a live one; a socket left by a crashed daemon is replaced.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::UnixListener;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another stagelet holds {lock} (pid {pid}); it owns {socket}")]
    Busy {
        lock: String,
        pid: String,
        socket: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("agent.socket_group {0:?}: no such group")]
    NoGroup(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SocketError {
    let path = path.display().to_string();
    move |source| SocketError::Io { what, path, source }
}

/// A listening socket; dropping it removes the socket file when the daemon made it.
pub struct ApiSocket {
    pub listener: Option<UnixListener>,
    pub path: PathBuf,
    /// False for a socket handed over by systemd: systemd owns its file.
    owned: bool,
    _lock: Option<Flock<File>>,
}

impl ApiSocket {
    pub fn take_listener(&mut self) -> UnixListener {
        self.listener.take().expect("listener taken once")
    }

    pub fn from_systemd(&self) -> bool {
        !self.owned
    }
}

impl Drop for ApiSocket {
    fn drop(&mut self) {
        if self.owned {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the first socket systemd passed, if any.
fn from_listen_fds(path: &Path) -> Result<Option<ApiSocket>, SocketError> {
    let Some(fd) = sd_notify::listen_fds().ok().and_then(|mut fds| fds.next()) else {
        return Ok(None);
    };
    // SAFETY: systemd passed this descriptor to us for our exclusive use (sd_listen_fds(3)).
    let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
    std_listener
        .set_nonblocking(true)
        .map_err(io("cannot use the systemd socket", path))?;
    let listener =
        UnixListener::from_std(std_listener).map_err(io("cannot use the systemd socket", path))?;
    Ok(Some(ApiSocket {
        listener: Some(listener),
        path: path.to_path_buf(),
        owned: false,
        _lock: None,
    }))
}

/// Binds the socket at `path` (or adopts systemd's), with `mode` and, unless empty, `group`.
pub fn acquire(path: &Path, mode: u32, group: &str) -> Result<ApiSocket, SocketError> {
    if let Some(sock) = from_listen_fds(path)? {
        return Ok(sock);
    }
    let gid = match group {
        "" => None,
        name => Some(
            nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| SocketError::NoGroup(name.to_string()))?
                .gid,
        ),
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    }
    let lock_file = lock_path(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&lock_file)
        .map_err(io("cannot open", &lock_file))?;
    let mut lock =
        Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, _)| SocketError::Busy {
            lock: lock_file.display().to_string(),
            pid: fs::read_to_string(&lock_file)
                .unwrap_or_default()
                .trim()
                .to_string(),
            socket: path.display().to_string(),
        })?;
    lock.set_len(0).map_err(io("cannot write", &lock_file))?;
    write!(lock, "{}", std::process::id()).map_err(io("cannot write", &lock_file))?;

    // We hold the lock, so a socket file here is stale.
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("cannot remove stale", path)(e))
        }
        _ => {}
    }
    // Bind under a strict umask so the socket is never more open than configured, even briefly.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io("cannot bind", path))?;
    let sock = ApiSocket {
        listener: Some(listener),
        path: path.to_path_buf(),
        owned: true,
        _lock: Some(lock),
    };
    if let Some(gid) = gid {
        nix::unistd::chown(path, None, Some(gid))
            .map_err(|e| io("cannot chown", path)(e.into()))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io("cannot chmod", path))?;
    Ok(sock)
}
