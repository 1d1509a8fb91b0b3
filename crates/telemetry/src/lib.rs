//! Metrics and logging set-up, and the names of every metric.
//!
//! Metrics are a small hand-written Prometheus registry (atomic counters and
//! fixed-bucket histograms keyed by label values) — enough for the text
//! exposition format, with no global state: the gateway owns one
//! [`Metrics`] and passes it where needed.
//!
//! Label values must come from configured ids and enums, never from raw
//! client input (STYLE.md rule 8).

mod family;
mod gateway;
pub mod logging;

pub use family::{CounterFamily, GaugeFamily, HistogramFamily, LATENCY_BUCKETS, TOKEN_BUCKETS};
pub use gateway::{Finished, Metrics, RequestSeries};
