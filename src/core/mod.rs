//! The core: stage and subscription model, lifecycle rules and operations, written against the
//! interfaces in [`interfaces`]. Nothing here knows JSON-RPC or a concrete runtime.

pub mod agent;
pub mod error;
pub mod failpoint;
#[cfg(test)]
pub mod fakes;
pub mod git_input;
pub mod interfaces;
pub mod names;
pub mod password_hash;
pub mod settings;
pub mod site;
pub mod stage;
pub mod subscription;
pub mod time;
pub mod tls;

pub use error::{Error, ErrorKind, Result};
