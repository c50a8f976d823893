//! `[api]`: limits of the API socket (connections, idle time, batch size).

use super::types::Dur;
use serde::{Deserialize, Serialize};

/// Limits of the API socket, read at each connection and call: a SIGHUP applies them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Api {
    /// Open connections at most, WebSocket ones included.
    pub max_connections: u32,
    /// Of `max_connections`, how many only root and admin groups may take.
    pub admin_reserve: u32,
    /// Connections one caller outside every access group may hold (each is answered
    /// `forbidden`).
    pub stranger_connections: u32,
    /// A connection with no call under way for this long is closed (WebSocket ones, once
    /// upgraded, are not: subscriptions are long-lived).
    pub idle_timeout: Dur,
    /// Calls in one JSON-RPC batch at most.
    pub max_batch: u32,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            max_connections: 1024,
            admin_reserve: 64,
            stranger_connections: 4,
            idle_timeout: Dur::secs(10),
            max_batch: 50,
        }
    }
}

impl Api {
    pub(super) fn cross_check(&self) -> Vec<(&'static str, String)> {
        let mut errs = vec![];
        if self.max_connections == 0 {
            errs.push(("max_connections", "must be at least 1".into()));
        }
        if self.admin_reserve >= self.max_connections {
            errs.push((
                "admin_reserve",
                "must be below max_connections (readers need room too)".into(),
            ));
        }
        if self.idle_timeout.0.is_zero() {
            errs.push(("idle_timeout", "must be above 0s".into()));
        }
        if self.max_batch == 0 {
            errs.push(("max_batch", "must be at least 1".into()));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_are_checked_where_they_are_written() {
        let errs = super::super::parse(
            "[api]\nmax_connections = 10\nadmin_reserve = 10\nidle_timeout = \"0s\"\nmax_batch = 0\n",
        )
        .unwrap_err();
        let keys: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (3, "api.admin_reserve"),
                (4, "api.idle_timeout"),
                (5, "api.max_batch")
            ],
            "{errs:?}"
        );
        assert!(super::super::parse("[api]\nmax_connections = 100\n").is_ok());
    }
}
