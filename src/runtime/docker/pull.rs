//! Images on the engine: whether one is there (its digest), pulling one with credentials and
//! progress, and the json-file log driver's caps. Messages name the image and the registry,
//! never a password.

use super::client::{is_not_found, DockerEngine};
use crate::core::stage::pull::{registry_of, PullProgress, RegistryLogin};
use crate::core::{Error, Result};
use bollard::auth::DockerCredentials;
use bollard::models::HostConfigLogConfig;
use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};

/// `name:latest` when a reference has neither tag nor digest: the engine would pull every tag.
pub fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The json-file driver with `max-size` and `max-file`.
pub fn log_config((max_mb, files): (u64, u32)) -> HostConfigLogConfig {
    HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(HashMap::from([
            ("max-size".to_string(), format!("{max_mb}m")),
            ("max-file".to_string(), files.to_string()),
        ])),
    }
}

/// The digest the engine knows `image` by: its registry digest, else its image id.
pub async fn digest(engine: &DockerEngine, image: &str) -> Result<Option<String>> {
    let d = engine.docker().await?;
    match d.inspect_image(&with_tag(image)).await {
        Ok(i) => Ok(Some(
            i.repo_digests
                .unwrap_or_default()
                .iter()
                .find_map(|r| r.split_once('@').map(|(_, d)| d.to_string()))
                .or(i.id)
                .unwrap_or_default(),
        )),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(engine.err(&format!("inspecting image {image}"), e)),
    }
}

/// Pulls `image`; `progress` sees the layer count and bytes as the engine reports them.
pub async fn pull(
    engine: &DockerEngine,
    image: &str,
    login: Option<&RegistryLogin>,
    source: &str,
    progress: &(dyn Fn(PullProgress) + Send + Sync),
) -> Result<String> {
    let d = engine.docker().await?;
    let reference = with_tag(image);
    let creds = login.map(|l| DockerCredentials {
        username: Some(l.username.clone()),
        password: Some(l.password.clone()),
        serveraddress: Some(l.server.clone()),
        ..Default::default()
    });
    let opts = CreateImageOptions {
        from_image: Some(reference.clone()),
        ..Default::default()
    };
    let mut stream = d.create_image(Some(opts), None, creds);
    // Per layer id: (current, total, done).
    let mut layers: BTreeMap<String, (u64, u64, bool)> = BTreeMap::new();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(i) => i,
            Err(e) => return Err(pull_error(image, source, &e.to_string())),
        };
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(pull_error(image, source, &detail));
        }
        let (Some(id), Some(status)) = (info.id, info.status) else {
            continue;
        };
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue; // the tag line, not a layer
        }
        let layer = layers.entry(id).or_default();
        match status.as_str() {
            "Downloading" => {
                if let Some(p) = info.progress_detail {
                    layer.0 = p.current.unwrap_or(0).max(0) as u64;
                    layer.1 = p.total.unwrap_or(0).max(0) as u64;
                }
            }
            "Download complete" | "Pull complete" | "Already exists" => {
                layer.0 = layer.0.max(layer.1);
                layer.2 = true;
            }
            _ => {}
        }
        progress(PullProgress {
            layers: layers.len(),
            layers_done: layers.values().filter(|l| l.2).count(),
            bytes_done: layers.values().map(|l| l.0).sum(),
            bytes_total: layers.values().map(|l| l.1).sum(),
        });
    }
    digest(engine, image)
        .await?
        .ok_or_else(|| pull_error(image, source, "the engine does not hold it after the pull"))
}

/// "pull access denied for IMAGE: check the credentials in …", or what the registry said.
fn pull_error(image: &str, source: &str, said: &str) -> Error {
    let registry = registry_of(image);
    let lower = said.to_lowercase();
    if lower.contains("denied")
        || lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("no basic auth")
    {
        Error::Docker(format!(
            "pull access denied for {image} at registry {registry}: check the credentials in {source} (the registry said: {said})"
        ))
    } else {
        Error::Docker(format!(
            "pulling {image} from registry {registry} failed: {said}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_references_get_latest() {
        assert_eq!(with_tag("odoo"), "odoo:latest");
        assert_eq!(with_tag("odoo:17.0"), "odoo:17.0");
        assert_eq!(with_tag("127.0.0.1:5000/x/y"), "127.0.0.1:5000/x/y:latest");
        assert_eq!(with_tag("127.0.0.1:5000/x/y:2"), "127.0.0.1:5000/x/y:2");
        assert_eq!(with_tag("x@sha256:ab"), "x@sha256:ab");
    }
}
