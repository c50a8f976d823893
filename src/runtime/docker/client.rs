//! The engine client: connecting (Debian's docker.io speaks API 1.41, older than bollard's
//! default, so every connection negotiates its version first), lazily and again after a
//! failure, so the daemon rides out an engine restart; every error names the endpoint.

use crate::core::{Error, Result};
use bollard::{Docker, API_DEFAULT_VERSION};
use std::time::Duration;

/// Seconds a single engine request may take before it fails.
const REQUEST_TIMEOUT_S: u64 = 120;

/// Connects to `endpoint` (`unix:///path` or `tcp://host:port`) and negotiates the API version.
pub async fn connect(endpoint: &str) -> Result<Docker, bollard::errors::Error> {
    let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_S, API_DEFAULT_VERSION)?
    } else {
        let addr = endpoint.replacen("tcp://", "http://", 1);
        Docker::connect_with_http(&addr, REQUEST_TIMEOUT_S, API_DEFAULT_VERSION)?
    };
    docker.negotiate_version().await
}

/// The core's `Engine` on one endpoint.
pub struct DockerEngine {
    pub(super) endpoint: String,
    client: tokio::sync::Mutex<Option<Docker>>,
}

pub(super) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl DockerEngine {
    pub fn new(endpoint: &str) -> Self {
        DockerEngine {
            endpoint: endpoint.to_string(),
            client: tokio::sync::Mutex::new(None),
        }
    }

    pub(super) fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Docker(format!("{what} ({}): {e}", self.endpoint))
    }

    pub(super) async fn docker(&self) -> Result<Docker> {
        let mut slot = self.client.lock().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = tokio::time::timeout(Duration::from_secs(10), connect(&self.endpoint))
            .await
            .map_err(|_| self.err("connecting", "no answer within 10s"))?
            .map_err(|e| self.err("connecting", e))?;
        *slot = Some(d.clone());
        Ok(d)
    }

    /// Wraps a call: a failure to reach the engine drops the client so the next call reconnects.
    pub(super) async fn call<T>(
        &self,
        what: &str,
        r: std::result::Result<T, bollard::errors::Error>,
    ) -> Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                if !matches!(e, bollard::errors::Error::DockerResponseServerError { .. }) {
                    *self.client.lock().await = None;
                }
                Err(self.err(what, e))
            }
        }
    }
}
