//! Registry credentials for a pull: `[registries."HOST[:PORT]"]` first, then the `auths` of
//! `docker.auth_config` (the file `docker login` writes). Credential helpers are not run.
//! Nothing here logs, and no message carries a password.

use super::images::Registries;
use base64::Engine as _;
use std::fmt;
use std::path::Path;

/// Credentials for one registry. Its Debug never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    pub server: String,
    pub username: String,
    pub password: String,
    /// Where they came from, for error messages.
    pub source: String,
}

impl fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// The key `docker login` uses for Docker Hub.
const HUB: &str = "https://index.docker.io/v1/";

/// The credentials for `registry` (`HOST[:PORT]`, `docker.io` for Docker Hub), if any.
pub fn login_for(
    auth_config: &Path,
    registries: &Registries,
    registry: &str,
) -> Result<Option<RegistryLogin>, String> {
    if let Some(r) = registries.get(registry) {
        let password = super::images::read_password_file(&r.password_file)
            .map_err(|m| format!("[registries.\"{registry}\"] password_file: {m}"))?;
        return Ok(Some(RegistryLogin {
            server: registry.to_string(),
            username: r.username.clone(),
            password,
            source: format!("[registries.\"{registry}\"] of the agent's configuration"),
        }));
    }
    from_auth_config(auth_config, registry)
}

/// Where a registry's credentials would come from, for "check the credentials in …".
pub fn source_for(auth_config: &Path, registries: &Registries, registry: &str) -> String {
    if registries.contains_key(registry) {
        format!("[registries.\"{registry}\"] of the agent's configuration")
    } else {
        format!(
            "{} (docker.auth_config) or [registries.\"{registry}\"]",
            auth_config.display()
        )
    }
}

fn from_auth_config(path: &Path, registry: &str) -> Result<Option<RegistryLogin>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let wanted = |key: &str| {
        let k = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or(k);
        k == registry || (registry == "docker.io" && (key == HUB || k == "index.docker.io"))
    };
    let Some(entry) = auths.iter().find(|(k, _)| wanted(k)).map(|(_, v)| v) else {
        return Ok(None);
    };
    let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) else {
        return Ok(None);
    };
    let bad = || {
        format!(
            "{}: the auth of {registry} is not base64 of USER:PASSWORD",
            path.display()
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (user, password) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some(RegistryLogin {
        server: registry.to_string(),
        username: user.to_string(),
        password: password.to_string(),
        source: format!("{} (docker.auth_config)", path.display()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entries_are_found_by_host() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        std::fs::write(
            &p,
            format!(r#"{{"auths": {{"127.0.0.1:5001": {{"auth": "{auth}"}}, "https://index.docker.io/v1/": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        let l = from_auth_config(&p, "127.0.0.1:5001").unwrap().unwrap();
        assert_eq!(
            (l.username.as_str(), l.password.as_str()),
            ("bob", "s3cret")
        );
        assert!(from_auth_config(&p, "docker.io").unwrap().is_some());
        assert!(from_auth_config(&p, "other.example.com").unwrap().is_none());
        assert!(from_auth_config(&t.path().join("none"), "x")
            .unwrap()
            .is_none());
    }
}
