//! The RPC middleware of one connection: checks the caller's access, opens the request span,
//! and names the field of jsonrpsee's own parameter errors.

use super::access::{AccessPolicy, Caller};
use super::errors;
use super::params::field_of_error;
use crate::core::Error;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{ErrorCode, Request};
use std::future::Future;
use std::sync::{Arc, RwLock};
use tracing::Instrument;

/// The access policy, swapped whole on a configuration reload.
pub type SharedPolicy = Arc<RwLock<Arc<AccessPolicy>>>;

#[derive(Clone)]
pub struct ConnectionMiddleware<S> {
    inner: S,
    caller: Arc<Caller>,
    policy: SharedPolicy,
}

impl<S> ConnectionMiddleware<S> {
    pub fn new(inner: S, caller: Arc<Caller>, policy: SharedPolicy) -> Self {
        ConnectionMiddleware {
            inner,
            caller,
            policy,
        }
    }

    fn allows(&self, method: &str, params: Option<&serde_json::value::RawValue>) -> bool {
        let policy = self
            .policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        policy.allows(&self.caller, method, params)
    }
}

fn forbidden(caller: &Caller, method: &str) -> Error {
    Error::Forbidden(format!("uid {} may not call {method}", caller.uid))
}

impl<S> RpcServiceT for ConnectionMiddleware<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(
        &self,
        mut req: Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let span = tracing::info_span!("request", method = %req.method_name(), id = ?req.id(), uid = self.caller.uid);
        let allowed = self.allows(req.method_name(), req.params.as_deref());
        let caller = self.caller.clone();
        let inner = self.inner.clone();
        async move {
            if !allowed {
                tracing::warn!("forbidden");
                let err = forbidden(&caller, req.method_name());
                return MethodResponse::error(req.id().into_owned(), errors::to_object(&err));
            }
            // Borrowed from the request body in the common case: no copy on the hot path.
            let params = req.params.clone();
            let id = req.id().into_owned();
            req.extensions_mut().insert(caller);
            let started = std::time::Instant::now();
            let response = inner.call(req).await;
            tracing::debug!(
                ok = response.is_success(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "done"
            );
            name_param_field(response, id, params.as_deref().map(|p| p.get()))
        }
        .instrument(span)
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            if let Ok(BatchEntry::Call(req)) = entry {
                if !self.allows(req.method_name(), req.params.as_deref()) {
                    let err = errors::to_object(&forbidden(&self.caller, req.method_name()));
                    *entry = Err(BatchEntryErr::new(req.id().into_owned(), err));
                } else {
                    req.extensions_mut().insert(self.caller.clone());
                }
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        let allowed = self.allows(n.method_name(), n.params.as_deref());
        let inner = self.inner.clone();
        async move {
            if allowed {
                inner.notification(n).await
            } else {
                MethodResponse::notification()
            }
        }
    }
}

/// Replaces jsonrpsee's own invalid-params error (its `data` is serde's message) with ours,
/// which names the field.
fn name_param_field(
    response: MethodResponse,
    id: jsonrpsee::types::Id<'static>,
    params: Option<&str>,
) -> MethodResponse {
    if response.as_error_code() != Some(ErrorCode::InvalidParams.code()) {
        return response;
    }
    let Ok(body) = serde_json::from_str::<serde_json::Value>(response.as_json().get()) else {
        return response;
    };
    let Some(message) = body["error"]["data"].as_str() else {
        return response; // already ours: data is an object
    };
    let field = field_of_error(params, message);
    let message = message.split(" at line ").next().unwrap_or(message);
    MethodResponse::error(id, errors::invalid_params(&field, message))
}
