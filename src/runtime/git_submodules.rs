//! Submodules of a deployed commit, when the deploy asks for them: one level deep, each URL
//! from `.gitmodules` held to the same rules as a client's (relative ones resolved against the
//! parent repository first), each fetched into its own mirror with the same locked-down git,
//! each path checked to stay inside the checkout.

use super::git::{check_size, is_hash, GitCli};
use crate::core::git_input;
use crate::core::stage::interfaces::FetchRequest;
use crate::core::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Component, Path};

/// `path` to `url` from `git config --blob <commit>:.gitmodules --get-regexp`.
pub fn parse_gitmodules(listing: &str) -> BTreeMap<String, String> {
    let mut names: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for line in listing.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let Some(rest) = key.strip_prefix("submodule.") else {
            continue;
        };
        if let Some(name) = rest.strip_suffix(".path") {
            names.entry(name.into()).or_default().0 = Some(value.into());
        } else if let Some(name) = rest.strip_suffix(".url") {
            names.entry(name.into()).or_default().1 = Some(value.into());
        }
    }
    names
        .into_values()
        .filter_map(|(path, url)| Some((path?, url?)))
        .collect()
}

/// `(path, commit)` of every gitlink in `git ls-tree -r` output.
pub fn gitlinks(ls_tree: &str) -> Vec<(String, String)> {
    ls_tree
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            let mut f = meta.split_whitespace();
            (f.next()? == "160000").then_some(())?;
            let _kind = f.next()?;
            Some((path.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// A `./` or `../` URL resolved against the parent repository's, as git does.
pub fn resolve(parent: &str, url: &str) -> String {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return url.to_string();
    }
    let mut base = parent.trim_end_matches('/').to_string();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            // Up one segment: after the last '/' (or the ':' of user@host:path).
            let cut = base
                .rfind('/')
                .max(base.rfind(':').filter(|_| !base.contains("://")));
            if let Some(i) = cut {
                // Keep the ':' of user@host:path; drop a '/'.
                let keep = usize::from(base.as_bytes()[i] == b':');
                base.truncate(i + keep);
            }
        } else {
            break;
        }
    }
    let sep = if base.ends_with(':') { "" } else { "/" };
    format!("{base}{sep}{rest}")
}

/// A relative path of plain components: never absolute, never `..`, never an option.
fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('-')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// A directory name for a submodule's mirror.
fn mirror_name(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl GitCli {
    /// Checks every submodule of commit `hash` out into `into/<path>`; `used` bytes of
    /// `max_bytes` are already taken by the parent.
    pub(super) async fn export_submodules(
        &self,
        req: &FetchRequest,
        hash: &str,
        into: &Path,
        mut used: u64,
        max_bytes: u64,
    ) -> Result<()> {
        let mut ls = self.git(req)?;
        ls.args(["ls-tree", "-r", hash, "--"]);
        let links = gitlinks(&self.run("listing the commit", ls, req.timeout).await?);
        if links.is_empty() {
            return Ok(());
        }
        let mut cfg = self.git(req)?;
        cfg.args(["config", "--blob", &format!("{hash}:.gitmodules")])
            .args(["--get-regexp", r"^submodule\..*\.(path|url)$"]);
        let modules = parse_gitmodules(&self.run("reading .gitmodules", cfg, req.timeout).await?);
        for (path, commit) in links {
            let refuse = |why: String| Error::Git(format!("submodule {path}: {why}"));
            if !safe_path(&path) || !is_hash(&commit) {
                return Err(refuse("its path or commit is not plain".into()));
            }
            let url = modules
                .get(&path)
                .ok_or_else(|| refuse("no URL in .gitmodules".into()))?;
            let url = resolve(&req.url, url);
            let url = git_input::repository(&url, &req.protocols)
                .map_err(|e| refuse(e.to_string()))?
                .url;
            let mirror = req.cache.join("modules").join(mirror_name(&path));
            self.fetch_all(req, &mirror, &url).await?;
            let mut has = self.git_in(req, &mirror)?;
            has.args(["cat-file", "-e", &format!("{commit}^{{commit}}")]);
            self.run(
                &format!("submodule {path}: finding {commit}"),
                has,
                req.timeout,
            )
            .await?;
            used += self.tree_bytes(req, &mirror, &commit).await?;
            check_size(hash, used, max_bytes)?;
            let dest = into.join(&path);
            std::fs::create_dir_all(&dest)
                .map_err(|e| Error::internal(format!("creating {}", dest.display()), e))?;
            self.checkout(req, &mirror, &commit, &dest).await?;
        }
        Ok(())
    }

    /// Every branch of `url` into the bare mirror `mirror` (made if missing).
    async fn fetch_all(&self, req: &FetchRequest, mirror: &Path, url: &str) -> Result<()> {
        self.ensure_mirror(req, mirror).await?;
        let what = format!("fetching submodule {url}");
        self.fetch_into(req, mirror, url, "+refs/heads/*:refs/heads/*", &what)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitmodules_and_gitlinks() {
        let listing = "submodule.vendor/sub.path vendor/sub\n\
                       submodule.vendor/sub.url ../sub.git\n\
                       submodule.a.b.path lib/ab\n\
                       submodule.a.b.url https://h/ab.git\n\
                       submodule.orphan.path x\n";
        let m = parse_gitmodules(listing);
        assert_eq!(m.get("vendor/sub").map(String::as_str), Some("../sub.git"));
        assert_eq!(
            m.get("lib/ab").map(String::as_str),
            Some("https://h/ab.git")
        );
        assert_eq!(m.len(), 2, "a module without a URL is left out");
        let ls = "100644 blob 3b18e512dba79e4c8300dd08aeb37f8e728b8dad\tREADME\n\
                  160000 commit 524d7b765cbb6b8e2df30cf5fbf62a9232886280\tvendor/sub\n";
        assert_eq!(
            gitlinks(ls),
            vec![(
                "vendor/sub".into(),
                "524d7b765cbb6b8e2df30cf5fbf62a9232886280".into()
            )]
        );
    }

    #[test]
    fn relative_urls_resolve_against_the_parent() {
        assert_eq!(
            resolve("https://h/org/top.git", "../sub.git"),
            "https://h/org/sub.git"
        );
        assert_eq!(
            resolve("https://h/org/top.git/", "./sub"),
            "https://h/org/top.git/sub"
        );
        assert_eq!(
            resolve("git@h:org/top.git", "../sub.git"),
            "git@h:org/sub.git"
        );
        assert_eq!(resolve("git@h:top.git", "../sub.git"), "git@h:sub.git");
        assert_eq!(resolve("file:///srv/top", "../sub"), "file:///srv/sub");
        assert_eq!(resolve("https://h/a", "https://other/b"), "https://other/b");
    }

    #[test]
    fn paths_stay_inside() {
        assert!(safe_path("vendor/sub"));
        for bad in ["", "../x", "/etc", "a/../../b", "-x", "a/./b/.."] {
            assert!(!safe_path(bad), "{bad}");
        }
    }
}
