//! Images before containers: a stage's images are pulled by policy (`missing`, `always`,
//! `never`) before anything of the stage is made, one pull per image however many creates
//! need it, with progress as `pull` events.

use super::model::Stage;
use super::Stages;
use crate::core::settings::{Component, Profile, PullPolicy, Settings as Config};
use crate::core::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use crate::core::settings::RegistryLogin;

/// How far a pull has come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullProgress {
    pub layers: usize,
    pub layers_done: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// The registry an image reference names (`docker.io` when none).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// One lock per image: a create that finds another pulling waits for it, then sees the image.
fn image_lock(image: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    locks.entry(image.to_string()).or_default().clone()
}

/// The components a create makes containers of.
fn create_components(profile: &Profile) -> [&Component; 2] {
    [&profile.db, &profile.app]
}

/// One image of a profile as `agent.pull_images` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageDigest {
    pub image: String,
    pub digest: String,
}

impl Stages {
    /// Pulls every image of `profile` (default: the default profile) as its policy says,
    /// `missing` pulling only what the engine lacks. `never` counts as `missing` here: this
    /// explicit pre-pull is what a `never` create's error tells the operator to run.
    pub async fn pull_profile(
        &self,
        config: &Config,
        profile: Option<&str>,
    ) -> Result<Vec<ImageDigest>> {
        let name = profile.unwrap_or(&config.default_profile);
        let p = config.profiles.get(name).ok_or_else(|| {
            Error::invalid("profile", format!("{name:?} names no profile of the agent"))
        })?;
        let mut out: Vec<ImageDigest> = vec![];
        for c in [Some(&p.app), Some(&p.db), p.code_server.as_ref()]
            .into_iter()
            .flatten()
        {
            if out.iter().any(|d| d.image == c.image) {
                continue;
            }
            let policy = match c.pull {
                PullPolicy::Never => PullPolicy::Missing,
                other => other,
            };
            let digest = self.ensure_image(config, policy, &c.image, None).await?;
            out.push(ImageDigest {
                image: c.image.clone(),
                digest,
            });
        }
        Ok(out)
    }

    /// The digest of the image a container runs, by the engine's image id.
    pub(super) async fn running_digest(
        &self,
        info: &crate::core::interfaces::ContainerInfo,
    ) -> Option<String> {
        if info.image_id.is_empty() {
            return None;
        }
        self.deps
            .engine
            .image_digest(&info.image_id)
            .await
            .ok()
            .flatten()
            .filter(|d| !d.is_empty())
    }
    /// Refuses a create whose `pull = "never"` image the engine lacks, before anything is made.
    pub(super) async fn check_never_pulled(&self, profile: &Profile) -> Result<()> {
        for c in create_components(profile) {
            if c.pull == PullPolicy::Never
                && self.deps.engine.image_digest(&c.image).await?.is_none()
            {
                return Err(Error::Docker(format!(
                    "image {} is not on the engine and its profile says pull = \"never\": \
                     load or pull it first (stagectl images pull)",
                    c.image
                )));
            }
        }
        Ok(())
    }

    /// Pulls what the stage's containers need, as their policies say, with `pull` events.
    pub(super) async fn pull_for_create(
        &self,
        config: &Config,
        profile: &Profile,
        stage: &Stage,
    ) -> Result<()> {
        for c in create_components(profile) {
            self.ensure_image(config, c.pull, &c.image, Some((stage, "create")))
                .await?;
        }
        Ok(())
    }

    /// The image on the engine, pulled if the policy asks; returns its digest. With `event`
    /// (stage, operation) the pull shows as that operation's `pull` step.
    pub async fn ensure_image(
        &self,
        config: &Config,
        policy: PullPolicy,
        image: &str,
        event: Option<(&Stage, &str)>,
    ) -> Result<String> {
        let emit = |msg: String| {
            if let Some((s, op)) = event {
                self.emit(s, op, "pull", msg);
            }
        };
        let present = self.deps.engine.image_digest(image).await?;
        match (policy, present) {
            (PullPolicy::Never, None) => {
                return Err(Error::Docker(format!(
                    "image {image} is not on the engine and its profile says pull = \"never\""
                )))
            }
            (PullPolicy::Never | PullPolicy::Missing, Some(d)) => return Ok(d),
            _ => {}
        }
        let lock = image_lock(image);
        let _held = lock.lock().await;
        // Another create may have pulled it while this one waited.
        if policy == PullPolicy::Missing {
            if let Some(d) = self.deps.engine.image_digest(image).await? {
                emit(format!("{image}: pulled by another operation"));
                return Ok(d);
            }
        }
        let login = config
            .images
            .login_for(registry_of(image))
            .map_err(|m| Error::Docker(format!("pulling {image}: {m}")))?;
        let source = login.as_ref().map_or_else(
            || config.images.source_for(registry_of(image)),
            |l| l.source.clone(),
        );
        emit(format!("{image}: pulling from {}", registry_of(image)));
        let last = Mutex::new(Instant::now());
        let progress = |p: &PullProgress| {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= Duration::from_millis(500) {
                *last = Instant::now();
                emit(describe(image, p));
            }
        };
        let done = Mutex::new(PullProgress::default());
        let record = |p: PullProgress| {
            progress(&p);
            *done.lock().unwrap_or_else(|e| e.into_inner()) = p;
        };
        let pull = self
            .deps
            .engine
            .pull_image(image, login.as_ref(), &source, &record);
        let digest = tokio::time::timeout(PULL_TIMEOUT, pull)
            .await
            .map_err(|_| {
                Error::Docker(format!(
                    "pulling {image} from {}: timed out after {} minutes",
                    registry_of(image),
                    PULL_TIMEOUT.as_secs() / 60
                ))
            })??;
        let p = done.lock().unwrap_or_else(|e| e.into_inner()).clone();
        emit(format!("{} done, {digest}", describe(image, &p)));
        Ok(digest)
    }
}

/// The longest one pull may take: a registry that accepts the connection and never answers
/// must not hold a create (and the image's lock) forever; generous for multi-GB images.
const PULL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `IMAGE: N layers, X of Y bytes`.
fn describe(image: &str, p: &PullProgress) -> String {
    format!(
        "{image}: {} layers ({} done), {} of {} bytes",
        p.layers, p.layers_done, p.bytes_done, p.bytes_total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_of_references() {
        assert_eq!(registry_of("odoo:17.0"), "docker.io");
        assert_eq!(registry_of("codercom/code-server:4"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/x/y:1"), "127.0.0.1:5000");
        assert_eq!(
            registry_of("registry.example.com/acme/odoo:17.0"),
            "registry.example.com"
        );
        assert_eq!(registry_of("localhost/x"), "localhost");
    }

    #[test]
    fn a_login_never_shows_its_password() {
        let l = RegistryLogin {
            server: "r".into(),
            username: "u".into(),
            password: "hunter2".into(),
            source: "s".into(),
        };
        assert!(!format!("{l:?}").contains("hunter2"));
    }
}
