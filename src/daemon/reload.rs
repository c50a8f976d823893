//! A configuration reload: what can change live takes the new values, the restart-only keys
//! keep their running ones (and are named), and the core gets its new settings view.

use crate::config::{Config, SharedConfig};
use crate::core::agent::Agent;
use crate::core::settings::Settings;
use std::sync::Arc;

/// Puts `new` in force in `shared` and in the agent; returns the keys that need a restart.
pub fn apply(shared: &SharedConfig, agent: &Agent, new: Config) -> Vec<&'static str> {
    let mut slot = shared.write().unwrap_or_else(|p| p.into_inner());
    let (merged, restart) = slot.reloaded(new);
    agent.apply_settings(Settings::from_config(&merged));
    *slot = Arc::new(merged);
    restart
}
