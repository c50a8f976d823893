//! The facade's stage methods: lifecycle, deploy, backups, usage and stats, the console (SQL,
//! logs, exec) and the event feed. Parameter defaults live on the core request types.

use super::Agent;
use crate::core::interfaces::{ContainerStats, LogLine, MeasurePriority, SqlResult};
use crate::core::settings::Settings;
use crate::core::stage::admin_password::{AdminPasswordReply, Secret};
use crate::core::stage::backup::Backup;
use crate::core::stage::console::{ExecCall, ExecResult, LogsCall, SqlCall};
use crate::core::stage::deploy::DeployRequest;
use crate::core::stage::events::Event;
use crate::core::stage::model::Stage;
use crate::core::stage::model::{StageView, StopReason};
use crate::core::stage::usage::StageUsage;
use crate::core::stage::Stages;
use crate::core::stage::{NewStage, StagePatch};
use crate::core::{Error, Result};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Agent {
    /// Every image of `profile` (default: the default profile) pulled as its policy says.
    pub async fn pull_images(
        &self,
        profile: Option<&str>,
    ) -> Result<Vec<crate::core::stage::pull::ImageDigest>> {
        self.stages.pull_profile(&self.config(), profile).await
    }

    /// [`stage_op`](Agent::stage_op), answered with the stage's view.
    async fn viewed<F>(self: &Arc<Self>, reference: &str, op: F) -> Result<StageView>
    where
        F: for<'a> FnOnce(&'a Stages, &'a Settings, &'a str) -> BoxFuture<'a, Result<Stage>>
            + Send
            + 'static,
    {
        let s = self.stage_op(reference, op).await?;
        Ok(self.view(&s).await)
    }

    pub async fn create_stage(
        self: &Arc<Self>,
        subscription: &str,
        req: NewStage,
    ) -> Result<StageView> {
        let subscription = subscription.to_string();
        self.detached(move |a| async move {
            let sub = a.subscriptions.get(&subscription).map_err(|e| match e {
                Error::InvalidParams { message, .. } => Error::invalid("subscription", message),
                other => other,
            })?;
            // Checked again under admission: a delete may have run since.
            let current = || match a.subscriptions.get(sub.id.as_str()) {
                Ok(now) if now.created_at == sub.created_at => Ok(()),
                _ => Err(Error::NotFound {
                    what: "subscription",
                    id: sub.id.to_string(),
                }),
            };
            let (stage, admin_password) = a.stages.create(&a.config(), &sub, req, &current).await?;
            let mut view = a.view(&stage).await;
            view.admin_password = admin_password;
            Ok(view)
        })
        .await
    }

    pub async fn get_stage(&self, reference: &str) -> Result<StageView> {
        let stage = self.stages.find(reference)?;
        Ok(self.view(&stage).await)
    }

    pub async fn stop_stage(
        self: &Arc<Self>,
        reference: &str,
        grace_period_s: Option<u64>,
    ) -> Result<StageView> {
        self.viewed(reference, move |s, c, r| {
            Box::pin(s.stop(c, r, grace_period_s, StopReason::User))
        })
        .await
    }

    pub async fn start_stage(self: &Arc<Self>, reference: &str) -> Result<StageView> {
        self.viewed(reference, |s, c, r| Box::pin(s.start(c, r)))
            .await
    }

    pub async fn restart_stage(
        self: &Arc<Self>,
        reference: &str,
        grace_period_s: Option<u64>,
    ) -> Result<StageView> {
        self.viewed(reference, move |s, c, r| {
            Box::pin(s.restart(c, r, grace_period_s))
        })
        .await
    }

    pub async fn terminate_stage(self: &Arc<Self>, reference: &str) -> Result<StageView> {
        self.viewed(reference, |s, c, r| Box::pin(s.terminate(c, r)))
            .await
    }

    pub async fn restore_stage(self: &Arc<Self>, reference: &str) -> Result<StageView> {
        self.viewed(reference, |s, c, r| Box::pin(s.restore(c, r)))
            .await
    }

    pub async fn cancel_stage(self: &Arc<Self>, reference: &str) -> Result<StageView> {
        self.viewed(reference, |s, c, r| Box::pin(s.cancel(c, r)))
            .await
    }

    pub async fn update_stage(
        self: &Arc<Self>,
        reference: &str,
        patch: StagePatch,
    ) -> Result<StageView> {
        self.viewed(reference, move |s, c, r| Box::pin(s.update(c, r, patch)))
            .await
    }

    pub async fn deploy_stage(
        self: &Arc<Self>,
        reference: &str,
        req: DeployRequest,
    ) -> Result<StageView> {
        self.viewed(reference, move |s, c, r| Box::pin(s.deploy(c, r, req)))
            .await
    }

    pub async fn restore_stage_backup(
        self: &Arc<Self>,
        reference: &str,
        id: &str,
    ) -> Result<StageView> {
        let id = id.to_string();
        self.viewed(reference, move |s, c, r| {
            Box::pin(async move { s.restore_backup(c, r, &id).await })
        })
        .await
    }

    /// `stage.usage`: the last measure, or a new one with `refresh` (joined by concurrent
    /// refreshes of the same stage).
    pub async fn stage_usage(&self, reference: &str, refresh: Option<bool>) -> Result<StageUsage> {
        let mut stage = self.stages.find(reference)?;
        if refresh.unwrap_or(false) {
            let m = self
                .stages
                .measure(&self.config(), reference, MeasurePriority::Interactive)
                .await?;
            stage.storage = Some(m.storage);
            stage.active_users = m.active_users;
        }
        Ok(StageUsage {
            stage: stage.reference(),
            over_limit: self.over_limit(&stage),
            storage: stage.storage,
            active_users: stage.active_users,
        })
    }

    /// `stage.stats`: one Docker stats sample per component; `None` when it is not running.
    pub async fn stage_stats(
        &self,
        reference: &str,
    ) -> Result<BTreeMap<String, Option<ContainerStats>>> {
        self.stages.stats(&self.config(), reference).await
    }

    /// `stage.set_admin_password`, on a task of its own: a client that goes away does not
    /// cut it short.
    pub async fn set_admin_password(
        self: &Arc<Self>,
        reference: &str,
        password: Option<Secret>,
    ) -> Result<AdminPasswordReply> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            a.stages.set_admin_password(&a.config(), &r, password).await
        })
        .await
    }

    pub async fn backup_stage(self: &Arc<Self>, reference: &str) -> Result<Backup> {
        let r = reference.to_string();
        self.detached(move |a| async move { a.stages.backup(&a.config(), &r).await })
            .await
    }

    pub async fn delete_stage_backup(self: &Arc<Self>, reference: &str, id: &str) -> Result<()> {
        let (r, id) = (reference.to_string(), id.to_string());
        self.detached(move |a| async move { a.stages.delete_backup(&r, &id).await })
            .await
    }

    pub async fn stage_backups(&self, reference: &str) -> Result<Vec<Backup>> {
        self.stages.backups(reference).await
    }

    /// `stage.sql`: one statement on the stage's database.
    pub async fn stage_sql(&self, reference: &str, call: SqlCall) -> Result<SqlResult> {
        self.stages.sql(&self.config(), reference, call).await
    }

    pub async fn stage_logs(&self, reference: &str, call: LogsCall) -> Result<Vec<LogLine>> {
        self.stages.logs(&self.config(), reference, call).await
    }

    pub async fn follow_stage_logs(
        &self,
        reference: &str,
        call: LogsCall,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        self.stages
            .follow_logs(&self.config(), reference, call)
            .await
    }

    pub async fn stage_exec(&self, reference: &str, call: ExecCall) -> Result<ExecResult> {
        self.stages.exec(&self.config(), reference, call).await
    }

    /// Every stage event from now on.
    pub fn watch_events(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.stages.events.subscribe()
    }
}
