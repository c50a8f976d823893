//! The API layer: JSON-RPC 2.0 and nothing else. It parses requests, checks the caller, hands
//! over to [`crate::core::agent::Agent`] and maps core errors to codes.

pub mod access;
pub mod client;
pub mod errors;
pub mod handlers;
mod handlers_ops;
pub mod middleware;
pub mod params;
pub mod rpc;

#[cfg(test)]
mod method_table_tests;
