//! The configuration schema. Every struct denies unknown fields so a typo
//! fails loudly; defaults live next to the field they fill.
//!
//! `docs/config.md` is the reference page for this file: keep them in step.

use crate::Duration;
use serde::{Deserialize, Serialize};
use switchyard_types::{Capability, Classification, ProviderKind, Tier};

/// The whole document. Sections are deserialised one by one (see `load.rs`)
/// so an error in one does not hide errors in another.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub admin: AdminConfig,
    pub rate_limits: RateLimitsConfig,
    pub budgets: BudgetsConfig,
    /// Budget threshold alerts and their webhooks (`alerts.rs`).
    pub alerts: crate::AlertsConfig,
    /// Data classification of requests and masking (docs/routing.md).
    pub classification: ClassificationConfig,
    /// On-premises inference nodes that register by heartbeat.
    pub nodes: NodesConfig,
    /// Shared state for replicas (rate-limit counters, directory change
    /// notifications); absent: this process counts alone.
    pub redis: Option<RedisConfig>,
    pub usage: UsageConfig,
    pub reload: ReloadConfig,
    pub timeouts: Timeouts,
    /// Retries, breakers, health checks, request deadlines
    /// (docs/resilience.md).
    pub resilience: crate::ResilienceConfig,
    /// Fault injection for game days (refused unless enabled).
    pub faults: crate::FaultsConfig,
    /// Settings for the simulator embedded in `switchyard serve`; kept as
    /// raw JSON because the simulator crate owns its schema.
    pub simulator: Option<SimulatorConfig>,
    pub providers: Vec<ProviderConfig>,
    pub deployments: Vec<DeploymentConfig>,
    pub routes: Vec<RouteConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Port 0 picks a free port (printed at start).
    pub listen: String,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long SIGTERM waits for in-flight requests before exiting.
    pub shutdown_grace: Duration,
    /// SSE comment sent to the client when the upstream is silent this long.
    pub heartbeat: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 8 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            heartbeat: Duration::from_secs(15),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The state database, chosen by the scheme: `sqlite://path/to/file.db`
    /// (created if missing), `sqlite::memory:`, or
    /// `postgres://user:password@host:port/database` (also `postgresql://`;
    /// the database must exist; a pool of up to 8 connections per replica,
    /// no TLS in this build).
    pub url: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { url: "sqlite://data/switchyard.db".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Token accepted on `/api/v1/*` as `Authorization: Bearer`: the
    /// platform admin. Empty: only admin-role keys reach the admin API.
    /// Never echoed by any API or log.
    #[serde(skip_serializing)]
    pub bootstrap_token: String,
    /// How often this replica checks the store for directory changes made
    /// elsewhere (keys, tenants, limits); a change made through this
    /// replica applies at once.
    pub refresh_interval: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { bootstrap_token: String::new(), refresh_interval: Duration::from_millis(250) }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Longest wait for one Redis call on the request path; past it the
    /// call counts as failed and `on_failure` decides.
    #[serde(default = "redis_timeout")]
    pub timeout: Duration,
    /// When Redis does not answer: `local` admits under this replica's own
    /// counters (fail open, still limited); `closed` refuses with 503.
    #[serde(default)]
    pub on_failure: RedisFailure,
    /// Prefix of every key this gateway writes.
    #[serde(default = "redis_prefix")]
    pub key_prefix: String,
    /// How long a concurrency slot lives if its replica dies holding it.
    #[serde(default = "redis_lease")]
    pub lease: Duration,
}

fn redis_timeout() -> Duration {
    Duration::from_millis(100)
}

fn redis_prefix() -> String {
    "switchyard".into()
}

fn redis_lease() -> Duration {
    Duration::from_secs(900)
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RedisFailure {
    #[default]
    Local,
    Closed,
}

/// How budget periods are counted (the budgets themselves are on tenants,
/// teams and keys: docs/cost.md#budgets).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsConfig {
    /// Where days and months begin: `UTC` or a fixed offset like `+08:00`.
    pub time_zone: String,
}

impl Default for BudgetsConfig {
    fn default() -> Self {
        BudgetsConfig { time_zone: "UTC".into() }
    }
}

/// Limits of one scope; absent = no limit on that dimension.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute (estimated at admission, corrected by the real usage).
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    pub max_concurrent: Option<u64>,
}

/// Per-endpoint limits, counted per tenant (keys, teams, tenants and plans
/// carry their own limits in the directory; routes under `routes[].limits`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    /// `POST /v1/chat/completions` and `POST /v1/messages`.
    pub chat: Option<LimitsConfig>,
    /// `POST /v1/embeddings`.
    pub embeddings: Option<LimitsConfig>,
    /// Output tokens reserved at admission for a request without
    /// `max_tokens` (the real count replaces it when the answer ends).
    pub default_max_tokens: u64,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        RateLimitsConfig { chat: None, embeddings: None, default_max_tokens: 256 }
    }
}

/// How a request's data classification is decided and what masking does
/// (docs/routing.md#data-classification).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClassificationConfig {
    /// The class of a request when neither its `x-switchyard-classification`
    /// header nor its key or tenant names one.
    pub default: Classification,
    /// Scan prompts for personal data and secrets (e-mail addresses, phone
    /// numbers, ID and card numbers, API keys, passwords); a finding raises
    /// the request to at least `P1`.
    pub detect: bool,
    /// Put the originals back into answers from masked (`L2`) calls.
    pub restore: bool,
}

impl Default for ClassificationConfig {
    fn default() -> Self {
        ClassificationConfig { default: Classification::P2, detect: true, restore: true }
    }
}

/// Compute nodes (docs/routing.md#compute-nodes): inference servers that
/// report themselves with `POST /api/v1/nodes/heartbeat`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NodesConfig {
    /// What heartbeats present as `Authorization: Bearer`. Empty:
    /// heartbeats are refused (and deployments on a node never serve).
    #[serde(skip_serializing)]
    pub token: String,
    /// A node silent this long is out of routing.
    pub timeout: Duration,
}

impl Default for NodesConfig {
    fn default() -> Self {
        NodesConfig { token: String::new(), timeout: Duration::from_secs(60) }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// Bound of the queue between requests and the usage writer.
    pub queue_capacity: usize,
    /// Most records written in one transaction.
    pub batch_size: usize,
    /// Longest a record waits in a partial batch.
    pub flush_interval: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig { queue_capacity: 10_000, batch_size: 1000, flush_interval: Duration::from_millis(100) }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Re-read the file when its contents change (SIGHUP always reloads).
    pub watch: bool,
    pub poll_interval: Duration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig { watch: true, poll_interval: Duration::from_secs(1) }
    }
}

/// Deadlines for one upstream attempt. Set globally under `timeouts:` and
/// overridden per provider; every field of an override is optional.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP (+TLS) connection establishment.
    pub connect: Duration,
    /// From sending the request to the first token: the first content
    /// event of a stream, or the response headers of a non-streaming call.
    pub first_token: Duration,
    /// Longest silence between two stream events (or body chunks), the
    /// first token excepted.
    pub idle: Duration,
    /// The whole attempt, from starting to connect to the last byte.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(120),
            idle: Duration::from_secs(120),
            total: Duration::from_secs(600),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutOverrides {
    pub connect: Option<Duration>,
    pub first_token: Option<Duration>,
    pub idle: Option<Duration>,
    pub total: Option<Duration>,
}

impl TimeoutOverrides {
    pub fn over(&self, base: Timeouts) -> Timeouts {
        Timeouts {
            connect: self.connect.unwrap_or(base.connect),
            first_token: self.first_token.unwrap_or(base.first_token),
            idle: self.idle.unwrap_or(base.idle),
            total: self.total.unwrap_or(base.total),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// Where the embedded simulator listens (absent: loopback, any free
    /// port); providers reach it with `base_url: "sim://"`.
    pub listen: Option<String>,
    /// Knobs for every model without its own entry (`switchyard_sim::Knobs`;
    /// checked here only for being a mapping, by the simulator when it
    /// starts for names and ranges).
    pub default: serde_json::Value,
    /// Knobs per simulated model name, replacing `default` for that model.
    pub models: serde_json::Map<String, serde_json::Value>,
}

/// Base URL that means "the simulator embedded in this process".
pub const EMBEDDED_SIM_URL: &str = "sim://";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Root of the API, or `sim://` for the embedded simulator:
    /// `https://api.openai.com/v1`, `https://api.anthropic.com/v1`,
    /// `https://generativelanguage.googleapis.com/v1beta`, or for Azure
    /// `https://<resource>.openai.azure.com/openai`.
    pub base_url: String,
    /// The credential, sent the way the kind expects (`Authorization:
    /// Bearer`, `x-api-key`, `x-goog-api-key`, Azure's `api-key`). Empty,
    /// blank or absent means "no key": cloud kinds (everything but
    /// `openai_compatible`) are then disabled and their deployments left out
    /// of every route (the log says so at start); `openai_compatible` sends
    /// no credential.
    #[serde(default, skip_serializing)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub tier: Tier,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub timeouts: TimeoutOverrides,
    /// Extra headers sent on every request to this provider.
    #[serde(default, skip_serializing)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// `azure_openai`: the `api-version` query parameter (default
    /// `2024-10-21`); `anthropic`: the `anthropic-version` header (default
    /// `2023-06-01`). Not allowed for other kinds.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Speak HTTP/2 to this provider without TLS (h2c, "prior knowledge"):
    /// many streams share one connection instead of one connection each.
    /// Only for `http://` servers that accept it; over `https://` HTTP/2 is
    /// already used whenever the server offers it.
    #[serde(default)]
    pub http2: bool,
    /// Discount tiers by this provider's tokens this calendar month
    /// (docs/cost.md#volume-discounts), in ascending `from_tokens`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_discounts: Vec<VolumeDiscount>,
}

/// `percent` off every request once the provider's tokens this month (input
/// plus output, every deployment on it) reach `from_tokens`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeDiscount {
    pub from_tokens: u64,
    /// 0 < percent ≤ 100, at most two decimals.
    pub percent: f64,
}

impl VolumeDiscount {
    /// The tier in exact basis points, or why it cannot be one.
    pub fn tier(&self) -> Result<switchyard_types::cost::Tier, String> {
        let bp = self.percent * 100.0;
        if !self.percent.is_finite() || self.percent <= 0.0 || self.percent > 100.0 || (bp - bp.round()).abs() > 1e-6 {
            return Err(format!(
                "expected a percentage above 0 and at most 100 with at most two decimals, found {}",
                self.percent
            ));
        }
        Ok(switchyard_types::cost::Tier { from_tokens: self.from_tokens, basis_points: bp.round() as u32 })
    }
}

impl ProviderConfig {
    /// The key, if one is configured and non-empty.
    pub fn key(&self) -> Option<&str> {
        self.api_key.as_deref().filter(|k| !k.trim().is_empty())
    }

    /// A cloud kind without a key cannot serve anything: it is skipped.
    pub fn enabled(&self) -> bool {
        !(self.kind.needs_key() && self.key().is_none())
    }
}

/// A deployment's prices in USD per million tokens (at most six decimals),
/// and per request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input_per_mtok: f64,
    #[serde(default)]
    pub output_per_mtok: f64,
    /// Prompt tokens read from the provider's cache; `input_per_mtok` when absent.
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// Prompt tokens written to the cache (Anthropic); `input_per_mtok` when absent.
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    /// USD per request, whatever its tokens.
    #[serde(default)]
    pub per_request: f64,
}

impl Price {
    /// The exact price sheet, or why the prices cannot be one.
    pub fn sheet(&self) -> Result<switchyard_types::cost::PriceSheet, String> {
        switchyard_types::cost::PriceSheet::from_usd(
            self.input_per_mtok,
            self.cached_input_per_mtok,
            self.cache_write_per_mtok,
            self.output_per_mtok,
            self.per_request,
        )
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    pub name: String,
    pub provider: String,
    /// The model name sent upstream.
    pub model: String,
    /// Absent: priced from the shipped catalog (`config/catalog/prices.yaml`) by
    /// provider kind and model, or free when the catalog does not know it.
    #[serde(default)]
    pub price: Option<Price>,
    #[serde(default = "default_capabilities")]
    pub capabilities: Vec<Capability>,
    /// Tokens of prompt plus answer the model takes; absent: not checked.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// 0–1, higher is better: ranks deployments under `strategy: quality`
    /// and is the capability fit of `strategy: score` (absent: 0.5).
    #[serde(default)]
    pub quality: Option<f64>,
    /// Share of traffic under `strategy: weighted` (relative, ≥ 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// The compute node serving it: it is routed to only while the node's
    /// heartbeats arrive (within `nodes.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Requests in flight at once to it, from this replica (absent: no
    /// limit); a deployment at its limit is passed over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Smaller siblings to serve from when this model cannot answer (tried
    /// after a route's targets and fallbacks, each only where the request
    /// fits it: docs/resilience.md#model-degradation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degrade_to: Vec<String>,
}

fn one() -> u32 {
    1
}

/// Absent: a chat model that takes tools, images and JSON mode — list
/// capabilities to keep requests that need one away from it.
fn default_capabilities() -> Vec<Capability> {
    vec![Capability::Chat, Capability::Tools, Capability::Vision, Capability::Json]
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The public model name clients send in `model`.
    pub name: String,
    /// Deployments tried in order: the next one is used when an attempt
    /// fails before any byte reached the client (connect error, timeout,
    /// 429 or 5xx). Empty (or absent) only on a route with `tasks`.
    #[serde(default)]
    pub targets: Vec<String>,
    /// How `targets` are ranked for each request (docs/routing.md#strategies).
    #[serde(default)]
    pub strategy: Strategy,
    /// Tried after every target, in this order, whatever the strategy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// The weights of `strategy: score`.
    #[serde(default)]
    pub score_weights: ScoreWeights,
    /// Escalation for non-streaming requests: an answer from a step that is
    /// not the last is checked, and a failing one is sent on to the next
    /// step (docs/routing.md#cascades).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<CascadeConfig>,
    /// Send each request to another route by its task (code, reasoning,
    /// long context, …): docs/routing.md#task-routing. A route with
    /// `tasks` has no `targets` of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<TasksConfig>,
    /// Part of the traffic served by other deployments: a canary, or the
    /// arms of an A/B test (docs/routing.md#rollouts-canaries-and-ab-splits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitConfig>,
    /// Limits per tenant on this route.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// A bounded queue for this route's requests (docs/resilience.md#admission-control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::QueueConfig>,
    /// A stream cut after its first byte is continued on the plan's next
    /// deployment (docs/resilience.md#stream-rescue).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream_rescue: bool,
    /// Hedged requests (docs/resilience.md#hedged-requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<crate::HedgeConfig>,
}

/// When a cascade escalates.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CascadeConfig {
    /// Answer faults that escalate.
    pub on: Vec<Escalate>,
    /// A regular expression the answer's text must match, else it escalates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Escalate {
    /// Cut by the output limit (finish reason `length` / `max_tokens`).
    Length,
    /// No text and no tool call.
    Empty,
    /// The model refused (OpenAI `refusal`, Anthropic `stop_reason: refusal`).
    Refusal,
}

/// Task routing: the first rule that matches names the request's task
/// (`x-switchyard-task` names it outright), and `routes` sends each task
/// to a route.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TasksConfig {
    #[serde(default)]
    pub rules: Vec<TaskRule>,
    /// Task → the route that serves it (a route without `tasks`).
    pub routes: std::collections::BTreeMap<String, String>,
    /// The task when no rule matches.
    pub default: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskRule {
    pub task: String,
    /// Every condition given must hold; none given: always.
    #[serde(default)]
    pub when: TaskWhen,
}

/// Conditions on a request. Text conditions read the last user message.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TaskWhen {
    /// Any of these, case-insensitive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// A regular expression (Rust `regex` syntax) that must find a match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Estimated prompt tokens (body bytes / 4) at least / at most this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u64>,
    /// Tools offered (`true`) or not (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Code in the message (a fenced block, or lines that read as code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<bool>,
}

/// A route's traffic split into arms. Arm `stable` is the route's own
/// `targets`; every other arm takes `percent` of the subjects, chosen by a
/// hash of the subject that does not change between requests, replicas or
/// restarts — and raising a percent only moves subjects *into* its arm.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// What keeps a request on its arm.
    #[serde(default)]
    pub sticky: Sticky,
    pub arms: Vec<ArmConfig>,
    /// Subjects always on an arm, whatever the hash: `{ internal: { arm:
    /// canary, subjects: [alice, bob] } }` (the group names are labels).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub groups: std::collections::BTreeMap<String, GroupConfig>,
    /// `x-switchyard-scenario` values sent to an arm (`stable` included).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub scenarios: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArmConfig {
    pub name: String,
    pub targets: Vec<String>,
    /// Share of subjects, 0–100 with at most two decimals; all arms ≤ 100.
    pub percent: f64,
    /// A schedule that moves `percent` step by step (docs/routing.md#rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutConfig>,
}

/// A rollout in progress: the percents still to come. The gateway moves the
/// arm to the next one every `every` (or on `advance` over the admin API),
/// and writes each move as a new config version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Percents still to come, in order (up for an advance, down for a
    /// gradual rollback); empty: the rollout is over.
    pub steps: Vec<f64>,
    /// Time on each step before the next; absent: steps move on `advance`
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// Paused: no step moves until resumed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Unix ms the current step began (written by the gateway; absent: when
    /// its config version was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// The arm's share of failed requests (5xx answers, seen by this
    /// replica) over a step above which the rollout pauses instead of
    /// moving on — or rolls back, with `on_errors: rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Requests on the step before `max_error_rate` is judged.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    #[serde(default)]
    pub on_errors: OnErrors,
    /// Set by a rollback: the arm is removed when its percent reaches 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolling_back: bool,
}

/// A rollout's `min_requests` when none is given.
pub const DEFAULT_MIN_REQUESTS: u64 = 20;

fn default_min_requests() -> u64 {
    DEFAULT_MIN_REQUESTS
}

/// What a rollout does when its arm fails more than `max_error_rate`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnErrors {
    #[default]
    Pause,
    Rollback,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// An arm's name, or `stable`.
    pub arm: String,
    pub subjects: Vec<String>,
}

/// The subject a split hashes.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Sticky {
    /// `x-switchyard-user` when sent, else the key.
    #[default]
    User,
    Key,
    Tenant,
}

/// How a route ranks the deployments that pass its filters.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// In the order of `targets`.
    #[default]
    Priority,
    /// Cheapest for this request first (its prompt and answer allowance at
    /// each deployment's prices).
    Cost,
    /// Fastest first, from live latency that fades with age.
    Latency,
    /// Highest `quality` first.
    Quality,
    /// Smooth weighted round robin by `weight`.
    Weighted,
    /// Fewest requests in flight first.
    LeastBusy,
    /// Highest weighted sum of security fit, capability fit, latency and cost.
    Score,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Cost => "cost",
            Strategy::Latency => "latency",
            Strategy::Quality => "quality",
            Strategy::Weighted => "weighted",
            Strategy::LeastBusy => "least_busy",
            Strategy::Score => "score",
        }
    }
}

/// Weights of `strategy: score`: non-negative, not all zero (they are
/// used as shares of their sum).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreWeights {
    pub security: f64,
    pub capability: f64,
    pub latency: f64,
    pub cost: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights { security: 0.40, capability: 0.25, latency: 0.20, cost: 0.15 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: ProviderKind, api_key: Option<&str>) -> ProviderConfig {
        ProviderConfig {
            name: "p".into(),
            kind,
            base_url: "https://api.openai.com/v1".into(),
            api_key: api_key.map(str::to_string),
            tier: Tier::L2,
            region: None,
            timeouts: TimeoutOverrides::default(),
            headers: Default::default(),
            api_version: None,
            http2: false,
            volume_discounts: Vec::new(),
        }
    }

    #[test]
    fn openai_without_a_key_is_disabled() {
        assert!(!provider(ProviderKind::Openai, None).enabled());
        assert!(!provider(ProviderKind::Openai, Some("")).enabled());
        assert!(!provider(ProviderKind::Openai, Some("  ")).enabled());
        assert!(provider(ProviderKind::Openai, Some("sk-1")).enabled());
        assert!(!provider(ProviderKind::Anthropic, None).enabled());
        assert!(!provider(ProviderKind::Gemini, Some("")).enabled());
        assert!(!provider(ProviderKind::AzureOpenai, None).enabled());
        assert_eq!(provider(ProviderKind::Openai, Some("  ")).key(), None);
        // Local servers usually need no key.
        assert!(provider(ProviderKind::OpenaiCompatible, None).enabled());
        assert!(provider(ProviderKind::OpenaiCompatible, Some("")).enabled());
    }

    #[test]
    fn overrides_replace_only_the_fields_they_set() {
        let base = Timeouts::default();
        assert_eq!(TimeoutOverrides::default().over(base), base);
        let o = TimeoutOverrides { idle: Some(Duration::from_secs(7)), ..Default::default() };
        assert_eq!(o.over(base), Timeouts { idle: Duration::from_secs(7), ..base });
    }
}
