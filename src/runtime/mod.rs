//! The runtime side: the core's interfaces implemented on the real host.

pub mod docker;
pub mod host;
pub mod nginx;
pub mod probes;
pub mod records;
