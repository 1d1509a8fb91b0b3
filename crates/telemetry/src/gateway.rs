//! Every metric the gateway exports, in one place.
//!
//! Names follow the OpenTelemetry GenAI semantic conventions where one
//! exists (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
//! `gen_ai.server.time_to_first_token`), with dots turned into underscores
//! and the unit appended as Prometheus expects. Gateway-specific metrics are
//! prefixed `switchyard_`.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `switchyard_requests_total` | counter | `operation`, `route`, `deployment`, `status` |
//! | `switchyard_requests_in_flight` | gauge | `operation` |
//! | `gen_ai_client_operation_duration_seconds` | histogram | `gen_ai_operation_name`, `gen_ai_request_model`, `switchyard_deployment` |
//! | `gen_ai_server_time_to_first_token_seconds` | histogram | `gen_ai_request_model`, `switchyard_deployment` |
//! | `gen_ai_client_token_usage` | histogram | `gen_ai_operation_name`, `gen_ai_request_model`, `gen_ai_token_type` (`input`/`output`) |
//! | `switchyard_gateway_overhead_seconds` | histogram | `operation` |
//! | `switchyard_upstream_attempts_total` | counter | `deployment`, `outcome` |
//! | `switchyard_translations_total` | counter | `client_format`, `provider_format` (`openai`, `anthropic`, `gemini`), `outcome` (`ok`, `refused`) |
//! | `switchyard_usage_records_total` | counter | `result` (`written`, `failed`) |
//! | `switchyard_usage_queue_depth` | gauge | — |
//! | `switchyard_config_reloads_total` | counter | `result` (`ok`, `error`, `unchanged`) |
//!
//! `route` is the configured route name, or `-` when the request named no
//! known route (the raw client string is never a label).

use crate::family::{CounterFamily, GaugeFamily, HistogramFamily, LATENCY_BUCKETS, TOKEN_BUCKETS};

pub struct Metrics {
    pub requests: CounterFamily,
    pub in_flight: GaugeFamily,
    pub duration: HistogramFamily,
    pub ttft: HistogramFamily,
    pub tokens: HistogramFamily,
    pub overhead: HistogramFamily,
    pub attempts: CounterFamily,
    /// Attempts whose body was translated to another wire format.
    pub translations: CounterFamily,
    pub usage_records: CounterFamily,
    pub usage_queue_depth: GaugeFamily,
    pub config_reloads: CounterFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            requests: CounterFamily::new(
                "switchyard_requests_total",
                "Requests answered, by route, deployment that answered and HTTP status.",
                &["operation", "route", "deployment", "status"],
            ),
            in_flight: GaugeFamily::new("switchyard_requests_in_flight", "Requests being served now.", &["operation"]),
            duration: HistogramFamily::new(
                "gen_ai_client_operation_duration_seconds",
                "Whole request duration as the client sees it (stream: until the last byte).",
                &["gen_ai_operation_name", "gen_ai_request_model", "switchyard_deployment"],
                LATENCY_BUCKETS,
            ),
            ttft: HistogramFamily::new(
                "gen_ai_server_time_to_first_token_seconds",
                "Time from receiving the request to the first stream event from upstream.",
                &["gen_ai_request_model", "switchyard_deployment"],
                LATENCY_BUCKETS,
            ),
            tokens: HistogramFamily::new(
                "gen_ai_client_token_usage",
                "Tokens per request (reported by the provider or estimated).",
                &["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"],
                TOKEN_BUCKETS,
            ),
            overhead: HistogramFamily::new(
                "switchyard_gateway_overhead_seconds",
                "Time spent in the gateway itself, upstream time excluded.",
                &["operation"],
                LATENCY_BUCKETS,
            ),
            attempts: CounterFamily::new(
                "switchyard_upstream_attempts_total",
                "Upstream attempts by deployment and outcome.",
                &["deployment", "outcome"],
            ),
            translations: CounterFamily::new(
                "switchyard_translations_total",
                "Request bodies translated between wire formats, by outcome (refused: a field the provider cannot express).",
                &["client_format", "provider_format", "outcome"],
            ),
            usage_records: CounterFamily::new(
                "switchyard_usage_records_total",
                "Usage records handled by the batched writer.",
                &["result"],
            ),
            usage_queue_depth: GaugeFamily::new(
                "switchyard_usage_queue_depth",
                "Usage records waiting to be written.",
                &[],
            ),
            config_reloads: CounterFamily::new(
                "switchyard_config_reloads_total",
                "Config reload attempts.",
                &["result"],
            ),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.requests.render(&mut out);
        self.in_flight.render(&mut out);
        self.duration.render(&mut out);
        self.ttft.render(&mut out);
        self.tokens.render(&mut out);
        self.overhead.render(&mut out);
        self.attempts.render(&mut out);
        self.translations.render(&mut out);
        self.usage_records.render(&mut out);
        self.usage_queue_depth.render(&mut out);
        self.config_reloads.render(&mut out);
        out
    }
}
