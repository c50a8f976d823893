//! Host statistics from sysinfo. CPU usage needs two samples apart, so a sampler keeps one
//! `System` and refreshes it at most once a second.

use crate::core::interfaces::{CpuStats, DiskStats, HostProbe, HostStats, MemoryStats};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

pub struct SysHost {
    state_dir: PathBuf,
    sampler: Mutex<Sampler>,
}

struct Sampler {
    sys: System,
    disks: Disks,
    at: Instant,
}

const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl SysHost {
    pub fn new(state_dir: &Path) -> Self {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        SysHost {
            state_dir: state_dir.to_path_buf(),
            sampler: Mutex::new(Sampler {
                sys,
                disks: Disks::new_with_refreshed_list(),
                at: Instant::now(),
            }),
        }
    }
}

impl HostProbe for SysHost {
    fn stats(&self) -> HostStats {
        let mut s = self.sampler.lock().unwrap_or_else(|p| p.into_inner());
        if s.at.elapsed() >= MIN_INTERVAL {
            s.sys.refresh_cpu_usage();
            s.sys.refresh_memory();
            s.disks.refresh(true);
            s.at = Instant::now();
        }
        let load = System::load_average();
        // The disk holding state_dir is the one with the longest mount point that prefixes it.
        let state_mount = s
            .disks
            .iter()
            .map(|d| d.mount_point())
            .filter(|m| self.state_dir.starts_with(m))
            .max_by_key(|m| m.as_os_str().len())
            .map(Path::to_path_buf);
        let mut disks: Vec<DiskStats> = s
            .disks
            .iter()
            .map(|d| DiskStats {
                mount: d.mount_point().display().to_string(),
                total: d.total_space(),
                available: d.available_space(),
                holds_state_dir: Some(d.mount_point()) == state_mount.as_deref(),
            })
            .collect();
        disks.sort_by(|a, b| a.mount.cmp(&b.mount));
        disks.dedup_by(|a, b| a.mount == b.mount);
        HostStats {
            cpu: CpuStats {
                cores: s.sys.cpus().len(),
                usage_pct: s.sys.global_cpu_usage(),
                load_avg: [load.one, load.five, load.fifteen],
            },
            memory: MemoryStats {
                total: s.sys.total_memory(),
                used: s.sys.used_memory(),
            },
            disks,
        }
    }

    fn hostname(&self) -> String {
        System::host_name().unwrap_or_else(|| "unknown".into())
    }
}
