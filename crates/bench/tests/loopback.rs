//! The load generator against a tiny in-test HTTP/1.1 server and against the
//! simulator (`switchyard_sim`), both on ephemeral loopback ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use switchyard_bench::cli::{self, BenchArgs};
use switchyard_bench::{Api, Mode, Report, TokenSource};
use switchyard_sim::{Format, Knobs, Sim, SimConfig};
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

/// Parsed arguments, with `--quiet`: no progress line in a developer's terminal.
fn args(line: &str) -> BenchArgs {
    Cmd::try_parse_from(["bench", "--quiet"].into_iter().chain(line.split_whitespace())).unwrap().args
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
            .unwrap()
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
    .unwrap()
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
    let report =
        cli::run(args(&format!("--url {url} --requests 20 --warmup 0 --concurrency 3"))).await.unwrap().unwrap();
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
    let report =
        cli::run(args(&format!("--url {url} --requests 50 --warmup 0 --concurrency 2"))).await.unwrap().unwrap();
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
    let report = cli::run(args(&format!("--url {url} --requests 1 --warmup 0 --body {}", path.display())))
        .await
        .unwrap()
        .unwrap();
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

// --- against the simulator ---------------------------------------------------------

/// Starts a simulator with `knobs` as its defaults; returns its base URL.
async fn sim(knobs: Knobs) -> (String, Arc<Sim>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim = Sim::new(SimConfig { default: knobs, ..SimConfig::default() });
    tokio::spawn(switchyard_sim::serve(listener, Arc::clone(&sim), std::future::pending()));
    (base, sim)
}

/// A simulator that answers one request at a time (the others queue in
/// front of it): with `latency_ms` L its capacity is 1000/L requests per second.
async fn serial_sim(knobs: Knobs) -> String {
    use axum::serve::ListenerExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim = Sim::new(SimConfig { default: knobs, ..SimConfig::default() });
    let gate = Arc::new(tokio::sync::Semaphore::new(1));
    let app = sim.router().layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let gate = Arc::clone(&gate);
            async move {
                let _one_at_a_time = gate.acquire_owned().await.unwrap();
                next.run(req).await
            }
        },
    ));
    let listener = listener.tap_io(|tcp| tcp.set_nodelay(true).unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn bench(line: &str) -> Report {
    cli::run(args(line)).await.unwrap().unwrap()
}

fn paced(ttft_ms: u64, tokens_per_sec: f64, answer_tokens: u32) -> Knobs {
    Knobs { ttft_ms, tokens_per_sec, answer_tokens, ..Knobs::default() }
}

#[test]
fn cli_new_flags() {
    let a = args("--url http://127.0.0.1:1/v1/messages");
    assert_eq!((a.api, a.rate, a.max_in_flight, a.seed, a.headroom), (None, None, 10_000, 1, 0.7));
    assert_eq!(a.format, cli::Format::Table);
    let a = args("--url u --rate 5 --arrival poisson --max-in-flight 3 --api anthropic --format markdown");
    assert_eq!((a.rate, a.max_in_flight, a.api), (Some(5.0), 3, Some(Api::Anthropic)));
    assert_eq!(a.format, cli::Format::Markdown);
    assert_eq!(a.arrival, switchyard_bench::Arrival::Poisson);
    let a = args("--url u --prompt-tokens normal:100,10");
    assert_eq!(a.prompt_tokens.map(|p| p.to_string()), Some("normal:100,10".to_owned()));
    // --plan-from plans without a run: no --url then.
    let a = args("--plan-from reports.jsonl --target-qps 100");
    assert!(a.url.is_none());

    let bad = |line: &str| Cmd::try_parse_from(std::iter::once("bench").chain(line.split_whitespace())).is_err();
    assert!(bad("--url u --json --format table"), "--json is --format json");
    assert!(bad("--url u --rate 10 --concurrency 2"), "one loop at a time");
    assert!(bad("--url u --arrival poisson"), "--arrival needs --rate");
    assert!(bad("--url u --max-in-flight 5"), "--max-in-flight needs --rate");
    assert!(bad("--url u --plan"), "--plan needs --target-qps");
    assert!(bad("--url u --prompt-tokens uniform:9-1"));
    assert!(bad("--url u --api gemini"));
    assert!(bad("--target-qps 5"), "--url or --plan-from");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_openai_stream_ttft_itl_and_counted_tokens() {
    // First word after 20 ms, then one every 5 ms.
    let (base, sim) = sim(paced(20, 200.0, 8)).await;
    let url = format!("{base}/v1/chat/completions");
    let r = bench(&format!("--url {url} --stream --concurrency 2 --requests 6 --warmup 0 --duration 30")).await;
    assert_eq!((r.requests, r.errors), (6, 0), "{r:?}");
    assert_eq!((r.api, r.mode, r.stream, r.concurrency), (Api::OpenAi, Mode::Closed, true, 2));
    let ttft = r.ttft_ms.unwrap();
    assert!(ttft.p50 >= 19.0, "{ttft:?}");
    // Seven gaps per stream of about 5 ms each.
    let itl = r.itl_ms.unwrap();
    assert!(itl.p50 >= 3.0 && itl.p50 <= 30.0, "{itl:?}");
    assert!(r.latency_ms.p50 >= ttft.p50 + 7.0 * 3.0, "{r:?}");
    // No `stream_options.include_usage` in the body: no usage chunk, so
    // the eight content events of each answer were counted.
    assert_eq!(r.output_tokens_source, TokenSource::Counted);
    assert_eq!(r.output_tokens, 48);
    assert!(r.output_tokens_per_sec > 0.0);
    assert!(sim.requests().iter().all(|q| q.format == Format::OpenAi && q.stream));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_anthropic_stream_and_non_stream() {
    let (base, sim) = sim(paced(10, 500.0, 6)).await;
    let url = format!("{base}/v1/messages");
    // The API is inferred from the path; the simulator refuses a request
    // without `x-api-key` (401) or `anthropic-version` (400).
    let r = bench(&format!("--url {url} --api-key sk-ant --stream --requests 4 --warmup 0 --duration 30")).await;
    assert_eq!((r.requests, r.errors), (4, 0), "{r:?}");
    assert_eq!(r.api, Api::Anthropic);
    assert!(r.ttft_ms.unwrap().p50 >= 9.0, "{r:?}");
    assert!(r.itl_ms.is_some());
    // From message_delta's usage.output_tokens.
    assert_eq!((r.output_tokens_source, r.output_tokens), (TokenSource::Usage, 24));
    let seen = sim.requests();
    assert!(seen.iter().all(|q| q.format == Format::Anthropic && q.stream), "{seen:?}");
    assert_eq!(seen[0].body["max_tokens"], 16);
    assert_eq!(seen[0].body["messages"][0]["content"], "Say hello");

    let r = bench(&format!("--url {url} --api-key sk-ant --requests 3 --warmup 0 --duration 30")).await;
    assert_eq!((r.requests, r.errors, r.stream), (3, 0, false), "{r:?}");
    assert_eq!((r.output_tokens_source, r.output_tokens), (TokenSource::Usage, 18));
    assert_eq!(r.ttft_ms, None);

    // Without a key every request is a 401.
    let r = bench(&format!("--url {url} --requests 2 --warmup 0 --duration 30")).await;
    assert_eq!(r.errors, 2);
    assert_eq!(r.errors_by_kind.get("http_4xx"), Some(&2));
    assert_eq!(r.error_kinds.get("401"), Some(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_band_stream_errors_are_stream_errors() {
    let (base, sim) = sim(Knobs::default()).await;
    sim.set_knobs(Some("broken"), Knobs { error_after_tokens: Some(2), ..Knobs::default() });
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let r = bench(&format!(
            "--url {base}{path} --api-key k --model broken --stream --requests 3 --warmup 0 --duration 30"
        ))
        .await;
        assert_eq!((r.requests, r.errors), (3, 3), "{path}: {r:?}");
        assert_eq!(r.errors_by_kind.get("stream_error"), Some(&3), "{path}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_on_schedule() {
    let (base, sim) = sim(Knobs::default()).await;
    let url = format!("{base}/v1/chat/completions");
    // 40 requests due every 20 ms.
    let r = bench(&format!("--url {url} --rate 50 --duration 0.8 --warmup 0")).await;
    assert_eq!((r.requests, r.errors), (40, 0), "{r:?}");
    assert_eq!((r.mode, r.rate), (Mode::Open, Some(50.0)));
    assert!((r.rps - 50.0).abs() < 5.0, "{r:?}");
    // Requests left when due: the send lag is small...
    let lag = r.send_lag_ms.unwrap();
    assert!(lag.p50 < 5.0, "{lag:?}");
    // ...and the simulator saw them arrive 20 ms apart (its clock, in ms).
    let arrivals: Vec<i64> = sim.requests().iter().map(|q| q.started_ms as i64).collect();
    assert_eq!(arrivals.len(), 40);
    let late: Vec<i64> = arrivals.iter().enumerate().map(|(i, t)| t - arrivals[0] - 20 * i as i64).collect();
    let on_time = late.iter().filter(|d| d.abs() <= 5).count();
    assert!(on_time >= 36, "arrival minus schedule, ms: {late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_shows_the_queueing_closed_loop_hides() {
    // 20 ms per request, one at a time: 50 requests/s at most.
    let base = serial_sim(Knobs { latency_ms: 20, ..Knobs::default() }).await;
    let url = format!("{base}/v1/chat/completions");
    // Closed loop: one request waits for the previous one, so the client
    // slows down to the server's pace and every request looks fast.
    let closed = bench(&format!("--url {url} --concurrency 1 --duration 0.6 --warmup 0")).await;
    // Open loop at 100/s: requests keep coming every 10 ms, queue up, and
    // their latency, counted from when they were due, grows with the queue.
    let open = bench(&format!("--url {url} --rate 100 --duration 0.6 --warmup 0")).await;
    assert_eq!((closed.errors, open.errors), (0, 0), "{closed:?} {open:?}");
    // The median, not the tail: ~26 requests make p99 the single slowest,
    // which a busy machine (CI runs builds beside it) can stretch.
    assert!(closed.latency_ms.p50 < 40.0, "{closed:?}");
    // 60 requests served 20 ms apart: the last waits about 60 × 20 − 600 = 600 ms.
    assert_eq!(open.requests, 60);
    assert!(open.latency_ms.p50 > 5.0 * closed.latency_ms.p50, "closed {closed:?}\nopen {open:?}");
    assert!(open.latency_ms.max > 400.0, "{open:?}");
    // What got through is the server's capacity, not the offered rate.
    assert!(open.rps < 60.0, "{open:?}");
    // The client kept its schedule: the delay is the server's.
    assert!(open.send_lag_ms.unwrap().p50 < 5.0, "{open:?}");
}

/// Blocks the (single) runtime thread for 300 ms, 100 ms from now: client
/// and simulator freeze, as a client would in a GC pause or a CPU stall.
fn stall_soon() {
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::thread::sleep(Duration::from_millis(300));
    });
}

// One runtime thread, so that the stall freezes everything.
#[tokio::test(flavor = "current_thread")]
async fn open_loop_latency_counts_from_the_due_time() {
    let (base, _) = sim(Knobs::default()).await;
    let url = format!("{base}/v1/chat/completions");
    // Open loop: the 30 requests due during the stall leave together after
    // it, each late by up to 300 ms, and their latency includes that.
    stall_soon();
    let open = bench(&format!("--url {url} --rate 100 --duration 0.6 --warmup 0")).await;
    assert_eq!((open.requests, open.errors), (60, 0), "{open:?}");
    assert!(open.latency_ms.max >= 250.0, "{open:?}");
    assert!(open.latency_ms.p90 >= 150.0, "{open:?}");
    assert!(open.send_lag_ms.unwrap().max >= 250.0, "{open:?}");
    // Closed loop: during the stall it sends nothing, so only the one request
    // in flight is slow (coordinated omission): the percentiles hide the stall.
    stall_soon();
    let closed = bench(&format!("--url {url} --concurrency 1 --duration 0.6 --warmup 0")).await;
    assert_eq!(closed.errors, 0);
    assert!(closed.latency_ms.max >= 250.0, "{closed:?}");
    assert!(closed.latency_ms.p99 < 50.0, "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_bound_counts_overloaded_client() {
    let (base, sim) = sim(Knobs { latency_ms: 200, ..Knobs::default() }).await;
    let url = format!("{base}/v1/chat/completions");
    // 30 requests due over 0.3 s (Poisson), at most 2 in flight, each 200 ms long.
    let r = bench(&format!(
        "--url {url} --rate 100 --arrival poisson --max-in-flight 2 --requests 30 --duration 5 --warmup 0"
    ))
    .await;
    assert_eq!(r.requests, 30, "{r:?}");
    let overloaded = r.error_kinds.get("overloaded_client").copied().unwrap_or(0);
    assert!(overloaded >= 20, "{r:?}");
    assert_eq!(r.errors, overloaded, "{r:?}");
    assert!(r.concurrency <= 2, "peak in flight {r:?}");
    // Requests refused by the client never reached the server.
    assert_eq!(sim.requests().len() as u64, r.requests - overloaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_anthropic_stream() {
    let (base, _) = sim(paced(5, 1000.0, 4)).await;
    let r =
        bench(&format!("--url {base}/v1/messages --api-key k --stream --rate 40 --duration 0.5 --warmup 0.1")).await;
    assert_eq!((r.requests, r.errors), (20, 0), "{r:?}");
    assert_eq!((r.api, r.mode), (Api::Anthropic, Mode::Open));
    assert_eq!(r.output_tokens, 80);
    assert!(r.ttft_ms.unwrap().p50 >= 4.0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_lengths_follow_the_spec_and_the_seed() {
    let (base, sim) = sim(Knobs::default()).await;
    let url = format!("{base}/v1/chat/completions");
    let line = format!("--url {url} --prompt-tokens uniform:5-9 --seed 3 --requests 12 --warmup 0 --duration 30");
    let prompts = |sim: &Sim| -> Vec<String> {
        sim.requests().iter().map(|q| q.body["messages"][0]["content"].as_str().unwrap().to_owned()).collect()
    };
    let r = bench(&line).await;
    assert_eq!((r.requests, r.errors), (12, 0));
    assert_eq!(r.prompt_tokens.as_deref(), Some("uniform:5-9"));
    let first = prompts(&sim);
    assert!(first.iter().all(|p| (5..=9).contains(&p.split(' ').count())), "{first:?}");
    assert!(first.iter().any(|p| p.split(' ').count() != first[0].split(' ').count()), "{first:?}");
    // The same seed sends the same prompts in the same order.
    sim.clear_requests();
    bench(&line).await;
    assert_eq!(prompts(&sim), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_from_a_run_and_from_its_json() {
    let (base, _) = sim(Knobs { latency_ms: 5, ..Knobs::default() }).await;
    let url = format!("{base}/v1/chat/completions");
    let r = bench(&format!(
        "--url {url} --concurrency 2 --duration 0.3 --warmup 0 --plan --target-qps 1000 --p95-goal 100"
    ))
    .await;
    assert_eq!(r.errors, 0);

    let dir = std::env::temp_dir().join(format!("switchyard-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("reports.jsonl");
    let line = serde_json::to_string(&r).unwrap();
    std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
    let none =
        cli::run(args(&format!("--plan-from {} --target-qps 1000 --format markdown", path.display()))).await.unwrap();
    assert!(none.is_none());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let runs = switchyard_bench::plan::read_reports(&text).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].label, format!("{url} bench-model"));
    assert_eq!(runs[0].measured_at, "c=2");
    let goal = switchyard_bench::plan::Goal { target_qps: 1000.0, p95_goal_ms: Some(100.0), headroom: 0.7 };
    let plan = switchyard_bench::plan::Plan::new(goal, &runs);
    let row = &plan.rows[0];
    assert_eq!(row.instances, Some((1000.0 / (r.rps * 0.7)).ceil() as u64));
    assert!((row.concurrency_needed - r.latency_ms.mean).abs() < 1e-9, "1000/s × mean ms / 1000");
    assert_eq!(row.p95_meets_goal, Some(true));
}
