//! The facade's code-server methods: each runs on a task of its own and answers with the
//! code server's view (the password only when it is new).

use super::Agent;
use crate::core::stage::code_server::CodeServerView;
use crate::core::Result;
use std::sync::Arc;

impl Agent {
    pub async fn create_code_server(
        self: &Arc<Self>,
        reference: &str,
        domain: &str,
    ) -> Result<CodeServerView> {
        let domain = domain.to_string();
        let s = self
            .stage_op(reference, move |s, c, r| {
                Box::pin(async move { s.code_create(c, r, &domain).await })
            })
            .await?;
        self.code_view(&s, true)
    }

    pub async fn start_code_server(self: &Arc<Self>, reference: &str) -> Result<CodeServerView> {
        let s = self
            .stage_op(reference, |s, c, r| Box::pin(s.code_start(c, r)))
            .await?;
        self.code_view(&s, false)
    }

    pub async fn stop_code_server(self: &Arc<Self>, reference: &str) -> Result<CodeServerView> {
        let s = self
            .stage_op(reference, |s, c, r| Box::pin(s.code_stop(c, r)))
            .await?;
        self.code_view(&s, false)
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
        let s = self
            .stage_op(reference, |s, c, r| Box::pin(s.code_rotate(c, r)))
            .await?;
        self.code_view(&s, true)
    }
}
