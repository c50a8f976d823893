//! Whether a host port is free or answers. Implemented with real binds in the runtime.

use std::net::IpAddr;

/// Whether a host port is in use by anything (a bind fails).
pub trait PortProbe: Send + Sync {
    fn in_use(&self, addr: IpAddr, port: u16) -> bool;
    /// Whether something accepts TCP connections at `addr:port` now (blocking, brief).
    fn accepts(&self, addr: IpAddr, port: u16) -> bool;
}
