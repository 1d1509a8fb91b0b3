//! One closed-loop worker: its own HTTP/1.1 keep-alive connection, one request
//! in flight at a time, each result recorded into the run's [`Sink`] as it ends.
//!
//! The connection is driven inside the worker's task (raced against the
//! request with `select!`) rather than in a spawned task: that saves a task
//! wake-up per read, which matters because the load generator shares a core
//! with the upstream simulator during benchmarks.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::request::Job;
use crate::sse::SseScanner;
use crate::stats::{ErrorKind, Outcome, Sink};

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
async fn usable(kept: Option<Conn>, job: &Job) -> Result<Conn, ErrorKind> {
    let attempt = async {
        if let Some(mut conn) = kept {
            if !conn.sender.is_closed() && conn.ready().await {
                return Some(conn);
            }
        }
        let mut conn = Conn::open(job.addr).await.ok()?;
        conn.ready().await.then_some(conn)
    };
    match tokio::time::timeout(job.timeout, attempt).await {
        Ok(Some(conn)) => Ok(conn),
        Ok(None) => Err(ErrorKind::Connect),
        Err(_) => Err(ErrorKind::Timeout),
    }
}

/// Runs requests until `job.stop_at` (or the cap), recording each into `sink`.
pub(crate) async fn run(job: Arc<Job>, sink: Arc<Sink>) {
    let mut scanner = SseScanner::new(job.api);
    let mut gaps = Vec::new();
    let mut conn: Option<Conn> = None;
    loop {
        let start = Instant::now();
        if start >= job.stop_at {
            break;
        }
        let measured = start >= job.measure_from;
        if measured && !job.claim() {
            break;
        }
        let live = match usable(conn.take(), &job).await {
            Ok(c) => c,
            Err(kind) => {
                if measured {
                    sink.with(|rec| rec.failure(kind, Instant::now()));
                }
                // Back off briefly so a dead target is not a busy loop.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (outcome, kept) = one_request(&job, live, &mut scanner, &mut gaps).await;
        conn = kept;
        let end = Instant::now();
        if measured {
            sink.with(|rec| rec.record(start, end, &outcome, &gaps));
        }
    }
}

/// Sends one request and reads the whole response, driving the connection
/// meanwhile. Returns the connection when it may be reused.
async fn one_request(job: &Job, conn: Conn, scanner: &mut SseScanner, gaps: &mut Vec<u32>) -> (Outcome, Option<Conn>) {
    let Conn { mut sender, mut driver } = conn;
    let mut driver_done = false;
    let raced = {
        let exchange = async {
            match sender.send_request(job.request(job.path.clone())).await {
                Ok(resp) => job.read(resp, scanner, gaps).await,
                Err(_) => Outcome::Failed(ErrorKind::Transport),
            }
        };
        tokio::pin!(exchange);
        tokio::time::timeout(job.timeout, async {
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
            // A complete response, even an error status or an in-band stream
            // error, leaves the connection usable.
            let reusable = !driver_done
                && matches!(outcome, Outcome::Ok { .. } | Outcome::Failed(ErrorKind::Status(_) | ErrorKind::Stream));
            (outcome, reusable.then_some(Conn { sender, driver }))
        }
        Err(_) => (Outcome::Failed(ErrorKind::Timeout), None),
    }
}
