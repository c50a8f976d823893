//! Clients over the Unix socket: the generated typed client over WebSocket, and a plain HTTP
//! POST client for scripts, tests and benchmarks.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use jsonrpsee::async_client::{Client, ClientBuilder};
use jsonrpsee::client_transport::ws::{Url, WsTransportClientBuilder};
use std::path::Path;
use std::time::Duration;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {path}: {source}")]
    Socket {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("WebSocket handshake on {path} failed: {message}")]
    Handshake { path: String, message: String },
}

fn socket_error(path: &Path, source: std::io::Error) -> ConnectError {
    ConnectError::Socket {
        path: path.display().to_string(),
        source,
    }
}

/// A typed client: call the `*ApiClient` traits of [`super::rpc`] on it.
pub async fn connect(socket: &Path) -> Result<Client, ConnectError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| socket_error(socket, e))?;
    let url = Url::parse("ws://localhost/").expect("a constant URL parses");
    let (tx, rx) = WsTransportClientBuilder::default()
        .build_with_stream(url, stream)
        .await
        .map_err(|e| ConnectError::Handshake {
            path: socket.display().to_string(),
            message: e.to_string(),
        })?;
    Ok(ClientBuilder::default()
        .request_timeout(Duration::from_secs(3600))
        .build_with_tokio(tx, rx))
}

/// One keep-alive HTTP/1.1 connection that POSTs JSON-RPC bodies; made again when the daemon
/// closed it (it closes idle connections).
pub struct HttpClient {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    socket: std::path::PathBuf,
}

impl HttpClient {
    pub async fn connect(socket: &Path) -> Result<Self, ConnectError> {
        Ok(HttpClient {
            sender: Self::handshake(socket).await?,
            socket: socket.to_path_buf(),
        })
    }

    async fn handshake(
        socket: &Path,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, ConnectError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| socket_error(socket, e))?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| ConnectError::Handshake {
                    path: socket.display().to_string(),
                    message: e.to_string(),
                })?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// POSTs a body and returns the status and the response body.
    pub async fn post(&mut self, body: String) -> Result<(u16, String), hyper::Error> {
        let req = hyper::Request::post("http://localhost/")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a constant request builds");
        let resp = match self.send(req).await {
            Ok(resp) => resp,
            // Closed while idle, before the request went out: once more on a new connection.
            Err(mut e) => match e.take_message() {
                Some(req) => {
                    if let Ok(sender) = Self::handshake(&self.socket).await {
                        self.sender = sender;
                    }
                    self.send(req).await.map_err(|e| e.into_error())?
                }
                None => return Err(e.into_error()),
            },
        };
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn send(
        &mut self,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<
        hyper::Response<hyper::body::Incoming>,
        hyper::client::conn::TrySendError<hyper::Request<Full<Bytes>>>,
    > {
        // `ready` fails on a closed connection; the send below then hands the request back.
        let _ = self.sender.ready().await;
        self.sender.try_send_request(req).await
    }

    /// Calls a method with named params and returns the whole JSON-RPC response object.
    pub async fn call(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, hyper::Error> {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (_, text) = self.post(body.to_string()).await?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}
