//! The load generator against a tiny in-test HTTP/1.1 server on an ephemeral
//! loopback port (no other crate needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use switchyard_bench::cli::{self, BenchArgs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy)]
enum Reply {
    /// 200 with a JSON body, keep-alive.
    Json,
    /// 200 with a chunked SSE body: a role chunk, 20 ms, a content chunk,
    /// 20 ms, a usage chunk and `[DONE]`.
    Sse,
    /// 503 with an OpenAI error body.
    Unavailable,
    /// 200 JSON, then the server closes the connection.
    JsonThenClose,
}

/// Request heads and bodies the server received.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Starts the server; returns its URL, what it received and its accept count.
async fn serve(reply: Reply) -> (String, Seen, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/chat/completions", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let accepts = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepts);
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            // Each SSE event must leave at once, not wait for Nagle.
            sock.set_nodelay(true).unwrap();
            tokio::spawn(connection(sock, reply, Arc::clone(&log)));
        }
    });
    (url, seen, accepts)
}

async fn connection(mut sock: TcpStream, reply: Reply, seen: Seen) {
    let mut buf = Vec::new();
    loop {
        // Read one request: head, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
        buf.drain(..head_end + len);
        seen.lock().unwrap().push((head, body));
        if respond(&mut sock, reply).await.is_err() {
            return;
        }
        if matches!(reply, Reply::JsonThenClose) {
            return;
        }
    }
}

async fn respond(sock: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    const JSON: &str = r#"{"choices":[{"message":{"role":"assistant","content":"hi"}}]}"#;
    match reply {
        Reply::Json | Reply::JsonThenClose => {
            let close = if matches!(reply, Reply::JsonThenClose) { "connection: close\r\n" } else { "" };
            let msg = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{close}content-length: {}\r\n\r\n{JSON}",
                JSON.len()
            );
            sock.write_all(msg.as_bytes()).await
        }
        Reply::Unavailable => {
            let err = r#"{"error":{"message":"down","type":"server_error"}}"#;
            let msg = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{err}",
                err.len()
            );
            sock.write_all(msg.as_bytes()).await
        }
        Reply::Sse => {
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            let events = [
                "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
                "data: {\"choices\":[],\"usage\":{\"completion_tokens\":1}}\n\ndata: [DONE]\n\n",
            ];
            for (i, event) in events.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                sock.write_all(chunk.as_bytes()).await?;
            }
            sock.write_all(b"0\r\n\r\n").await
        }
    }
}

#[derive(Parser)]
struct Cmd {
    #[command(flatten)]
    args: BenchArgs,
}

fn args(line: &str) -> BenchArgs {
    Cmd::try_parse_from(std::iter::once("bench").chain(line.split_whitespace())).unwrap().args
}

#[test]
fn cli_defaults() {
    let a = args("--url http://127.0.0.1:1/");
    assert_eq!(a.concurrency, 1);
    assert_eq!(a.duration, 10.0);
    assert_eq!(a.warmup, 1.0);
    assert_eq!(a.model, "bench-model");
    assert_eq!(a.max_tokens, 16);
    assert!(!a.stream && !a.json && a.requests.is_none() && a.api_key.is_none());
    assert!(Cmd::try_parse_from(["bench", "--url", "x", "--concurrency", "0"]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_stream_keep_alive_with_api_key() {
    let (url, seen, accepts) = serve(Reply::Json).await;
    let report =
        cli::run(args(&format!("--url {url} --api-key sk-test --concurrency 4 --duration 0.3 --warmup 0.1 --json")))
            .await
            .unwrap();
    assert!(report.requests > 10, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.rps > 0.0);
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.max);
    assert_eq!(report.ttft_ms, None);
    assert_eq!(report.tokens_per_sec, None);
    assert_eq!(report.concurrency, 4);

    let seen = seen.lock().unwrap();
    // Warm-up requests reached the server but are not in the report.
    assert!(seen.len() as u64 >= report.requests);
    let (head, body) = &seen[0];
    assert!(head.starts_with("post /v1/chat/completions http/1.1"), "{head}");
    assert!(head.contains("authorization: bearer sk-test"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["model"], "bench-model");
    assert_eq!(body["max_tokens"], 16);
    assert_eq!(body.get("stream"), None);
    assert!(seen.iter().all(|(h, _)| h.contains("host: 127.0.0.1:")));
    // Keep-alive: one connection per worker plus the start-up reachability probe.
    assert_eq!(accepts.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_measures_ttft_and_chunks() {
    let (url, seen, _) = serve(Reply::Sse).await;
    let report = cli::run(args(&format!(
        "--url {url} --stream --concurrency 2 --requests 6 --warmup 0 --duration 30 --model m1"
    )))
    .await
    .unwrap();
    assert_eq!(report.requests, 6, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    let ttft = report.ttft_ms.unwrap();
    // Content arrives after one 20 ms pause, the body ends after two.
    assert!(ttft.p50 >= 19.0, "{ttft:?}");
    assert!(report.latency_ms.p50 >= ttft.p50 + 19.0, "{report:?}");
    // Three data chunks per stream ([DONE] excluded).
    let chunks = report.tokens_per_sec.unwrap() * report.duration_s;
    assert!((chunks - 18.0).abs() < 0.01, "{chunks}");

    let body: serde_json::Value = serde_json::from_str(&seen.lock().unwrap()[0].1).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "m1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_counted_by_kind() {
    let (url, _, accepts) = serve(Reply::Unavailable).await;
    let report = cli::run(args(&format!("--url {url} --requests 20 --warmup 0 --concurrency 3"))).await.unwrap();
    assert_eq!(report.requests, 20);
    assert_eq!(report.errors, 20);
    assert_eq!(report.error_kinds.get("503"), Some(&20));
    assert_eq!(report.rps, 0.0);
    // A drained error response leaves the connection reusable: at most one
    // connection per worker (a late worker may find the cap used up) plus the probe.
    let accepts = accepts.load(Ordering::SeqCst);
    assert!((2..=4).contains(&accepts), "{accepts} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closing_connections_is_not_an_error() {
    let (url, seen, _) = serve(Reply::JsonThenClose).await;
    let report = cli::run(args(&format!("--url {url} --requests 50 --warmup 0 --concurrency 2"))).await.unwrap();
    assert_eq!(report.requests, 50);
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(seen.lock().unwrap().len(), 50);
}

#[tokio::test]
async fn custom_body_is_sent_verbatim() {
    let (url, seen, _) = serve(Reply::Json).await;
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("body.json");
    std::fs::write(&path, r#"{"model":"x","messages":[]}"#).unwrap();
    let report =
        cli::run(args(&format!("--url {url} --requests 1 --warmup 0 --body {}", path.display()))).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(report.requests, 1);
    assert_eq!(seen.lock().unwrap()[0].1, r#"{"model":"x","messages":[]}"#);
}

#[tokio::test]
async fn unreachable_target_fails_fast() {
    // Bind then drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let err = cli::run(args(&format!("--url http://127.0.0.1:{port}/ --duration 1"))).await.unwrap_err();
    assert!(err.contains("cannot connect"), "{err}");
}
