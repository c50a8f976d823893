//! Checks of the configuration that a single key's type cannot make: references between
//! keys, and paths and commands that must make sense together.

use super::sections::{Git, Nginx};
use super::Config;

impl Git {
    fn cross_check(&self) -> Vec<(&'static str, String)> {
        use std::path::Component;
        let mut errs = vec![];
        // No file root would make `file` useless; say so now rather than at the first deploy.
        if self.allowed_protocols.iter().any(|p| p == "file") && self.file_roots.is_empty() {
            errs.push((
                "file_roots",
                "allowed_protocols has file: name the directories file:// repositories may \
                 lie under"
                    .into(),
            ));
        }
        for root in &self.file_roots {
            // Components() would quietly drop a ".": look at the text too.
            let text = root.to_string_lossy();
            let plain = root.is_absolute()
                && !text.split('/').any(|c| c == "." || c == "..")
                && root
                    .components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
            if !plain || root.parent().is_none() {
                errs.push((
                    "file_roots",
                    format!(
                        "{} is not an absolute path below / without '.' or '..'",
                        root.display()
                    ),
                ));
            }
        }
        if self.max_checkout_files == 0 {
            errs.push(("max_checkout_files", "must be at least 1".into()));
        }
        errs
    }
}

impl Nginx {
    fn cross_check(&self) -> Vec<(&'static str, String)> {
        let mut errs = vec![];
        if self.enabled && self.test_command.is_empty() {
            errs.push((
                "test_command",
                "must name a command while nginx.enabled".into(),
            ));
        }
        errs.extend(self.check_global_file());
        if self.tls_certificate.is_empty() != self.tls_certificate_key.is_empty() {
            errs.push((
                "tls_certificate_key",
                "set both tls_certificate and tls_certificate_key, or neither".into(),
            ));
        }
        for (k, template) in [
            ("tls_certificate", &self.tls_certificate),
            ("tls_certificate_key", &self.tls_certificate_key),
        ] {
            if !template.is_empty() && self.tls_path(template, "example.com").is_err() {
                errs.push((k, format!("{template:?} is not an absolute path of plain characters, with {{domain}} where the domain goes")));
            }
        }
        if self.listen_ip().is_err() {
            errs.push((
                "listen_address",
                "must be an IP address, or empty for every address".into(),
            ));
        }
        if self.listen_http == 0 || self.listen_https == 0 || self.listen_http == self.listen_https
        {
            errs.push((
                "listen_https",
                "listen_http and listen_https must be two different ports".into(),
            ));
        }
        errs
    }
}

impl Config {
    /// Checks what a single key's type cannot: references between keys.
    /// Returns `(key path, message)` pairs.
    pub fn cross_check(&self) -> Vec<(Vec<String>, String)> {
        let key = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut errs = vec![];
        if !self.profiles.contains_key(&self.agent.default_profile) {
            errs.push((
                key(&["agent", "default_profile"]),
                format!(
                    "names no profile; defined: {:?}",
                    self.profiles.keys().collect::<Vec<_>>()
                ),
            ));
        }
        errs.extend(
            self.api
                .cross_check()
                .into_iter()
                .map(|(k, m)| (key(&["api", k]), m)),
        );
        if self.ports.http.overlaps(&self.ports.code_server) {
            errs.push((key(&["ports", "code_server"]), "overlaps ports.http".into()));
        }
        if self.agent.socket.as_os_str().is_empty() {
            errs.push((key(&["agent", "socket"]), "must not be empty".into()));
        }
        if self.agent.state_dir.as_os_str().is_empty() {
            errs.push((key(&["agent", "state_dir"]), "must not be empty".into()));
        }
        errs.extend(
            self.nginx
                .cross_check()
                .into_iter()
                .map(|(k, m)| (key(&["nginx", k]), m)),
        );
        errs.extend(
            self.tls
                .cross_check(&self.nginx)
                .into_iter()
                .map(|(k, m)| (key(&["tls", k]), m)),
        );
        // nginx workers read the tokens, so the directory must not sit in the private state
        // directory (nor be a tree the agent would re-mode, such as `/`).
        let challenges = std::path::Path::new(self.tls.challenge_dir.as_str());
        if challenges == std::path::Path::new("/") || challenges.starts_with(&self.agent.state_dir)
        {
            errs.push((
                key(&["tls", "challenge_dir"]),
                "must be a directory of its own, outside agent.state_dir".into(),
            ));
        }
        if !self.docker.subnet_pool.is_empty() {
            match self.docker.subnet_pool.parse::<ipnet::Ipv4Net>() {
                Err(_) => errs.push((
                    key(&["docker", "subnet_pool"]),
                    "must be an IPv4 network like \"10.213.0.0/16\", or empty".into(),
                )),
                Ok(pool)
                    if self.docker.subnet_size < pool.prefix_len()
                        || self.docker.subnet_size > 29 =>
                {
                    errs.push((
                        key(&["docker", "subnet_size"]),
                        format!(
                            "must be between the pool's prefix length {} and 29",
                            pool.prefix_len()
                        ),
                    ))
                }
                Ok(_) => {}
            }
        }
        for p in &self.git.allowed_protocols {
            if !["https", "ssh", "http", "file"].contains(&p.as_str()) {
                errs.push((
                    key(&["git", "allowed_protocols"]),
                    format!("{p:?} is not one of https, ssh, http, file"),
                ));
            }
        }
        errs.extend(
            self.git
                .cross_check()
                .into_iter()
                .map(|(k, m)| (key(&["git", k]), m)),
        );
        errs.extend(super::images::cross_check(self));
        errs.extend(super::copies_check::cross_check(self));
        errs.extend(super::profile_check::cross_check(self));
        errs.extend(super::profile::cross_check_app_ports(self));
        for name in self.profiles.keys() {
            if crate::core::names::SubscriptionId::parse(name).is_err() {
                errs.push((
                    key(&["profiles", name]),
                    "a profile name is a DNS label (a-z, 0-9, '-')".into(),
                ));
            }
        }
        for (name, p) in &self.profiles {
            for (k, m) in p.admin_password.iter().flat_map(|a| a.cross_check()) {
                errs.push((key(&["profiles", name, "admin_password", k]), m));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_need_plain_roots() {
        let mut c = Config::default();
        c.git.allowed_protocols.push("file".into());
        let keys = |c: &Config| {
            c.cross_check()
                .into_iter()
                .map(|(k, _)| k.join("."))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&c), vec!["git.file_roots"]);
        c.git.file_roots = vec!["/srv/git".into()];
        assert!(keys(&c).is_empty());
        for bad in ["srv/git", "/srv/../etc", "/", "/srv/./git"] {
            c.git.file_roots = vec![bad.into()];
            assert_eq!(keys(&c), vec!["git.file_roots"], "{bad}");
        }
        c.git.file_roots = vec![];
        c.git.allowed_protocols.pop();
        c.git.max_checkout_files = 0;
        assert_eq!(keys(&c), vec!["git.max_checkout_files"]);
    }

    #[test]
    fn the_challenge_dir_stays_out_of_the_state_dir() {
        let keys = |c: &Config| {
            c.cross_check()
                .into_iter()
                .map(|(k, _)| k.join("."))
                .collect::<Vec<_>>()
        };
        let mut c = Config::default();
        assert!(keys(&c).is_empty());
        for bad in ["/var/lib/stagelet/acme", "/var/lib/stagelet", "/"] {
            c.tls.challenge_dir =
                crate::config::types::SafePath::try_from(bad.to_string()).unwrap();
            assert_eq!(keys(&c), vec!["tls.challenge_dir"], "{bad}");
        }
        c.tls.challenge_dir =
            crate::config::types::SafePath::try_from("/var/lib/stagelet-acme".to_string()).unwrap();
        assert!(keys(&c).is_empty());
    }

    #[test]
    fn admin_password_needs_a_known_hash_and_its_placeholder() {
        let mut c = Config::default();
        let odoo = c.profiles.get_mut("odoo").expect("the embedded profile");
        let how = odoo
            .admin_password
            .as_mut()
            .expect("odoo sets an admin password");
        how.hash = "md5".into();
        how.sql = "UPDATE res_users SET password = 'admin'".into();
        let keys: Vec<String> = c
            .cross_check()
            .into_iter()
            .map(|(k, _)| k.join("."))
            .collect();
        assert_eq!(
            keys,
            vec![
                "profiles.odoo.admin_password.hash",
                "profiles.odoo.admin_password.sql"
            ]
        );
    }
}
