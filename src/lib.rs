//! stagelet: the host agent of a stage-hosting platform.
//!
//! Three layers: [`api`] speaks JSON-RPC and nothing else, [`core`] holds the model, the rules
//! and the operations against small interfaces, and [`runtime`] implements those interfaces on
//! the real host (filesystem, Docker, nginx, the OS). [`daemon`] wires them together.

pub mod api;
pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod runtime;

/// Version of the JSON-RPC API; bumped on incompatible changes.
pub const API_VERSION: &str = "1";
