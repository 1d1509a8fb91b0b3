//! One closed-loop worker: its own HTTP/1.1 keep-alive connection, one request
//! in flight at a time, samples into its own [`Recorder`].
//!
//! The connection is driven inside the worker's task (raced against the
//! request with `select!`) rather than in a spawned task: that saves a task
//! wake-up per read, which matters because the load generator shares a core
//! with the upstream simulator during benchmarks.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::sse::SseScanner;
use crate::stats::{ErrorKind, Recorder};

/// Everything a worker needs to build its requests; shared read-only.
#[derive(Debug)]
pub(crate) struct Plan {
    pub addr: SocketAddr,
    pub path: Uri,
    pub host: HeaderValue,
    pub authorization: Option<HeaderValue>,
    pub body: Bytes,
    pub stream: bool,
    pub timeout: Duration,
    /// End of warm-up: requests started before it are not recorded.
    pub measure_from: Instant,
    /// No request starts at or after this instant.
    pub stop_at: Instant,
    /// Cap on measured requests shared by all workers, with its counter.
    pub cap: Option<(u64, AtomicU64)>,
}

type Driver = Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: Driver,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, driver) = http1::handshake(TokioIo::new(tcp)).await.map_err(std::io::Error::other)?;
        Ok(Self { sender, driver: Box::pin(driver) })
    }

    /// Waits until the connection can take a request, driving it meanwhile;
    /// false when it closed instead (e.g. the server dropped an idle keep-alive).
    async fn ready(&mut self) -> bool {
        tokio::select! {
            ready = self.sender.ready() => ready.is_ok(),
            _ = &mut self.driver => false,
        }
    }
}

/// The kept connection if it is still open, else a fresh one. A closed idle
/// connection is not an error: servers may close keep-alives at any time.
async fn usable(kept: Option<Conn>, plan: &Plan) -> Result<Conn, ErrorKind> {
    let attempt = async {
        if let Some(mut conn) = kept {
            if !conn.sender.is_closed() && conn.ready().await {
                return Some(conn);
            }
        }
        let mut conn = Conn::open(plan.addr).await.ok()?;
        conn.ready().await.then_some(conn)
    };
    match tokio::time::timeout(plan.timeout, attempt).await {
        Ok(Some(conn)) => Ok(conn),
        Ok(None) => Err(ErrorKind::Connect),
        Err(_) => Err(ErrorKind::Timeout),
    }
}

/// How one request ended.
enum Outcome {
    /// 2xx and the whole body read; `ttft` for streams that had content.
    Ok {
        ttft: Option<Instant>,
        chunks: u64,
    },
    Status(u16),
    /// The connection failed mid-request; it must be replaced.
    Transport,
    Timeout,
}

/// Runs requests until `plan.stop_at` (or the cap) and returns the samples.
pub(crate) async fn run(plan: Arc<Plan>, expected_samples: usize) -> Recorder {
    let mut rec = Recorder::with_capacity(expected_samples);
    let mut scanner = SseScanner::default();
    let mut conn: Option<Conn> = None;
    loop {
        let start = Instant::now();
        if start >= plan.stop_at {
            break;
        }
        let measured = start >= plan.measure_from;
        if measured {
            if let Some((cap, issued)) = &plan.cap {
                if issued.fetch_add(1, Ordering::Relaxed) >= *cap {
                    break;
                }
            }
        }
        let live = match usable(conn.take(), &plan).await {
            Ok(c) => c,
            Err(kind) => {
                if measured {
                    rec.failure(kind, Instant::now());
                }
                // Back off briefly so a dead target is not a busy loop.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (outcome, kept) = one_request(&plan, live, &mut scanner).await;
        conn = kept;
        let end = Instant::now();
        if !measured {
            continue;
        }
        match outcome {
            Outcome::Ok { ttft, chunks } => {
                rec.success(end - start, end);
                if let Some(t) = ttft {
                    rec.ttft(t - start);
                }
                rec.stream_chunks += chunks;
            }
            Outcome::Status(code) => rec.failure(ErrorKind::Status(code), end),
            Outcome::Transport => rec.failure(ErrorKind::Transport, end),
            Outcome::Timeout => rec.failure(ErrorKind::Timeout, end),
        }
    }
    rec
}

/// Sends one request and reads the whole response, driving the connection
/// meanwhile. Returns the connection when it may be reused.
async fn one_request(plan: &Plan, conn: Conn, scanner: &mut SseScanner) -> (Outcome, Option<Conn>) {
    let Conn { mut sender, mut driver } = conn;
    let mut driver_done = false;
    let raced = {
        let exchange = exchange(plan, &mut sender, scanner);
        tokio::pin!(exchange);
        tokio::time::timeout(plan.timeout, async {
            tokio::select! {
                outcome = &mut exchange => outcome,
                _ = &mut driver => {
                    // The connection ended (closed or failed); the response may
                    // still be fully buffered, so let the exchange finish: with
                    // the dispatcher gone it cannot wait forever.
                    driver_done = true;
                    (&mut exchange).await
                }
            }
        })
        .await
    };
    match raced {
        Ok(outcome) => {
            let reusable = !driver_done && matches!(outcome, Outcome::Ok { .. } | Outcome::Status(_));
            (outcome, reusable.then_some(Conn { sender, driver }))
        }
        Err(_) => (Outcome::Timeout, None),
    }
}

async fn exchange(plan: &Plan, sender: &mut SendRequest<Full<Bytes>>, scanner: &mut SseScanner) -> Outcome {
    let mut req = Request::new(Full::new(plan.body.clone()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = plan.path.clone();
    let headers = req.headers_mut();
    headers.insert(HOST, plan.host.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(auth) = &plan.authorization {
        headers.insert(AUTHORIZATION, auth.clone());
    }
    let Ok(resp) = sender.send_request(req).await else {
        return Outcome::Transport;
    };
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        return match drain(&mut body).await {
            Ok(()) => Outcome::Status(status.as_u16()),
            Err(()) => Outcome::Transport,
        };
    }
    if !plan.stream {
        return match drain(&mut body).await {
            Ok(()) => Outcome::Ok { ttft: None, chunks: 0 },
            Err(()) => Outcome::Transport,
        };
    }
    scanner.reset();
    let mut ttft = None;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Outcome::Transport;
        };
        if let Some(data) = frame.data_ref() {
            if scanner.feed(data) {
                ttft = Some(Instant::now());
            }
        }
    }
    if scanner.finish() {
        ttft = Some(Instant::now());
    }
    Outcome::Ok { ttft, chunks: scanner.chunks }
}

/// Reads and discards the body: the connection is reusable only after it.
async fn drain(body: &mut Incoming) -> Result<(), ()> {
    while let Some(frame) = body.frame().await {
        frame.map_err(|_| ())?;
    }
    Ok(())
}
