//! One connection's hold on the daemon: the cap on open connections (a reserve kept for root
//! and admins, a small allowance per caller in no access group), the stream that keeps its
//! place for as long as it is open, and the idle timeout.

use crate::api::access::Role;
use crate::api::middleware::Activity;
use crate::config::Api;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug, Default)]
struct Counts {
    open: usize,
    /// Open connections of callers in no access group, by uid.
    strangers: HashMap<u32, usize>,
}

/// Whether one more connection fits: `open` of all, `mine` of this stranger.
pub fn has_room(role: Role, open: usize, mine: usize, limits: &Api) -> bool {
    let max = limits.max_connections as usize;
    let shared = max.saturating_sub(limits.admin_reserve as usize);
    match role {
        Role::Admin => open < max,
        Role::Reader => open < shared,
        Role::None => open < shared && mine < limits.stranger_connections as usize,
    }
}

/// Counts the open connections.
#[derive(Debug, Default)]
pub struct Gate(Mutex<Counts>);

impl Gate {
    /// A place for one more connection, or `None` when the caller's share is full.
    pub fn admit(self: &Arc<Self>, role: Role, uid: u32, limits: &Api) -> Option<Slot> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.strangers.get(&uid).copied().unwrap_or(0);
        if !has_room(role, c.open, mine, limits) {
            return None;
        }
        c.open += 1;
        let stranger = (role == Role::None).then(|| {
            *c.strangers.entry(uid).or_default() += 1;
            uid
        });
        Some(Slot {
            gate: self.clone(),
            stranger,
        })
    }

    pub fn open(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).open
    }
}

/// One open connection; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot {
    gate: Arc<Gate>,
    stranger: Option<u32>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.gate.0.lock().unwrap_or_else(|p| p.into_inner());
        c.open -= 1;
        if let Some(uid) = self.stranger {
            if let Some(n) = c.strangers.get_mut(&uid) {
                *n -= 1;
                if *n == 0 {
                    c.strangers.remove(&uid);
                }
            }
        }
    }
}

/// A stream holding its slot: an upgraded WebSocket keeps its place for as long as it lives,
/// though it is served outside the connection task.
pub struct Held<S> {
    inner: S,
    _slot: Slot,
}

impl<S> Held<S> {
    pub fn new(inner: S, slot: Slot) -> Self {
        Held { inner, _slot: slot }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// What a refused connection reads before it is closed: never waited for, never read from.
pub const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
content-type: text/plain\r\ncontent-length: 21\r\n\r\ntoo many connections\n";

/// Resolves once the connection has run no call for `limit`.
pub async fn idle(activity: &Activity, limit: Duration) {
    loop {
        let wait = match activity.idle_for() {
            Some(idle) if idle >= limit => return,
            Some(idle) => limit - idle,
            // A call runs: look again later; its end restarts the clock.
            None => limit,
        };
        tokio::time::sleep(wait).await;
    }
}

/// Raises the soft limit on open files to the hard one (systemd starts services at 1024),
/// and says when the cap on connections cannot fit under it.
pub fn raise_fd_limit(max_connections: u32) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    // Records, engine and database connections, nginx and git need their own descriptors.
    let needed = u64::from(max_connections) + 256;
    if soft < needed {
        tracing::warn!(
            limit = soft,
            needed,
            "the open-file limit is below api.max_connections plus room for the daemon's own files; raise LimitNOFILE"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Api {
        Api {
            max_connections: 10,
            admin_reserve: 3,
            stranger_connections: 2,
            ..Api::default()
        }
    }

    #[test]
    fn admins_may_use_the_reserve_readers_and_strangers_may_not() {
        let l = limits();
        assert!(has_room(Role::Admin, 9, 0, &l));
        assert!(!has_room(Role::Admin, 10, 0, &l));
        assert!(has_room(Role::Reader, 6, 0, &l));
        assert!(!has_room(Role::Reader, 7, 0, &l));
        assert!(has_room(Role::None, 0, 1, &l));
        assert!(!has_room(Role::None, 0, 2, &l));
        assert!(!has_room(Role::None, 7, 0, &l));
    }

    #[test]
    fn slots_are_given_back() {
        let gate = Arc::new(Gate::default());
        let l = limits();
        let a = gate.admit(Role::None, 5, &l).unwrap();
        let _b = gate.admit(Role::None, 5, &l).unwrap();
        assert!(gate.admit(Role::None, 5, &l).is_none());
        assert!(gate.admit(Role::None, 6, &l).is_some());
        drop(a);
        assert!(gate.admit(Role::None, 5, &l).is_some());
        let held: Vec<Slot> = (0..10)
            .map_while(|_| gate.admit(Role::Admin, 0, &l))
            .collect();
        assert_eq!(gate.open(), 10);
        assert_eq!(held.len(), 9, "one was still open");
        drop(held);
        assert_eq!(gate.open(), 1);
    }
}
