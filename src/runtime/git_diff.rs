//! What changed between two commits of a stage's mirror, as a deploy's "changed" update needs
//! it: `git diff --name-only -z` read path by path (never held whole), reduced to top-level
//! names, with the same timeout and record cap as every git child.

use super::child_output::{self, Failure};
use super::git::{failure, is_hash, GitCli};
use crate::core::interfaces::FetchRequest;
use crate::core::stage::deploy_plan::top_level;
use crate::core::{Error, Result};
use std::collections::BTreeSet;

impl GitCli {
    /// Whether `hash` names a commit the mirror holds.
    async fn has_commit(&self, req: &FetchRequest, hash: &str) -> Result<bool> {
        if !is_hash(hash) {
            return Ok(false);
        }
        let mut cmd = self.git(req)?;
        cmd.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{hash}^{{commit}}"));
        match child_output::collect(cmd, req.timeout, 4096).await {
            Ok(_) => Ok(true),
            // rev-parse --verify --quiet says "no such commit" by its exit status alone.
            Err(Failure::Exit(_)) => Ok(false),
            Err(f) => Err(failure("looking up the deployed commit", req.timeout, f)),
        }
    }

    /// The top-level names of the paths that differ between `old` and `new`; `None` when `old`
    /// is not in the mirror (a new mirror, or history rewritten and collected).
    pub(super) async fn changed_between(
        &self,
        req: &FetchRequest,
        old: &str,
        new: &str,
    ) -> Result<Option<BTreeSet<String>>> {
        if !is_hash(new) {
            return Err(Error::Git(format!("{new:?} is not a commit id")));
        }
        if !self.has_commit(req, old).await? {
            return Ok(None);
        }
        let mut diff = self.git(req)?;
        diff.args([
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            "--end-of-options",
            old,
            new,
            "--",
        ]);
        // Both commits passed the checkout limits, so their diff lists at most both trees.
        let cap = req.limits.max_files.saturating_mul(2).saturating_add(1);
        let (mut seen, mut tops) = (0u64, BTreeSet::new());
        let what = "listing what changed";
        child_output::stream(diff, req.timeout, b'\0', |record| {
            seen += 1;
            if seen > cap {
                return Err(Error::Git(format!("the diff lists more than {cap} paths")));
            }
            let path = String::from_utf8_lossy(record);
            if !path.is_empty() {
                tops.insert(top_level(&path).to_string());
            }
            Ok(())
        })
        .await
        .map_err(|f| failure(what, req.timeout, f))?;
        Ok(Some(tops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::interfaces::CheckoutLimits;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn commit(dir: &Path, files: &[(&str, &str)]) -> String {
        for (p, v) in files {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "c"]);
        git(dir, &["rev-parse", "HEAD"])
    }

    #[tokio::test]
    async fn the_diff_names_the_changed_top_level_entries() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("w");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        let a = commit(
            &work,
            &[("mod_a/x.py", "1"), ("mod_b/y.py", "1"), ("README", "1")],
        );
        std::fs::remove_file(work.join("mod_b/y.py")).unwrap();
        let b = commit(&work, &[("mod_a/deep/x.py", "2"), ("mod_c/z.py", "1")]);
        let cli = GitCli::new(t.path());
        let req = FetchRequest {
            cache: work.join(".git"),
            url: String::new(),
            branch: "main".into(),
            subscription: "acme".into(),
            protocols: vec![],
            timeout: std::time::Duration::from_secs(20),
            submodules: false,
            limits: CheckoutLimits {
                max_bytes: 1 << 20,
                max_files: 100,
            },
            file_roots: vec![],
        };
        let got = cli.changed_between(&req, &a, &b).await.unwrap().unwrap();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            ["mod_a", "mod_b", "mod_c"]
        );
        let same = cli.changed_between(&req, &b, &b).await.unwrap().unwrap();
        assert!(same.is_empty());
        let unknown = "0123456789012345678901234567890123456789";
        assert_eq!(cli.changed_between(&req, unknown, &b).await.unwrap(), None);
        assert_eq!(
            cli.changed_between(&req, "--output=x", &b).await.unwrap(),
            None
        );
        assert!(cli.changed_between(&req, &a, "HEAD").await.is_err());
        let small = FetchRequest {
            limits: CheckoutLimits {
                max_bytes: 1 << 20,
                max_files: 0,
            },
            ..req
        };
        assert!(cli.changed_between(&small, &a, &b).await.is_err(), "capped");
    }
}
