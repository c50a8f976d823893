//! The engine's networks: made on a free subnet of the pool, removed only when the stage label
//! names their owner, and containers moved between them (the start-up move to new names).

use super::client::{is_not_found, DockerEngine};
use crate::core::interfaces::{NetworkInfo, Owner};
use crate::core::{Error, Result};
use bollard::models::{
    EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest,
};
use bollard::query_parameters::ListNetworksOptions;
use bollard::Docker;
use std::collections::{BTreeMap, HashMap};

fn overlaps(a: &ipnet::Ipv4Net, b: &ipnet::Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl DockerEngine {
    /// Every IPv4 subnet the engine's networks use.
    async fn taken_subnets(&self, d: &Docker) -> Result<Vec<ipnet::Ipv4Net>> {
        let r = d.list_networks(None::<ListNetworksOptions>).await;
        Ok(self
            .call("listing networks", r)
            .await?
            .into_iter()
            .flat_map(|n| n.ipam.and_then(|i| i.config).unwrap_or_default())
            .filter_map(|c| c.subnet?.parse().ok())
            .collect())
    }

    /// The networks named exactly `name` (the engine's filter matches substrings).
    async fn named(&self, d: &Docker, name: &str) -> Result<Vec<NetworkInfo>> {
        Ok(self
            .networks(d, Some(("name", name)))
            .await?
            .into_iter()
            .filter(|n| n.name == name)
            .collect())
    }

    /// The networks that pass the engine's `filter` (key, value).
    pub(super) async fn networks(
        &self,
        d: &Docker,
        filter: Option<(&str, &str)>,
    ) -> Result<Vec<NetworkInfo>> {
        let opts = ListNetworksOptions {
            filters: filter.map(|(k, v)| HashMap::from([(k.to_string(), vec![v.to_string()])])),
        };
        let r = d.list_networks(Some(opts)).await;
        Ok(self
            .call("listing networks", r)
            .await?
            .into_iter()
            .map(|n| NetworkInfo {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default().into_iter().collect(),
            })
            .collect())
    }

    pub(super) async fn network_create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        subnets: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()> {
        let d = self.docker().await?;
        // Old engines accept duplicate names: make it only if it is not there. One of this
        // name made for another stage (a cancelled one's leftover) is never joined.
        let existing = self.named(&d, name).await?;
        let stage_label = labels.iter().find(|(k, _)| k.ends_with(".stage"));
        for n in &existing {
            if let Some((k, want)) = stage_label {
                if n.labels.get(k) != Some(want) {
                    return Err(Error::Docker(format!(
                        "network {name} exists and belongs to another stage ({k}={}); the agent removes it at its next start-up, or remove it with docker network rm",
                        n.labels.get(k).map_or("none", String::as_str)
                    )));
                }
            }
        }
        if !existing.is_empty() {
            return Ok(());
        }
        let request = |subnet: Option<ipnet::Ipv4Net>| NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            ipam: subnet.map(|s| Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(s.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Some((pool, size)) = subnets else {
            let r = d.create_network(request(None)).await;
            return self
                .call(&format!("creating network {name}"), r)
                .await
                .map(|_| ());
        };
        let taken = self.taken_subnets(&d).await?;
        let free = pool
            .subnets(size)
            .map_err(|e| self.err("docker.subnet_pool", e))?
            .filter(|s| !taken.iter().any(|t| overlaps(s, t)));
        // Parallel creates may pick the same subnet: the engine refuses the second; try the next.
        for subnet in free.take(64) {
            match d.create_network(request(Some(subnet))).await {
                Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                    if message.contains("overlap") =>
                {
                    continue
                }
                r => {
                    return self
                        .call(&format!("creating network {name} on {subnet}"), r)
                        .await
                        .map(|_| ())
                }
            }
        }
        Err(self.err(
            &format!("creating network {name}"),
            format!("no free /{size} subnet left in docker.subnet_pool {pool}"),
        ))
    }

    pub(super) async fn network_remove(&self, name: &str, owner: &Owner) -> Result<()> {
        let d = self.docker().await?;
        let mine: Vec<String> = self
            .networks(&d, Some(("name", name)))
            .await?
            .into_iter()
            .filter(|n| n.name == name)
            .filter(|n| {
                let ours = owner.owns(&n.labels);
                if !ours {
                    tracing::warn!(network = %name, "not removed: its labels name another stage");
                }
                ours
            })
            .map(|n| n.id)
            .collect();
        for id in mine {
            match d.remove_network(&id).await {
                Err(e) if is_not_found(&e) => {}
                r => self.call(&format!("removing network {name}"), r).await?,
            }
        }
        Ok(())
    }

    pub(super) async fn network_connect(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()> {
        let d = self.docker().await?;
        let req = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ..Default::default()
            }),
        };
        let r = d.connect_network(network, req).await;
        self.call(&format!("connecting {container} to network {network}"), r)
            .await
    }

    pub(super) async fn network_disconnect(&self, network: &str, container: &str) -> Result<()> {
        let d = self.docker().await?;
        let req = NetworkDisconnectRequest {
            container: container.to_string(),
            force: Some(true),
        };
        let r = d.disconnect_network(network, req).await;
        self.call(
            &format!("disconnecting {container} from network {network}"),
            r,
        )
        .await
    }
}
