//! Stage directories under `state_dir/data`, and probing host ports.

use crate::core::stage::interfaces::{PortProbe, StageDirs};
use crate::core::{Error, Result};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};

pub struct DataDirs {
    pub data_root: PathBuf,
    /// Bare mirrors of deploys: `<git_root>/<subscription>/<name>.git`.
    pub git_root: PathBuf,
}

/// Under the stage's root, beside db, filestore and addons: never measured, never mounted.
const SCRATCH: &str = ".deploy-new";
const ASIDE: &str = ".deploy-old";

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::internal(what, e)
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

    fn git_cache(&self, subscription: &str, name: &str) -> PathBuf {
        self.git_root.join(subscription).join(format!("{name}.git"))
    }

    fn scratch(&self, subscription: &str, name: &str) -> Result<PathBuf> {
        let root = self.root(subscription, name);
        // A crash may have left either behind.
        for leftover in [SCRATCH, ASIDE] {
            let p = root.join(leftover);
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(io_err(format!("removing {}", p.display())))?;
            }
        }
        let p = root.join(SCRATCH);
        std::fs::create_dir(&p).map_err(io_err(format!("creating {}", p.display())))?;
        Ok(p)
    }

    fn lay_out_dir(
        &self,
        subscription: &str,
        name: &str,
        dir: &str,
        tree: &Path,
        clear: bool,
    ) -> Result<()> {
        if !STAGE_DIRS.contains(&dir) {
            return Err(Error::internal(
                "laying out",
                format!("{dir:?} is not a stage directory"),
            ));
        }
        let root = self.root(subscription, name);
        let result =
            super::addons::lay_out(&root.join(dir), tree, &root.join(ASIDE), clear).map_err(
                io_err(format!("laying a new tree into {}/{dir}", root.display())),
            );
        let _ = std::fs::remove_dir_all(tree);
        result
    }

    fn remove(&self, subscription: &str, name: &str) -> Result<()> {
        let cache = self.git_cache(subscription, name);
        match std::fs::remove_dir_all(&cache) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::internal(format!("removing {}", cache.display()), e))
            }
            _ => {}
        }
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

    fn accepts(&self, addr: IpAddr, port: u16) -> bool {
        let timeout = std::time::Duration::from_millis(500);
        std::net::TcpStream::connect_timeout(&(addr, port).into(), timeout).is_ok()
    }
}
