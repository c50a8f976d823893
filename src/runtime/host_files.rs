//! `HostFiles` on the real file system, through tokio's blocking pool.

use crate::core::interfaces::HostFiles;
use std::path::Path;

pub struct RealFiles;

#[async_trait::async_trait]
impl HostFiles for RealFiles {
    async fn is_file(&self, path: &Path) -> bool {
        tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_files_and_directories_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.dump");
        std::fs::write(&file, b"x").unwrap();
        assert!(RealFiles.is_file(&file).await);
        assert!(!RealFiles.is_file(dir.path()).await);
        assert!(!RealFiles.is_file(&dir.path().join("missing")).await);
    }
}
