//! What the host looks like (CPU, memory, disks) and the health of the engine and the proxy.

use serde::Serialize;

/// What the host looks like right now.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct HostStats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub disks: Vec<DiskStats>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct CpuStats {
    pub cores: usize,
    pub usage_pct: f32,
    pub load_avg: [f64; 3],
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct MemoryStats {
    pub total: u64,
    pub used: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DiskStats {
    pub mount: String,
    pub total: u64,
    pub available: u64,
    /// True for the filesystem that holds the agent's `state_dir`.
    #[serde(default)]
    pub holds_state_dir: bool,
}

pub trait HostProbe: Send + Sync {
    fn stats(&self) -> HostStats;
    fn hostname(&self) -> String;
}

/// A dependency's health as `agent.info` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DependencyStatus {
    /// Docker: the engine answered. nginx: the binary ran and, when enabled, its config tests ok.
    pub ok: bool,
    pub version: Option<String>,
    pub message: Option<String>,
}

/// Reachability and version of the engine and the proxy the agent drives.
#[async_trait::async_trait]
pub trait DependencyProbe: Send + Sync {
    async fn docker(&self) -> DependencyStatus;
    async fn nginx(&self) -> DependencyStatus;
}
