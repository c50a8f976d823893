//! The runtime side: the core's interfaces implemented on the real host.

pub mod addons;
pub mod backups;
pub mod child_output;
pub mod console_roles;
pub mod container_stats;
pub mod docker;
pub mod docker_pull;
pub mod engine;
pub mod engine_exec;
mod engine_net;
pub mod git;
pub mod git_file_url;
pub mod git_submodules;
pub mod git_tally;
pub mod host;
pub mod hostfs;
pub mod mount_owner;
pub mod nginx;
pub mod pgdb;
pub mod priority;
pub mod probes;
pub mod records;
pub mod sql_console;
pub mod tenant_fs;
pub mod tenant_tar;
pub mod usage;
