//! Health probes of the engine and of nginx for `agent.info`.

use crate::core::interfaces::{DependencyProbe, DependencyStatus};
use std::time::Duration;
use tokio::process::Command;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct HostDependencies {
    pub docker_endpoint: String,
    pub nginx_enabled: bool,
    /// The nginx binary: the first word of `nginx.test_command` when that is nginx itself.
    pub nginx_binary: String,
}

fn failed(message: String) -> DependencyStatus {
    DependencyStatus {
        ok: false,
        version: None,
        message: Some(message),
    }
}

#[async_trait::async_trait]
impl DependencyProbe for HostDependencies {
    async fn docker(&self) -> DependencyStatus {
        let probe = async {
            let docker = super::docker::connect(&self.docker_endpoint).await?;
            docker.version().await
        };
        match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Ok(Ok(v)) => DependencyStatus {
                ok: true,
                version: v.version,
                message: v.api_version.map(|a| format!("API {a}")),
            },
            Ok(Err(e)) => failed(format!("{}: {e}", self.docker_endpoint)),
            Err(_) => failed(format!(
                "{}: no answer within {PROBE_TIMEOUT:?}",
                self.docker_endpoint
            )),
        }
    }

    async fn nginx(&self) -> DependencyStatus {
        if !self.nginx_enabled {
            return failed("disabled (nginx.enabled = false)".into());
        }
        let run = Command::new(&self.nginx_binary)
            .arg("-v")
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(PROBE_TIMEOUT, run).await {
            Ok(Ok(out)) if out.status.success() => {
                // `nginx -v` prints "nginx version: nginx/1.22.1" on stderr.
                let text = String::from_utf8_lossy(&out.stderr);
                DependencyStatus {
                    ok: true,
                    version: text.trim().rsplit('/').next().map(str::to_string),
                    message: None,
                }
            }
            Ok(Ok(out)) => failed(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            Ok(Err(e)) => failed(format!("{}: {e}", self.nginx_binary)),
            Err(_) => failed(format!(
                "{}: no answer within {PROBE_TIMEOUT:?}",
                self.nginx_binary
            )),
        }
    }
}
