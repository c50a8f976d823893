//! Subscriptions: the record of a tenant ([`record`]) and the registry that keeps them
//! ([`registry`]).

mod record;
mod registry;

pub use record::*;
pub use registry::*;
