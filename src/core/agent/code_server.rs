//! The facade's code-server methods: each runs on a task of its own and answers with the
//! code server's view (the password only when it is new).

use super::Agent;
use crate::core::settings::Settings;
use crate::core::stage::code_server::CodeServerView;
use crate::core::stage::model::Stage;
use crate::core::stage::Stages;
use crate::core::Result;
use futures::future::BoxFuture;
use std::sync::Arc;

impl Agent {
    /// Runs a code-server operation on a task of its own with the settings in force, and
    /// answers with the code server's view.
    async fn code_op<F>(
        self: &Arc<Self>,
        reference: &str,
        with_password: bool,
        op: F,
    ) -> Result<CodeServerView>
    where
        F: for<'a> FnOnce(&'a Stages, &'a Settings, &'a str) -> BoxFuture<'a, Result<Stage>>
            + Send
            + 'static,
    {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let config = a.config();
            let s = op(&a.stages, &config, &r).await?;
            a.code_view(&s, with_password)
        })
        .await
    }

    pub async fn create_code_server(
        self: &Arc<Self>,
        reference: &str,
        domain: &str,
    ) -> Result<CodeServerView> {
        let domain = domain.to_string();
        self.code_op(reference, true, move |s, c, r| {
            Box::pin(async move { s.code_create(c, r, &domain).await })
        })
        .await
    }

    pub async fn start_code_server(self: &Arc<Self>, reference: &str) -> Result<CodeServerView> {
        self.code_op(reference, false, |s, c, r| Box::pin(s.code_start(c, r)))
            .await
    }

    pub async fn stop_code_server(self: &Arc<Self>, reference: &str) -> Result<CodeServerView> {
        self.code_op(reference, false, |s, c, r| Box::pin(s.code_stop(c, r)))
            .await
    }

    /// Answers with the code server as it was before it went.
    pub async fn remove_code_server(self: &Arc<Self>, reference: &str) -> Result<CodeServerView> {
        let r = reference.to_string();
        self.detached(move |a| async move {
            let before = a.stages.find(&r)?;
            let view = a.code_view(&before, false)?;
            a.stages.code_remove(&a.config(), &r).await?;
            Ok(view)
        })
        .await
    }

    /// Answers with the new password.
    pub async fn rotate_code_server_password(
        self: &Arc<Self>,
        reference: &str,
    ) -> Result<CodeServerView> {
        self.code_op(reference, true, |s, c, r| Box::pin(s.code_rotate(c, r)))
            .await
    }
}
