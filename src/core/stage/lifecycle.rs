//! The operations on an existing stage: stop, start, restart, terminate, restore, cancel,
//! update. Each checks the transition table first and holds the stage's lock throughout.

use super::common::{check_grace, grace, parse_end_date, profile_of, site};
use super::containers::{stop_signal, APP, DB};
use super::model::{Stage, StageState, StageType, Step, StopReason};
use super::transitions::Operation;
use super::{naming, Stages};
use crate::core::settings::Settings;
use crate::core::site::SiteState;
use crate::core::{time, Error, Result};
use std::time::Duration;

/// `stage.update`: absent fields stay as they are; `end_date: ""` clears it.
#[derive(Debug, Clone, Default)]
pub struct StagePatch {
    pub end_date: Option<String>,
    pub stage_type: Option<String>,
    pub grace_period_s: Option<u64>,
    /// `not_linked` or `linked`: set by the controller, which owns the webhook.
    pub webhook_state: Option<String>,
}

pub fn retention(config: &Settings, t: StageType) -> Duration {
    let r = &config.lifecycle.retention;
    match t {
        StageType::Dev => r.dev.0,
        StageType::Qa => r.qa.0,
        StageType::Prod => r.prod.0,
    }
}

/// A stage whose end date (plus `expiry_grace`) has passed.
pub fn expired(config: &Settings, stage: &Stage, now: time::Timestamp) -> bool {
    stage
        .end_date
        .is_some_and(|end| end + config.lifecycle.expiry_grace.0 <= now)
}

impl Stages {
    /// Locks the stage and re-reads it: what it is once no other operation runs on it.
    pub(super) async fn lock_stage(
        &self,
        reference: &str,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, Stage)> {
        let uuid = self.find(reference)?.uuid;
        let guard = self.lock_of(uuid).lock_owned().await;
        Ok((guard, self.find(&uuid.to_string())?))
    }

    /// Locks the stage, re-reads it and checks that `op` may run now.
    pub(super) async fn begin(
        &self,
        reference: &str,
        op: Operation,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, Stage)> {
        let (guard, stage) = self.lock_stage(reference).await?;
        op.check(&stage.reference(), stage.state)?;
        // A deploy whose rollback did not finish: only a deploy (or the start-up reconcile)
        // finishes it; anything else would run on, and later lose, the failed update's data.
        if let Some(step @ (Step::DeploySnapshot | Step::DeployUpdate)) = stage.step {
            if op != Operation::Deploy {
                return Err(Error::InvalidState {
                    what: format!("{} (a deploy's rollback is unfinished)", stage.reference()),
                    state: step.as_str().into(),
                    allowed: vec!["deploy".into()],
                });
            }
        }
        Ok((guard, stage))
    }

    pub async fn stop(
        &self,
        config: &Settings,
        reference: &str,
        grace_s: Option<u64>,
        reason: StopReason,
    ) -> Result<Stage> {
        let grace_s = check_grace(grace_s)?;
        let (_g, mut stage) = self.begin(reference, Operation::Stop).await?;
        self.stop_locked(config, &mut stage, grace_s, reason)
            .await?;
        Ok(stage)
    }

    /// nginx answers 503 first; then the app, then the db, each with its signal and grace.
    pub(super) async fn stop_locked(
        &self,
        config: &Settings,
        stage: &mut Stage,
        grace_s: Option<u64>,
        reason: StopReason,
    ) -> Result<()> {
        let profile = profile_of(config, &stage.profile)?;
        let naming = naming(config);
        let grace = grace(config, profile, stage, grace_s);
        self.emit(stage, "stop", "nginx", "503 while stopped");
        self.deps
            .proxy
            .apply(site(config, stage, SiteState::Stopped))
            .await?;
        self.code_follow_stop(config, stage).await?;
        for (role, component) in [(APP, &profile.app), (DB, &profile.db)] {
            let signal = stop_signal(Some(component), role);
            let outcome = self
                .deps
                .engine
                .stop_container(&naming.container(stage, role), &signal, grace)
                .await?;
            self.emit(stage, "stop", role, format!("{outcome:?}"));
        }
        if stage.state != StageState::Stopped || stage.stop_reason.is_none() {
            stage.stop_reason = Some(reason);
        }
        stage.apply(Operation::Stop)?;
        self.save(stage).await?;
        self.emit(stage, "stop", "stopped", "");
        Ok(())
    }

    pub async fn start(&self, config: &Settings, reference: &str) -> Result<Stage> {
        let (_g, mut stage) = self.begin(reference, Operation::Start).await?;
        self.start_locked(config, &mut stage).await?;
        Ok(stage)
    }

    async fn start_locked(&self, config: &Settings, stage: &mut Stage) -> Result<()> {
        if expired(config, stage, time::now()) {
            return Err(Error::InvalidState {
                what: format!(
                    "stage {} passed its end_date; move it with stage.update before start: it",
                    stage.reference()
                ),
                state: "expired".into(),
                allowed: vec![],
            });
        }
        let profile = profile_of(config, &stage.profile)?;
        let naming = naming(config);
        let started = async {
            // Before any app container is made or started: the template as it is now.
            self.write_app_config(profile, stage).await?;
            // Containers removed behind the agent's back come again from the record.
            self.recreate_missing(config, profile, stage).await?;
            self.start_db(&naming, stage, profile).await?;
            self.deps
                .engine
                .start_container(&naming.container(stage, APP))
                .await?;
            // nginx keeps its 503 until the app answers; a timeout stops the stage below.
            self.wait_ready(config, profile, stage).await?;
            self.code_follow_start(config, stage).await?;
            self.deps
                .proxy
                .apply(site(config, stage, SiteState::Running))
                .await
        }
        .await;
        if let Err(e) = started {
            // Stopped as before, with the reason on the record: nothing half started runs on,
            // its code server included; a container of the name that is not this stage's is
            // not touched.
            if let Err(e) = self.code_follow_stop(config, stage).await {
                tracing::warn!(stage = %stage.reference(), error = %e, "a failed start left the code server running");
            }
            let owner = naming.owner(stage);
            for role in [APP, DB] {
                let signal = &stop_signal(None, role);
                let name = naming.container(stage, role);
                match self.deps.engine.inspect_container(&name, "").await {
                    Ok(Some(info)) if owner.owns(&info.labels) => {}
                    _ => continue,
                }
                let grace = Duration::from_secs(10);
                if let Err(e) = self.deps.engine.stop_container(&name, signal, grace).await {
                    tracing::warn!(container = %name, error = %e, "a failed start left it running");
                }
            }
            stage.last_error = Some(e.to_string());
            self.save(stage).await?;
            return Err(e);
        }
        stage.apply(Operation::Start)?;
        stage.stop_reason = None;
        stage.last_error = None;
        self.save(stage).await?;
        self.emit(stage, "start", "running", "");
        Ok(())
    }

    pub async fn restart(
        &self,
        config: &Settings,
        reference: &str,
        grace_s: Option<u64>,
    ) -> Result<Stage> {
        let grace_s = check_grace(grace_s)?;
        let (_g, mut stage) = self.begin(reference, Operation::Restart).await?;
        self.stop_locked(config, &mut stage, grace_s, StopReason::User)
            .await?;
        self.start_locked(config, &mut stage).await?;
        Ok(stage)
    }

    /// Stop, remove containers and network, release the port, keep the data until `purge_at`.
    pub async fn terminate(&self, config: &Settings, reference: &str) -> Result<Stage> {
        let (_g, mut stage) = self.begin(reference, Operation::Terminate).await?;
        if stage.state == StageState::Terminated {
            return Ok(stage);
        }
        if stage.state == StageState::Running {
            self.stop_locked(config, &mut stage, None, StopReason::User)
                .await?;
        }
        let naming = naming(config);
        // The code server's container and port go first, so the 410 file has no block for it.
        self.code_follow_terminate(config, &mut stage).await?;
        self.deps
            .proxy
            .apply(site(config, &stage, SiteState::Terminated))
            .await?;
        let owner = naming.owner(&stage);
        for role in [APP, DB] {
            self.deps
                .engine
                .remove_container(&naming.container(&stage, role), &owner)
                .await?;
        }
        self.deps
            .engine
            .remove_network(&naming.network(&stage), &owner)
            .await?;
        stage.apply(Operation::Terminate)?;
        (stage.http_port, stage.longpolling_port) = (None, None);
        stage.purge_at = Some(time::now() + retention(config, stage.stage_type));
        self.save(&stage).await?;
        self.emit(&stage, "terminate", "terminated", "");
        Ok(stage)
    }

    /// Port again, containers made (not started), nginx 503: the stage is stopped.
    pub async fn restore(&self, config: &Settings, reference: &str) -> Result<Stage> {
        let (_g, mut stage) = self.begin(reference, Operation::Restore).await?;
        let profile = profile_of(config, &stage.profile)?;
        // The engine is asked before admission, and the ports persisted after: admission
        // holds only the checks and the reservation in memory.
        let published = self.engine_ports().await?;
        let before = stage.clone();
        {
            let _admission = self.admission.lock().await;
            let live = self.live();
            let (http, longpolling) = self.choose_ports(config, profile, &live, &published)?;
            (stage.http_port, stage.longpolling_port) = (Some(http), longpolling);
            if stage.code_server.is_some() {
                let port = self.choose_code_port(config, &live, &published)?;
                if let Some(cs) = stage.code_server.as_mut() {
                    cs.port = Some(port);
                }
            }
            self.reserve(&self.key_of(&stage), &stage);
        }
        if let Err(e) = self.save(&stage).await {
            self.reserve(&self.key_of(&before), &before);
            return Err(e);
        }
        self.emit(&stage, "restore", "containers", "");
        let naming = naming(config);
        let (db, app) = self.with_specs(config, profile, &stage, |ctx| {
            (
                ctx.db(),
                ctx.app(config.ports.bind_address, stage.http_port.unwrap_or(0)),
            )
        });
        let made = async {
            // The app container mounts it: there before the container is made.
            self.write_app_config(profile, &mut stage).await?;
            self.deps
                .engine
                .create_network(
                    &db.network,
                    &naming.labels(&stage, "network"),
                    config.docker.subnets(),
                )
                .await?;
            self.deps.engine.create_container(&db).await?;
            self.deps.engine.create_container(&app).await?;
            self.deps
                .proxy
                .apply(site(config, &stage, SiteState::Stopped))
                .await
        }
        .await;
        if let Err(e) = made {
            // Back to terminated as it was: nothing half made stays.
            let owner = naming.owner(&stage);
            for role in [APP, DB] {
                let _ = self
                    .deps
                    .engine
                    .remove_container(&naming.container(&stage, role), &owner)
                    .await;
            }
            let _ = self
                .deps
                .engine
                .remove_network(&naming.network(&stage), &owner)
                .await;
            (stage.http_port, stage.longpolling_port) = (None, None);
            if let Some(cs) = stage.code_server.as_mut() {
                cs.port = None;
            }
            stage.last_error = Some(e.to_string());
            self.save(&stage).await?;
            return Err(e);
        }
        stage.apply(Operation::Restore)?;
        stage.stop_reason = Some(StopReason::User);
        stage.purge_at = None;
        self.save(&stage).await?;
        self.emit(&stage, "restore", "stopped", "");
        Ok(stage)
    }

    /// Full teardown; the record stays as a tombstone.
    pub async fn cancel(&self, config: &Settings, reference: &str) -> Result<Stage> {
        let (_g, mut stage) = self.begin(reference, Operation::Cancel).await?;
        if stage.state == StageState::Cancelled {
            return Ok(stage);
        }
        self.cancel_locked(config, &mut stage).await?;
        Ok(stage)
    }

    pub(super) async fn cancel_locked(&self, config: &Settings, stage: &mut Stage) -> Result<()> {
        stage.step = Some(Step::Cancelling);
        self.save(stage).await?;
        self.emit(stage, "cancel", "cancelling", "");
        crate::core::failpoint::hit("cancel.teardown");
        // A cancel always ends cancelled: what the teardown could not remove (nginx refusing
        // to reload, an engine error) is said in last_error, and the labelled containers of
        // no live stage go at the next start-up reconcile.
        if let Err(e) = self.tear_down(config, stage, true).await {
            tracing::error!(stage = %stage.reference(), error = %e, "cancel left something behind");
            stage.last_error = Some(format!("cancelled, but the teardown left something: {e}"));
        }
        stage.apply(Operation::Cancel)?;
        stage.cancelled_at = Some(time::now());
        (stage.http_port, stage.longpolling_port) = (None, None);
        stage.step = None;
        self.save(stage).await?;
        self.emit(stage, "cancel", "cancelled", "");
        Ok(())
    }

    pub async fn update(
        &self,
        config: &Settings,
        reference: &str,
        patch: StagePatch,
    ) -> Result<Stage> {
        let end_date = match patch.end_date.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(raw) => Some(Some(parse_end_date(raw)?)),
        };
        let stage_type = patch
            .stage_type
            .as_deref()
            .map(|t| {
                StageType::parse(t).ok_or_else(|| {
                    Error::invalid("type", format!("{t:?} is not one of dev, qa, prod"))
                })
            })
            .transpose()?;
        let grace_s = check_grace(patch.grace_period_s)?;
        let webhook = patch
            .webhook_state
            .as_deref()
            .map(super::deploy::WebhookState::parse)
            .transpose()?;
        let (_g, mut stage) = self.begin(reference, Operation::Update).await?;
        if let Some(w) = webhook {
            stage.git.webhook_state = w;
        }
        if let Some(e) = end_date {
            stage.end_date = e;
        }
        if let Some(t) = stage_type {
            stage.stage_type = t;
            // Retention follows the type.
            if stage.state == StageState::Terminated {
                stage.purge_at = Some(time::now() + retention(config, t));
            }
        }
        if grace_s.is_some() {
            stage.grace_period_s = grace_s;
        }
        self.save(&stage).await?;
        Ok(stage)
    }
}
