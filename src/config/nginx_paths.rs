//! Checks of the nginx paths the agent writes into nginx's configuration: the sites directory
//! and the global file, which nginx reads unquoted.

use super::types::SafePath;
use super::Nginx;
use std::path::Path;

impl Nginx {
    /// `sites_dir` must be a plain path (the global file includes it) and `global_file` must
    /// not lie in it (the sites' `*.conf` include would read it back, and it includes them).
    pub(super) fn check_global_file(&self) -> Vec<(&'static str, String)> {
        let mut errs = vec![];
        if !self.enabled {
            return errs;
        }
        let sites = self.sites_dir.display().to_string();
        if let Err(e) = SafePath::try_from(sites.clone()) {
            errs.push(("sites_dir", e));
        }
        let global = Path::new(self.global_file.as_str());
        // Paths compare by components: a trailing '/' makes no difference.
        if global.parent() == Some(self.sites_dir.as_path()) {
            errs.push((
                "global_file",
                format!(
                    "must not be in nginx.sites_dir ({sites}): nginx would read it as a site; \
                     use a directory of its own"
                ),
            ));
        }
        if global.file_name().is_none() || self.global_file.as_str().ends_with('/') {
            errs.push(("global_file", "must name a file".into()));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unplain_sites_and_a_global_file_among_the_sites() {
        let mut n = Nginx::default();
        assert!(n.check_global_file().is_empty());
        n.sites_dir = "/etc/nginx/stage let".into();
        assert_eq!(n.check_global_file()[0].0, "sites_dir");
        n.sites_dir = "/etc/nginx/stagelet/".into();
        n.global_file = SafePath::try_from("/etc/nginx/stagelet/global.conf".to_string()).unwrap();
        assert_eq!(n.check_global_file()[0].0, "global_file");
        n.global_file = SafePath::try_from("/etc/nginx/g/".to_string()).unwrap();
        assert_eq!(n.check_global_file()[0].0, "global_file");
        n.enabled = false;
        assert!(n.check_global_file().is_empty());
    }
}
