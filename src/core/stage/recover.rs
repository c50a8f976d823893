//! Starting a stage from whatever the engine has: containers removed outside the agent (a
//! `docker rm`, a prune) are made again from the record and the profile, and the db is
//! watched while PostgreSQL is awaited, so a db that exits fails the wait at once.

use super::common::grace;
use super::containers::{Naming, SpecContext, APP, DB};
use super::model::Stage;
use super::{naming, Stages};
use crate::core::interfaces::DbTarget;
use crate::core::settings::Profile;
use crate::core::settings::Settings;
use crate::core::{Error, Result};
use std::time::Duration;

/// How long PostgreSQL may take to accept connections after its container starts.
const DB_READY: Duration = Duration::from_secs(120);
/// How often the db container is checked while PostgreSQL is awaited.
const DB_WATCH: Duration = Duration::from_millis(500);

impl Stages {
    /// Runs `f` with the spec builder of `stage`: its naming, data directory and grace period,
    /// as every place that makes its containers needs them.
    pub(super) fn with_specs<R>(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
        f: impl FnOnce(&SpecContext) -> R,
    ) -> R {
        let naming = naming(config);
        let data_dir = self
            .deps
            .dirs
            .root(stage.subscription.as_str(), stage.name.as_str());
        f(&SpecContext {
            naming: &naming,
            stage,
            profile,
            data_dir: &data_dir,
            grace_s: grace(config, profile, stage, None).as_secs(),
            logs: config.images.log_caps(),
        })
    }

    /// Makes the db and app containers (and the network) that the engine no longer has.
    /// A container of the stage's name that carries another stage's labels is refused.
    pub(super) async fn recreate_missing(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
    ) -> Result<()> {
        let naming = naming(config);
        let owner = naming.owner(stage);
        let port = stage
            .http_port
            .ok_or_else(|| Error::Docker(format!("stage {} holds no port", stage.reference())))?;
        let specs = self.with_specs(config, profile, stage, |ctx| {
            [
                (DB, ctx.db()),
                (APP, ctx.app(config.ports.bind_address, port)),
            ]
        });
        // Idempotent: made only when it is not there. A container made again needs it, and
        // one that is still there may sit on a network adoption removed.
        self.deps
            .engine
            .create_network(
                &naming.network(stage),
                &naming.labels(stage, "network"),
                config.docker.subnets(),
            )
            .await?;
        let component = naming.component_label();
        let mut labelled = None;
        for (role, spec) in specs {
            match self.deps.engine.inspect_container(&spec.name, "").await? {
                Some(info) if owner.owns(&info.labels) => continue,
                Some(_) => {
                    return Err(Error::Docker(format!(
                        "container {} carries the labels of another stage; it is left alone",
                        spec.name
                    )))
                }
                None => {}
            }
            // The stage's container under another name (an older version's, not yet renamed
            // by adoption) still mounts its data: a second one would share it, so never.
            if labelled.is_none() {
                labelled = Some(self.deps.engine.list_labelled(&owner.label).await?);
            }
            let elsewhere = labelled.iter().flatten().find(|c| {
                owner.owns(&c.labels) && c.labels.get(&component).map(String::as_str) == Some(role)
            });
            if let Some(c) = elsewhere {
                return Err(Error::Docker(format!(
                    "the {role} container of {} exists as {}; the agent renames it at start-up, so restart the agent",
                    stage.reference(),
                    c.name
                )));
            }
            // The engine may have lost the image since (a prune): pulled as its policy says.
            let c = if role == DB {
                &profile.db
            } else {
                &profile.app
            };
            self.ensure_image(config, c.pull, &c.image, Some((stage, "start")))
                .await?;
            self.deps.engine.create_container(&spec).await?;
            tracing::warn!(stage = %stage.reference(), container = %spec.name, "made again a container removed outside the agent");
            self.emit(
                stage,
                "start",
                role,
                "made again: it was removed outside the agent",
            );
        }
        Ok(())
    }

    /// Starts the db container and waits until PostgreSQL accepts connections. The container
    /// is watched meanwhile: once it has exited (or crash-loops) this fails at once with its
    /// last log lines, instead of at the end of the wait.
    pub(super) async fn start_db(
        &self,
        naming: &Naming,
        stage: &Stage,
        profile: &Profile,
    ) -> Result<DbTarget> {
        let name = naming.container(stage, DB);
        self.deps.engine.start_container(&name).await?;
        let deadline = tokio::time::Instant::now() + DB_READY;
        // The address comes once it runs; a container that exited at once has none.
        let target = loop {
            self.db_alive(&name).await?;
            match self.db_target(naming, stage, profile).await {
                Ok(t) => break t,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(DB_WATCH).await,
            }
        };
        {
            let ready = self.deps.db.wait_ready(&target, DB_READY);
            tokio::pin!(ready);
            loop {
                tokio::select! {
                    r = &mut ready => break r?,
                    () = tokio::time::sleep(DB_WATCH) => self.db_alive(&name).await?,
                }
            }
        }
        Ok(target)
    }

    /// Fails when the db container is not running (exited, restarting, gone).
    async fn db_alive(&self, name: &str) -> Result<()> {
        let info = self.deps.engine.inspect_container(name, "").await?;
        // A crash-looping container reports Running while it restarts: go by the status.
        let status = match &info {
            Some(i) if i.status == "running" => return Ok(()),
            Some(i) => match i.exit_code {
                Some(code) => format!("{} (exit code {code})", i.status),
                None => i.status.clone(),
            },
            None => "gone".to_string(),
        };
        let tail = match self.deps.engine.logs(name, 10, None).await {
            Ok(lines) => lines
                .iter()
                .map(|l| l.line.trim_end())
                .collect::<Vec<_>>()
                .join(" | "),
            Err(e) => format!("(no logs: {e})"),
        };
        Err(Error::Docker(format!(
            "the db container {name} is {status} before PostgreSQL was ready; its last lines: {tail}"
        )))
    }
}
