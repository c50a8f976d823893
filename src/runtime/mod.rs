//! The runtime side: the core's interfaces implemented on the real host.

pub mod acme;
pub mod addons;
pub mod backups;
pub mod blocking;
pub mod child_output;
pub mod db_files;
pub mod disk_walk;
pub mod docker;
pub mod git;
pub mod git_file_url;
pub mod git_submodules;
pub mod git_tally;
pub mod host;
pub mod host_files;
pub mod hostfs;
pub mod mount_owner;
pub mod nginx;
pub mod port_probe;
pub mod postgres;
pub mod priority;
pub mod private_file;
pub mod probes;
pub mod records;
pub mod tenant_fs;
pub mod tenant_tar;
pub mod test_hooks;
