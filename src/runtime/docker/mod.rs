//! The container engine through bollard: the connection, containers, commands and logs in
//! them, their stats, and the stage networks.

pub mod client;
pub mod containers;
pub mod exec;
mod network;
pub mod stats;

pub use client::connect;
pub use containers::DockerEngine;
