//! Containers on the engine: create, start, stop (signal, grace, SIGKILL), remove, rename,
//! inspect, list, and one-off runs. The core's `Engine` is implemented here; networks, commands,
//! logs and stats are handed to their own files.

use super::client::{is_not_found, DockerEngine};
use super::spec::body;
use crate::core::interfaces::{
    ContainerInfo, ContainerSpec, ContainerStats, Engine, ExecRequest, ExecStatus, LogLine,
    NetworkInfo, Owner, StopOutcome,
};
use crate::core::Result;
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, KillContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, RenameContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Extra time a stop may take past its grace period before it fails as "engine hangs".
pub const STOP_SLACK: Duration = Duration::from_secs(10);

impl DockerEngine {
    /// Waits until the container has stopped, at most `limit`. The wait stream also ends with
    /// an error when the connection drops or the engine restarts, so an error is not an exit:
    /// only the container's State says it exited, and with which code.
    async fn wait_exit(&self, docker: &Docker, name: &str, limit: Duration) -> Result<Waited> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let opts = WaitContainerOptions {
                condition: "not-running".into(),
            };
            let mut stream = docker.wait_container(name, Some(opts));
            let item = tokio::time::timeout_at(deadline, stream.next()).await;
            let Ok(item) = item else {
                return Ok(Waited::Pending);
            };
            if let Some(Ok(r)) = item {
                return Ok(Waited::Exited(r.status_code));
            }
            match self.inspect_container(name, "").await? {
                None => return Ok(Waited::Gone),
                Some(info) if exited(&info.status) => {
                    return Ok(Waited::Exited(info.exit_code.unwrap_or(-1)))
                }
                Some(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Waited::Pending);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How a wait for a container's exit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    Exited(i64),
    Gone,
    /// Still running when the time was up.
    Pending,
}

/// The engine's states of a container that has stopped for good (not `restarting`).
fn exited(status: &str) -> bool {
    matches!(status, "exited" | "dead" | "created")
}

#[async_trait::async_trait]
impl Engine for DockerEngine {
    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        subnets: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()> {
        self.network_create(name, labels, subnets).await
    }

    async fn remove_network(&self, name: &str, owner: &Owner) -> Result<()> {
        self.network_remove(name, owner).await
    }

    async fn list_labelled_networks(&self, label: &str) -> Result<Vec<NetworkInfo>> {
        let d = self.docker().await?;
        self.networks(&d, Some(("label", label))).await
    }

    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()> {
        self.network_connect(network, container, aliases).await
    }

    async fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        self.network_disconnect(network, container).await
    }

    async fn image_digest(&self, image: &str) -> Result<Option<String>> {
        super::pull::digest(self, image).await
    }

    async fn pull_image(
        &self,
        image: &str,
        login: Option<&crate::core::stage::pull::RegistryLogin>,
        source: &str,
        progress: &(dyn Fn(crate::core::stage::pull::PullProgress) + Send + Sync),
    ) -> Result<String> {
        super::pull::pull(self, image, login, source, progress).await
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let d = self.docker().await?;
        let opts = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let r = d.create_container(Some(opts), body(spec)).await;
        Ok(self
            .call(
                &format!("creating container {} from {}", spec.name, spec.image),
                r,
            )
            .await?
            .id)
    }

    async fn start_container(&self, name: &str) -> Result<()> {
        let d = self.docker().await?;
        let r = d.start_container(name, None).await;
        self.call(&format!("starting container {name}"), r).await
    }

    async fn stop_container(
        &self,
        name: &str,
        signal: &str,
        grace: Duration,
    ) -> Result<StopOutcome> {
        let d = self.docker().await?;
        let stop = async {
            match self.inspect_container(name, "").await? {
                Some(info) if info.running => {}
                _ => return Ok(StopOutcome::AlreadyStopped),
            }
            let kill = |signal: &str| KillContainerOptions {
                signal: signal.to_string(),
            };
            match d.kill_container(name, Some(kill(signal))).await {
                // 409: it stopped meanwhile.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => return Ok(StopOutcome::AlreadyStopped),
                r => {
                    self.call(&format!("signalling container {name}"), r)
                        .await?
                }
            }
            if self.wait_exit(&d, name, grace).await? != Waited::Pending {
                return Ok(StopOutcome::Exited);
            }
            match d.kill_container(name, Some(kill("SIGKILL"))).await {
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {}
                r => self.call(&format!("killing container {name}"), r).await?,
            }
            if self.wait_exit(&d, name, STOP_SLACK).await? == Waited::Pending {
                return Err(self.err(
                    &format!("stopping container {name}"),
                    "it still runs after SIGKILL",
                ));
            }
            Ok(StopOutcome::Killed)
        };
        tokio::time::timeout(grace + STOP_SLACK, stop)
            .await
            .map_err(|_| {
                self.err(
                    &format!("stopping container {name}"),
                    format!("the engine did not stop it within {:?}", grace + STOP_SLACK),
                )
            })?
    }

    async fn remove_container(&self, name: &str, owner: &Owner) -> Result<()> {
        // By the id inspected: what is removed is what was checked.
        let id = match self.inspect_container(name, "").await? {
            None => return Ok(()),
            Some(info) if owner.owns(&info.labels) => info.id,
            Some(_) => {
                tracing::warn!(container = %name, "not removed: its labels name another stage");
                return Ok(());
            }
        };
        let d = self.docker().await?;
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        for _ in 0..50 {
            match d.remove_container(&id, Some(opts.clone())).await {
                Err(e) if is_not_found(&e) => return Ok(()),
                // "removal already in progress": wait for it to finish.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r => return self.call(&format!("removing container {name}"), r).await,
            }
        }
        Err(self.err(
            &format!("removing container {name}"),
            "still being removed after 5s",
        ))
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<()> {
        let d = self.docker().await?;
        let opts = RenameContainerOptions {
            name: name.to_string(),
        };
        let r = d.rename_container(id, opts).await;
        self.call(&format!("renaming container {id} to {name}"), r)
            .await
    }

    async fn inspect_container(&self, name: &str, network: &str) -> Result<Option<ContainerInfo>> {
        let d = self.docker().await?;
        let r = match d
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Err(e) if is_not_found(&e) => return Ok(None),
            r => {
                self.call(&format!("inspecting container {name}"), r)
                    .await?
            }
        };
        let state = r.state.unwrap_or_default();
        let ip = r
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse().ok());
        let config = r.config.unwrap_or_default();
        Ok(Some(ContainerInfo {
            id: r.id.unwrap_or_default(),
            status: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            ip,
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            image: config.image.unwrap_or_default(),
            image_id: r.image.unwrap_or_default(),
            name: r
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
        }))
    }

    async fn run_to_completion(
        &self,
        spec: &ContainerSpec,
        owner: &Owner,
        timeout: Duration,
    ) -> Result<(i64, String)> {
        self.remove_container(&spec.name, owner).await?;
        let id = self.create_container(spec).await?;
        self.start_container(&id).await?;
        let d = self.docker().await?;
        let waited = self.wait_exit(&d, &id, timeout).await;
        let mut logs = d.logs(
            &id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: "50".into(),
                ..Default::default()
            }),
        );
        let mut tail = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            tail.push_str(&chunk.to_string());
        }
        self.remove_container(&id, owner).await?;
        match waited? {
            Waited::Exited(code) => Ok((code, tail)),
            Waited::Gone => Err(self.err(
                &format!("running {}", spec.name),
                "it was removed before it finished",
            )),
            Waited::Pending => Err(self.err(
                &format!("running {}", spec.name),
                format!("did not finish within {timeout:?}"),
            )),
        }
    }

    async fn list_labelled(&self, label: &str) -> Result<Vec<ContainerInfo>> {
        let d = self.docker().await?;
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
            ..Default::default()
        };
        let r = d.list_containers(Some(opts)).await;
        let list = self.call("listing containers", r).await?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                status: c.state.map(|s| s.to_string()).unwrap_or_default(),
                running: c.state.is_some_and(|s| s.to_string() == "running"),
                exit_code: None,
                ip: None,
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                image: c.image.unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
            })
            .collect())
    }

    async fn published_ports(&self) -> Result<Vec<u16>> {
        let d = self.docker().await?;
        let r = d
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await;
        let list = self.call("listing containers", r).await?;
        Ok(list
            .into_iter()
            .flat_map(|c| c.ports.unwrap_or_default())
            .filter_map(|p| p.public_port)
            .collect())
    }

    async fn stats(&self, name: &str) -> Result<Option<ContainerStats>> {
        self.stats_of(name).await
    }

    async fn exec(&self, name: &str, req: ExecRequest) -> Result<ExecStatus> {
        self.exec_in(name, req).await
    }

    async fn logs(&self, name: &str, tail: usize, since: Option<i64>) -> Result<Vec<LogLine>> {
        self.logs_of(name, tail, since).await
    }

    async fn follow_logs(
        &self,
        name: &str,
        tail: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        self.follow_logs_of(name, tail).await
    }
}

#[cfg(test)]
mod tests {
    use super::exited;

    #[test]
    fn only_a_stopped_state_counts_as_an_exit() {
        for done in ["exited", "dead", "created"] {
            assert!(exited(done), "{done}");
        }
        for running in ["running", "restarting", "paused", "removing", ""] {
            assert!(!exited(running), "{running}");
        }
    }
}
