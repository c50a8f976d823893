//! `codeserver.*`: a stage's code server made, started, stopped, removed and given a new
//! password, each under the stage's lock and checked against the table in `code_server`;
//! and how it follows its stage's stop, start, terminate and restore.

use super::model::{CodeServer, CodeServerState, CsOperation};
use crate::core::interfaces::ContainerSpec;
use crate::core::settings::Settings;
use crate::core::site::{parse_domain, SiteState};
use crate::core::stage::common::{check_domain_free, grace, profile_of, site};
use crate::core::stage::containers::{stop_signal, CODE_SERVER};
use crate::core::stage::model::{Stage, StageState};
use crate::core::stage::{naming, Stages};
use crate::core::{Error, Result};
use rand::distr::{Alphanumeric, SampleString};
use std::time::Duration;

/// How long a started code server may take to listen (code-server itself needs a few seconds).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh password from the thread's CSPRNG: 32 letters and digits (about 190 bits).
pub fn new_password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

/// What the stage's domain answers in its state; code-server operations never see the others.
pub(in crate::core::stage) fn site_state(state: StageState) -> SiteState {
    match state {
        StageState::Running => SiteState::Running,
        StageState::Terminated => SiteState::Terminated,
        StageState::Build | StageState::Stopped | StageState::Cancelled => SiteState::Stopped,
    }
}

fn state_of(stage: &Stage) -> Option<CodeServerState> {
    stage.code_server.as_ref().map(|c| c.state)
}

impl Stages {
    /// Locks the stage and checks `op` against it and its code server.
    async fn begin_code(
        &self,
        reference: &str,
        op: CsOperation,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, Stage)> {
        let (guard, stage) = self.lock_stage(reference).await?;
        op.check(&stage.reference(), stage.state, state_of(&stage))?;
        Ok((guard, stage))
    }

    fn code_spec(&self, config: &Settings, stage: &Stage) -> Result<ContainerSpec> {
        let profile = profile_of(config, &stage.profile)?;
        let cs = stage.code_server.as_ref().ok_or_else(|| Error::NotFound {
            what: "code server of stage",
            id: stage.reference(),
        })?;
        let port = cs.port.ok_or_else(|| {
            Error::internal(
                format!("code server of {}", stage.reference()),
                "it holds no port",
            )
        })?;
        self.with_specs(config, profile, stage, |ctx| {
            ctx.code_server(config.ports.bind_address, port, &cs.password)
        })
        .ok_or_else(|| no_code_server(stage))
    }

    /// Makes the container anew (a leftover of the same name goes first), then starts it.
    async fn code_recreate(&self, config: &Settings, stage: &Stage, start: bool) -> Result<()> {
        let spec = self.code_spec(config, stage)?;
        let owner = naming(config).owner(stage);
        if let Some(c) = profile_of(config, &stage.profile)?.code_server.as_ref() {
            self.ensure_image(config, c.pull, &c.image, Some((stage, "codeserver")))
                .await?;
        }
        self.deps
            .engine
            .remove_container(&spec.name, &owner)
            .await?;
        self.deps.engine.create_container(&spec).await?;
        if start {
            self.deps.engine.start_container(&spec.name).await?;
        }
        Ok(())
    }

    /// Waits until the code server accepts connections at its address on the stage network.
    /// The published port cannot tell: the engine's proxy accepts before the server listens.
    async fn code_listening(&self, config: &Settings, stage: &Stage) -> Result<()> {
        let naming = naming(config);
        let name = naming.container(stage, CODE_SERVER);
        let profile = profile_of(config, &stage.profile)?;
        let port = profile.code_server.as_ref().map_or(0, |c| c.port);
        let deadline = std::time::Instant::now() + LISTEN_TIMEOUT;
        loop {
            let info = self
                .deps
                .engine
                .inspect_container(&name, &naming.network(stage))
                .await?;
            if let Some(ip) = info.as_ref().and_then(|i| i.ip) {
                let probe = self.deps.ports.clone();
                let up = tokio::task::spawn_blocking(move || probe.accepts(ip, port))
                    .await
                    .unwrap_or(false);
                if up {
                    return Ok(());
                }
            }
            if info.is_none_or(|i| !i.running) || std::time::Instant::now() >= deadline {
                return Err(Error::Docker(format!(
                    "the code server {name} did not listen on port {port} within {LISTEN_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Brings the code server to running (its container made first if it is a draft), and
    /// returns once it listens.
    async fn code_run(&self, config: &Settings, stage: &mut Stage) -> Result<()> {
        match state_of(stage) {
            Some(CodeServerState::Draft) => self.code_recreate(config, stage, true).await?,
            Some(_) => {
                let name = naming(config).container(stage, CODE_SERVER);
                self.deps.engine.start_container(&name).await?
            }
            None => return Ok(()),
        }
        self.code_listening(config, stage).await?;
        if let Some(cs) = stage.code_server.as_mut() {
            cs.state = CodeServerState::Running;
            cs.resume_with_stage = false;
        }
        self.save(stage).await
    }

    async fn code_publish(&self, config: &Settings, stage: &Stage) -> Result<()> {
        self.deps
            .proxy
            .apply(site(config, stage, site_state(stage.state)))
            .await
    }

    /// Records the code server (draft), then runs it if the stage runs, then serves its domain.
    /// A failure takes back everything, the record included.
    pub async fn code_create(
        &self,
        config: &Settings,
        reference: &str,
        domain: &str,
    ) -> Result<Stage> {
        let domain = parse_domain("domain", domain)?;
        let (_g, mut stage) = self.begin_code(reference, CsOperation::Create).await?;
        if profile_of(config, &stage.profile)?.code_server.is_none() {
            return Err(no_code_server(&stage));
        }
        // The engine is asked before admission and the record written after: admission
        // holds only the checks and the reservation in memory.
        let published = self.engine_ports().await?;
        let before = stage.clone();
        {
            let _admission = self.admission.lock().await;
            let live = self.live();
            check_domain_free(&live, &domain)?;
            let port = self.choose_code_port(config, &live, &published)?;
            stage.code_server = Some(CodeServer {
                domain,
                port: Some(port),
                state: CodeServerState::Draft,
                password: new_password(),
                resume_with_stage: false,
            });
            self.reserve(&self.key_of(&stage), &stage);
        }
        if let Err(e) = self.save(&stage).await {
            self.reserve(&self.key_of(&before), &before);
            return Err(e);
        }
        self.emit(&stage, "codeserver.create", "recorded", "");
        let made = async {
            if stage.state == StageState::Running {
                self.code_run(config, &mut stage).await?;
            }
            self.code_publish(config, &stage).await
        }
        .await;
        if let Err(e) = made {
            self.emit(&stage, "codeserver.create", "rollback", e.to_string());
            let naming = naming(config);
            let name = naming.container(&stage, CODE_SERVER);
            let owner = naming.owner(&stage);
            if let Err(e) = self.deps.engine.remove_container(&name, &owner).await {
                tracing::error!(stage = %stage.reference(), error = %e, "code server rollback left its container");
            }
            stage.code_server = None;
            self.save(&stage).await?;
            if let Err(e) = self.code_publish(config, &stage).await {
                tracing::error!(stage = %stage.reference(), error = %e, "code server rollback: nginx");
            }
            return Err(e);
        }
        self.emit(&stage, "codeserver.create", "done", "");
        Ok(stage)
    }

    pub async fn code_start(&self, config: &Settings, reference: &str) -> Result<Stage> {
        let (_g, mut stage) = self.begin_code(reference, CsOperation::Start).await?;
        self.code_run(config, &mut stage).await?;
        self.code_publish(config, &stage).await?;
        Ok(stage)
    }

    pub async fn code_stop(&self, config: &Settings, reference: &str) -> Result<Stage> {
        let (_g, mut stage) = self.begin_code(reference, CsOperation::Stop).await?;
        // 503 first, as for the stage itself.
        let was = state_of(&stage);
        if let Some(cs) = stage.code_server.as_mut() {
            cs.state = CodeServerState::Stopped;
            cs.resume_with_stage = false;
        }
        self.code_publish(config, &stage).await?;
        if was == Some(CodeServerState::Running) {
            self.code_halt(config, &stage).await?;
        }
        self.save(&stage).await?;
        Ok(stage)
    }

    /// The container's stop signal, its grace period, then SIGKILL.
    async fn code_halt(&self, config: &Settings, stage: &Stage) -> Result<()> {
        let profile = profile_of(config, &stage.profile)?;
        let signal = stop_signal(profile.code_server.as_ref(), CODE_SERVER);
        let grace: Duration = grace(config, profile, stage, None);
        let name = naming(config).container(stage, CODE_SERVER);
        self.deps
            .engine
            .stop_container(&name, &signal, grace)
            .await
            .map(|_| ())
    }

    /// Container, port and server block go; the stage is untouched.
    pub async fn code_remove(&self, config: &Settings, reference: &str) -> Result<Stage> {
        let (_g, mut stage) = self.begin_code(reference, CsOperation::Remove).await?;
        let name = naming(config).container(&stage, CODE_SERVER);
        let owner = naming(config).owner(&stage);
        self.deps.engine.remove_container(&name, &owner).await?;
        stage.code_server = None;
        self.save(&stage).await?;
        self.code_publish(config, &stage).await?;
        Ok(stage)
    }

    /// A new password, in force at once: the container is made anew with it.
    pub async fn code_rotate(&self, config: &Settings, reference: &str) -> Result<Stage> {
        let (_g, mut stage) = self
            .begin_code(reference, CsOperation::RotatePassword)
            .await?;
        let mut next = stage.clone();
        let state = state_of(&stage);
        if let Some(cs) = next.code_server.as_mut() {
            cs.password = new_password();
        }
        if state != Some(CodeServerState::Draft)
            && next.code_server.as_ref().is_some_and(|c| c.port.is_some())
        {
            let running = state == Some(CodeServerState::Running);
            self.code_recreate(config, &next, running).await?;
            if running {
                self.code_listening(config, &next).await?;
            }
        }
        stage = next;
        self.save(&stage).await?;
        self.emit(&stage, "codeserver.rotate_password", "done", "");
        Ok(stage)
    }

    /// The stage is stopping: its running code server stops too, and comes back with it.
    pub(in crate::core::stage) async fn code_follow_stop(
        &self,
        config: &Settings,
        stage: &mut Stage,
    ) -> Result<()> {
        if state_of(stage) != Some(CodeServerState::Running) {
            return Ok(());
        }
        self.code_halt(config, stage).await?;
        if let Some(cs) = stage.code_server.as_mut() {
            cs.state = CodeServerState::Stopped;
            cs.resume_with_stage = true;
        }
        Ok(())
    }

    /// The stage started: a code server that stopped with it runs again.
    pub(in crate::core::stage) async fn code_follow_start(
        &self,
        config: &Settings,
        stage: &mut Stage,
    ) -> Result<()> {
        if stage
            .code_server
            .as_ref()
            .is_some_and(|c| c.resume_with_stage)
        {
            self.code_run(config, stage).await?;
        }
        Ok(())
    }

    /// The stage is terminated: the container goes and the port is released; the record stays
    /// as a draft, to come back after a restore.
    pub(in crate::core::stage) async fn code_follow_terminate(
        &self,
        config: &Settings,
        stage: &mut Stage,
    ) -> Result<()> {
        if stage.code_server.is_none() {
            return Ok(());
        }
        let name = naming(config).container(stage, CODE_SERVER);
        let owner = naming(config).owner(stage);
        self.deps.engine.remove_container(&name, &owner).await?;
        if let Some(cs) = stage.code_server.as_mut() {
            cs.state = CodeServerState::Draft;
            cs.port = None;
        }
        Ok(())
    }
}

fn no_code_server(stage: &Stage) -> Error {
    Error::invalid(
        "stage",
        format!(
            "the profile {:?} of stage {} has no code_server component",
            stage.profile,
            stage.reference()
        ),
    )
}
