//! The run's result: built once from the merged [`Recorder`], printed as a
//! table or as one JSON object (the form `bench/run.sh` parses).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::{Percentiles, Recorder};

/// What one load-generator run measured. Only requests started after the
/// warm-up count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Measured requests, successful or not.
    pub requests: u64,
    /// Requests that got a non-2xx status, a transport error or timed out.
    pub errors: u64,
    /// `errors` by kind: the HTTP status (`"503"`), `connect`, `transport` or `timeout`.
    pub error_kinds: BTreeMap<String, u64>,
    /// Successful (2xx) responses per second of `duration_s`.
    pub rps: f64,
    /// Whole-request latency of successful requests (for streams: until the
    /// body ends). All zeros when no request succeeded.
    pub latency_ms: Percentiles,
    /// Streams only: time to the first `data:` line carrying non-empty
    /// `content`. `None` for non-stream runs or when no stream had content.
    pub ttft_ms: Option<Percentiles>,
    /// Streams only: `data:` chunks (other than `[DONE]`) per second.
    pub tokens_per_sec: Option<f64>,
    /// Length of the measured window: from the end of warm-up until the last
    /// measured request finished.
    pub duration_s: f64,
    pub concurrency: u32,
}

impl Report {
    pub(crate) fn build(mut rec: Recorder, duration_s: f64, concurrency: u32, stream: bool) -> Self {
        let per_sec = |n: u64| {
            if duration_s > 0.0 {
                n as f64 / duration_s
            } else {
                0.0
            }
        };
        let ok = rec.requests - rec.errors;
        Self {
            requests: rec.requests,
            errors: rec.errors,
            rps: per_sec(ok),
            latency_ms: Percentiles::from_micros(&mut rec.latencies_us).unwrap_or_default(),
            ttft_ms: if stream { Percentiles::from_micros(&mut rec.ttfts_us) } else { None },
            tokens_per_sec: stream.then(|| per_sec(rec.stream_chunks)),
            error_kinds: rec.error_kinds.iter().map(|(kind, count)| (kind.to_string(), *count)).collect(),
            duration_s,
            concurrency,
        }
    }

    /// Human-readable form, one metric per line.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let row = |out: &mut String, name: &str, p: &Percentiles| {
            let _ = writeln!(
                out,
                "{name:<12} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                p.p50, p.p90, p.p95, p.p99, p.max, p.mean
            );
        };
        let _ = writeln!(
            out,
            "requests     {} ({} errors) in {:.2} s, concurrency {}",
            self.requests, self.errors, self.duration_s, self.concurrency
        );
        let _ = writeln!(out, "rps          {:.1}", self.rps);
        if let Some(tps) = self.tokens_per_sec {
            let _ = writeln!(out, "chunks/s     {tps:.1}");
        }
        let _ = writeln!(
            out,
            "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "ms", "p50", "p90", "p95", "p99", "max", "mean"
        );
        if self.requests == self.errors {
            let _ = writeln!(out, "latency      (no successful request)");
        } else {
            row(&mut out, "latency", &self.latency_ms);
        }
        if let Some(ttft) = &self.ttft_ms {
            row(&mut out, "ttft", ttft);
        }
        for (kind, count) in &self.error_kinds {
            let _ = writeln!(out, "error        {kind}: {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn recorder() -> Recorder {
        let now = Instant::now();
        let mut rec = Recorder::default();
        for ms in [1, 2, 3, 4] {
            rec.success(Duration::from_millis(ms), now);
        }
        rec.failure(crate::stats::ErrorKind::Status(502), now);
        rec.ttft(Duration::from_micros(500));
        rec.stream_chunks = 40;
        rec
    }

    #[test]
    fn rates_use_successes_and_duration() {
        let report = Report::build(recorder(), 2.0, 8, true);
        assert_eq!(report.requests, 5);
        assert_eq!(report.errors, 1);
        assert_eq!(report.rps, 2.0);
        assert_eq!(report.tokens_per_sec, Some(20.0));
        assert_eq!(report.latency_ms.p50, 2.0);
        assert_eq!(report.latency_ms.max, 4.0);
        assert_eq!(report.ttft_ms.map(|t| t.p50), Some(0.5));
        assert_eq!(report.error_kinds.get("502"), Some(&1));
    }

    #[test]
    fn non_stream_report_has_no_stream_fields() {
        let report = Report::build(recorder(), 2.0, 8, false);
        assert_eq!(report.ttft_ms, None);
        assert_eq!(report.tokens_per_sec, None);
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["ttft_ms"], serde_json::Value::Null);
        assert_eq!(json["latency_ms"]["p99"], 4.0);
        assert_eq!(json["error_kinds"]["502"], 1);
    }

    #[test]
    fn empty_run_reports_zeros() {
        let report = Report::build(Recorder::default(), 0.0, 1, false);
        assert_eq!(report.rps, 0.0);
        assert_eq!(report.latency_ms, Percentiles::default());
        let table = report.to_table();
        assert!(table.contains("requests     0 (0 errors)"), "{table}");
        assert!(table.contains("no successful request"), "{table}");
    }
}
