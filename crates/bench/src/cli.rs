//! `switchyard bench`: arguments, validation and the run itself.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, AUTHORIZATION};
use http::{HeaderValue, Uri};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::api::Api;
use crate::plan::{self, Goal, Measured, Plan};
use crate::progress::Progress;
use crate::prompt::{self, PromptTokens};
use crate::report::{Mode, Report, RunInfo};
use crate::request::Job;
use crate::schedule::{Arrival, Schedule};
use crate::stats::Sink;
use crate::{open, worker};

/// Load generator for OpenAI- and Anthropic-compatible chat endpoints:
/// closed loop at a concurrency (the default) or open loop at a rate.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Full endpoint URL (http only), e.g. http://127.0.0.1:8080/v1/chat/completions
    /// or http://127.0.0.1:8080/v1/messages
    #[arg(long, required_unless_present = "plan_from")]
    pub url: Option<String>,
    /// OpenAI: sent as `Authorization: Bearer <KEY>`; Anthropic: as `x-api-key: <KEY>`.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Wire format of the generated body and of the stream. Default: anthropic
    /// when the URL path ends in /v1/messages, else openai. Anthropic requests
    /// also carry `anthropic-version: 2023-06-01`.
    #[arg(long, value_enum)]
    pub api: Option<Api>,
    /// Closed loop (the default): workers, each with one connection and one
    /// request in flight, sending the next request when the last one ended.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000), conflicts_with = "rate")]
    pub concurrency: u32,
    /// Open loop: requests per second, each sent when due on its own task
    /// whether or not earlier ones finished (shared keep-alive pool). Latency
    /// and TTFT count from the due time, so a server falling behind shows.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: `fixed` (every 1/rate s) or `poisson` (exponential gaps, seeded by --seed).
    #[arg(long, value_enum, default_value = "fixed", requires = "rate")]
    pub arrival: Arrival,
    /// Open loop: most requests in flight. A request due while that many run
    /// is not sent and counts as an `overloaded_client` error.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000), requires = "rate")]
    pub max_in_flight: u32,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of unrecorded requests before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop after this many measured requests (or at --duration, whichever is first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Request a stream and measure time to first token, inter-token latency and chunks/s.
    #[arg(long)]
    pub stream: bool,
    /// `model` of the generated body.
    #[arg(long, default_value = "bench-model")]
    pub model: String,
    /// `max_tokens` of the generated body.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// Prompt length in tokens: `N`, `uniform:A-B` or `normal:MEAN,SD`
    /// (rounded, clamped to at least 1). A prompt of N tokens is N words drawn
    /// from 64 common three-letter English words, each one token in OpenAI's
    /// o200k and cl100k tokenizers and four characters with its space (so a
    /// chars/4 estimate gives N too). Default: the prompt "Say hello".
    #[arg(long, conflicts_with = "body")]
    pub prompt_tokens: Option<PromptTokens>,
    /// Seed for the prompts (lengths and words) and Poisson arrivals: the same
    /// seed sends the same prompts in the same order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Raw JSON request body sent as is instead of the generated one
    /// (with --stream it must set `"stream": true` itself).
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// Per-request deadline in seconds; a late request counts as a `timeout` error.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Report format: `table`, `json` (one object) or `markdown` (the table's figures).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// No progress line on stderr (it is drawn only when stderr is a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// After the run, print a capacity plan for --target-qps from its figures.
    #[arg(long, requires = "target_qps")]
    pub plan: bool,
    /// Print a capacity plan from earlier JSON reports instead of running: one
    /// report per line (e.g. one per deployment), one plan row per report.
    #[arg(long, value_name = "FILE", requires = "target_qps", conflicts_with = "url")]
    pub plan_from: Option<PathBuf>,
    /// Plan: requests per second to carry in total.
    #[arg(long, value_name = "Q")]
    pub target_qps: Option<f64>,
    /// Plan: p95 latency goal in milliseconds.
    #[arg(long, value_name = "MS")]
    pub p95_goal: Option<f64>,
    /// Plan: fraction of measured capacity to run each instance at.
    #[arg(long, value_name = "H", default_value_t = 0.7)]
    pub headroom: f64,
}

/// `--format`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// Runs the benchmark (or, with `--plan-from`, only the plan), prints the
/// report to stdout and returns it.
pub async fn run(args: BenchArgs) -> Result<Option<Report>, String> {
    let format = if args.json { Format::Json } else { args.format };
    let goal = goal(&args)?;
    if let Some(path) = &args.plan_from {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--plan-from {}: {e}", path.display()))?;
        let runs = plan::read_reports(&text).map_err(|e| format!("--plan-from {}: {e}", path.display()))?;
        let goal = goal.ok_or("--plan-from needs --target-qps")?;
        print_plan(&Plan::new(goal, &runs), format)?;
        return Ok(None);
    }
    let url = args.url.as_deref().ok_or("--url is required")?;
    let report = measure(&args, url).await?;
    let plan = if args.plan { goal.map(|g| Plan::new(g, &[Measured::from_report(&report)])) } else { None };
    match format {
        Format::Json => {
            let line = serde_json::to_string(&WithPlan { report: &report, plan: plan.as_ref() })
                .map_err(|e| format!("report: {e}"))?;
            println!("{line}");
        }
        Format::Table => {
            print!("{}", report.to_table());
            if let Some(plan) = &plan {
                print!("\n{}", plan.to_table());
            }
        }
        Format::Markdown => {
            print!("{}", report.to_markdown());
            if let Some(plan) = &plan {
                print!("\n{}", plan.to_markdown());
            }
        }
    }
    Ok(Some(report))
}

/// The JSON report, with the plan under `"plan"` when `--plan` asked for one.
#[derive(serde::Serialize)]
struct WithPlan<'a> {
    #[serde(flatten)]
    report: &'a Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a Plan>,
}

fn print_plan(plan: &Plan, format: Format) -> Result<(), String> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(plan).map_err(|e| format!("plan: {e}"))?),
        Format::Table => print!("{}", plan.to_table()),
        Format::Markdown => print!("{}", plan.to_markdown()),
    }
    Ok(())
}

/// The plan's goal, validated; `None` without --target-qps.
fn goal(args: &BenchArgs) -> Result<Option<Goal>, String> {
    let positive = |flag: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(format!("{flag}: expected a positive number, got {v}"))
        }
    };
    if !(args.headroom > 0.0 && args.headroom <= 1.0) {
        return Err(format!("--headroom: expected a fraction in (0, 1], got {}", args.headroom));
    }
    let Some(q) = args.target_qps else {
        return Ok(None);
    };
    Ok(Some(Goal {
        target_qps: positive("--target-qps", q)?,
        p95_goal_ms: args.p95_goal.map(|g| positive("--p95-goal", g)).transpose()?,
        headroom: args.headroom,
    }))
}

/// Runs the benchmark without printing the report.
pub(crate) async fn measure(args: &BenchArgs, url: &str) -> Result<Report, String> {
    let duration = seconds("--duration", args.duration, false)?;
    let warmup = seconds("--warmup", args.warmup, true)?;
    let timeout = seconds("--timeout", args.timeout, false)?;
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0 && rate <= 1e6) {
            return Err(format!("--rate: expected requests per second in (0, 1000000], got {rate}"));
        }
    }
    let target = Target::parse(url)?;
    let api = args.api.unwrap_or_else(|| Api::infer(target.path.path()));
    let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("--url: cannot resolve {}: {e}", target.host))?
        .next()
        .ok_or_else(|| format!("--url: {} resolves to no address", target.host))?;
    // Fail fast with one clear message instead of a report full of errors.
    TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr} ({url}): {e}"))?;
    let auth = match &args.api_key {
        Some(key) => Some(auth_header(api, key)?),
        None => None,
    };
    let (bodies, model) = bodies(args, api)?;
    let absolute: Uri =
        format!("http://{addr}{}", target.path).parse().map_err(|e| format!("--url: bad path ({e}): {url}"))?;

    let started = Instant::now();
    let measure_from = started + warmup;
    let job = Arc::new(Job {
        api,
        addr,
        path: target.path,
        absolute,
        host: target.host_header,
        auth,
        bodies,
        stream: args.stream,
        timeout,
        started,
        measure_from,
        stop_at: measure_from + duration,
        cap: args.requests.map(|cap| (cap, AtomicU64::new(0))),
        built: AtomicU64::new(0),
    });
    let sink = Arc::new(Sink::new()?);
    let progress = if args.quiet { None } else { Progress::start(Arc::clone(&sink), measure_from, duration) };
    let (mode, concurrency, rate) = match args.rate {
        Some(rate) => {
            // Another seed than the prompts': arrivals and lengths stay independent.
            let schedule = Schedule::new(rate, args.arrival, args.seed ^ 0x9e37_79b9_7f4a_7c15);
            let peak = open::run(Arc::clone(&job), Arc::clone(&sink), schedule, args.max_in_flight).await;
            (Mode::Open, peak, Some((rate, args.arrival)))
        }
        None => {
            let mut workers = JoinSet::new();
            for _ in 0..args.concurrency.max(1) {
                workers.spawn(worker::run(Arc::clone(&job), Arc::clone(&sink)));
            }
            while let Some(done) = workers.join_next().await {
                done.map_err(|e| format!("worker failed: {e}"))?;
            }
            (Mode::Closed, args.concurrency.max(1), None)
        }
    };
    if let Some(progress) = progress {
        progress.finish().await;
    }
    let info = RunInfo {
        url: url.to_owned(),
        model,
        api,
        stream: args.stream,
        mode,
        rate,
        concurrency,
        prompt_tokens: args.prompt_tokens.map(|p| p.to_string()),
    };
    Ok(sink.with(|rec| {
        let elapsed = rec.last_finish.map_or(0.0, |end| end.saturating_duration_since(measure_from).as_secs_f64());
        Report::build(rec, elapsed, info)
    }))
}

/// The API's auth header carrying `key`.
fn auth_header(api: Api, key: &str) -> Result<(HeaderName, HeaderValue), String> {
    let bad = |_| "--api-key: not a valid header value".to_owned();
    Ok(match api {
        Api::OpenAi => (AUTHORIZATION, HeaderValue::try_from(format!("Bearer {key}")).map_err(bad)?),
        Api::Anthropic => (HeaderName::from_static("x-api-key"), HeaderValue::try_from(key).map_err(bad)?),
    })
}

/// The request bodies and the model they name.
fn bodies(args: &BenchArgs, api: Api) -> Result<(Vec<Bytes>, String), String> {
    if let Some(path) = &args.body {
        let raw = std::fs::read(path).map_err(|e| format!("--body {}: {e}", path.display()))?;
        let model = serde_json::from_slice::<serde_json::Value>(&raw)
            .ok()
            .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_default();
        return Ok((vec![Bytes::from(raw)], model));
    }
    let body = |prompt: &str| api.body(&args.model, args.max_tokens, args.stream, prompt);
    let bodies = match &args.prompt_tokens {
        Some(spec) => prompt::prompts(spec, args.seed).iter().map(|p| body(p)).collect(),
        None => vec![body("Say hello")],
    };
    Ok((bodies, args.model.clone()))
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
    fn seconds_validation() {
        assert!(seconds("--duration", 0.0, false).is_err());
        assert!(seconds("--duration", f64::NAN, false).is_err());
        assert!(seconds("--duration", -1.0, true).is_err());
        assert_eq!(seconds("--warmup", 0.0, true), Ok(Duration::ZERO));
        assert_eq!(seconds("--duration", 2.5, false), Ok(Duration::from_millis(2500)));
    }
}
