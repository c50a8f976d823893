//! Deploys through the git command line, locked down the same way for every call: only the
//! configured protocols (redirects and submodules included), no hooks, no system or user
//! configuration, no prompts, `--` or `--end-of-options` before every positional argument, a
//! timeout, and ssh with the subscription's deploy key and strict options.

use super::child_output::{self, Failure};
pub use super::git_tally::Tally;
use crate::core::interfaces::{Commit, FetchRequest, Git};
use crate::core::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

pub struct GitCli {
    /// `state_dir/keys/<subscription>/id_ed25519` and `state_dir/git/known_hosts` live here.
    pub state_dir: PathBuf,
    /// Serialises deploy-key creation, so two first calls make one key.
    keys: tokio::sync::Mutex<()>,
}

/// How long making a key may take.
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(30);

impl GitCli {
    pub fn new(state_dir: &Path) -> Self {
        GitCli {
            state_dir: state_dir.to_path_buf(),
            keys: tokio::sync::Mutex::new(()),
        }
    }

    fn key_path(&self, subscription: &str) -> PathBuf {
        self.state_dir
            .join("keys")
            .join(subscription)
            .join("id_ed25519")
    }

    /// `ssh` with the deploy key only, our own known_hosts (first contact accepted, a changed
    /// key refused), no agent, no forwarding, no prompt.
    fn ssh_command(&self, subscription: &str) -> Result<String> {
        let key = self.key_path(subscription);
        let known = self.state_dir.join("git").join("known_hosts");
        for p in [&key, &known] {
            let s = p.display().to_string();
            if s.contains('\'') {
                return Err(Error::Git(format!("{s} cannot be quoted for ssh")));
            }
        }
        Ok(format!(
            "ssh -i '{}' -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile='{}' \
             -o StrictHostKeyChecking=accept-new -o ForwardAgent=no -o ClearAllForwardings=yes \
             -o BatchMode=yes -o ConnectTimeout=30",
            key.display(),
            known.display()
        ))
    }

    /// `git` with the locked-down configuration for `req`, on its mirror.
    pub(super) fn git(&self, req: &FetchRequest) -> Result<Command> {
        self.git_in(req, &req.cache)
    }

    /// `git` with the locked-down configuration for `req`, on the repository `git_dir`.
    pub(super) fn git_in(&self, req: &FetchRequest, git_dir: &Path) -> Result<Command> {
        let mut cmd = Command::new("git");
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_SSH_COMMAND", self.ssh_command(&req.subscription)?)
            .env("LC_ALL", "C")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
        let mut config = vec![
            "protocol.allow=never".to_string(),
            "core.hooksPath=/dev/null".into(),
            "core.fsmonitor=false".into(),
            "submodule.recurse=false".into(),
            "fetch.recurseSubmodules=false".into(),
            "transfer.fsckObjects=true".into(),
            "credential.helper=".into(),
        ];
        config.extend(
            req.protocols
                .iter()
                .map(|p| format!("protocol.{p}.allow=always")),
        );
        for c in config {
            cmd.arg("-c").arg(c);
        }
        cmd.arg(format!("--git-dir={}", git_dir.display()))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// Runs `cmd` to the end within the timeout: its stdout (at most `OUTPUT_CAP` bytes, the
    /// child killed past it), or `Error::Git` with git's own words.
    pub(super) async fn run(&self, what: &str, cmd: Command, timeout: Duration) -> Result<String> {
        let out = child_output::collect(cmd, timeout, child_output::OUTPUT_CAP)
            .await
            .map_err(|f| failure(what, timeout, f))?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }
}

/// A child's failure as the API reports it: git's last words, or why it was stopped.
pub(super) fn failure(what: &str, timeout: Duration, f: Failure) -> Error {
    match f {
        Failure::TimedOut => Error::Git(format!("{what}: no answer within {timeout:?}")),
        Failure::Spawn(e) => Error::Git(format!("{what}: cannot run git: {e}")),
        // A limit keeps its own kind; anything else is git's.
        Failure::Stopped(e @ Error::LimitExceeded(_)) => e,
        Failure::Stopped(e) => Error::Git(format!("{what}: {e}")),
        Failure::Exit(stderr) => {
            let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = tail[tail.len().saturating_sub(5)..].join("; ");
            Error::Git(format!("{what}: {tail}"))
        }
    }
}

pub(super) fn is_hash(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl GitCli {
    /// Makes the bare repository `dir` unless it is there.
    pub(super) async fn ensure_mirror(&self, req: &FetchRequest, dir: &Path) -> Result<()> {
        if dir.join("HEAD").exists() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("creating {}", dir.display()), e))?;
        let mut init = self.git_in(req, dir)?;
        init.args(["init", "--bare", "--quiet"]);
        self.run("git init", init, req.timeout).await.map(|_| ())
    }

    /// Fetches `refspec` of `url` into the bare repository `git_dir`. Every fetch goes through
    /// here, so every one carries the same flags.
    pub(super) async fn fetch_into(
        &self,
        req: &FetchRequest,
        git_dir: &Path,
        url: &str,
        refspec: &str,
        what: &str,
    ) -> Result<()> {
        let mut fetch = self.git_in(req, git_dir)?;
        fetch
            .args([
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
            ])
            .arg(url)
            .arg(refspec);
        self.run(what, fetch, req.timeout).await.map(|_| ())
    }

    /// Adds the entries of commit `hash` in `git_dir` to `tally`, reading git's listing as it
    /// comes and stopping git at the first limit crossed.
    pub(super) async fn tally(
        &self,
        req: &FetchRequest,
        git_dir: &Path,
        hash: &str,
        tally: &mut Tally,
    ) -> Result<()> {
        if !is_hash(hash) {
            return Err(Error::Git(format!("{hash:?} is not a commit id")));
        }
        let mut ls = self.git_in(req, git_dir)?;
        ls.args(["ls-tree", "-r", "-l", "-z", hash, "--"]);
        let what = "listing the commit";
        child_output::stream(ls, req.timeout, b'\0', |r| tally.add(r, &req.limits, hash))
            .await
            .map_err(|f| failure(what, req.timeout, f))
    }

    /// Writes commit `hash` of `git_dir` into `into`, through a throwaway index beside it:
    /// the repository's own state is never touched.
    pub(super) async fn checkout(
        &self,
        req: &FetchRequest,
        git_dir: &Path,
        hash: &str,
        into: &Path,
    ) -> Result<()> {
        let index = into.with_extension("index");
        for step in [
            vec!["read-tree", hash],
            vec!["checkout-index", "--all", "--force"],
        ] {
            let mut cmd = self.git_in(req, git_dir)?;
            cmd.arg(format!("--work-tree={}", into.display()))
                .env("GIT_INDEX_FILE", &index)
                .args(step);
            let r = self.run("checking out", cmd, req.timeout).await;
            if r.is_err() {
                let _ = std::fs::remove_file(&index);
            }
            r?;
        }
        let _ = std::fs::remove_file(&index);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Git for GitCli {
    async fn fetch(&self, req: &FetchRequest) -> Result<Commit> {
        // Before the mirror is made: a refused path leaves nothing behind.
        let url = match super::git_file_url::checked(&req.url, &req.file_roots) {
            Some(checked) => checked.map_err(|why| Error::invalid("repository", why))?,
            None => req.url.clone(),
        };
        self.ensure_mirror(req, &req.cache).await?;
        let known = self.state_dir.join("git");
        std::fs::create_dir_all(&known)
            .map_err(|e| Error::internal(format!("creating {}", known.display()), e))?;
        let branch = &req.branch;
        let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
        let what = format!("fetching {branch} from {}", req.url);
        self.fetch_into(req, &req.cache, &url, &refspec, &what)
            .await?;
        let mut parse = self.git(req)?;
        parse
            .args(["rev-parse", "--verify", "--end-of-options"])
            .arg(format!("refs/heads/{branch}^{{commit}}"));
        let hash = self
            .run("reading the branch tip", parse, req.timeout)
            .await?;
        if !is_hash(&hash) {
            return Err(Error::Git(format!("unexpected commit id {hash:?}")));
        }
        let mut log = self.git(req)?;
        log.args(["log", "-1", "--format=%s", &hash, "--"]);
        let subject = self.run("reading the commit", log, req.timeout).await?;
        let mut count = self.git(req)?;
        count.args(["rev-list", "--count", &hash, "--"]);
        let count = self.run("counting commits", count, req.timeout).await?;
        Ok(Commit {
            hash,
            subject,
            count: count
                .parse()
                .map_err(|_| Error::Git(format!("rev-list said {count:?}")))?,
        })
    }

    async fn export(&self, req: &FetchRequest, hash: &str, into: &Path) -> Result<()> {
        let mut tally = Tally::default();
        self.tally(req, &req.cache, hash, &mut tally).await?;
        self.checkout(req, &req.cache, hash, into).await?;
        if req.submodules {
            self.export_submodules(req, hash, into, tally).await?;
        }
        Ok(())
    }

    async fn changed_top_level(
        &self,
        req: &FetchRequest,
        old: &str,
        new: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>> {
        self.changed_between(req, old, new).await
    }

    async fn deploy_key(&self, subscription: &str) -> Result<String> {
        let _one = self.keys.lock().await;
        let key = self.key_path(subscription);
        let public = key.with_extension("pub");
        if !key.exists() {
            let dir = key.parent().expect("the key is in a directory");
            make_private_dir(dir)?;
            // Made aside, then renamed: a crash never leaves half a key under the real name.
            let tmp = dir.join("id_ed25519.new");
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(tmp.with_extension("new.pub"));
            let mut keygen = Command::new("ssh-keygen");
            keygen
                .args(["-q", "-t", "ed25519", "-N", "", "-C"])
                .arg(format!("stagelet-deploy-{subscription}"))
                .arg("-f")
                .arg(&tmp)
                .stdin(Stdio::null())
                .kill_on_drop(true);
            let out = tokio::time::timeout(KEYGEN_TIMEOUT, keygen.output())
                .await
                .map_err(|_| Error::Git("ssh-keygen did not finish".into()))?
                .map_err(|e| Error::Git(format!("cannot run ssh-keygen: {e}")))?;
            if !out.status.success() {
                return Err(Error::Git(format!(
                    "ssh-keygen: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let rename = |from: &Path, to: &Path| {
                std::fs::rename(from, to)
                    .map_err(|e| Error::internal(format!("storing {}", to.display()), e))
            };
            rename(&tmp.with_extension("new.pub"), &public)?;
            rename(&tmp, &key)?;
        }
        let text = std::fs::read_to_string(&public)
            .map_err(|e| Error::internal(format!("reading {}", public.display()), e))?;
        Ok(text.trim().to_string())
    }

    async fn remove_deploy_key(&self, subscription: &str) -> Result<()> {
        let _one = self.keys.lock().await;
        let dir = self
            .key_path(subscription)
            .parent()
            .expect("the key is in a directory")
            .to_path_buf();
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::internal(format!("removing {}", dir.display()), e))
            }
            _ => Ok(()),
        }
    }
}

fn make_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|_| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| Error::internal(format!("creating {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids() {
        assert!(is_hash("3b18e512dba79e4c8300dd08aeb37f8e728b8dad"));
        assert!(!is_hash("--upload-pack=x"));
    }
}
