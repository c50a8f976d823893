//! The container engine through bollard: the client, containers, commands and logs in them,
//! their stats, and the stage networks.

pub mod client;
pub mod containers;
pub mod exec;
mod network;
pub mod pull;
mod spec;
pub mod stats;

pub use client::{connect, DockerEngine};
