//! `stage.create`: admission (limit, name, domain, port) under one lock, then the steps, each
//! persisted before it starts; any failure rolls back what the steps made. Admission holds only
//! the checks and a reservation in memory: the engine is asked before, the record written after.

use super::admin_password::{for_create, Chosen, Secret};
use super::clone::Seed;
use super::common::{check_domain_free, check_grace, grace, parse_end_date, profile_of, site};
use super::containers::SpecContext;
use super::model::{Stage, StageState, StageType, Step, SCHEMA_VERSION};
use super::{naming, Stages};
use crate::core::names::StageName;
use crate::core::settings::Profile;
use crate::core::settings::Settings;
use crate::core::site::{parse_domain, SiteState};
use crate::core::subscription::Subscription;
use crate::core::{time, Error, Result};
use rand::distr::{Alphanumeric, SampleString};
use std::time::Duration;

/// `stage.create` as the core takes it: raw values, validated here.
#[derive(Debug, Clone, Default)]
pub struct NewStage {
    pub name: String,
    pub stage_type: String,
    pub domain: String,
    pub end_date: Option<String>,
    pub grace_period_s: Option<u64>,
    pub clone_from: Option<String>,
    /// The app's admin password; see [`for_create`].
    pub admin_password: Option<Secret>,
}

/// How long an app's init command may run.
const INIT_TIMEOUT: Duration = Duration::from_secs(1800);
impl Stages {
    /// `current` says, under admission, whether `sub` still exists (a delete takes admission).
    /// Answers the stage and the admin password the agent generated, if it did.
    pub async fn create(
        &self,
        config: &Settings,
        sub: &Subscription,
        req: NewStage,
        current: &(dyn Fn() -> Result<()> + Sync),
    ) -> Result<(Stage, Option<String>)> {
        let name = StageName::parse(&req.name).map_err(|m| Error::invalid("name", m))?;
        let stage_type = StageType::parse(&req.stage_type).ok_or_else(|| {
            Error::invalid(
                "type",
                format!("{:?} is not one of dev, qa, prod", req.stage_type),
            )
        })?;
        let domain = parse_domain("domain", &req.domain)?;
        let end_date = req.end_date.as_deref().map(parse_end_date).transpose()?;
        let grace_period_s = check_grace(req.grace_period_s)?;
        let profile = profile_of(config, &sub.profile)?;
        let clone = req.clone_from.is_some();
        let admin = for_create(&sub.profile, profile, req.admin_password, clone)?;
        self.check_never_pulled(profile).await?;
        let seed = match req.clone_from.as_deref() {
            Some(source) => Seed::Clone(Box::new(self.clone_source(sub, source)?)),
            None => match &sub.settings.db_template {
                Some(path) => Seed::Template(path.into()),
                None => Seed::Empty,
            },
        };

        let published = self.engine_ports().await?;
        let (stage, guard) = {
            let _admission = self.admission.lock().await;
            current()?;
            let live = self.live();
            let used = live.iter().filter(|s| s.subscription == sub.id).count();
            if used >= sub.stage_limit as usize {
                return Err(Error::LimitExceeded(format!(
                    "subscription {} has {used} of its {} stages",
                    sub.id, sub.stage_limit
                )));
            }
            self.check_storage(&live, sub)?;
            if live
                .iter()
                .any(|s| s.subscription == sub.id && s.name == name)
            {
                return Err(Error::Conflict {
                    what: "stage",
                    id: format!("{}/{name}", sub.id),
                });
            }
            check_domain_free(&live, &domain)?;
            let (http_port, longpolling_port) =
                self.choose_ports(config, profile, &live, &published)?;
            let now = time::now();
            let stage = Stage {
                schema_version: SCHEMA_VERSION,
                uuid: uuid::Uuid::new_v4(),
                subscription: sub.id.clone(),
                name,
                stage_type,
                domain,
                state: StageState::Build,
                created_at: now,
                updated_at: now,
                end_date,
                stop_reason: None,
                purge_at: None,
                cancelled_at: None,
                http_port: Some(http_port),
                longpolling_port,
                grace_period_s,
                last_error: None,
                profile: sub.profile.clone(),
                settings: sub.settings.clone(),
                db_password: Alphanumeric.sample_string(&mut rand::rng(), 32),
                console_password: None,
                // The app's own role: made with the database, it owns it.
                app_db_password: profile
                    .app_db_user
                    .as_ref()
                    .map(|_| Alphanumeric.sample_string(&mut rand::rng(), 32)),
                master_password_hash: None,
                neutralized: false,
                step: Some(Step::Directories),
                storage: None,
                active_users: None,
                code_server: None,
                git: Default::default(),
            };
            // Locked before it is visible, so the scheduler and reconcile leave it alone.
            let guard = self.try_lock_stage(stage.uuid).ok_or_else(|| {
                Error::internal("admitting a stage", "a new stage's lock is held")
            })?;
            self.reserve(&stage.key(), &stage);
            (stage, guard)
        };
        let persisted = async {
            self.retire_tombstone(&stage.key(), stage.uuid).await?;
            self.save_as(&stage.key(), &stage).await
        };
        if let Err(e) = persisted.await {
            self.unreserve(stage.uuid);
            return Err(e);
        }

        let _guard = guard;
        self.emit(
            &stage,
            "create",
            "admitted",
            format!("port {}", stage.http_port.unwrap_or(0)),
        );
        let mut stage = stage;
        let built = self.build(config, profile, &mut stage, &seed, admin.as_ref());
        match built.await {
            Ok(()) => Ok((stage, admin.and_then(|a| a.answer()))),
            Err(e) => {
                tracing::warn!(stage = %stage.reference(), error = %e, "create failed; rolling back");
                self.roll_back(config, &mut stage, &e.to_string()).await;
                Err(e)
            }
        }
    }

    /// A cancelled stage's record makes room for the new stage `new` of the same name.
    async fn retire_tombstone(&self, key: &str, new: uuid::Uuid) -> Result<()> {
        let old = self
            .read()
            .values()
            .find(|(k, s)| k == key && s.uuid != new)
            .map(|(_, s)| s.clone());
        if let Some(old) = old {
            let new_key = format!("{key}@{}", old.uuid);
            self.save_as(&new_key, &old).await?;
            let store = self.deps.store.clone();
            let k = key.to_string();
            tokio::task::spawn_blocking(move || {
                store.delete(crate::core::interfaces::RecordKind::Stage, &k)
            })
            .await
            .map_err(|e| Error::internal("retiring a tombstone", e))?
            .map_err(|e| Error::internal("retiring a tombstone", e))?;
        }
        Ok(())
    }

    /// Also the failpoint `create.<step>` (in `emit`).
    pub(super) async fn step(&self, stage: &mut Stage, step: Step) -> Result<()> {
        stage.step = Some(step);
        self.save(stage).await?;
        self.emit(stage, "create", step.as_str(), "started");
        Ok(())
    }

    async fn build(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &mut Stage,
        seed: &Seed,
        admin: Option<&Chosen>,
    ) -> Result<()> {
        let naming = naming(config);
        let data_dir = self
            .deps
            .dirs
            .root(stage.subscription.as_str(), stage.name.as_str());
        let grace_s = grace(config, profile, stage, None).as_secs();
        let http_port = stage.http_port.expect("admitted stages hold a port");

        // Before anything is made: a failed pull leaves nothing behind.
        self.pull_for_create(config, profile, stage).await?;

        self.step(stage, Step::Directories).await?;
        self.deps
            .dirs
            .create(stage.subscription.as_str(), stage.name.as_str())
            .await?;
        self.own_dirs(
            profile,
            stage.subscription.as_str(),
            stage.name.as_str(),
            None,
        )
        .await?;

        self.step(stage, Step::Network).await?;
        let network = naming.network(stage);
        self.deps
            .engine
            .create_network(
                &network,
                &naming.labels(stage, "network"),
                config.docker.subnets(),
            )
            .await?;

        self.step(stage, Step::Db).await?;
        let ctx = SpecContext {
            naming: &naming,
            stage,
            profile,
            data_dir: &data_dir,
            grace_s,
            logs: config.images.log_caps(),
        };
        let (db_spec, app_spec, init_spec) = (
            ctx.db(),
            ctx.app(config.ports.bind_address, http_port),
            ctx.init(),
        );
        self.deps.engine.create_container(&db_spec).await?;
        let target = self.start_db(&naming, stage, profile).await?;
        // Seconds of CPU: hashed while the database is made (once the db runs, so a build
        // that fails before starts none).
        let master = profile
            .config_template
            .contains(super::app_config::MASTER_PASSWORD_HASH)
            .then(|| tokio::spawn(super::app_config::new_master_hash()));

        self.step(stage, Step::Database).await?;
        self.deps
            .db
            .create_database(&target, stage.db_name())
            .await?;
        if let Some(role) = super::app_config::app_role(profile, stage) {
            self.deps
                .db
                .ensure_app_role(&target, stage.db_name(), &role)
                .await?;
        }

        if let Some(master) = master {
            let hash = master
                .await
                .map_err(|e| Error::internal("hashing the master password", e))??;
            stage.master_password_hash = Some(hash);
            self.save(stage).await?;
        }
        self.write_app_config(profile, stage).await?;

        // Before a copy: its neutralize command reads the file.
        if !matches!(seed, Seed::Empty) {
            self.step(stage, Step::Copy).await?;
            self.seed(config, stage, seed).await?;
            // A copy keeps its source's owners; this profile's run_as decides.
            self.own_dirs(
                profile,
                stage.subscription.as_str(),
                stage.name.as_str(),
                None,
            )
            .await?;
            // Its own secrets and URL; dev and qa copies neutralised (saved with the next step).
            let db = stage.db_name().to_string();
            self.on_copy(config, profile, stage, "create", &db).await?;
            if stage.stage_type != StageType::Prod {
                self.step(stage, Step::Neutralize).await?;
                self.neutralize(config, profile, stage, "create", &db)
                    .await?;
            }
        }

        // A copy already holds an initialised database.
        if let (Some(init), Seed::Empty) = (init_spec, seed) {
            self.step(stage, Step::Init).await?;
            let (code, tail) = self
                .deps
                .engine
                .run_to_completion(&init, &naming.owner(stage), INIT_TIMEOUT)
                .await?;
            if code != 0 {
                return Err(Error::Docker(format!(
                    "init_command exited with {code}: {}",
                    tail.trim()
                )));
            }
        }

        self.admin_password_step(profile, stage, &target, admin)
            .await?;
        self.step(stage, Step::App).await?;
        self.deps.engine.create_container(&app_spec).await?;
        self.deps.engine.start_container(&app_spec.name).await?;
        // No site until the app answers: nginx proxies only to an app that serves.
        self.wait_ready(config, profile, stage).await?;

        self.step(stage, Step::Nginx).await?;
        self.deps
            .proxy
            .apply(site(config, stage, SiteState::Running))
            .await?;

        stage.apply(super::transitions::Operation::Create)?;
        stage.step = None;
        self.save(stage).await?;
        self.emit(
            stage,
            "create",
            "running",
            format!("http://{}/", stage.domain),
        );
        Ok(())
    }
}
