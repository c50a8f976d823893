//! What every failed create, cancel and terminate shares: the db container's address, and
//! taking a stage's containers, network, site and data away again.

use super::containers::{db_user, APP, CODE_SERVER, DB, ONE_OFFS};
use super::model::Stage;
use super::{naming, Stages};
use crate::core::interfaces::DbTarget;
use crate::core::settings::{Profile, Settings};
use crate::core::{time, Error, Result};

impl Stages {
    /// The db container's address on the stage network and the credentials it was made with.
    pub(super) async fn db_target(
        &self,
        naming: &super::containers::Naming,
        stage: &Stage,
        profile: &Profile,
    ) -> Result<DbTarget> {
        let name = naming.container(stage, DB);
        let info = self
            .deps
            .engine
            .inspect_container(&name, &naming.network(stage))
            .await?
            .ok_or_else(|| Error::Docker(format!("container {name} vanished")))?;
        let host = info.ip.ok_or_else(|| {
            Error::Docker(format!(
                "container {name} has no address on {}",
                naming.network(stage)
            ))
        })?;
        Ok(DbTarget {
            host,
            port: profile.db.port,
            user: db_user(profile),
            password: stage.db_password.clone(),
        })
    }

    /// As [`Self::db_target`], connected as the app's own role where the stage has one.
    pub(super) async fn app_target(
        &self,
        naming: &super::containers::Naming,
        stage: &Stage,
        profile: &Profile,
    ) -> Result<DbTarget> {
        Ok(as_app_role(
            self.db_target(naming, stage, profile).await?,
            stage,
            profile,
        ))
    }

    /// Removes whatever the steps made and leaves a tombstone with the error.
    pub(super) async fn roll_back(&self, config: &Settings, stage: &mut Stage, error: &str) {
        self.emit(stage, "create", "rollback", error);
        if let Err(e) = self.tear_down(config, stage, true).await {
            tracing::error!(stage = %stage.reference(), error = %e, "rollback left something behind");
        }
        // Allowed from every state.
        let _ = stage.apply(super::transitions::Operation::Cancel);
        stage.cancelled_at = Some(time::now());
        (stage.http_port, stage.longpolling_port) = (None, None);
        stage.step = None;
        stage.last_error = Some(error.to_string());
        if let Err(e) = self.save(stage).await {
            tracing::error!(stage = %stage.reference(), error = %e, "cannot record the rollback");
        }
    }

    /// Containers, network, nginx site and (with `data`) directories: everything of a stage.
    /// Every piece is tried even when one fails; the first failure is returned.
    pub(super) async fn tear_down(
        &self,
        config: &Settings,
        stage: &Stage,
        data: bool,
    ) -> Result<()> {
        let naming = naming(config);
        // Only what carries this stage's uuid: a same-named container of another stage stays.
        let owner = naming.owner(stage);
        let mut results = vec![];
        for role in [CODE_SERVER, APP].into_iter().chain(ONE_OFFS).chain([DB]) {
            results.push(
                self.deps
                    .engine
                    .remove_container(&naming.container(stage, role), &owner)
                    .await,
            );
        }
        results.push(
            self.deps
                .engine
                .remove_network(&naming.network(stage), &owner)
                .await,
        );
        results.push(
            self.deps
                .proxy
                .remove(stage.subscription.clone(), stage.name.clone())
                .await,
        );
        if data {
            results.push(
                self.deps
                    .dirs
                    .remove(stage.subscription.as_str(), stage.name.as_str())
                    .await,
            );
        }
        results.into_iter().collect()
    }
}

/// The profile's own SQL (admin password, on_copy_sql, neutralisation, the active-user count)
/// touches tables the tenant's code owns and may have put triggers or views on: it runs as the
/// app's role, never as the superuser (`SET ROLE` would not do: the tenant's code could
/// `RESET ROLE`). Stages made before the role keep the superuser their app already had.
pub(super) fn as_app_role(mut target: DbTarget, stage: &Stage, profile: &Profile) -> DbTarget {
    if let (Some(user), Some(password)) = (&profile.app_db_user, &stage.app_db_password) {
        target.user = user.clone();
        target.password = password.clone();
    }
    target
}
