//! A deploy with an update, and its rollback. The app stops (nginx answers 503), the database
//! is copied to a snapshot, the new code is laid out with the old kept aside, the profile's
//! `update_command` runs in a one-off container, the app starts and must pass its readiness
//! check. A failure puts the old code and the snapshot back and starts the app on them. The
//! record's `step` marks each stretch, so start-up finishes what a crash interrupted.

use super::common::{grace, site};
use super::containers::{stop_signal, APP, UPDATE};
use super::deploy::GitState;
use super::deploy_plan::{self as plan, Modules};
use super::model::{Stage, StageState, Step};
use super::{naming, Stages};
use crate::core::settings::{Profile, Settings};
use crate::core::site::SiteState;
use crate::core::{Error, Result};
use std::path::Path;
use std::time::Duration;

/// How long `update_command` may run (an update of every module of a large database is slow).
const UPDATE_TIMEOUT: Duration = Duration::from_secs(1800);
/// Attempts at the snapshot and its restore: a session may connect between the termination of
/// the others and the template copy or rename.
const DB_ATTEMPTS: u32 = 3;

/// The stage's directory the checkout goes into.
const ADDONS: &str = "addons";

/// Why an update was rolled back.
enum Failed {
    /// `update_command` exited non-zero: its code and its last lines.
    Update(i64, String),
    /// The app on the new code did not pass its readiness check.
    Ready(Error, String),
    /// Anything else (laying out, the engine); returned as it is once rolled back.
    Other(Error),
}

/// The update's last lines, one per entry, at most 50.
fn tail_lines(tail: &str) -> Vec<String> {
    let lines: Vec<String> = tail
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(50)..].to_vec()
}

/// What a deploy lays out and updates.
pub(super) struct NewCode<'a> {
    /// The checkout, consumed.
    pub scratch: &'a Path,
    /// `clear_destination`.
    pub clear: bool,
    /// The record's `git` once it is in.
    pub git: GitState,
    pub modules: Modules,
}

impl Stages {
    /// The new code, updated, or the old code and database back: see the module's doc. The
    /// stage's lock is held by the caller.
    pub(super) async fn deploy_with_update(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &mut Stage,
        new: NewCode<'_>,
    ) -> Result<()> {
        let (sub, name) = (stage.subscription.to_string(), stage.name.to_string());
        let prepared = async {
            self.set_step(stage, Some(Step::DeploySnapshot)).await?;
            self.emit(
                stage,
                "deploy",
                "stop",
                "the app stops for the update; nginx answers 503",
            );
            self.app_down(config, profile, stage).await?;
            self.emit(
                stage,
                "deploy",
                "snapshot",
                plan::snapshot_name(stage.db_name()),
            );
            self.take_snapshot(config, profile, stage).await?;
            self.set_step(stage, Some(Step::DeployUpdate)).await
        }
        .await;
        if let Err(e) = prepared {
            let _ = self.deps.dirs.drop_scratch(&sub, &name).await;
            self.abandon_snapshot(config, profile, stage).await;
            return Err(e);
        }
        match self.lay_out_and_update(config, profile, stage, &new).await {
            Ok(()) => {
                stage.git = new.git;
                self.set_step(stage, None).await?;
                self.emit(stage, "deploy", "cleanup", "snapshot and old code removed");
                let drop = plan::drop_snapshot_sql(stage.db_name());
                if let Err(e) = self.run_sql(config, profile, stage, drop).await {
                    tracing::warn!(stage = %stage.reference(), error = %e, "the deploy's snapshot stays");
                }
                if let Err(e) = self.deps.dirs.drop_kept(&sub, &name).await {
                    tracing::warn!(stage = %stage.reference(), error = %e, "the deploy's old code stays");
                }
                Ok(())
            }
            Err(failed) => Err(self.after_failure(config, profile, stage, failed).await),
        }
    }

    /// Addons, update, restart: the stretch a failure rolls back.
    async fn lay_out_and_update(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &mut Stage,
        new: &NewCode<'_>,
    ) -> std::result::Result<(), Failed> {
        let (scratch, clear, modules) = (new.scratch, new.clear, &new.modules);
        let (sub, name) = (stage.subscription.to_string(), stage.name.to_string());
        self.emit(
            stage,
            "deploy",
            "addons",
            "laid out; the old code kept aside",
        );
        self.deps
            .dirs
            .lay_out_kept(&sub, &name, ADDONS, scratch, clear)
            .await
            .map_err(Failed::Other)?;
        self.own_dirs(profile, &sub, &name, Some(ADDONS))
            .await
            .map_err(Failed::Other)?;
        // The update reads the configuration file the app will.
        self.write_app_config(profile, stage)
            .await
            .map_err(Failed::Other)?;
        let argv = plan::update_argv(&profile.update_command, modules);
        let spec = self.with_specs(config, profile, stage, |ctx| ctx.one_off(UPDATE, &argv));
        self.emit(stage, "deploy", "update", modules.placeholder());
        let owner = naming(config).owner(stage);
        let (code, tail) = self
            .deps
            .engine
            .run_to_completion(&spec, &owner, UPDATE_TIMEOUT)
            .await
            .map_err(Failed::Other)?;
        if code != 0 {
            return Err(Failed::Update(code, tail));
        }
        self.emit(stage, "deploy", "restart", "app on the new code");
        self.app_up(config, profile, stage)
            .await
            .map_err(|e| Failed::Ready(e, tail))
    }

    /// Rolls back, and says what the client gets.
    async fn after_failure(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &mut Stage,
        failed: Failed,
    ) -> Error {
        let old = stage
            .git
            .last_commit
            .clone()
            .unwrap_or_else(|| "none".into());
        let (why, tail) = match &failed {
            Failed::Update(code, tail) => (format!("the update exited with {code}"), tail.clone()),
            Failed::Ready(e, tail) => (
                format!("the app did not pass its readiness check on the new code: {e}"),
                tail.clone(),
            ),
            Failed::Other(e) => (e.to_string(), String::new()),
        };
        tracing::warn!(stage = %stage.reference(), reason = %why, "deploy failed; rolling back");
        if let Err(e) = self.roll_back_update(config, profile, stage, &why).await {
            tracing::error!(stage = %stage.reference(), error = %e, "the deploy's rollback failed");
            return Error::internal(
                format!("{why}; rolling back failed too, the agent tries again at its next start"),
                e,
            );
        }
        let came_back = match self.app_up(config, profile, stage).await {
            Ok(()) => String::new(),
            Err(e) => format!("; the app on the old code did not come back: {e}"),
        };
        match failed {
            Failed::Other(e) if came_back.is_empty() => e,
            _ => Error::DeployFailed {
                message: format!(
                    "{why}; the code and the database were rolled back to commit {old}{came_back}"
                ),
                log_tail: tail_lines(&tail),
            },
        }
    }

    /// Stops the app; puts the old code and the snapshot back; clears the step. The app is
    /// left stopped (the caller starts it). Also what start-up runs after a crash.
    async fn roll_back_update(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &mut Stage,
        why: &str,
    ) -> Result<()> {
        let (sub, name) = (stage.subscription.to_string(), stage.name.to_string());
        self.emit(stage, "deploy", "rollback", why.to_string());
        let naming = naming(config);
        // A crash may have left the update running: it must not write on.
        let update = naming.container(stage, UPDATE);
        self.deps
            .engine
            .remove_container(&update, &naming.owner(stage))
            .await?;
        self.app_down(config, profile, stage).await?;
        if self.deps.dirs.put_back(&sub, &name, ADDONS).await? {
            self.own_dirs(profile, &sub, &name, Some(ADDONS)).await?;
        }
        self.emit(
            stage,
            "deploy",
            "rollback",
            "old code back; restoring the snapshot",
        );
        self.restore_snapshot(config, profile, stage).await?;
        self.set_step(stage, None).await
    }

    /// Finishes a deploy a crash interrupted (the step says where): the old code and database
    /// back, the app started. Called with the stage's lock held.
    pub(super) async fn recover_deploy(&self, config: &Settings, stage: &mut Stage) -> Result<()> {
        if !matches!(stage.step, Some(Step::DeploySnapshot | Step::DeployUpdate)) {
            return Ok(());
        }
        let profile = super::common::profile_of(config, &stage.profile)?;
        match stage.step {
            Some(Step::DeploySnapshot) => self.abandon_snapshot(config, profile, stage).await,
            Some(Step::DeployUpdate) => {
                let why = "a deploy was interrupted by an agent restart";
                self.roll_back_update(config, profile, stage, why).await?;
                if stage.state == StageState::Running {
                    self.app_up(config, profile, stage).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Nothing was changed but the app stopped and perhaps a snapshot made: drop it, start
    /// the app, clear the step. Failures are logged: the stage keeps its old code and data.
    async fn abandon_snapshot(&self, config: &Settings, profile: &Profile, stage: &mut Stage) {
        let drop = plan::drop_snapshot_sql(stage.db_name());
        if let Err(e) = self.run_sql(config, profile, stage, drop).await {
            tracing::warn!(stage = %stage.reference(), error = %e, "an abandoned snapshot stays");
        }
        if let Err(e) = self.set_step(stage, None).await {
            tracing::error!(stage = %stage.reference(), error = %e, "cannot clear the deploy's step");
        }
        if stage.state == StageState::Running {
            if let Err(e) = self.app_up(config, profile, stage).await {
                tracing::error!(stage = %stage.reference(), error = %e, "the app did not come back");
            }
        }
    }

    async fn set_step(&self, stage: &mut Stage, step: Option<Step>) -> Result<()> {
        stage.step = step;
        self.save(stage).await
    }

    /// nginx answers 503 (the code server keeps its block), then the app stops.
    pub(super) async fn app_down(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
    ) -> Result<()> {
        let mut down = site(config, stage, SiteState::Stopped);
        down.code_server = site(config, stage, SiteState::Running).code_server;
        self.deps.proxy.apply(down).await?;
        let name = naming(config).container(stage, APP);
        let signal = stop_signal(Some(&profile.app), APP);
        let grace = grace(config, profile, stage, None);
        self.deps
            .engine
            .stop_container(&name, &signal, grace)
            .await
            .map(|_| ())
    }

    /// The app starts, passes its readiness check, and nginx proxies to it again.
    pub(super) async fn app_up(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &mut Stage,
    ) -> Result<()> {
        // The configuration file as the template is now, like every start of the app.
        self.write_app_config(profile, stage).await?;
        let name = naming(config).container(stage, APP);
        self.deps.engine.start_container(&name).await?;
        self.app_ready(config, profile, stage).await?;
        let up = site(config, stage, SiteState::Running);
        self.deps.proxy.apply(up).await
    }

    /// A template copy of the stage's database, owned as it is; the app is stopped.
    async fn take_snapshot(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
    ) -> Result<()> {
        let mut attempt = 1;
        loop {
            let sql = plan::snapshot_sql(stage.db_name());
            match self.run_sql(config, profile, stage, sql).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= DB_ATTEMPTS => {
                    return Err(Error::Database(format!(
                        "taking the deploy's snapshot: {e}"
                    )))
                }
                Err(_) => attempt += 1,
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The snapshot renamed in for the database, while it exists; idempotent.
    async fn restore_snapshot(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
    ) -> Result<()> {
        let target = self.db_target(&naming(config), stage, profile).await?;
        let db = stage.db_name();
        let mut attempt = 1;
        loop {
            let left = self
                .deps
                .db
                .count(&target, "postgres", &plan::snapshot_count_sql(db))
                .await?;
            if left == 0 {
                return Ok(());
            }
            match self
                .deps
                .db
                .each(&target, "postgres", &plan::restore_sql(db))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= DB_ATTEMPTS => {
                    return Err(Error::Database(format!(
                        "restoring the deploy's snapshot: {e}"
                    )))
                }
                Err(_) => attempt += 1,
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Runs statements on the stage's maintenance database, one by one.
    async fn run_sql(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
        statements: Vec<String>,
    ) -> Result<()> {
        let target = self.db_target(&naming(config), stage, profile).await?;
        self.deps.db.each(&target, "postgres", &statements).await
    }
}
