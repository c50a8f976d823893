//! The accept loop: HTTP and WebSocket JSON-RPC on one Unix socket, until `shutdown` resolves;
//! then in-flight requests get `drain` to finish.

use crate::api::access::caller_from_peer;
use crate::api::middleware::{ConnectionMiddleware, SharedPolicy};
use jsonrpsee::core::middleware::RpcServiceBuilder;
use jsonrpsee::server::{serve_with_graceful_shutdown, stop_channel, Server, ServerConfig};
use jsonrpsee::Methods;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
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

/// Serves `methods` on `listener`. Returns once every connection has finished or `drain` ran out.
pub async fn run(
    listener: UnixListener,
    methods: impl Into<Methods>,
    policy: SharedPolicy,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let methods: Methods = methods.into();
    let (stop_handle, server_handle) = stop_channel();
    let builder = Server::builder()
        .set_config(ServerConfig::builder().max_connections(1024).build())
        .set_http_middleware(tower::ServiceBuilder::new().map_request(json_content_type))
        .to_service_builder();
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
                let policy = policy.clone();
                let middleware = RpcServiceBuilder::new()
                    .layer_fn(move |inner| ConnectionMiddleware::new(inner, caller.clone(), policy.clone()));
                let service = builder
                    .clone()
                    .set_rpc_middleware(middleware)
                    .build(methods.clone(), stop_handle.clone());
                let stopped = stop_handle.clone().shutdown();
                connections.spawn(async move {
                    if let Err(e) = serve_with_graceful_shutdown(stream, service, stopped).await {
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
