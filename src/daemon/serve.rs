//! The accept loop: HTTP and WebSocket JSON-RPC on one Unix socket, until `shutdown` resolves;
//! then in-flight requests get `drain` to finish. A connection past the caller's share of
//! `api.max_connections` is answered 503 and closed before anything is read from it.

use super::conn::{self, Gate, Held};
use crate::api::access::caller_from_peer;
use crate::api::middleware::{Activity, ConnectionInfo, ConnectionMiddleware, SharedPolicy};
use crate::config::SharedConfig;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use jsonrpsee::core::middleware::RpcServiceBuilder;
use jsonrpsee::server::{stop_channel, Server, ServerConfig};
use jsonrpsee::Methods;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;

/// `curl -d` sends `application/x-www-form-urlencoded`; every body here is JSON-RPC, so POSTs
/// are read as JSON whatever they claim.
fn json_content_type<B>(mut req: http::Request<B>) -> http::Request<B> {
    if req.method() == http::Method::POST {
        req.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    req
}

/// Serves one connection until it ends, `stopped` resolves (then it finishes what runs), or
/// it runs no call for `idle_limit`.
async fn serve_connection<S, B>(
    io: Held<UnixStream>,
    service: S,
    stopped: impl Future<Output = ()>,
    activity: Arc<Activity>,
    idle_limit: Duration,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body<Data = hyper::body::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(stopped, conn);
    tokio::select! {
        res = &mut conn => res,
        _ = &mut stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        // No call runs: nothing is lost by dropping it. A WebSocket has left this task by now.
        _ = conn::idle(&activity, idle_limit) => {
            tracing::debug!(?idle_limit, "idle connection closed");
            Ok(())
        }
    }
}

/// Answers 503 without reading and closes; says so in the log at most every 10 s.
fn refuse(stream: UnixStream, uid: u32, open: usize, last_warned: &AtomicU64, started: Instant) {
    let _ = stream.try_write(conn::TOO_MANY);
    let now = started.elapsed().as_secs();
    let last = last_warned.load(Ordering::Relaxed);
    if now >= last + 10 || last == 0 {
        last_warned.store(now.max(1), Ordering::Relaxed);
        tracing::warn!(
            uid,
            open,
            "connection refused: the caller's share of api.max_connections is taken"
        );
    } else {
        tracing::debug!(uid, open, "connection refused");
    }
}

/// Serves `methods` on `listener`. Returns once every connection has finished or `drain` ran out.
pub async fn run(
    listener: UnixListener,
    methods: impl Into<Methods>,
    policy: SharedPolicy,
    config: SharedConfig,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let methods: Methods = methods.into();
    let (stop_handle, server_handle) = stop_channel();
    // The cap is ours (see `Gate`); jsonrpsee's own counts requests, not connections.
    let builder = Server::builder()
        .set_config(ServerConfig::builder().max_connections(u32::MAX).build())
        .set_http_middleware(tower::ServiceBuilder::new().map_request(json_content_type))
        .to_service_builder();
    let gate = Arc::new(Gate::default());
    let (last_warned, started) = (AtomicU64::new(0), Instant::now());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(cred) = stream.peer_cred() else {
                    tracing::warn!("connection without peer credentials dropped");
                    continue;
                };
                let caller = Arc::new(caller_from_peer(cred.uid(), cred.gid(), cred.pid()));
                let limits = crate::config::current(&config).api.clone();
                let role = policy.read().unwrap_or_else(|p| p.into_inner()).role(&caller);
                let Some(slot) = gate.admit(role, caller.uid, &limits) else {
                    refuse(stream, caller.uid, gate.open(), &last_warned, started);
                    continue;
                };
                let info = ConnectionInfo {
                    caller,
                    activity: Arc::new(Activity::default()),
                    max_batch: limits.max_batch as usize,
                };
                let activity = info.activity.clone();
                let policy = policy.clone();
                let middleware = RpcServiceBuilder::new()
                    .layer_fn(move |inner| ConnectionMiddleware::new(inner, &info, policy.clone()));
                let service = builder
                    .clone()
                    .set_rpc_middleware(middleware)
                    .build(methods.clone(), stop_handle.clone());
                let stopped = stop_handle.clone().shutdown();
                let io = Held::new(stream, slot);
                connections.spawn(async move {
                    if let Err(e) = serve_connection(io, service, stopped, activity, limits.idle_timeout.0).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = server_handle.stop();
    let in_flight = connections.len();
    if in_flight > 0 {
        tracing::info!(connections = in_flight, "waiting for in-flight requests");
    }
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            ?drain,
            "in-flight requests cut off"
        );
        connections.abort_all();
    }
}
