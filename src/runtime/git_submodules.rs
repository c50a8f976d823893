//! Submodules of a deployed commit, when the deploy asks for them: one level deep, each URL
//! from `.gitmodules` held to the same rules as a client's (relative ones resolved against the
//! parent repository first), each fetched into its own mirror with the same locked-down git,
//! each path checked to stay inside the checkout.

use super::git::{is_hash, GitCli, Tally};
use crate::core::git_input;
use crate::core::interfaces::FetchRequest;
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

/// A `./` or `../` URL resolved against the parent repository's, as git does (each `../`
/// drops one path segment), except that it never climbs above the parent's
/// `scheme://host/` or `host:`: git would then make `file:tmp/x`, an ssh URL to host `file`.
pub fn resolve(parent: &str, url: &str) -> std::result::Result<String, String> {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return Ok(url.to_string());
    }
    let split = match parent.find("://") {
        Some(i) => {
            let from = i + 3;
            let end = parent[from..]
                .find('/')
                .map_or(parent.len(), |j| from + j + 1);
            Some(parent.split_at(end))
        }
        None => parent.find(':').map(|i| parent.split_at(i + 1)),
    };
    let Some((prefix, path)) = split else {
        return Err(format!("{url} is relative to {parent}, which is not a URL"));
    };
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            if segments.pop().is_none() {
                return Err(format!("{url} climbs above {prefix}"));
            }
        } else {
            break;
        }
    }
    if rest.split('/').any(|s| s == "." || s == "..") {
        return Err(format!("{url} has '.' or '..' after its start"));
    }
    segments.push(rest);
    let sep = if prefix.ends_with('/') || prefix.ends_with(':') {
        ""
    } else {
        "/"
    };
    Ok(format!("{prefix}{sep}{}", segments.join("/")))
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
    /// Checks every submodule of commit `hash` out into `into/<path>`; `tally` holds the
    /// parent's entries, its gitlinks among them, and the submodules' count toward the same
    /// limits.
    pub(super) async fn export_submodules(
        &self,
        req: &FetchRequest,
        hash: &str,
        into: &Path,
        mut tally: Tally,
    ) -> Result<()> {
        let links = std::mem::take(&mut tally.links);
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
            let url = resolve(&req.url, url).map_err(refuse)?;
            let url = git_input::repository(&url, &req.protocols)
                .map_err(|e| refuse(e.to_string()))?
                .url;
            let url = match super::git_file_url::checked(&url, &req.file_roots) {
                Some(checked) => checked.map_err(refuse)?,
                None => url,
            };
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
            self.tally(req, &mirror, &commit, &mut tally).await?;
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
    fn gitmodules_paths_and_urls() {
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
    }

    #[test]
    fn relative_urls_resolve_against_the_parent() {
        let ok = |parent: &str, url: &str| resolve(parent, url).unwrap();
        assert_eq!(
            ok("https://h/org/top.git", "../sub.git"),
            "https://h/org/sub.git"
        );
        assert_eq!(
            ok("https://h/org/top.git/", "./sub"),
            "https://h/org/top.git/sub"
        );
        assert_eq!(ok("git@h:org/top.git", "../sub.git"), "git@h:org/sub.git");
        assert_eq!(ok("git@h:top.git", "../sub.git"), "git@h:sub.git");
        assert_eq!(ok("file:///srv/top", "../sub"), "file:///srv/sub");
        assert_eq!(ok("https://h/a", "https://other/b"), "https://other/b");
        assert_eq!(ok("https://h", "./x"), "https://h/x");
        // Never above the host or the root: git would make `file:tmp/x`, ssh to `file`.
        for (parent, url) in [
            ("file:///srv/top", "../../../tmp/x"),
            ("https://h/org/top.git", "../../../x"),
            ("git@h:top.git", "../../x"),
            ("file:///srv/top", "../a/../../x"),
            ("top", "../x"),
        ] {
            assert!(resolve(parent, url).is_err(), "{parent} {url}");
        }
    }

    #[test]
    fn paths_stay_inside() {
        assert!(safe_path("vendor/sub"));
        for bad in ["", "../x", "/etc", "a/../../b", "-x", "a/./b/.."] {
            assert!(!safe_path(bad), "{bad}");
        }
    }
}
