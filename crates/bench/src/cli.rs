//! `switchyard bench`: arguments, validation and the run itself.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Uri};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::report::Report;
use crate::stats::Recorder;
use crate::worker::{self, Plan};

/// Closed-loop load generator for OpenAI-compatible chat endpoints.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Full endpoint URL (http only), e.g. http://127.0.0.1:8080/v1/chat/completions
    #[arg(long)]
    pub url: String,
    /// Sent as `Authorization: Bearer <KEY>`.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Workers, each with one connection and one request in flight.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of unrecorded requests before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop after this many measured requests (or at --duration, whichever is first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Request a stream and measure time to first token and chunks/s.
    #[arg(long)]
    pub stream: bool,
    /// `model` of the generated body.
    #[arg(long, default_value = "bench-model")]
    pub model: String,
    /// `max_tokens` of the generated body.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// Raw JSON request body sent as is instead of the generated one
    /// (with --stream it must set `"stream": true` itself).
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// Per-request deadline in seconds; a late request counts as a `timeout` error.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark, prints the report to stdout and returns it.
pub async fn run(args: BenchArgs) -> Result<Report, String> {
    let report = measure(&args).await?;
    if args.json {
        let line = serde_json::to_string(&report).map_err(|e| format!("report: {e}"))?;
        println!("{line}");
    } else {
        println!("{} {}", args.url, mode(&args));
        print!("{}", report.to_table());
    }
    Ok(report)
}

fn mode(args: &BenchArgs) -> &'static str {
    if args.stream {
        "(stream)"
    } else {
        "(non-stream)"
    }
}

/// Runs the benchmark without printing.
pub(crate) async fn measure(args: &BenchArgs) -> Result<Report, String> {
    let duration = seconds("--duration", args.duration, false)?;
    let warmup = seconds("--warmup", args.warmup, true)?;
    let timeout = seconds("--timeout", args.timeout, false)?;
    let target = Target::parse(&args.url)?;
    let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("--url: cannot resolve {}: {e}", target.host))?
        .next()
        .ok_or_else(|| format!("--url: {} resolves to no address", target.host))?;
    // Fail fast with one clear message instead of a report full of errors.
    TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr} ({}): {e}", args.url))?;
    let authorization = match &args.api_key {
        Some(key) => Some(
            HeaderValue::try_from(format!("Bearer {key}"))
                .map_err(|_| "--api-key: not a valid header value".to_owned())?,
        ),
        None => None,
    };
    let body = match &args.body {
        Some(path) => Bytes::from(std::fs::read(path).map_err(|e| format!("--body {}: {e}", path.display()))?),
        None => default_body(&args.model, args.max_tokens, args.stream),
    };

    let concurrency = args.concurrency.max(1);
    let start = Instant::now();
    let measure_from = start + warmup;
    let plan = Arc::new(Plan {
        addr,
        path: target.path,
        host: target.host_header,
        authorization,
        body,
        stream: args.stream,
        timeout,
        measure_from,
        stop_at: measure_from + duration,
        cap: args.requests.map(|cap| (cap, AtomicU64::new(0))),
    });
    // Enough room for ~20k requests/s per worker pool without regrowing.
    let expected = ((20_000.0 * duration.as_secs_f64()) as usize / concurrency as usize).min(1 << 20);
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        workers.spawn(worker::run(Arc::clone(&plan), expected));
    }
    let mut merged = Recorder::default();
    while let Some(done) = workers.join_next().await {
        merged.merge(done.map_err(|e| format!("worker failed: {e}"))?);
    }
    let elapsed = merged.last_finish.map_or(0.0, |end| end.saturating_duration_since(measure_from).as_secs_f64());
    Ok(Report::build(merged, elapsed, concurrency, args.stream))
}

fn seconds(flag: &str, value: f64, zero_ok: bool) -> Result<Duration, String> {
    let valid = value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0));
    match Duration::try_from_secs_f64(value) {
        Ok(d) if valid => Ok(d),
        _ => Err(format!(
            "{flag}: expected a {} number of seconds, got {value}",
            if zero_ok { "non-negative" } else { "positive" }
        )),
    }
}

fn default_body(model: &str, max_tokens: u32, stream: bool) -> Bytes {
    let mut body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": max_tokens,
    });
    if stream {
        body["stream"] = serde_json::Value::Bool(true);
    }
    Bytes::from(body.to_string())
}

/// The parts of `--url` a worker needs.
struct Target {
    host: String,
    port: u16,
    host_header: HeaderValue,
    /// Origin-form request target (path and query).
    path: Uri,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("--url: not a URL ({e}): {url}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "--url: only http:// is supported (the benchmark measures the gateway, not TLS), got {other}://"
                ))
            }
            None => return Err(format!("--url: expected http://HOST:PORT/PATH, got {url}")),
        }
        let authority = uri.authority().ok_or_else(|| format!("--url: no host in {url}"))?;
        let host = authority.host().trim_matches(['[', ']']).to_owned();
        let port = authority.port_u16().unwrap_or(80);
        let host_header = HeaderValue::from_str(authority.as_str()).map_err(|_| format!("--url: bad host in {url}"))?;
        let path = uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .parse()
            .map_err(|e| format!("--url: bad path ({e}): {url}"))?;
        Ok(Self { host, port, host_header, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parsing() {
        let Ok(t) = Target::parse("http://127.0.0.1:8080/v1/chat/completions?x=1") else { unreachable!("valid url") };
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.path, "/v1/chat/completions?x=1");

        let Ok(t) = Target::parse("http://[::1]/") else { unreachable!("valid url") };
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));

        assert!(Target::parse("https://example.com/").is_err());
        assert!(Target::parse("/v1/chat/completions").is_err());
    }

    #[test]
    fn default_body_shape() {
        let plain: serde_json::Value = serde_json::from_slice(&default_body("m", 16, false)).unwrap_or_default();
        assert_eq!(
            plain,
            serde_json::json!({"model":"m","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16})
        );
        let stream: serde_json::Value = serde_json::from_slice(&default_body("m", 16, true)).unwrap_or_default();
        assert_eq!(stream["stream"], true);
    }

    #[test]
    fn seconds_validation() {
        assert!(seconds("--duration", 0.0, false).is_err());
        assert!(seconds("--duration", f64::NAN, false).is_err());
        assert!(seconds("--duration", -1.0, true).is_err());
        assert_eq!(seconds("--warmup", 0.0, true), Ok(Duration::ZERO));
        assert_eq!(seconds("--duration", 2.5, false), Ok(Duration::from_millis(2500)));
    }
}
