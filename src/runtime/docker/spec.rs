//! The core's container spec as the engine's create request: image, command, env, labels,
//! the published port, bind mounts, the stage network with its aliases, limits and restart.

use crate::core::interfaces::ContainerSpec;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use std::collections::HashMap;

pub(super) fn body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut port_bindings = HashMap::new();
    let mut exposed = vec![];
    for (ip, host_port, container_port) in &spec.publish {
        let key = format!("{container_port}/tcp");
        port_bindings.insert(
            key.clone(),
            Some(vec![PortBinding {
                host_ip: Some(ip.to_string()),
                host_port: Some(host_port.to_string()),
            }]),
        );
        exposed.push(key);
    }
    let binds = spec
        .mounts
        .iter()
        .map(|(host, container)| format!("{}:{container}", host.display()))
        .chain(
            spec.files
                .iter()
                .map(|(host, container)| format!("{}:{container}:ro", host.display())),
        )
        .collect();
    // The API resets an image's entrypoint with [""]; an empty list would keep it.
    let entrypoint = spec.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            vec![String::new()]
        } else {
            e.clone()
        }
    });
    let mut endpoints = HashMap::new();
    endpoints.insert(
        spec.network.clone(),
        EndpointSettings {
            aliases: Some(spec.aliases.clone()),
            ..Default::default()
        },
    );
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(
            spec.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        entrypoint,
        stop_signal: Some(spec.stop_signal.clone()),
        stop_timeout: Some(spec.stop_timeout_s as i64),
        host_config: Some(HostConfig {
            binds: Some(binds),
            port_bindings: Some(port_bindings),
            network_mode: Some(spec.network.clone()),
            memory: spec.memory_bytes,
            nano_cpus: spec.nano_cpus,
            group_add: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
            shm_size: spec.shm_size_bytes,
            log_config: spec.log_caps.map(super::pull::log_config),
            restart_policy: Some(RestartPolicy {
                name: Some(if spec.restart {
                    RestartPolicyNameEnum::UNLESS_STOPPED
                } else {
                    RestartPolicyNameEnum::NO
                }),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    }
}
