//! Connecting to the Docker engine. Debian's docker.io speaks API 1.41, older than bollard's
//! default, so every connection negotiates its version first.

use bollard::{Docker, API_DEFAULT_VERSION};

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
