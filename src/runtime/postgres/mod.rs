//! A stage's PostgreSQL: the agent's sessions, the app's role, the SQL console and its roles,
//! dumps and restores.

pub mod app_role;
pub mod client;
pub mod console;
pub mod dump;
pub mod roles;
