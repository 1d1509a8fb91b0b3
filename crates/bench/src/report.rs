//! The run's result: built once from the [`Recorder`], printed as a table,
//! as Markdown (the same figures) or as one JSON object (the form
//! `bench/run.sh` parses; fields are only ever added).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::api::Api;
use crate::schedule::Arrival;
use crate::stats::{Percentiles, Recorder};

/// Closed loop (`--concurrency`) or open loop (`--rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Closed,
    Open,
}

/// Where `output_tokens` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    /// Every successful response reported usage.
    Usage,
    /// No response reported usage: content events were counted.
    Counted,
    /// Some of each.
    Mixed,
    /// Non-stream responses without usage: unknown.
    None,
}

/// What the run was, as opposed to what it measured.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub url: String,
    pub model: String,
    pub api: Api,
    pub stream: bool,
    pub mode: Mode,
    /// Open loop: requests per second offered, and their spacing.
    pub rate: Option<(f64, Arrival)>,
    /// Closed loop: workers; open loop: the most requests in flight at once.
    pub concurrency: u32,
    pub prompt_tokens: Option<String>,
}

/// What one load-generator run measured. Only requests started (open loop:
/// due) after the warm-up count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Measured requests, successful or not.
    pub requests: u64,
    /// Requests that failed in any way (see `errors_by_kind`).
    pub errors: u64,
    /// `errors` by fine kind: the HTTP status (`"503"`), `connect`,
    /// `transport`, `timeout`, `stream_error` or `overloaded_client`.
    pub error_kinds: BTreeMap<String, u64>,
    /// Successful responses per second of `duration_s`.
    pub rps: f64,
    /// Whole-request latency of successful requests (for streams: until the
    /// body ends; open loop: from the due time). All zeros when no request succeeded.
    pub latency_ms: Percentiles,
    /// Streams only: time to the first content event. `None` for non-stream
    /// runs or when no stream had content.
    pub ttft_ms: Option<Percentiles>,
    /// Streams only: `data:` chunks (other than `[DONE]`) per second.
    pub tokens_per_sec: Option<f64>,
    /// Length of the measured window: from the end of warm-up until the last
    /// measured request finished.
    pub duration_s: f64,
    /// Closed loop: workers. Open loop: the most requests in flight at once.
    pub concurrency: u32,

    // Added with the open loop, Anthropic and the HDR histograms.
    /// `--url`.
    pub url: String,
    /// The `model` of the request body.
    pub model: String,
    pub api: Api,
    pub stream: bool,
    pub mode: Mode,
    /// Open loop: requests per second offered.
    pub rate: Option<f64>,
    /// Open loop: `fixed` or `poisson`.
    pub arrival: Option<Arrival>,
    /// `--prompt-tokens`, when prompts were generated.
    pub prompt_tokens: Option<String>,
    /// `errors` by kind: `http_4xx`, `http_5xx` (statuses in `error_kinds`),
    /// `connect`, `transport`, `timeout`, `stream_error`, `overloaded_client`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Streams only: gaps between consecutive content events.
    pub itl_ms: Option<Percentiles>,
    /// Output tokens of successful requests (see `output_tokens_source`).
    pub output_tokens: u64,
    pub output_tokens_per_sec: f64,
    pub output_tokens_source: TokenSource,
    /// Open loop only: how late requests left compared with their due time.
    pub send_lag_ms: Option<Percentiles>,
}

impl Report {
    pub(crate) fn build(rec: &Recorder, duration_s: f64, info: RunInfo) -> Self {
        let per_sec = |n: u64| {
            if duration_s > 0.0 {
                n as f64 / duration_s
            } else {
                0.0
            }
        };
        let mut errors_by_kind = BTreeMap::new();
        for (kind, count) in &rec.error_kinds {
            *errors_by_kind.entry(kind.class()).or_insert(0) += count;
        }
        let output_tokens_source = match (rec.usage_reported, rec.tokens_counted) {
            (0, 0) => TokenSource::None,
            (_, 0) => TokenSource::Usage,
            (0, _) => TokenSource::Counted,
            _ => TokenSource::Mixed,
        };
        let stream = info.stream;
        Self {
            requests: rec.requests,
            errors: rec.errors,
            error_kinds: rec.error_kinds.iter().map(|(kind, count)| (kind.to_string(), *count)).collect(),
            rps: per_sec(rec.requests - rec.errors),
            latency_ms: Percentiles::from_histogram(&rec.latency).unwrap_or_default(),
            ttft_ms: if stream { Percentiles::from_histogram(&rec.ttft) } else { None },
            tokens_per_sec: stream.then(|| per_sec(rec.stream_chunks)),
            duration_s,
            concurrency: info.concurrency,
            url: info.url,
            model: info.model,
            api: info.api,
            stream,
            mode: info.mode,
            rate: info.rate.map(|(rate, _)| rate),
            arrival: info.rate.map(|(_, arrival)| arrival),
            prompt_tokens: info.prompt_tokens,
            errors_by_kind,
            itl_ms: if stream { Percentiles::from_histogram(&rec.itl) } else { None },
            output_tokens: rec.output_tokens,
            output_tokens_per_sec: per_sec(rec.output_tokens),
            output_tokens_source,
            send_lag_ms: Percentiles::from_histogram(&rec.send_lag),
        }
    }

    /// What was run, in one line.
    pub fn title(&self) -> String {
        let kind = if self.stream { "stream" } else { "non-stream" };
        let shape = match (self.mode, self.rate) {
            (Mode::Open, Some(rate)) => {
                let arrival = if self.arrival == Some(Arrival::Poisson) { "poisson" } else { "fixed" };
                format!("open loop at {rate} req/s ({arrival}), peak in flight {}", self.concurrency)
            }
            _ => format!("closed loop, concurrency {}", self.concurrency),
        };
        let prompt = self.prompt_tokens.as_ref().map_or(String::new(), |p| format!(", prompt tokens {p}"));
        format!("{} ({}, {kind}, {shape}{prompt})", self.url, self.api.name())
    }

    /// The single figures, as (label, value), in display order.
    fn summary(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            ("requests", self.requests.to_string()),
            ("errors", self.errors.to_string()),
            ("duration s", format!("{:.2}", self.duration_s)),
            ("RPS", format!("{:.1}", self.rps)),
        ];
        let tokens = match self.output_tokens_source {
            TokenSource::None => "– (no usage reported)".to_owned(),
            TokenSource::Usage => format!("{:.1} (usage)", self.output_tokens_per_sec),
            TokenSource::Counted => format!("{:.1} (counted content events)", self.output_tokens_per_sec),
            TokenSource::Mixed => format!("{:.1} (usage, else counted)", self.output_tokens_per_sec),
        };
        rows.push(("output tokens/s", tokens));
        if let Some(chunks) = self.tokens_per_sec {
            rows.push(("chunks/s", format!("{chunks:.1}")));
        }
        rows
    }

    /// The distributions, as (label, figures); `None` = no sample.
    fn distributions(&self) -> Vec<(&'static str, Option<Percentiles>)> {
        let mut rows = vec![("latency", (self.requests > self.errors).then_some(self.latency_ms))];
        if self.stream {
            rows.push(("TTFT", self.ttft_ms));
            rows.push(("ITL", self.itl_ms));
        }
        if self.mode == Mode::Open {
            rows.push(("send lag", self.send_lag_ms));
        }
        rows
    }

    /// Errors as (kind, count, the statuses behind an `http_*` kind).
    fn error_rows(&self) -> Vec<(String, u64, String)> {
        self.errors_by_kind
            .iter()
            .map(|(kind, count)| {
                let statuses: Vec<String> = self
                    .error_kinds
                    .iter()
                    .filter(|(status, _)| {
                        status.parse::<u16>().is_ok_and(|code| format!("http_{}xx", code / 100) == *kind)
                    })
                    .map(|(status, n)| format!("{status}: {n}"))
                    .collect();
                (kind.clone(), *count, statuses.join(", "))
            })
            .collect()
    }

    /// Human-readable form.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title());
        for (label, value) in self.summary() {
            let _ = writeln!(out, "{label:<16} {value}");
        }
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "ms", "p50", "p90", "p95", "p99", "max", "mean"
        );
        for (label, dist) in self.distributions() {
            match dist {
                Some(p) => {
                    let _ = writeln!(
                        out,
                        "{label:<16} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                        p.p50, p.p90, p.p95, p.p99, p.max, p.mean
                    );
                }
                None if label == "latency" => {
                    let _ = writeln!(out, "{label:<16} (no successful request)");
                }
                None => {
                    let _ = writeln!(out, "{label:<16} (no sample)");
                }
            }
        }
        for (kind, count, statuses) in self.error_rows() {
            let detail = if statuses.is_empty() { String::new() } else { format!(" ({statuses})") };
            let _ = writeln!(out, "{:<16} {kind}: {count}{detail}", "error");
        }
        out
    }

    /// The same figures as [`Report::to_table`], as Markdown tables.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "**{}**\n", self.title());
        let _ = writeln!(out, "| figure | value |\n| --- | ---: |");
        for (label, value) in self.summary() {
            let _ = writeln!(out, "| {label} | {value} |");
        }
        let _ = writeln!(
            out,
            "\n| ms | p50 | p90 | p95 | p99 | max | mean |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for (label, dist) in self.distributions() {
            match dist {
                Some(p) => {
                    let _ = writeln!(
                        out,
                        "| {label} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                        p.p50, p.p90, p.p95, p.p99, p.max, p.mean
                    );
                }
                None => {
                    let _ = writeln!(out, "| {label} | – | – | – | – | – | – |");
                }
            }
        }
        let errors = self.error_rows();
        if !errors.is_empty() {
            let _ = writeln!(out, "\n| error | count | statuses |\n| --- | ---: | --- |");
            for (kind, count, statuses) in errors {
                let _ = writeln!(out, "| {kind} | {count} | {statuses} |");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::stats::{ErrorKind, Outcome, Tokens};

    fn info(stream: bool) -> RunInfo {
        RunInfo {
            url: "http://127.0.0.1:1/v1/chat/completions".to_owned(),
            model: "m".to_owned(),
            api: Api::OpenAi,
            stream,
            mode: Mode::Closed,
            rate: None,
            concurrency: 8,
            prompt_tokens: None,
        }
    }

    fn recorder() -> Recorder {
        let Ok(mut rec) = Recorder::new() else { unreachable!("valid histogram bounds") };
        let t0 = Instant::now();
        for ms in [1, 2, 3, 4] {
            let ok = Outcome::Ok { ttft: Some(t0 + Duration::from_micros(500)), chunks: 10, tokens: Tokens::Usage(5) };
            rec.record(t0, t0 + Duration::from_millis(ms), &ok, &[1000, 0]);
        }
        rec.failure(ErrorKind::Status(502), t0);
        rec.failure(ErrorKind::Status(503), t0);
        rec.failure(ErrorKind::Status(429), t0);
        rec.failure(ErrorKind::Stream, t0);
        rec
    }

    #[test]
    fn rates_use_successes_and_duration() {
        let report = Report::build(&recorder(), 2.0, info(true));
        assert_eq!(report.requests, 8);
        assert_eq!(report.errors, 4);
        assert_eq!(report.rps, 2.0);
        assert_eq!(report.tokens_per_sec, Some(20.0));
        assert_eq!(report.output_tokens, 20);
        assert_eq!(report.output_tokens_per_sec, 10.0);
        assert_eq!(report.output_tokens_source, TokenSource::Usage);
        assert_eq!(report.latency_ms.p50, 2.0);
        assert_eq!(report.latency_ms.max, 4.001);
        assert_eq!(report.ttft_ms.map(|t| t.p50), Some(0.5));
        assert_eq!(report.itl_ms.map(|t| (t.p50, t.max)), Some((0.0, 1.0)));
        assert_eq!(report.error_kinds.get("502"), Some(&1));
        assert_eq!(report.error_kinds.get("stream_error"), Some(&1));
        let by_kind: Vec<(&str, u64)> = report.errors_by_kind.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(by_kind, [("http_4xx", 1), ("http_5xx", 2), ("stream_error", 1)]);
        assert_eq!(report.send_lag_ms, None);
    }

    #[test]
    fn json_keeps_the_fields_scripts_read() {
        let report = Report::build(&recorder(), 2.0, info(false));
        let json = serde_json::to_value(&report).unwrap_or_default();
        // bench/run.sh, bench/render.py and bench/translate.sh read these.
        for key in ["requests", "errors", "error_kinds", "rps", "latency_ms", "ttft_ms", "duration_s", "concurrency"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["ttft_ms"], serde_json::Value::Null);
        assert_eq!(json["tokens_per_sec"], serde_json::Value::Null);
        assert_eq!(json["latency_ms"]["p99"], 4.001);
        assert_eq!(json["error_kinds"]["503"], 1);
        assert_eq!(json["errors_by_kind"]["http_5xx"], 2);
        assert_eq!(json["api"], "openai");
        assert_eq!(json["mode"], "closed");
        assert_eq!(json["output_tokens_source"], "usage");
    }

    #[test]
    fn table_and_markdown_show_the_same_figures() {
        let report = Report::build(&recorder(), 2.0, info(true));
        let table = report.to_table();
        let markdown = report.to_markdown();
        assert!(
            table.starts_with("http://127.0.0.1:1/v1/chat/completions (openai, stream, closed loop, concurrency 8)")
        );
        assert!(table.contains("requests         8\n"), "{table}");
        assert!(table.contains("output tokens/s  10.0 (usage)\n"), "{table}");
        assert!(table.contains("error            http_5xx: 2 (502: 1, 503: 1)\n"), "{table}");
        assert!(markdown.contains("| http_5xx | 2 | 502: 1, 503: 1 |"), "{markdown}");
        // Every number of the table appears in the Markdown too.
        let numbers = |text: &str| -> Vec<String> {
            let mut v: Vec<String> = text
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
                .map(str::to_owned)
                .collect();
            v.sort();
            v
        };
        assert_eq!(numbers(&table), numbers(&markdown));
        for label in ["latency", "TTFT", "ITL"] {
            assert!(table.contains(label) && markdown.contains(&format!("| {label} |")), "{label}");
        }
    }

    #[test]
    fn empty_run_reports_zeros() {
        let Ok(rec) = Recorder::new() else { unreachable!("valid histogram bounds") };
        let report = Report::build(&rec, 0.0, info(false));
        assert_eq!(report.rps, 0.0);
        assert_eq!(report.latency_ms, Percentiles::default());
        assert_eq!(report.output_tokens_source, TokenSource::None);
        let table = report.to_table();
        assert!(table.contains("requests         0\n"), "{table}");
        assert!(table.contains("no successful request"), "{table}");
        assert!(report.to_markdown().contains("| latency | – |"));
    }

    #[test]
    fn open_loop_title_and_send_lag_row() {
        let mut run = info(false);
        run.mode = Mode::Open;
        run.rate = Some((50.0, Arrival::Poisson));
        run.concurrency = 3;
        let report = Report::build(&recorder(), 1.0, run);
        assert_eq!(report.rate, Some(50.0));
        let table = report.to_table();
        assert!(table.contains("open loop at 50 req/s (poisson), peak in flight 3"), "{table}");
        assert!(table.contains("send lag         (no sample)"), "{table}");
    }
}
