//! What a client sends for a deploy, checked before anything runs: the repository URL and the
//! branch. Neither may become an option, a transport command or a credential on a command line.

use super::{Error, Result};

/// A repository URL that passed every check, and the protocol it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl {
    pub url: String,
    pub protocol: &'static str,
}

fn bad(field: &str, why: impl Into<String>) -> Error {
    Error::invalid(field, why)
}

/// Checks a repository URL against `allowed` protocols (`git.allowed_protocols`).
pub fn repository(raw: &str, allowed: &[String]) -> Result<RepoUrl> {
    let f = "repository";
    if raw.is_empty() || raw.len() > 2048 {
        return Err(bad(f, "must be 1 to 2048 characters"));
    }
    if raw.starts_with('-') {
        return Err(bad(f, "must not start with '-'"));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(f, "must not contain spaces or control characters"));
    }
    let transport = raw.split_once("::").is_some_and(|(word, _)| {
        word.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    if transport {
        return Err(bad(
            f,
            "the '<transport>::' form runs commands and is refused",
        ));
    }
    let (protocol, authority, path) = match raw.split_once("://") {
        Some((scheme, rest)) => {
            let protocol = match scheme.to_ascii_lowercase().as_str() {
                "https" => "https",
                "http" => "http",
                "ssh" => "ssh",
                "file" => "file",
                other => {
                    return Err(bad(
                        f,
                        format!("{other:?} is not a git protocol stagelet uses"),
                    ))
                }
            };
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            (protocol, authority, path)
        }
        // scp-like `[user@]host:path` is ssh; a bare local path must say file://.
        None => match raw.split_once(':') {
            // `file:/path` would be ssh to a host named `file`: a URL missing its `//`.
            Some((scheme, _)) if ["file", "https", "http", "ssh"].contains(&scheme.to_ascii_lowercase().as_str()) => {
                return Err(bad(
                    f,
                    format!("{scheme}: without '//' is not a URL; write {scheme}:///path or {scheme}://host/path"),
                ))
            }
            Some((authority, path)) if !authority.contains('/') && !authority.is_empty() => {
                ("ssh", authority, path)
            }
            _ => {
                return Err(bad(
                    f,
                    "is neither a URL (https://, ssh://, file://) nor user@host:path",
                ))
            }
        },
    };
    if !allowed.iter().any(|p| p == protocol) {
        return Err(bad(
            f,
            format!(
                "protocol {protocol} is not in git.allowed_protocols ({})",
                allowed.join(", ")
            ),
        ));
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    match (protocol, userinfo) {
        (_, None) => {}
        ("ssh", Some(user))
            if !user.contains(':') && !user.is_empty() && !user.starts_with('-') => {}
        _ => {
            return Err(bad(
                f,
                "credentials in the URL are refused; use the subscription's deploy key over ssh",
            ))
        }
    }
    let host = if hostport.starts_with('[') {
        hostport
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c));
    if protocol != "file" && (host.is_empty() || host.starts_with('-') || !host_ok) {
        return Err(bad(f, format!("{host:?} is not a host name")));
    }
    if protocol == "file" && !authority.is_empty() {
        return Err(bad(f, "file:// URLs take no host: file:///path"));
    }
    // Plain so that the path checked against git.file_roots is the one git opens.
    let plain = path
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != "..");
    if protocol == "file" && (path.contains('%') || !plain) {
        return Err(bad(
            f,
            "a file:// path must be plain: no '%', '.', '..' or empty parts",
        ));
    }
    if path.starts_with('-') {
        return Err(bad(f, "the path must not start with '-'"));
    }
    Ok(RepoUrl {
        url: raw.to_string(),
        protocol,
    })
}

/// A branch name by `git check-ref-format --branch` rules, and never an option.
pub fn branch(raw: &str) -> Result<String> {
    let f = "branch";
    let refuse = |why: &str| Err(bad(f, format!("{raw:?} is not a branch name: {why}")));
    if raw.is_empty() || raw.len() > 255 {
        return refuse("it must be 1 to 255 bytes");
    }
    if raw.starts_with('-') {
        return refuse("it must not start with '-'");
    }
    if raw == "@" || raw.contains("@{") || raw.contains("..") || raw.contains("//") {
        return refuse("'@', '@{', '..' and '//' are not allowed");
    }
    if raw
        .chars()
        .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
    {
        return refuse("spaces, control characters and ~ ^ : ? * [ \\ are not allowed");
    }
    if raw.starts_with('/') || raw.ends_with('/') || raw.ends_with('.') {
        return refuse("it must not start or end with '/' or end with '.'");
    }
    if raw
        .split('/')
        .any(|c| c.starts_with('.') || c.ends_with(".lock"))
    {
        return refuse("no part may start with '.' or end with '.lock'");
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        ["https", "ssh", "file", "http"].map(String::from).to_vec()
    }

    #[test]
    fn good_repositories() {
        for (url, protocol) in [
            ("https://github.com/odoo/odoo.git", "https"),
            ("ssh://git@github.com:22/acme/addons.git", "ssh"),
            ("git@github.com:acme/addons.git", "ssh"),
            ("file:///srv/git/addons.git", "file"),
            ("https://[2001:db8::1]/x.git", "https"),
        ] {
            assert_eq!(repository(url, &all()).unwrap().protocol, protocol, "{url}");
        }
    }

    #[test]
    fn hostile_repositories_name_the_field() {
        for url in [
            "",
            "-oProxyCommand=touch /tmp/pwned",
            "--upload-pack=touch /tmp/pwned",
            "ext::sh -c touch% /tmp/pwned",
            "fd::17",
            "git+ext::x",
            "ssh://-oProxyCommand=touch%20/tmp/pwned/x",
            "git@-oProxyCommand=x:y",
            "ssh://-user@host/x",
            "https://user:secret@github.com/x.git",
            "https://token@github.com/x.git",
            "ssh://git:pw@host/x",
            "https://host/x\n",
            "https://host/x y",
            "ftp://host/x",
            "/srv/git/local",
            "file://host/srv/x",
            "file:/srv/x",
            "FILE:/srv/x",
            "https:/host/x",
            "file:tmp/x",
            "file:///srv/../etc",
            "file:///srv/./x",
            "file:///srv//x",
            "file:///srv/x/",
            "file:///srv/%2e%2e/x",
            "https://host/-x",
            "https://ho$t/x",
        ] {
            match repository(url, &all()) {
                Err(Error::InvalidParams { field, .. }) => assert_eq!(field, "repository"),
                other => panic!("{url:?}: {other:?}"),
            }
        }
        // Allowed protocols come from the configuration.
        let default = vec!["https".to_string(), "ssh".to_string()];
        assert!(repository("file:///srv/x", &default).is_err());
        assert!(repository("http://host/x", &default).is_err());
    }

    #[test]
    fn branches_follow_check_ref_format() {
        for ok in ["17.0", "main", "feature/login", "release-2026.11", "a_b"] {
            assert_eq!(branch(ok).unwrap(), ok);
        }
        for bad in [
            "", "-f", "--orphan", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "@",
            "a@{1}", "/a", "a/", "a.", "a//b", ".hidden", "a/.b", "x.lock", "a\u{1}b", "a\u{7f}",
        ] {
            match branch(bad) {
                Err(Error::InvalidParams { field, .. }) => assert_eq!(field, "branch"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
