//! PostgreSQL of the stages, as the runtime reaches it.

pub mod dump;
