//! The live snapshot: one immutable value holding the config and everything
//! built from it (routes, deployments, provider clients). Requests load it
//! once and keep it for their whole life; a reload builds a new one and
//! swaps it in whole, so no request ever sees half a config.
//!
//! Building reuses HTTP clients from the previous snapshot when their
//! settings are unchanged, so connection pools survive reloads.

use crate::routing::live::Live;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use switchyard_config::{Config, ScoreWeights, Strategy, Timeouts, EMBEDDED_SIM_URL};
use switchyard_providers::anthropic::Anthropic;
use switchyard_providers::gemini::Gemini;
use switchyard_providers::http::{build_client, Client, ClientSettings};
use switchyard_providers::openai_compat::OpenAiCompat;
use switchyard_providers::Provider;
use switchyard_translate::Format;
use switchyard_types::cost::PriceSheet;
use switchyard_types::{Capability, ProviderKind, Tier};

pub struct Deployment {
    pub name: String,
    /// Model name sent upstream.
    pub model: Arc<str>,
    pub provider_name: String,
    pub provider_kind: ProviderKind,
    /// The wire format the provider speaks.
    pub format: Format,
    pub provider: Arc<dyn Provider>,
    pub timeouts: Timeouts,
    pub capabilities: Vec<Capability>,
    /// What one token (and one request) costs here, exactly.
    pub price: PriceSheet,
    /// Where the price came from: `config`, `catalog <date>`, or `none`.
    pub priced_by: String,
    /// The provider's volume discount tiers (empty: none).
    pub discounts: Arc<[switchyard_types::cost::Tier]>,
    /// Where it computes (the provider's tier) and the provider's region.
    pub tier: Tier,
    pub region: Option<String>,
    /// Prompt plus answer tokens it takes (`None`: not checked).
    pub context_window: Option<u64>,
    /// 0–1 (`None`: not configured).
    pub quality: Option<f64>,
    pub weight: u32,
    /// The compute node serving it (routed to only while it is alive).
    pub node: Option<String>,
    /// Requests in flight at once, from this replica (`None`: no limit).
    pub max_concurrency: Option<u32>,
    /// In flight and latency from real traffic; survives reloads.
    pub live: Arc<Live>,
}

impl Deployment {
    pub fn can(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }
}

pub struct Route {
    pub name: String,
    /// Enabled deployments, in configured order (the strategy ranks them).
    pub targets: Vec<Arc<Deployment>>,
    /// Enabled fallbacks, tried after the targets in this order.
    pub fallbacks: Vec<Arc<Deployment>>,
    /// The `degrade_to` chains of its targets, arms and fallbacks (each
    /// deployment once, none of those): tried last, where the request fits.
    pub degraded: Vec<Arc<Deployment>>,
    pub strategy: Strategy,
    pub score_weights: ScoreWeights,
    /// Smooth weighted round robin's running weights, one per target.
    pub rotation: std::sync::Mutex<Vec<i64>>,
    /// Canary or A/B arms besides `targets` (arm `stable`).
    pub split: Option<crate::routing::split::Split>,
    /// Task routing: each request goes to the route its task names.
    pub tasks: Option<crate::routing::tasks::Tasks>,
    /// Escalation of whole answers to the next step.
    pub cascade: Option<crate::routing::cascade::Cascade>,
    /// Why some configured targets are missing (e.g. "openai: no api_key").
    pub disabled: Vec<String>,
    pub embeddings: bool,
    /// Limits per tenant on this route (`routes[].limits`).
    pub limits: crate::limits::Limits,
    /// Its admission queue (`routes[].queue`).
    pub queue: Option<switchyard_config::QueueConfig>,
    /// Cut streams continue on the next deployment.
    pub stream_rescue: bool,
    /// Hedged requests (`routes[].hedge`).
    pub hedge: Option<switchyard_config::HedgeConfig>,
}

pub struct Runtime {
    pub config: Arc<Config>,
    pub routes: HashMap<String, Arc<Route>>,
    /// Route names in config order (for `/v1/models`).
    pub route_order: Vec<String>,
    /// Unix seconds when this snapshot was built (`created` in `/v1/models`).
    pub built_at: i64,
    clients: HashMap<ClientSettings, Client>,
}

/// Facts from the outside world that a snapshot needs.
pub struct BuildContext<'a> {
    /// Where the embedded simulator listens, when `sim://` is used.
    pub sim_addr: Option<SocketAddr>,
    pub previous: Option<&'a Runtime>,
}

/// A provider as its deployments need it: client, timeouts, kind, enabled,
/// volume discount tiers.
struct BuiltProvider {
    provider: Arc<dyn Provider>,
    timeouts: Timeouts,
    kind: ProviderKind,
    enabled: bool,
    discounts: Arc<[switchyard_types::cost::Tier]>,
    tier: Tier,
    region: Option<String>,
}

impl Runtime {
    pub fn build(config: Config, ctx: BuildContext<'_>) -> Result<Runtime, String> {
        Runtime::build_with_faults(config, ctx, None)
    }

    /// [`Runtime::build`] with each deployment's provider behind the rules
    /// of `faults` when `config.faults.enabled` ([`crate::faults`]).
    pub fn build_with_faults(
        config: Config,
        ctx: BuildContext<'_>,
        faults: Option<&Arc<crate::faults::Faults>>,
    ) -> Result<Runtime, String> {
        let faults = faults.filter(|_| config.faults.enabled);
        let mut clients: HashMap<ClientSettings, Client> = HashMap::new();
        // name → (client, deadlines, kind, enabled)
        let mut providers: HashMap<&str, BuiltProvider> = HashMap::new();
        for p in &config.providers {
            let timeouts = p.timeouts.over(config.timeouts);
            let settings = ClientSettings { connect_timeout: timeouts.connect.get(), http2_only: p.http2 };
            let client = match clients.get(&settings).or_else(|| ctx.previous.and_then(|r| r.clients.get(&settings))) {
                Some(c) => c.clone(),
                None => build_client(&settings).map_err(|e| e.message)?,
            };
            clients.insert(settings, client.clone());
            let base_url = if p.base_url == EMBEDDED_SIM_URL {
                let addr = ctx.sim_addr.ok_or_else(|| {
                    format!("provider {}: sim:// needs the embedded simulator, which is not running", p.name)
                })?;
                format!("http://{addr}{}", sim_root(p.kind))
            } else {
                p.base_url.clone()
            };
            let headers: Vec<(String, String)> = p.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let (key, version) = (p.key(), p.api_version.as_deref());
            let provider: Result<Arc<dyn Provider>, _> = match p.kind {
                ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                    OpenAiCompat::new(&base_url, key, &headers, client).map(|p| Arc::new(p) as _)
                }
                ProviderKind::AzureOpenai => {
                    OpenAiCompat::azure(&base_url, key, version, &headers, client).map(|p| Arc::new(p) as _)
                }
                ProviderKind::Anthropic => {
                    Anthropic::new(&base_url, key, version, &headers, client).map(|p| Arc::new(p) as _)
                }
                ProviderKind::Gemini => Gemini::new(&base_url, key, &headers, client).map(|p| Arc::new(p) as _),
            };
            let provider = provider.map_err(|e| format!("provider {}: {}", p.name, e.message))?;
            let discounts: Arc<[switchyard_types::cost::Tier]> = p
                .volume_discounts
                .iter()
                .map(|d| d.tier().map_err(|e| format!("provider {}: volume_discounts: {e}", p.name)))
                .collect::<Result<_, _>>()?;
            let built = BuiltProvider {
                provider,
                timeouts,
                kind: p.kind,
                enabled: p.enabled(),
                discounts,
                tier: p.tier,
                region: p.region.clone(),
            };
            providers.insert(p.name.as_str(), built);
        }
        let mut deployments: HashMap<&str, (Arc<Deployment>, bool)> = HashMap::new();
        for d in &config.deployments {
            let p = providers
                .get(d.provider.as_str())
                .ok_or_else(|| format!("deployment {}: unknown provider {}", d.name, d.provider))?;
            let (price, priced_by) = price_of(d, p.kind)?;
            let live = ctx.previous.and_then(|r| r.live_of(&d.name)).unwrap_or_default();
            let dep = Deployment {
                name: d.name.clone(),
                model: Arc::from(d.model.as_str()),
                provider_name: d.provider.clone(),
                provider_kind: p.kind,
                format: format_of(p.kind),
                provider: crate::faults::Faulty::wrap(p.provider.clone(), &d.name, faults),
                timeouts: p.timeouts,
                capabilities: d.capabilities.clone(),
                price,
                priced_by,
                discounts: p.discounts.clone(),
                tier: p.tier,
                region: p.region.clone(),
                context_window: d.context_window,
                quality: d.quality,
                weight: d.weight.max(1),
                node: d.node.clone(),
                max_concurrency: d.max_concurrency,
                live,
            };
            deployments.insert(d.name.as_str(), (Arc::new(dep), p.enabled));
        }
        let mut routes = HashMap::new();
        let mut route_order = Vec::new();
        for r in &config.routes {
            let mut disabled = Vec::new();
            let mut enabled = |names: &[String]| -> Result<Vec<Arc<Deployment>>, String> {
                let mut out = Vec::new();
                for t in names {
                    let (dep, enabled) = deployments
                        .get(t.as_str())
                        .cloned()
                        .ok_or_else(|| format!("route {}: unknown deployment {t}", r.name))?;
                    if enabled {
                        out.push(dep);
                    } else {
                        disabled.push(format!("{t} (provider {} has no api_key)", dep.provider_name));
                    }
                }
                Ok(out)
            };
            let targets = enabled(&r.targets)?;
            let fallbacks = enabled(&r.fallbacks)?;
            let split = match &r.split {
                Some(c) => {
                    let arms = c.arms.iter().map(|a| enabled(&a.targets)).collect::<Result<Vec<_>, _>>()?;
                    Some(crate::routing::split::Split::build(c, arms))
                }
                None => None,
            };
            let degraded = enabled(&degradations(&config, r))?;
            // Validation guarantees a route's targets are all embeddings or
            // all chat; the first configured one (enabled or not) decides —
            // for a task route, the first target of its default task's route.
            let first_target = match &r.tasks {
                Some(t) => config
                    .routes
                    .iter()
                    .find(|x| t.routes.get(&t.default) == Some(&x.name))
                    .and_then(|x| x.targets.first()),
                None => r.targets.first(),
            };
            let embeddings = first_target
                .and_then(|t| deployments.get(t.as_str()))
                .is_some_and(|(d, _)| d.capabilities.contains(&Capability::Embeddings));
            let cascade = r
                .cascade
                .as_ref()
                .map(crate::routing::cascade::Cascade::build)
                .transpose()
                .map_err(|e| format!("route {}: cascade: {e}", r.name))?;
            let tasks = r
                .tasks
                .as_ref()
                .map(crate::routing::tasks::Tasks::build)
                .transpose()
                .map_err(|e| format!("route {}: tasks: {e}", r.name))?;
            route_order.push(r.name.clone());
            routes.insert(
                r.name.clone(),
                Arc::new(Route {
                    name: r.name.clone(),
                    rotation: std::sync::Mutex::new(vec![0; targets.len()]),
                    targets,
                    fallbacks,
                    degraded,
                    split,
                    tasks,
                    cascade,
                    strategy: r.strategy,
                    score_weights: r.score_weights,
                    disabled,
                    embeddings,
                    limits: r.limits.map(crate::limits::Limits::from).unwrap_or_default(),
                    queue: r.queue.clone(),
                    stream_rescue: r.stream_rescue,
                    hedge: r.hedge.clone(),
                }),
            );
        }
        Ok(Runtime { config: Arc::new(config), routes, route_order, built_at: crate::now_unix_ms() / 1000, clients })
    }

    /// The live figures of a deployment of this snapshot, by name.
    fn live_of(&self, deployment: &str) -> Option<Arc<Live>> {
        self.routes
            .values()
            .flat_map(|r| {
                let arms = r.split.iter().flat_map(|s| s.arms.iter().flat_map(|a| a.targets.iter()));
                r.targets.iter().chain(&r.fallbacks).chain(&r.degraded).chain(arms)
            })
            .find(|d| d.name == deployment)
            .map(|d| d.live.clone())
    }

    /// Human-readable notes about the snapshot worth logging at start.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut unpriced: Vec<&str> = self
            .routes
            .values()
            .flat_map(|r| r.targets.iter())
            .filter(|d| d.priced_by == "none" && d.provider_kind != ProviderKind::OpenaiCompatible)
            .map(|d| d.name.as_str())
            .collect();
        unpriced.sort_unstable();
        unpriced.dedup();
        if !unpriced.is_empty() {
            out.push(format!(
                "no price for deployment(s) {} in the config or the catalog: their usage is recorded at zero cost",
                unpriced.join(", ")
            ));
        }
        for p in &self.config.providers {
            if !p.enabled() {
                out.push(format!(
                    "provider {} ({}) has no api_key: its deployments are skipped",
                    p.name,
                    p.kind.as_str()
                ));
            }
        }
        for name in &self.route_order {
            if let Some(r) = self.routes.get(name) {
                if r.targets.is_empty() && r.tasks.is_none() {
                    out.push(format!("route {name} has no enabled deployment: requests to it get 503"));
                }
            }
        }
        out
    }
}

/// The wire format each provider kind speaks.
pub fn format_of(kind: ProviderKind) -> Format {
    match kind {
        ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::AzureOpenai => Format::OpenAi,
        ProviderKind::Anthropic => Format::Anthropic,
        ProviderKind::Gemini => Format::Gemini,
    }
}

/// A route's degradation chain: breadth first from its targets, arms and
/// fallbacks through `deployments[].degrade_to`, each deployment once and
/// none of those it starts from.
fn degradations(config: &Config, r: &switchyard_config::RouteConfig) -> Vec<String> {
    let arms = r.split.iter().flat_map(|s| s.arms.iter().flat_map(|a| a.targets.iter()));
    let start: Vec<&String> = r.targets.iter().chain(&r.fallbacks).chain(arms).collect();
    let mut seen: std::collections::HashSet<&str> = start.iter().map(|s| s.as_str()).collect();
    let mut queue: std::collections::VecDeque<&str> = start.iter().map(|s| s.as_str()).collect();
    let mut out = Vec::new();
    while let Some(name) = queue.pop_front() {
        let Some(d) = config.deployments.iter().find(|d| d.name == name) else { continue };
        for next in &d.degrade_to {
            if seen.insert(next.as_str()) {
                out.push(next.clone());
                queue.push_back(next.as_str());
            }
        }
    }
    out
}

/// Where each kind's API lives on the embedded simulator.
fn sim_root(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::Anthropic => "/v1",
        ProviderKind::AzureOpenai => "/openai",
        ProviderKind::Gemini => "/v1beta",
    }
}

/// A deployment's price: its own `price`, else the shipped catalog's entry
/// for its provider kind and model, else free.
fn price_of(d: &switchyard_config::DeploymentConfig, kind: ProviderKind) -> Result<(PriceSheet, String), String> {
    if let Some(price) = &d.price {
        let sheet = price.sheet().map_err(|e| format!("deployment {}: price.{e}", d.name))?;
        return Ok((sheet, "config".into()));
    }
    let catalog = switchyard_config::prices::Catalog::builtin();
    match catalog.find(kind, &d.model) {
        Some(entry) => {
            let sheet = entry.price().sheet().map_err(|e| format!("price catalog, {}: {e}", entry.model))?;
            Ok((sheet, format!("catalog {} ({})", catalog.as_of, entry.model)))
        }
        None => Ok((PriceSheet::default(), "none".into())),
    }
}

/// Config limits are the limiter's limits.
impl From<switchyard_config::LimitsConfig> for crate::limits::Limits {
    fn from(c: switchyard_config::LimitsConfig) -> Self {
        crate::limits::Limits { rpm: c.rpm, tpm: c.tpm, max_concurrent: c.max_concurrent }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn build(yaml: &str) -> Runtime {
        let env = std::collections::HashMap::new();
        let config = switchyard_config::load_str(yaml, "test.yaml", &env).unwrap();
        Runtime::build(config, BuildContext { sim_addr: None, previous: None }).unwrap()
    }

    const YAML: &str = r#"
providers:
  - { name: openai, kind: openai, base_url: "https://api.openai.com/v1", api_key: "${OPENAI_API_KEY:-}" }
  - { name: local, kind: openai_compatible, base_url: "http://127.0.0.1:9/v1" }
deployments:
  - { name: cloud, provider: openai, model: gpt-4o-mini }
  - { name: onprem, provider: local, model: qwen }
  - { name: vectors, provider: local, model: e5, capabilities: [embeddings] }
routes:
  - { name: chat, targets: [cloud, onprem] }
  - { name: cloud-only, targets: [cloud] }
  - { name: embed, targets: [vectors] }
"#;

    #[test]
    fn a_provider_without_a_key_is_left_out_of_plans() {
        let rt = build(YAML);
        let chat = &rt.routes["chat"];
        assert_eq!(chat.targets.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["onprem"]);
        assert_eq!(chat.disabled.len(), 1);
        assert!(chat.disabled[0].contains("openai"));
        assert!(rt.routes["cloud-only"].targets.is_empty());
        assert!(rt.notes().iter().any(|n| n.contains("cloud-only") && n.contains("503")));
        assert!(!chat.embeddings);
        assert!(rt.routes["embed"].embeddings);
        assert_eq!(rt.route_order, ["chat", "cloud-only", "embed"]);
    }

    #[test]
    fn clients_survive_a_rebuild_with_the_same_settings() {
        let first = build(YAML);
        let env = std::collections::HashMap::new();
        let config = switchyard_config::load_str(YAML, "test.yaml", &env).unwrap();
        let second = Runtime::build(config, BuildContext { sim_addr: None, previous: Some(&first) }).unwrap();
        assert_eq!(second.clients.len(), 1, "one client for one set of settings");
        assert_eq!(first.clients.keys().collect::<Vec<_>>(), second.clients.keys().collect::<Vec<_>>());
    }

    #[test]
    fn sim_urls_need_the_embedded_simulator() {
        let yaml = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\n";
        let env = std::collections::HashMap::new();
        let config = switchyard_config::load_str(yaml, "t.yaml", &env).unwrap();
        let err = Runtime::build(config.clone(), BuildContext { sim_addr: None, previous: None }).err().unwrap();
        assert!(err.contains("sim://"));
        let addr = "127.0.0.1:1".parse().ok();
        assert!(Runtime::build(config, BuildContext { sim_addr: addr, previous: None }).is_ok());
    }
}
