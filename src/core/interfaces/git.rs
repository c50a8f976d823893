//! Git as a deploy needs it: fetch into the stage's mirror, export a commit, what changed
//! between two commits, deploy keys.
//! Implemented on the git CLI in `runtime::git`.

use crate::core::Result;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A deploy's fetch: into the stage's bare mirror, with the transport locked down.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub cache: PathBuf,
    pub url: String,
    pub branch: String,
    /// Its deploy key is used for ssh.
    pub subscription: String,
    /// `git.allowed_protocols`.
    pub protocols: Vec<String>,
    pub timeout: Duration,
    /// Check out the commit's submodules too (one level), each URL held to the same rules.
    pub submodules: bool,
    /// What the checkout, submodules included, may write.
    pub limits: CheckoutLimits,
    /// `git.file_roots`: a `file://` repository must lie under one of them.
    pub file_roots: Vec<PathBuf>,
}

/// `git.max_checkout_mb` (in bytes) and `git.max_checkout_files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutLimits {
    pub max_bytes: u64,
    pub max_files: u64,
}

/// The commit a deploy lays out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub hash: String,
    pub subject: String,
    /// `git rev-list --count` of the commit.
    pub count: u64,
}

#[async_trait::async_trait]
pub trait Git: Send + Sync {
    /// Fetches the branch's tip into `req.cache` (made if missing; only what is new comes).
    async fn fetch(&self, req: &FetchRequest) -> Result<Commit>;
    /// Writes the commit's files into the empty directory `into`; refused with
    /// `limit_exceeded`, before a file is written, when they cross `req.limits`.
    async fn export(&self, req: &FetchRequest, hash: &str, into: &Path) -> Result<()>;
    /// The top-level names (first path component) of every path that differs between commits
    /// `old` and `new` of the mirror (`git diff --name-only`); `None` when `old` is not a
    /// commit the mirror holds.
    async fn changed_top_level(
        &self,
        req: &FetchRequest,
        old: &str,
        new: &str,
    ) -> Result<Option<BTreeSet<String>>>;
    /// The subscription's ed25519 public key, made on the first call.
    async fn deploy_key(&self, subscription: &str) -> Result<String>;
    /// Removes the subscription's key pair (idempotent): a later subscription of the same id
    /// gets a new one.
    async fn remove_deploy_key(&self, subscription: &str) -> Result<()>;
}
