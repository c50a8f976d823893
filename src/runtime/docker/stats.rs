//! A container's stats: one Docker stats sample turned into the figures `stage.stats` shows,
//! computed the way `docker stats` computes them.

use super::client::{is_not_found, DockerEngine};
use crate::core::interfaces::{ContainerStats, Engine};
use crate::core::Result;
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptions;
use futures::StreamExt;

/// CPU % from two cumulative samples: the container's share of the host's CPU time between
/// them, times the CPUs online (so 100 means one whole CPU).
pub fn cpu_pct(total: u64, pre_total: u64, system: u64, pre_system: u64, cpus: u32) -> f64 {
    let cpu_delta = total.saturating_sub(pre_total) as f64;
    let system_delta = system.saturating_sub(pre_system) as f64;
    if cpu_delta <= 0.0 || system_delta <= 0.0 {
        return 0.0;
    }
    cpu_delta / system_delta * f64::from(cpus.max(1)) * 100.0
}

/// Memory in use without the reclaimable page cache (cgroup v2 `inactive_file`, v1
/// `total_inactive_file`).
pub fn memory_used(usage: u64, stats: Option<&std::collections::HashMap<String, u64>>) -> u64 {
    let cache = stats
        .and_then(|s| {
            s.get("inactive_file")
                .or_else(|| s.get("total_inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    if cache < usage {
        usage - cache
    } else {
        usage
    }
}

pub fn from_response(r: &ContainerStatsResponse) -> ContainerStats {
    let cpu = r.cpu_stats.as_ref();
    let pre = r.precpu_stats.as_ref();
    let total = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let cpus = cpu
        .and_then(|c| c.online_cpus)
        .or_else(|| {
            cpu.and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|p| p.len() as u32)
        })
        .unwrap_or(1);
    let mem = r.memory_stats.as_ref();
    ContainerStats {
        cpu_pct: cpu_pct(
            total(cpu),
            total(pre),
            cpu.and_then(|c| c.system_cpu_usage).unwrap_or(0),
            pre.and_then(|c| c.system_cpu_usage).unwrap_or(0),
            cpus,
        ),
        memory_bytes: memory_used(
            mem.and_then(|m| m.usage).unwrap_or(0),
            mem.and_then(|m| m.stats.as_ref()),
        ),
        memory_limit_bytes: mem.and_then(|m| m.limit).unwrap_or(0),
    }
}

impl DockerEngine {
    /// One sample of a running container; `None` when it is not running.
    pub(super) async fn stats_of(&self, name: &str) -> Result<Option<ContainerStats>> {
        match self.inspect_container(name, "").await? {
            Some(info) if info.running => {}
            _ => return Ok(None),
        }
        let d = self.docker().await?;
        // Not one-shot: the engine waits for a second sample, so CPU % has a previous one.
        let opts = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut stream = d.stats(name, Some(opts));
        match stream.next().await {
            Some(Err(e)) if is_not_found(&e) => Ok(None),
            Some(r) => {
                let sample = self.call(&format!("reading stats of {name}"), r).await?;
                Ok(Some(from_response(&sample)))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn cpu_share_as_docker_stats_prints_it() {
        // Half of the host's time on a 2-CPU host: one whole CPU.
        assert_eq!(cpu_pct(1_500, 1_000, 11_000, 10_000, 2), 100.0);
        assert_eq!(cpu_pct(1_000, 1_000, 11_000, 10_000, 2), 0.0);
        // No previous sample (a container that just started): 0, never a division by zero.
        assert_eq!(cpu_pct(500, 0, 0, 0, 2), 0.0);
        assert_eq!(cpu_pct(5, 10, 20, 10, 2), 0.0, "counters reset");
    }

    #[test]
    fn memory_leaves_out_the_page_cache() {
        let v2 = HashMap::from([("inactive_file".to_string(), 300)]);
        assert_eq!(memory_used(1000, Some(&v2)), 700);
        let v1 = HashMap::from([("total_inactive_file".to_string(), 100)]);
        assert_eq!(memory_used(1000, Some(&v1)), 900);
        assert_eq!(memory_used(1000, None), 1000);
        let odd = HashMap::from([("inactive_file".to_string(), 5000)]);
        assert_eq!(memory_used(1000, Some(&odd)), 1000);
    }
}
