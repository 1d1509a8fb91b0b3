//! Keep-alive HTTP/1.1 connections to plain-HTTP upstreams (the on-premises
//! servers: vLLM, SGLang, Ollama, the simulator), driven by hyper's
//! connection-level client.
//!
//! hyper-util's pooled client does the same for every scheme but, per
//! request, hashes its pool key twice with SipHash, wraps the connection in
//! layers of its own, and spawns a task that waits for the connection to be
//! idle again before putting it back: ~17% of the gateway's user-space
//! instructions per proxied request went to that client (docs/adr/0005).
//! Here a connection goes back to the pool when its response body has been
//! read to the end ([`Body`]), checked out by a scan of a short list per
//! host. TLS upstreams (where ALPN may pick HTTP/2) and `http2: true`
//! providers keep hyper-util's client ([`crate::http::Client`] chooses).
//!
//! A connection taken from the pool may have been closed by the server
//! while it sat idle; a request that could not be written on it is sent
//! again on a fresh connection, as hyper-util does. A response body dropped
//! before its end gives its connection back once hyper has read the rest
//! (at once, usually: a stream's relay stops at `[DONE]`, and the chunked
//! encoding's last line came with it); a connection whose answer was cut
//! is closed.

use crate::error::{ProviderError, ProviderErrorKind};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower_service::Service;

type Sender = http1::SendRequest<Full<Bytes>>;

/// Idle connections kept per host; more are closed when they come back.
const MAX_IDLE_PER_HOST: usize = 1024;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The pool; cheap to clone (clones share it).
#[derive(Clone)]
pub struct Http1Pool {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpConnector,
    /// Idle connections by `host:port`; a short list scanned in order (a
    /// client serves a handful of hosts).
    idle: Mutex<Vec<(String, Vec<Idle>)>>,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

impl Http1Pool {
    pub fn new(connector: HttpConnector) -> Http1Pool {
        Http1Pool { inner: Arc::new(Inner { connector, idle: Mutex::new(Vec::new()) }) }
    }

    /// Sends `request` (an absolute `http://` URI; sent in origin form, with
    /// `Host` from the URI unless the caller set one) on an idle connection
    /// to its host, or a new one.
    pub async fn send(&self, mut request: http::Request<Full<Bytes>>) -> Result<http::Response<Body>, ProviderError> {
        let uri = request.uri().clone();
        let Some(authority) = uri.authority() else {
            return Err(ProviderError::new(ProviderErrorKind::Protocol, format!("no host in {uri}")));
        };
        let host = authority.as_str();
        if !request.headers().contains_key(http::header::HOST) {
            let value = http::HeaderValue::from_str(host)
                .map_err(|e| ProviderError::new(ProviderErrorKind::Protocol, format!("bad host {host:?}: {e}")))?;
            request.headers_mut().insert(http::header::HOST, value);
        }
        *request.uri_mut() = origin_form(&uri);
        loop {
            let (mut sender, reused) = match self.take_idle(host) {
                Some(sender) => (sender, true),
                None => (self.connect(&uri).await?, false),
            };
            if !sender.is_ready() && sender.ready().await.is_err() {
                continue; // closed while it waited to be idle again: try another
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let home = Home { pool: self.inner.clone(), host: host.to_string(), sender };
                    return Ok(response.map(|inner| Body { inner, home: Some(home) }));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: the idle connection was closed under us.
                    Some(again) if reused => request = again,
                    _ => return Err(send_error(e.error())),
                },
            }
        }
    }

    fn take_idle(&self, host: &str) -> Option<Sender> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = &mut idle.iter_mut().find(|(h, _)| h == host)?.1;
        while let Some(entry) = list.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < IDLE_TIMEOUT {
                return Some(entry.sender);
            }
        }
        None
    }

    async fn connect(&self, uri: &http::Uri) -> Result<Sender, ProviderError> {
        let mut connector = self.inner.connector.clone();
        let io = connector
            .call(uri.clone())
            .await
            .map_err(|e| ProviderError::new(ProviderErrorKind::Connect, crate::http::chain(&e)))?;
        let (sender, connection) = http1::Builder::new()
            .handshake::<_, Full<Bytes>>(io)
            .await
            .map_err(|e| ProviderError::new(ProviderErrorKind::Connect, crate::http::chain(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection closed");
            }
        });
        Ok(sender)
    }
}

impl Inner {
    fn put_back(&self, host: String, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let at = match idle.iter().position(|(h, _)| *h == host) {
            Some(at) => at,
            None => {
                idle.push((host, Vec::new()));
                idle.len() - 1
            }
        };
        let list = &mut idle[at].1;
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(Idle { sender, since: Instant::now() });
        }
    }
}

fn origin_form(uri: &http::Uri) -> http::Uri {
    match uri.path_and_query() {
        Some(pq) if pq.as_str() != "/" => http::Uri::from(pq.clone()),
        _ => http::Uri::from_static("/"),
    }
}

fn send_error(e: &hyper::Error) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Protocol, crate::http::chain(e))
}

/// Where a connection goes back when its response has been read.
struct Home {
    pool: Arc<Inner>,
    host: String,
    sender: Sender,
}

/// A response body from the pool: hyper's, plus the way home for its
/// connection, taken at the body's end.
pub struct Body {
    inner: Incoming,
    home: Option<Home>,
}

/// A body dropped before its end (a relay stops at `[DONE]` without
/// reading the chunked encoding's last line) leaves a connection that is
/// idle already when that line came in the same read, or soon; it goes
/// back then. One whose answer is really cut is closed by hyper, and the
/// wait ends with it.
impl Drop for Body {
    fn drop(&mut self) {
        let Some(home) = self.home.take() else { return };
        if home.sender.is_ready() {
            home.pool.put_back(home.host, home.sender);
        } else if !home.sender.is_closed() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let Home { pool, host, mut sender } = home;
                    if sender.ready().await.is_ok() {
                        pool.put_back(host, sender);
                    }
                });
            }
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() || self.inner.is_end_stream() {
            if let Some(home) = self.home.take() {
                home.pool.put_back(home.host, home.sender);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers `answers` requests per connection with a
    /// fixed body, then closes; counts the connections it accepted.
    async fn server(answers: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..answers {
                        let mut have = 0;
                        loop {
                            let n = socket.read(&mut buf[have..]).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            have += n;
                            if buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                        let head = String::from_utf8_lossy(&buf[..have]).to_string();
                        let first = head.lines().next().unwrap_or("").to_string();
                        let body = format!("{first}|{}", head.contains("host: 127.0.0.1:"));
                        let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn get(url: &str) -> http::Request<Full<Bytes>> {
        http::Request::get(format!("{url}/v1/models?x=1")).body(Full::new(Bytes::new())).unwrap()
    }

    async fn text(pool: &Http1Pool, url: &str) -> String {
        let response = pool.send(get(url)).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_was_read_and_requests_go_in_origin_form_with_host() {
        let (url, accepted) = server(usize::MAX).await;
        let pool = Http1Pool::new(HttpConnector::new());
        for _ in 0..5 {
            assert_eq!(text(&pool, &url).await, "GET /v1/models?x=1 HTTP/1.1|true");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_after_it_all_arrived_puts_its_connection_back() {
        let (url, accepted) = server(usize::MAX).await;
        let pool = Http1Pool::new(HttpConnector::new());
        let response = pool.send(get(&url)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(response);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(text(&pool, &url).await, "GET /v1/models?x=1 HTTP/1.1|true");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_the_rest_arrived_closes_its_connection() {
        // The answer promises 100 bytes and sends 4: the connection cannot be reused.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let reply: &[u8] = if n == 0 {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfull"
                    };
                    let _ = socket.write_all(reply).await;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                });
            }
        });
        let pool = Http1Pool::new(HttpConnector::new());
        drop(pool.send(get(&url)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(text(&pool, &url).await, "full");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced_without_an_error() {
        let (url, accepted) = server(1).await;
        let pool = Http1Pool::new(HttpConnector::new());
        for _ in 0..3 {
            assert_eq!(text(&pool, &url).await, "GET /v1/models?x=1 HTTP/1.1|true");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let pool = Http1Pool::new(HttpConnector::new());
        let e = pool.send(get(&url)).await.err().unwrap();
        assert_eq!(e.kind, ProviderErrorKind::Connect);
    }
}
