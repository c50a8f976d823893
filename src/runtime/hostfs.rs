//! Stage directories under `state_dir/data`: made, copied, laid out, removed.

use super::blocking::BlockingDirs;
use super::tenant_fs;
use crate::core::{Error, Result};
use std::collections::BTreeSet;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
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

impl DataDirs {
    /// The stage's root, once `dir` is known to be one of its directories.
    fn stage_dir(&self, subscription: &str, name: &str, dir: &str, what: &str) -> Result<PathBuf> {
        if !STAGE_DIRS.contains(&dir) {
            return Err(Error::internal(
                what.to_string(),
                format!("{dir:?} is not a stage directory"),
            ));
        }
        Ok(self.root(subscription, name))
    }
}

impl BlockingDirs for DataDirs {
    fn root(&self, subscription: &str, name: &str) -> PathBuf {
        self.data_root.join(subscription).join(name)
    }

    fn create(&self, subscription: &str, name: &str) -> Result<()> {
        let root = self.root(subscription, name);
        // The data root, the subscription's and the stage's directory are the agent's alone,
        // however they were made: other host users never reach customer data. Containers
        // reach the directories below through their bind mounts.
        let sub = self.data_root.join(subscription);
        for d in [&self.data_root, &sub, &root] {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(d)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Ok(()),
                    _ => Err(e),
                })
                .and_then(|_| std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)))
                .map_err(io_err(format!("creating {}", d.display())))?;
        }
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
            tenant_fs::remove_tree(&p).map_err(io_err(format!("removing {}", p.display())))?;
        }
        let p = root.join(SCRATCH);
        std::fs::create_dir(&p).map_err(io_err(format!("creating {}", p.display())))?;
        Ok(p)
    }

    fn drop_scratch(&self, subscription: &str, name: &str) -> Result<()> {
        let p = self.root(subscription, name).join(SCRATCH);
        tenant_fs::remove_tree(&p).map_err(io_err(format!("removing {}", p.display())))
    }

    fn copy_dir(&self, from: (&str, &str), to: (&str, &str), dir: &str) -> Result<()> {
        if !STAGE_DIRS.contains(&dir) {
            return Err(Error::internal(
                "copying",
                format!("{dir:?} is not a stage directory"),
            ));
        }
        let (src, dest) = (
            self.root(from.0, from.1).join(dir),
            self.root(to.0, to.1).join(dir),
        );
        tenant_fs::copy_tree(&src, &dest).map_err(io_err(format!(
            "copying {} into {}",
            src.display(),
            dest.display()
        )))
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
        let _ = tenant_fs::remove_tree(tree);
        result
    }

    fn lay_out_kept(
        &self,
        subscription: &str,
        name: &str,
        dir: &str,
        tree: &Path,
        clear: bool,
    ) -> Result<()> {
        let root = self.stage_dir(subscription, name, dir, "laying out")?;
        let rename = |from: &Path, to: &Path| std::fs::rename(from, to);
        let result =
            super::addons_kept::lay_out_kept(&root, &root.join(dir), tree, clear, &rename).map_err(
                io_err(format!("laying a new tree into {}/{dir}", root.display())),
            );
        let _ = tenant_fs::remove_tree(tree);
        result
    }

    fn put_back(&self, subscription: &str, name: &str, dir: &str) -> Result<bool> {
        let root = self.stage_dir(subscription, name, dir, "putting back")?;
        super::addons_kept::put_back(&root, &root.join(dir)).map_err(io_err(format!(
            "putting the old entries back into {}/{dir}",
            root.display()
        )))
    }

    fn drop_kept(&self, subscription: &str, name: &str) -> Result<()> {
        let root = self.root(subscription, name);
        super::addons_kept::drop_kept(&root).map_err(io_err(format!(
            "removing the kept tree in {}",
            root.display()
        )))
    }

    fn folders_with(&self, tree: &Path, marker: &str) -> Result<BTreeSet<String>> {
        // Only a checkout the agent made under the data root.
        if !tree.starts_with(&self.data_root) {
            return Err(Error::internal(
                "listing modules",
                format!("{} is not a stage's checkout", tree.display()),
            ));
        }
        super::addons_kept::folders_with(tree, marker)
            .map_err(io_err(format!("listing the folders of {}", tree.display())))
    }

    fn own(
        &self,
        subscription: &str,
        name: &str,
        dir: &str,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<()> {
        if !STAGE_DIRS.contains(&dir) {
            return Err(Error::internal(
                "owning",
                format!("{dir:?} is not a stage directory"),
            ));
        }
        let p = self.root(subscription, name).join(dir);
        super::mount_owner::own_tree(&p, uid, gid, mode)
            .map_err(io_err(format!("giving {} to {uid}:{gid}", p.display())))
    }

    fn rename_db_files(
        &self,
        subscription: &str,
        name: &str,
        scratch: bool,
        from: &str,
        to: &str,
    ) -> Result<bool> {
        let root = self.root(subscription, name);
        let data = root.join(if scratch { SCRATCH } else { "filestore" });
        super::db_files::rename_db_folder(&data, from, to, &root).map_err(io_err(format!(
            "renaming the files of database {from} to {to} in {}",
            data.display()
        )))
    }

    fn write_private(
        &self,
        subscription: &str,
        name: &str,
        file: &str,
        bytes: &[u8],
        (uid, gid): (u32, u32),
    ) -> Result<()> {
        let root = self.root(subscription, name);
        super::private_file::write(&root, file, bytes, uid, gid)
            .map_err(io_err(format!("writing {}/{file}", root.display())))
    }

    fn remove(&self, subscription: &str, name: &str) -> Result<()> {
        let cache = self.git_cache(subscription, name);
        tenant_fs::remove_tree(&cache).map_err(io_err(format!("removing {}", cache.display())))?;
        let root = self.root(subscription, name);
        tenant_fs::remove_tree(&root).map_err(io_err(format!("removing {}", root.display())))?;
        // Drop the subscription's directory once its last stage is gone.
        let _ = std::fs::remove_dir(self.data_root.join(subscription));
        Ok(())
    }
}
