//! A stage's PostgreSQL: the agent's sessions, the SQL console and its roles.

pub mod client;
pub mod console;
pub mod roles;
