//! Whether a host port is free (a bind fails while another socket holds it), whether something
//! answers on it, and what an HTTP GET on it gets (the readiness checks).

use crate::core::interfaces::PortProbe;
use bytes::Bytes;
use http_body_util::Empty;
use std::net::{IpAddr, TcpListener};
use std::time::Duration;

pub struct BindProbe;

#[async_trait::async_trait]
impl PortProbe for BindProbe {
    fn in_use(&self, addr: IpAddr, port: u16) -> bool {
        TcpListener::bind((addr, port)).is_err()
    }

    fn accepts(&self, addr: IpAddr, port: u16) -> bool {
        let timeout = std::time::Duration::from_millis(500);
        std::net::TcpStream::connect_timeout(&(addr, port).into(), timeout).is_ok()
    }

    async fn http_get(
        &self,
        addr: IpAddr,
        port: u16,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<u16, String> {
        tokio::time::timeout(timeout, get(addr, port, host, path))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {}",
                    humantime::format_duration(timeout)
                ))
            })
    }
}

/// One request on a fresh connection; only the status is read. The connection is driven in
/// this future, so it ends (closed) when the status comes or the caller gives up.
async fn get(addr: IpAddr, port: u16, host: &str, path: &str) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect((addr, port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "stagelet-readiness")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("GET {path:?}: {e}"))?;
    let send = sender.send_request(req);
    tokio::pin!(send, conn);
    let answer = tokio::select! {
        biased;
        r = &mut send => r,
        // The connection ended (an answer and a close may come together): the request has
        // its answer or its error by now.
        _ = &mut conn => send.await,
    };
    answer
        .map(|resp| resp.status().as_u16())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener that answers each connection with `reply` after reading the request head.
    async fn serve(reply: &'static str) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut head = vec![0; 4096];
            let n = s.read(&mut head).await.unwrap();
            s.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head[..n])
                .lines()
                .map(str::to_string)
                .collect()
        });
        (port, task)
    }

    #[tokio::test]
    async fn a_get_reports_the_status_and_sends_the_host() {
        let (port, head) = serve("HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n").await;
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let got = BindProbe
            .http_get(
                lo,
                port,
                "qa.acme.example.com",
                "/web/health",
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(got, Ok(302));
        let head = head.await.unwrap();
        assert_eq!(head[0], "GET /web/health HTTP/1.1");
        assert!(
            head.iter()
                .any(|l| l.eq_ignore_ascii_case("host: qa.acme.example.com")),
            "{head:?}"
        );
    }

    #[tokio::test]
    async fn silence_and_refusal_are_reasons() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        // Accepts, reads, never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let _held = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let got = BindProbe
            .http_get(lo, port, "x", "/", Duration::from_millis(300))
            .await;
        assert!(
            got.as_ref().unwrap_err().contains("no answer within 300ms"),
            "{got:?}"
        );
        // A port nobody listens on (bound, then released).
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let got = BindProbe
            .http_get(lo, free, "x", "/", Duration::from_secs(2))
            .await;
        assert!(got.as_ref().unwrap_err().contains("refused"), "{got:?}");
    }
}
