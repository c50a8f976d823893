//! A stage's PostgreSQL: the agent's sessions, the SQL console and its roles, dumps and restores.

pub mod client;
pub mod console;
pub mod dump;
pub mod roles;
