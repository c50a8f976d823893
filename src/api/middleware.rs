//! The RPC middleware of one connection: checks the caller's access and the batch size, opens
//! the request span, marks the connection busy while a call runs, and names the field of
//! jsonrpsee's own parameter errors.

use super::access::{AccessPolicy, Caller};
use super::errors;
use super::params::field_of_error;
use crate::core::Error;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{ErrorCode, Request};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The access policy, swapped whole on a configuration reload.
pub type SharedPolicy = Arc<RwLock<Arc<AccessPolicy>>>;

/// Calls under way on one connection, and when the last one ended: the daemon closes a
/// connection that stays idle too long.
#[derive(Debug)]
pub struct Activity {
    busy: AtomicUsize,
    since: Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            busy: AtomicUsize::new(0),
            since: Mutex::new(Instant::now()),
        }
    }
}

impl Activity {
    /// How long no call has run; `None` while one runs.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(
            self.since
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed(),
        )
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }
}

/// A call under way; its end restarts the idle clock.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the middleware of one connection knows besides the policy.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub caller: Arc<Caller>,
    pub activity: Arc<Activity>,
    /// `api.max_batch` when the connection opened.
    pub max_batch: usize,
}

#[derive(Clone)]
pub struct ConnectionMiddleware<S> {
    inner: S,
    caller: Arc<Caller>,
    policy: SharedPolicy,
    activity: Arc<Activity>,
    max_batch: usize,
}

impl<S> ConnectionMiddleware<S> {
    pub fn new(inner: S, conn: &ConnectionInfo, policy: SharedPolicy) -> Self {
        ConnectionMiddleware {
            inner,
            caller: conn.caller.clone(),
            policy,
            activity: conn.activity.clone(),
            max_batch: conn.max_batch,
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
        let busy = self.activity.begin();
        async move {
            let _busy = busy;
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
        let busy = self.activity.begin();
        // Refused whole, before any call runs: jsonrpsee's own limit answers with -32010,
        // which is `docker` in this API.
        let too_big = (batch.len() > self.max_batch).then(|| {
            let err = Error::LimitExceeded(format!(
                "a batch holds at most {} calls (api.max_batch); this one has {}",
                self.max_batch,
                batch.len()
            ));
            tracing::warn!(calls = batch.len(), uid = self.caller.uid, "batch refused");
            MethodResponse::error(jsonrpsee::types::Id::Null, errors::to_object(&err))
        });
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
        let inner = self.inner.clone();
        async move {
            let _busy = busy;
            match too_big {
                Some(refused) => refused,
                None => inner.batch(batch).await,
            }
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        let allowed = self.allows(n.method_name(), n.params.as_deref());
        let inner = self.inner.clone();
        let busy = self.activity.begin();
        async move {
            let _busy = busy;
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
