//! Keep-alive HTTP/1.1 connections to plain-HTTP upstreams (the on-premises
//! servers: vLLM, SGLang, Ollama, the simulator), on a wire codec of our
//! own ([`crate::h1`]).
//!
//! hyper's client costs, per connection, an 8 KiB read buffer (often two,
//! when a chunk handed on still pins the first), an 8 KiB write buffer, a
//! ~8.5 KiB dispatch channel and a task: with a connection per open stream
//! that alone was ~32 KiB of the ~43 KiB an HTTP/1.1 stream held, and
//! every request crossed tasks twice. Here a connection is a socket and a
//! read buffer (4 KiB while a read is being used, grown only for larger
//! heads, given back when empty), driven by the task that sends on it; it goes back to the pool when its answer has
//! been read to the end, and the pool is a short list per host (docs/adr/0012).
//! TLS upstreams (where ALPN may pick HTTP/2) and `http2: true` providers
//! keep hyper-util's client ([`crate::http::Client`] chooses).
//!
//! Idle connections are taken newest first (warm, and the rest can age);
//! an idle connection the server has closed is noticed when it is taken
//! (the socket reads end-of-file) and dropped, and the oldest are closed
//! as others come back once they idled 90 s or the server closed them. A request on a reused
//! connection that the server closes without a byte of answer — the race
//! with its keep-alive timeout — is sent again on a new connection, once.
//! A body dropped before its end gives its connection back when the rest
//! is already in the buffer (a relay stops at `[DONE]`; the chunked
//! encoding's last line came with it); otherwise the connection is closed.

use crate::error::{ProviderError, ProviderErrorKind};
use crate::h1::{self, Decoder, Step};
use bytes::{Bytes, BytesMut};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tower_service::Service;

/// Idle connections kept per host; more are closed when they come back.
const MAX_IDLE_PER_HOST: usize = 1024;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The room a read asks for to start with (a stream's events, a head, a
/// short answer), and at most, doubling while reads fill it (a large
/// answer: an embeddings batch).
const READ_CHUNK: usize = 4096;
const READ_MAX: usize = 256 * 1024;

/// The pool; cheap to clone (clones share it).
#[derive(Clone)]
pub struct Http1Pool {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpConnector,
    /// Idle connections by `host:port`; a short list scanned in order (a
    /// client serves a handful of hosts). Each host's connections are
    /// taken newest first; the oldest are pruned as others come back.
    idle: Mutex<Vec<(String, VecDeque<Idle>)>>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// One connection: its socket, what was read and not yet used, and the
/// room the next read asks for.
struct Conn {
    io: TcpStream,
    buf: BytesMut,
    read_size: usize,
}

impl Conn {
    /// An empty buffer is given back to the allocator: a stream waits far
    /// longer between events than it reads, so 10,000 open streams hold a
    /// few buffers between them rather than one each.
    fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }
}

fn protocol(what: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Protocol, what.to_string())
}

impl Http1Pool {
    pub fn new(connector: HttpConnector) -> Http1Pool {
        Http1Pool { inner: Arc::new(Inner { connector, idle: Mutex::new(Vec::new()) }) }
    }

    /// Sends `request` (an absolute `http://` URI; sent in origin form, with
    /// `host` from the URI unless the caller set one) on an idle connection
    /// to its host, or a new one; answers when the response head is in.
    pub async fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, ProviderError> {
        let (parts, body) = request.into_parts();
        let Some(host) = parts.uri.authority().map(host_of) else {
            return Err(protocol(format_args!("no host in {}", parts.uri)));
        };
        let head = h1::encode_head(&parts, body.len(), &host);
        let mut retried = false;
        loop {
            let (mut conn, reused) = match self.take_idle(&host) {
                Some(conn) => (conn, true),
                None => (self.connect(&parts.uri).await?, false),
            };
            match exchange(&mut conn, &head, &body, &parts.method).await {
                Ok(head) => {
                    // A stream's head comes long before its first event.
                    conn.release_if_empty();
                    let home = Home { pool: self.inner.clone(), host, keep_alive: head.keep_alive };
                    let body = Body { conn: Some(conn), decoder: Decoder::new(head.framing), home };
                    let mut response = http::Response::new(body);
                    *response.status_mut() = head.status;
                    *response.headers_mut() = head.headers;
                    return Ok(response);
                }
                Err(Exchange::Unanswered(_)) if reused && !retried => retried = true,
                Err(Exchange::Unanswered(e) | Exchange::Failed(e)) => return Err(e),
            }
        }
    }

    fn take_idle(&self, host: &str) -> Option<Conn> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = &mut idle.iter_mut().find(|(h, _)| h == host)?.1;
        while let Some(entry) = list.pop_back() {
            if entry.since.elapsed() < IDLE_TIMEOUT && still_open(&entry.conn.io) {
                return Some(entry.conn);
            }
        }
        None
    }

    async fn connect(&self, uri: &http::Uri) -> Result<Conn, ProviderError> {
        let mut connector = self.inner.connector.clone();
        let io = connector
            .call(uri.clone())
            .await
            .map_err(|e| ProviderError::new(ProviderErrorKind::Connect, crate::http::chain(&e)))?;
        Ok(Conn { io: io.into_inner(), buf: BytesMut::new(), read_size: READ_CHUNK })
    }
}

/// `host[:port]` of an authority, as `Host` is written when the caller set
/// none: never the userinfo (credentials in a base URL), no `:80`.
fn host_of(authority: &http::uri::Authority) -> String {
    match authority.port_u16() {
        Some(80) => authority.host().to_string(),
        _ if !authority.as_str().contains('@') => authority.as_str().to_string(),
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_string(),
    }
}

/// An idle socket the server has not closed and sent nothing on.
fn still_open(io: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

enum Exchange {
    /// Closed or reset before a byte of answer came.
    Unanswered(ProviderError),
    Failed(ProviderError),
}

/// Writes the request and reads the answer's head.
async fn exchange(conn: &mut Conn, head: &[u8], body: &[u8], method: &http::Method) -> Result<h1::Head, Exchange> {
    write_all(&mut conn.io, head, body).await.map_err(|e| Exchange::Unanswered(protocol(e)))?;
    let mut answered = false;
    loop {
        if answered {
            if let Some(head) = h1::parse_head(&mut conn.buf, method).map_err(|e| Exchange::Failed(protocol(e.0)))? {
                return Ok(head);
            }
        }
        match std::future::poll_fn(|cx| read_more(conn, cx)).await {
            Ok(0) if !answered => return Err(Exchange::Unanswered(protocol("upstream closed the connection"))),
            Ok(0) => return Err(Exchange::Failed(protocol("upstream closed the connection mid-head"))),
            Ok(_) => answered = true,
            Err(e) if !answered => return Err(Exchange::Unanswered(protocol(e))),
            Err(e) => return Err(Exchange::Failed(protocol(e))),
        }
    }
}

/// Head and body in as few writes as the socket allows (one, usually).
async fn write_all(io: &mut TcpStream, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let (mut head, mut body) = (head, body);
    while !head.is_empty() || !body.is_empty() {
        let n = io.write_vectored(&[IoSlice::new(head), IoSlice::new(body)]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    Ok(())
}

/// Reads what the socket has into the connection's buffer.
fn read_more(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    loop {
        std::task::ready!(conn.io.poll_read_ready(cx))?;
        match try_read(conn) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// One non-blocking read, with room for `read_size` bytes; a read that
/// fills the room doubles it (to [`READ_MAX`]), a short one resets it.
fn try_read(conn: &mut Conn) -> std::io::Result<usize> {
    if conn.buf.capacity() - conn.buf.len() < conn.read_size / 4 {
        conn.buf.reserve(conn.read_size);
    }
    let room = conn.buf.capacity() - conn.buf.len();
    let n = conn.io.try_read_buf(&mut conn.buf)?;
    conn.read_size = match n {
        n if n == room => (conn.read_size * 2).min(READ_MAX),
        n if n < READ_CHUNK => READ_CHUNK,
        _ => conn.read_size,
    };
    Ok(n)
}

/// Where a connection goes back when its answer has been read.
struct Home {
    pool: Arc<Inner>,
    host: String,
    keep_alive: bool,
}

impl Home {
    fn put_back(&self, conn: Conn) {
        if !self.keep_alive || !conn.buf.is_empty() {
            return; // closed, or the server sent more than it framed
        }
        let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        let at = match idle.iter().position(|(h, _)| *h == self.host) {
            Some(at) => at,
            None => {
                idle.push((self.host.clone(), VecDeque::new()));
                idle.len() - 1
            }
        };
        let list = &mut idle[at].1;
        // Connections left over from a busier moment are the oldest: close
        // those the server has closed or that idled too long (a socket the
        // server closed holds its descriptor until we do).
        while list.front().is_some_and(|old| old.since.elapsed() >= IDLE_TIMEOUT || !still_open(&old.conn.io)) {
            list.pop_front();
        }
        if list.len() < MAX_IDLE_PER_HOST {
            let mut conn = conn;
            conn.release_if_empty();
            list.push_back(Idle { conn, since: Instant::now() });
        }
    }
}

/// A response body read off its connection by whoever polls it; the
/// connection goes home at the body's end.
pub struct Body {
    conn: Option<Conn>,
    decoder: Decoder,
    home: Home,
}

impl Body {
    fn next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, ProviderError>>> {
        let Some(conn) = self.conn.as_mut() else { return Poll::Ready(None) };
        loop {
            match self.decoder.step(&mut conn.buf) {
                Ok(Step::Data(data)) => {
                    conn.release_if_empty();
                    return Poll::Ready(Some(Ok(data)));
                }
                Ok(Step::Done) => {
                    if let Some(conn) = self.conn.take() {
                        self.home.put_back(conn);
                    }
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(protocol(e.0))));
                }
            }
            let read = std::task::ready!(read_more(conn, cx));
            match read {
                Ok(0) => {
                    self.conn = None;
                    return Poll::Ready(match self.decoder.eof() {
                        Ok(()) => None,
                        Err(e) => Some(Err(protocol(e.0))),
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(protocol(e))));
                }
            }
        }
    }
}

/// A body dropped before its end (a relay stops at `[DONE]` without
/// reading the chunked encoding's last line): the rest of the answer is
/// read, if it is already here or comes within [`DRAIN_WAIT`] and is no
/// more than [`DRAIN_MAX`], and the connection goes back; else it is
/// closed (a client that walked away mid-stream stops the upstream's work).
impl Drop for Body {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        if !self.home.keep_alive {
            return;
        }
        let mut decoder = std::mem::replace(&mut self.decoder, Decoder::new(h1::Framing::Length(0)));
        let mut budget = DRAIN_MAX;
        match drain_buffered(&mut conn, &mut decoder, &mut budget) {
            Drained::Done => self.home.put_back(conn),
            Drained::Closed => {}
            Drained::NeedMore => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
                let home = Home { pool: self.home.pool.clone(), host: self.home.host.clone(), keep_alive: true };
                runtime.spawn(async move {
                    let wait = std::future::poll_fn(|cx| loop {
                        match drain_buffered(&mut conn, &mut decoder, &mut budget) {
                            Drained::Done => return Poll::Ready(true),
                            Drained::Closed => return Poll::Ready(false),
                            Drained::NeedMore => {}
                        }
                        match std::task::ready!(read_more(&mut conn, cx)) {
                            Ok(n) if n > 0 => {}
                            _ => return Poll::Ready(false),
                        }
                    });
                    let done = tokio::time::timeout(DRAIN_WAIT, wait).await.unwrap_or(false);
                    if done {
                        home.put_back(conn);
                    }
                });
            }
        }
    }
}

/// How long a dropped body's connection waits for the rest of its answer.
const DRAIN_WAIT: Duration = Duration::from_millis(50);
/// The most of a dropped body read (and thrown away) to keep its connection.
const DRAIN_MAX: usize = 64 * 1024;

enum Drained {
    Done,
    NeedMore,
    Closed,
}

/// Decodes (and drops) what the buffer and the socket already hold,
/// without waiting.
fn drain_buffered(conn: &mut Conn, decoder: &mut Decoder, budget: &mut usize) -> Drained {
    loop {
        match decoder.step(&mut conn.buf) {
            Ok(Step::Data(data)) if data.len() <= *budget => *budget -= data.len(),
            Ok(Step::Done) => return Drained::Done,
            Ok(Step::NeedMore) => {}
            Ok(Step::Data(_)) | Err(_) => return Drained::Closed,
        }
        match try_read(conn) {
            Ok(0) => return Drained::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Drained::NeedMore,
            Err(_) => return Drained::Closed,
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = ProviderError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ProviderError>>> {
        self.get_mut().next(cx).map(|r| r.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.decoder.is_done()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    type Accepted = Arc<std::sync::atomic::AtomicUsize>;

    fn count(accepted: &Accepted) -> usize {
        accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A server on loopback that runs `conn` on each connection it accepts
    /// (with its number, from 0, and Nagle off as streaming servers set it);
    /// its URL and how many it accepted.
    async fn serve<F, Fut>(conn: F) -> (String, Accepted)
    where
        F: Fn(TcpStream, usize) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Accepted::default();
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                socket.set_nodelay(true).unwrap();
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(conn(socket, n));
            }
        });
        (url, accepted)
    }

    /// Reads one request head; `false` at end of file.
    async fn read_head(socket: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    /// A server that answers `answers` requests per connection, each with
    /// its request line and whether `host` came, then closes.
    async fn server(answers: usize) -> (String, Accepted) {
        serve(move |mut socket, _| async move {
            let mut buf = Vec::new();
            for _ in 0..answers {
                if !read_head(&mut socket, &mut buf).await {
                    return;
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let first = head.lines().next().unwrap_or("").to_string();
                let body = format!("{first}|{}", head.contains("host: 127.0.0.1:"));
                let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                if socket.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        })
        .await
    }

    fn get(url: &str) -> http::Request<Bytes> {
        http::Request::get(format!("{url}/v1/models?x=1")).body(Bytes::new()).unwrap()
    }

    async fn text(pool: &Http1Pool, url: &str) -> String {
        let response = pool.send(get(url)).await.unwrap();
        let bytes = response.into_body().collect().await.map_err(|e| e.message).unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_was_read_and_requests_go_in_origin_form_with_host() {
        let (url, accepted) = server(usize::MAX).await;
        let pool = Http1Pool::new(HttpConnector::new());
        for _ in 0..5 {
            assert_eq!(text(&pool, &url).await, "GET /v1/models?x=1 HTTP/1.1|true");
        }
        assert_eq!(count(&accepted), 1);
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
        assert_eq!(count(&accepted), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_the_rest_arrived_closes_its_connection() {
        // The first answer promises 100 bytes and sends 4: that connection
        // cannot be reused.
        let (url, accepted) = serve(|mut socket, n| async move {
            let mut buf = Vec::new();
            read_head(&mut socket, &mut buf).await;
            let reply: &[u8] = if n == 0 {
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart"
            } else {
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfull"
            };
            let _ = socket.write_all(reply).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let pool = Http1Pool::new(HttpConnector::new());
        drop(pool.send(get(&url)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(text(&pool, &url).await, "full");
        assert_eq!(count(&accepted), 2);
    }

    #[tokio::test]
    async fn a_stream_dropped_at_its_last_event_keeps_its_connection_when_the_end_comes_late() {
        let (url, accepted) = serve(|mut socket, _| async move {
            let mut buf = Vec::new();
            while read_head(&mut socket, &mut buf).await {
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
                let _ = socket.write_all(head).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
                let _ = socket.write_all(b"0\r\n\r\n").await;
            }
        })
        .await;
        let pool = Http1Pool::new(HttpConnector::new());
        for _ in 0..3 {
            let mut body = pool.send(get(&url)).await.unwrap().into_body();
            let first = body.frame().await.unwrap().map_err(|e| e.message).unwrap();
            assert_eq!(first.into_data().unwrap(), "hello");
            drop(body);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(count(&accepted), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced_without_an_error() {
        let (url, accepted) = server(1).await;
        let pool = Http1Pool::new(HttpConnector::new());
        for _ in 0..3 {
            assert_eq!(text(&pool, &url).await, "GET /v1/models?x=1 HTTP/1.1|true");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(count(&accepted), 3);
    }

    #[tokio::test]
    async fn a_request_a_reused_connection_closes_on_unanswered_is_sent_again_once() {
        // Each connection answers its first request and closes on the second
        // without a byte: the keep-alive race, seen from the client.
        let (url, accepted) = serve(|mut socket, _| async move {
            let mut buf = Vec::new();
            read_head(&mut socket, &mut buf).await;
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
            read_head(&mut socket, &mut buf).await;
        })
        .await;
        let pool = Http1Pool::new(HttpConnector::new());
        assert_eq!(text(&pool, &url).await, "ok");
        assert_eq!(text(&pool, &url).await, "ok");
        assert_eq!(count(&accepted), 2);
    }

    #[tokio::test]
    async fn a_large_answer_arrives_whole_in_growing_reads_and_the_connection_is_reused() {
        let body: Arc<Vec<u8>> = Arc::new((0..3_000_000u32).map(|i| (i % 251) as u8).collect());
        let sent = body.clone();
        let (url, accepted) = serve(move |mut socket, _| {
            let sent = sent.clone();
            async move {
                let mut buf = Vec::new();
                while read_head(&mut socket, &mut buf).await {
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", sent.len());
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&sent).await;
                }
            }
        })
        .await;
        let pool = Http1Pool::new(HttpConnector::new());
        for _ in 0..2 {
            let response = pool.send(get(&url)).await.unwrap();
            let got = response.into_body().collect().await.map_err(|e| e.message).unwrap().to_bytes();
            assert!(got[..] == body[..], "{} bytes back", got.len());
        }
        assert_eq!(count(&accepted), 1);
    }

    #[tokio::test]
    async fn connections_left_idle_too_long_are_pruned_as_others_come_back() {
        // Two connections open at once, then one at a time: the one left at
        // the bottom ages out when the other comes back, not at some later take.
        let (url, _) = server(usize::MAX).await;
        let pool = Http1Pool::new(HttpConnector::new());
        let (a, b) = (pool.send(get(&url)).await.unwrap(), pool.send(get(&url)).await.unwrap());
        let _ = a.into_body().collect().await.map_err(|e| e.message).unwrap();
        let _ = b.into_body().collect().await.map_err(|e| e.message).unwrap();
        let idle = |pool: &Http1Pool| pool.inner.idle.lock().unwrap().iter().map(|(_, l)| l.len()).sum::<usize>();
        assert_eq!(idle(&pool), 2);
        {
            let mut lists = pool.inner.idle.lock().unwrap();
            let oldest = lists[0].1.front_mut().unwrap();
            let Some(aged) = oldest.since.checked_sub(IDLE_TIMEOUT) else { return };
            oldest.since = aged;
        }
        assert_eq!(text(&pool, &url).await, "GET /v1/models?x=1 HTTP/1.1|true");
        assert_eq!(idle(&pool), 1);
    }

    #[test]
    fn host_leaves_out_credentials_and_the_default_port() {
        let host = |u: &str| host_of(u.parse::<http::Uri>().unwrap().authority().unwrap());
        assert_eq!(host("http://127.0.0.1:8000/v1"), "127.0.0.1:8000");
        assert_eq!(host("http://user:secret@models.internal:8000/v1"), "models.internal:8000");
        assert_eq!(host("http://user@models.internal/v1"), "models.internal");
        assert_eq!(host("http://models.internal:80/v1"), "models.internal");
        assert_eq!(host("http://[::1]:8000/v1"), "[::1]:8000");
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
