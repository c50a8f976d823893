//! `stage.deploy`: fetch a branch into the stage's bare mirror, check its tip out aside, decide
//! the modules to update, lay it into the addons directory, record what was deployed, restart
//! the app. With an update to run, deploy_update.rs takes over from the checkout. Input is
//! validated before anything runs; a failed fetch or checkout leaves the addons as they were.

use super::common::{grace, profile_of};
use super::containers::{stop_signal, APP};
use super::deploy_plan::{check_names, plan, Modules, UpdateModules, MANIFEST};
use super::deploy_update::NewCode;
use super::model::{Stage, StageState};
use super::transitions::Operation;
use super::{naming, Stages};
use crate::core::interfaces::{CheckoutLimits, FetchRequest};
use crate::core::settings::{Profile, Settings};
use crate::core::time::{self, Timestamp};
use crate::core::{git_input, Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Whether the controller has linked a webhook that calls `stage.deploy` (it owns the hook).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    #[default]
    NotLinked,
    Linked,
}

impl WebhookState {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "not_linked" => Ok(Self::NotLinked),
            "linked" => Ok(Self::Linked),
            _ => Err(Error::invalid(
                "webhook_state",
                format!("{s:?} is not one of not_linked, linked"),
            )),
        }
    }
}

/// What was deployed last; part of the record and of the API's Stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitState {
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub last_commit: Option<String>,
    pub last_commit_message: Option<String>,
    pub commit_count: Option<u64>,
    pub clear_destination: bool,
    #[serde(default)]
    pub webhook_state: WebhookState,
    #[serde(default, with = "::time::serde::rfc3339::option")]
    pub deployed_at: Option<Timestamp>,
}

/// `stage.deploy` as the core takes it.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub repository: String,
    pub branch: String,
    pub clear_destination: bool,
    pub restart: bool,
    /// Submodules are left out unless asked for.
    pub submodules: bool,
    /// Which modules the profile's `update_command` updates (deploy_plan.rs).
    pub update: UpdateModules,
}

impl DeployRequest {
    /// The API's parameters, with the defaults: keep what the addons directory holds beside
    /// the checkout, restart the app, leave submodules out, update the changed modules.
    pub fn new(
        repository: String,
        branch: String,
        clear_destination: Option<bool>,
        restart: Option<bool>,
        submodules: Option<bool>,
        update: Option<UpdateModules>,
    ) -> Self {
        DeployRequest {
            repository,
            branch,
            clear_destination: clear_destination.unwrap_or(false),
            restart: restart.unwrap_or(true),
            submodules: submodules.unwrap_or(false),
            update: update.unwrap_or_default(),
        }
    }
}

impl Stages {
    pub async fn deploy(
        &self,
        config: &Settings,
        reference: &str,
        req: DeployRequest,
    ) -> Result<Stage> {
        let repo = git_input::repository(&req.repository, &config.git.allowed_protocols)?;
        let branch = git_input::branch(&req.branch)?;
        let update = match &req.update {
            UpdateModules::Named(names) => UpdateModules::Named(check_names(names)?),
            other => other.clone(),
        };
        let (_g, mut stage) = self.begin(reference, Operation::Deploy).await?;
        // A deploy a crash interrupted is rolled back before another starts.
        self.recover_deploy(config, &mut stage).await?;
        let profile = profile_of(config, &stage.profile)?;
        let (sub, name) = (stage.subscription.to_string(), stage.name.to_string());
        let fetch = FetchRequest {
            cache: self.deps.dirs.git_cache(&sub, &name),
            url: repo.url.clone(),
            branch: branch.clone(),
            subscription: sub.to_string(),
            protocols: config.git.allowed_protocols.clone(),
            timeout: config.git.timeout.0,
            submodules: req.submodules,
            limits: CheckoutLimits {
                max_bytes: config.git.max_checkout_mb.saturating_mul(1 << 20),
                max_files: config.git.max_checkout_files,
            },
            file_roots: config.git.file_roots.iter().map(PathBuf::from).collect(),
        };
        self.emit(
            &stage,
            "deploy",
            "fetch",
            format!("{branch} from {}", repo.url),
        );
        let commit = self.deps.git.fetch(&fetch).await?;
        self.emit(&stage, "deploy", "checkout", commit.hash.clone());
        let scratch = self.deps.dirs.scratch(&sub, &name).await?;
        let checked_out = match self.deps.git.export(&fetch, &commit.hash, &scratch).await {
            Ok(()) => {
                self.modules_to_update(profile, &stage, &fetch, &commit.hash, &scratch, &update)
                    .await
            }
            Err(e) => Err(e),
        };
        let modules = match checked_out {
            Ok(m) => m,
            Err(e) => {
                let _ = self.deps.dirs.drop_scratch(&sub, &name).await;
                return Err(e);
            }
        };
        let git = GitState {
            repository: Some(repo.url),
            branch: Some(branch),
            last_commit: Some(commit.hash.clone()),
            last_commit_message: Some(commit.subject.clone()),
            commit_count: Some(commit.count),
            clear_destination: req.clear_destination,
            webhook_state: stage.git.webhook_state,
            deployed_at: Some(time::now()),
        };
        let running = req.restart && stage.state == StageState::Running;
        match modules {
            Some(Modules::Nothing(why)) => {
                self.emit(&stage, "deploy", "update", format!("none: {why}"))
            }
            Some(m) if running => {
                let new = NewCode {
                    scratch: &scratch,
                    clear: req.clear_destination,
                    git,
                    modules: m,
                };
                self.deploy_with_update(config, profile, &mut stage, new)
                    .await?;
                self.emit(
                    &stage,
                    "deploy",
                    "done",
                    format!("{} {}", commit.hash, commit.subject),
                );
                return Ok(stage);
            }
            Some(m) => self.emit(
                &stage,
                "deploy",
                "update",
                format!(
                    "not run for {}: the app is not restarted by this deploy",
                    m.placeholder()
                ),
            ),
            None => {}
        }
        self.emit(
            &stage,
            "deploy",
            "addons",
            if req.clear_destination {
                "cleared, then laid out"
            } else {
                "laid over"
            },
        );
        self.deps
            .dirs
            .lay_out_dir(&sub, &name, "addons", &scratch, req.clear_destination)
            .await?;
        self.own_dirs(profile, &sub, &name, Some("addons")).await?;
        stage.git = git;
        self.save(&stage).await?;
        if running {
            self.emit(&stage, "deploy", "restart", "app");
            self.restart_app(config, &mut stage).await?;
        }
        self.emit(
            &stage,
            "deploy",
            "done",
            format!("{} {}", commit.hash, commit.subject),
        );
        Ok(stage)
    }

    /// What the update runs on, decided from the checkout in `scratch`; `None` when the
    /// profile has no `update_command` and `update` names nothing to check.
    async fn modules_to_update(
        &self,
        profile: &Profile,
        stage: &Stage,
        fetch: &FetchRequest,
        new: &str,
        scratch: &Path,
        update: &UpdateModules,
    ) -> Result<Option<Modules>> {
        if profile.update_command.is_empty() && !matches!(update, UpdateModules::Named(_)) {
            return Ok(None);
        }
        let in_checkout = self.deps.dirs.folders_with(scratch, MANIFEST).await?;
        // "changed" compares with the deployed commit of the same repository only.
        let old = match (&stage.git.repository, &stage.git.last_commit) {
            (Some(r), Some(c)) if *r == fetch.url && matches!(update, UpdateModules::Changed) => {
                Some(c)
            }
            _ => None,
        };
        let changed = match old {
            Some(old) => self.deps.git.changed_top_level(fetch, old, new).await?,
            None => None,
        };
        let modules = plan(update, &in_checkout, changed.as_ref())?;
        Ok((!profile.update_command.is_empty()).then_some(modules))
    }

    pub async fn deploy_key(&self, subscription: &str) -> Result<String> {
        self.deps.git.deploy_key(subscription).await
    }

    /// The app alone, so it loads the new code; the database keeps running. An app with a
    /// readiness check is behind nginx's 503 until it passes it, never a 502.
    async fn restart_app(&self, config: &Settings, stage: &mut Stage) -> Result<()> {
        let profile = profile_of(config, &stage.profile)?;
        if profile.app.readiness.is_some() {
            self.app_down(config, profile, stage).await?;
            return self.app_up(config, profile, stage).await;
        }
        let signal = stop_signal(Some(&profile.app), APP);
        let name = naming(config).container(stage, APP);
        self.deps
            .engine
            .stop_container(&name, &signal, grace(config, profile, stage, None))
            .await?;
        self.write_app_config(profile, stage).await?;
        self.deps.engine.start_container(&name).await?;
        self.wait_ready(config, profile, stage).await
    }

    /// Waits until the restarted app serves: the profile's readiness check (readiness.rs).
    pub(super) async fn app_ready(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
    ) -> Result<()> {
        self.wait_ready(config, profile, stage).await
    }
}

#[cfg(test)]
#[path = "deploy_tests.rs"]
mod tests;
