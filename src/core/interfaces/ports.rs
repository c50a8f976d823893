//! Whether a host port is free or answers, and what an HTTP GET on it gets. Implemented with
//! real binds and requests in the runtime.

use std::net::IpAddr;
use std::time::Duration;

/// Whether a host port is in use by anything (a bind fails).
#[async_trait::async_trait]
pub trait PortProbe: Send + Sync {
    fn in_use(&self, addr: IpAddr, port: u16) -> bool;
    /// Whether something accepts TCP connections at `addr:port` now (blocking, brief).
    fn accepts(&self, addr: IpAddr, port: u16) -> bool;
    /// One `GET path` with `Host: host` at `addr:port`, within `timeout`: the answer's status,
    /// or why none came (refused, reset, no answer in time).
    async fn http_get(
        &self,
        addr: IpAddr,
        port: u16,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<u16, String>;
}
