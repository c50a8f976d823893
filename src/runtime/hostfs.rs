//! Stage directories under `state_dir/data`, and probing host ports.

use crate::core::stage::interfaces::{PortProbe, StageDirs};
use crate::core::{Error, Result};
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;

pub struct DataDirs {
    pub data_root: PathBuf,
}

/// The directories of a stage; the db directory is owned by the container's own user later.
pub const STAGE_DIRS: [&str; 3] = ["db", "filestore", "addons"];

impl StageDirs for DataDirs {
    fn root(&self, subscription: &str, name: &str) -> PathBuf {
        self.data_root.join(subscription).join(name)
    }

    fn create(&self, subscription: &str, name: &str) -> Result<()> {
        let root = self.root(subscription, name);
        for d in STAGE_DIRS {
            let p = root.join(d);
            std::fs::create_dir_all(&p)
                .map_err(|e| Error::internal(format!("creating {}", p.display()), e))?;
        }
        Ok(())
    }

    fn remove(&self, subscription: &str, name: &str) -> Result<()> {
        let root = self.root(subscription, name);
        match std::fs::remove_dir_all(&root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::internal(format!("removing {}", root.display()), e))
            }
            _ => {
                // Drop the subscription's directory once its last stage is gone.
                let _ = std::fs::remove_dir(self.data_root.join(subscription));
                Ok(())
            }
        }
    }
}

pub struct BindProbe;

impl PortProbe for BindProbe {
    fn in_use(&self, addr: IpAddr, port: u16) -> bool {
        TcpListener::bind((addr, port)).is_err()
    }
}
