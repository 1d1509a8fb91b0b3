//! Cross-reference checks that serde cannot express. Pure: no I/O, returns
//! every problem as `(path, message)`.

use crate::suggest::closest;
use crate::{Config, Duration, RouteConfig, SplitConfig, TasksConfig, TimeoutOverrides, EMBEDDED_SIM_URL};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use switchyard_types::{Capability, ProviderKind};

/// Where the items of the three lists came from. When an item fails to
/// deserialise, the loader leaves it out: paths must still use its
/// original position, and references to its name are not errors (the item
/// already has one).
#[derive(Debug, Default)]
pub(crate) struct Origins {
    pub providers: ListOrigin,
    pub deployments: ListOrigin,
    pub routes: ListOrigin,
}

#[derive(Debug, Default)]
pub(crate) struct ListOrigin {
    /// Original position of each kept item; empty means nothing was left
    /// out.
    pub index: Vec<usize>,
    /// Names of the items left out.
    pub broken_names: HashSet<String>,
    /// The whole section was not a list: every reference into it is moot.
    pub section_broken: bool,
}

impl ListOrigin {
    fn at(&self, i: usize) -> usize {
        self.index.get(i).copied().unwrap_or(i)
    }

    fn excuses(&self, name: &str) -> bool {
        self.section_broken || self.broken_names.contains(name)
    }
}

impl Config {
    /// All problems with this document; empty means valid.
    pub fn validate(&self) -> Vec<(String, String)> {
        self.validate_with(&Origins::default())
    }

    pub(crate) fn validate_with(&self, origins: &Origins) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let mut err = |path: String, message: String| errors.push((path, message));

        if self.server.listen.parse::<SocketAddr>().is_err() {
            err(
                "server.listen".into(),
                format!(
                    "expected a socket address like \"127.0.0.1:8080\" or \"0.0.0.0:8080\", found {:?}",
                    self.server.listen
                ),
            );
        }
        if self.server.max_body_bytes == 0 {
            err("server.max_body_bytes".into(), "expected a positive number of bytes".into());
        }
        positive("server.heartbeat", self.server.heartbeat, &mut err);
        check_storage_url(&self.storage.url, &mut err);
        if self.usage.queue_capacity == 0 {
            err("usage.queue_capacity".into(), "expected a positive number".into());
        }
        if self.usage.batch_size == 0 {
            err("usage.batch_size".into(), "expected a positive number".into());
        }
        positive("usage.flush_interval", self.usage.flush_interval, &mut err);
        positive("admin.refresh_interval", self.admin.refresh_interval, &mut err);
        positive("nodes.timeout", self.nodes.timeout, &mut err);
        crate::alerts::check(&self.alerts, &mut err);
        crate::resilience::check(&self.resilience, &self.faults, &mut err);
        if let Some(redis) = &self.redis {
            if !redis.url.starts_with("redis://") {
                err(
                    "redis.url".into(),
                    format!("expected a URL like \"redis://127.0.0.1:6379\", found {:?}", redis.url),
                );
            }
            positive("redis.timeout", redis.timeout, &mut err);
            positive("redis.lease", redis.lease, &mut err);
            if redis.key_prefix.is_empty() || redis.key_prefix.contains(char::is_whitespace) {
                err("redis.key_prefix".into(), "expected a non-empty prefix without spaces".into());
            }
        }
        if self.reload.watch {
            positive("reload.poll_interval", self.reload.poll_interval, &mut err);
        }
        for (field, d) in [
            ("connect", self.timeouts.connect),
            ("first_token", self.timeouts.first_token),
            ("idle", self.timeouts.idle),
            ("total", self.timeouts.total),
        ] {
            positive(&format!("timeouts.{field}"), d, &mut err);
        }
        if let Some(sim) = &self.simulator {
            if let Some(listen) = &sim.listen {
                if listen.parse::<SocketAddr>().is_err() {
                    err(
                        "simulator.listen".into(),
                        format!("expected a socket address like \"127.0.0.1:0\", found {listen:?}"),
                    );
                }
            }
            if !(sim.default.is_null() || sim.default.is_object()) {
                err("simulator.default".into(), "expected a mapping of simulator knobs, e.g. { ttft_ms: 30 }".into());
            }
            for (model, knobs) in &sim.models {
                if !(knobs.is_null() || knobs.is_object()) {
                    err(
                        format!("simulator.models.{model}"),
                        "expected a mapping of simulator knobs, e.g. { error_rate: 0.1 }".into(),
                    );
                }
            }
        }

        let providers =
            unique_names(self.providers.iter().map(|p| p.name.as_str()), "providers", &origins.providers, &mut err);
        for (i, p) in self.providers.iter().enumerate() {
            let at = format!("providers[{}]", origins.providers.at(i));
            check_base_url(&at, &p.base_url, self.simulator.is_some(), &mut err);
            for (name, value) in &p.headers {
                if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                    err(
                        format!("{at}.headers"),
                        format!("{name:?} is not a valid header name: expected letters, digits, - and _"),
                    );
                }
                // The value may be a secret: say what is wrong, not what it is.
                if value.chars().any(char::is_control) {
                    err(
                        format!("{at}.headers.{name}"),
                        "expected a header value without control characters (line breaks, tabs)".into(),
                    );
                }
            }
            check_overrides(&at, &p.timeouts, &mut err);
            if let Some(v) = &p.api_version {
                if !matches!(p.kind, ProviderKind::AzureOpenai | ProviderKind::Anthropic) {
                    err(
                        format!("{at}.api_version"),
                        format!(
                            "only azure_openai and anthropic providers take an api_version, not {}",
                            p.kind.as_str()
                        ),
                    );
                } else if v.trim().is_empty() || !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
                {
                    err(format!("{at}.api_version"), format!("expected a version such as 2024-10-21, found {v:?}"));
                }
            }
        }

        for (i, p) in self.providers.iter().enumerate() {
            let at = format!("providers[{}]", origins.providers.at(i));
            for (j, d) in p.volume_discounts.iter().enumerate() {
                if let Err(why) = d.tier() {
                    err(format!("{at}.volume_discounts[{j}].percent"), why);
                }
                if j > 0 && d.from_tokens <= p.volume_discounts[j - 1].from_tokens {
                    err(
                        format!("{at}.volume_discounts[{j}].from_tokens"),
                        "tiers go in ascending from_tokens, each above the one before".into(),
                    );
                }
            }
        }

        let deployments = unique_names(
            self.deployments.iter().map(|d| d.name.as_str()),
            "deployments",
            &origins.deployments,
            &mut err,
        );
        for (i, d) in self.deployments.iter().enumerate() {
            let at = format!("deployments[{}]", origins.deployments.at(i));
            if !providers.contains_key(d.provider.as_str()) && !origins.providers.excuses(&d.provider) {
                err(
                    format!("{at}.provider"),
                    format!("no provider named {:?} ({})", d.provider, known(&d.provider, &providers)),
                );
            }
            if d.model.trim().is_empty() {
                err(format!("{at}.model"), "expected the model name sent upstream".into());
            }
            if let Some(price) = &d.price {
                if let Err(message) = price.sheet() {
                    // The message starts with the field's name.
                    let (field, why) = message.split_once(": ").unwrap_or(("", &message));
                    err(format!("{at}.price.{field}"), why.to_string());
                }
            }
            let provider_kind = self.providers.iter().find(|p| p.name == d.provider).map(|p| p.kind);
            if provider_kind == Some(ProviderKind::Anthropic) && d.capabilities.contains(&Capability::Embeddings) {
                err(format!("{at}.capabilities"), "anthropic has no embeddings API: remove embeddings".into());
            }
            if d.capabilities.is_empty() {
                err(
                    format!("{at}.capabilities"),
                    "expected at least one of chat, tools, vision, json, embeddings".into(),
                );
            }
            if d.context_window == Some(0) {
                err(format!("{at}.context_window"), "expected a positive number of tokens".into());
            }
            if let Some(q) = d.quality.filter(|q| !(0.0..=1.0).contains(q)) {
                err(format!("{at}.quality"), format!("expected a number from 0 to 1, found {q}"));
            }
            if d.node.as_deref().is_some_and(|n| n.trim().is_empty()) {
                err(format!("{at}.node"), "expected a node name".into());
            }
            if d.weight == 0 {
                err(format!("{at}.weight"), "expected a positive whole number (a share of traffic)".into());
            }
            if d.max_concurrency == Some(0) {
                err(format!("{at}.max_concurrency"), "expected at least 1 (leave it out for no limit)".into());
            }
            for (j, to) in d.degrade_to.iter().enumerate() {
                if *to == d.name {
                    err(format!("{at}.degrade_to[{j}]"), "expected another deployment, not itself".into());
                } else if !deployments.contains_key(to.as_str()) && !origins.deployments.excuses(to) {
                    err(
                        format!("{at}.degrade_to[{j}]"),
                        format!("no deployment named {to:?} ({})", known(to, &deployments)),
                    );
                }
            }
        }

        let _ = unique_names(self.routes.iter().map(|r| r.name.as_str()), "routes", &origins.routes, &mut err);
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("routes[{}]", origins.routes.at(i));
            if let Some(q) = &r.queue {
                crate::resilience::check_queue(&at, q, &mut err);
            }
            match &r.tasks {
                None if r.targets.is_empty() => err(format!("{at}.targets"), "expected at least one deployment".into()),
                None => {}
                Some(tasks) => {
                    if !r.targets.is_empty() || !r.fallbacks.is_empty() || r.split.is_some() {
                        err(
                            format!("{at}.tasks"),
                            "a route with tasks sends each request to another route: remove its targets, fallbacks and split".into(),
                        );
                    }
                    check_tasks(&at, tasks, &self.routes, &mut err);
                }
            }
            // Targets, then fallbacks: each a known deployment, once per route.
            let mut seen = HashSet::new();
            let listed = r.targets.iter().enumerate().map(|(j, t)| ("targets", j, t));
            for (field, j, t) in listed.chain(r.fallbacks.iter().enumerate().map(|(j, f)| ("fallbacks", j, f))) {
                if !deployments.contains_key(t.as_str()) {
                    if !origins.deployments.excuses(t) {
                        err(
                            format!("{at}.{field}[{j}]"),
                            format!("no deployment named {t:?} ({})", known(t, &deployments)),
                        );
                    }
                } else if !seen.insert(t) {
                    err(format!("{at}.{field}[{j}]"), format!("{t:?} is listed twice"));
                }
            }
            if let Some(c) = &r.cascade {
                if c.on.is_empty() && c.require.is_none() {
                    err(format!("{at}.cascade"), "expected `on` (length, empty, refusal) or `require`".into());
                }
                if let Some(Err(e)) = c.require.as_deref().map(regex::Regex::new) {
                    err(format!("{at}.cascade.require"), format!("not a regular expression: {e}"));
                }
            }
            if let Some(split) = &r.split {
                check_split(&at, split, &deployments, origins, &mut err);
            }
            let w = r.score_weights;
            for (field, v) in
                [("security", w.security), ("capability", w.capability), ("latency", w.latency), ("cost", w.cost)]
            {
                if !v.is_finite() || v < 0.0 {
                    err(format!("{at}.score_weights.{field}"), format!("expected a number ≥ 0, found {v}"));
                }
            }
            if w.security + w.capability + w.latency + w.cost <= 0.0 {
                err(format!("{at}.score_weights"), "expected at least one weight above 0".into());
            }
            let kinds: HashSet<bool> = r
                .targets
                .iter()
                .chain(&r.fallbacks)
                .chain(r.split.iter().flat_map(|s| s.arms.iter().flat_map(|a| &a.targets)))
                .filter_map(|t| self.deployments.iter().find(|d| &d.name == t))
                .map(|d| d.capabilities.contains(&Capability::Embeddings))
                .collect();
            if kinds.len() > 1 {
                err(
                    format!("{at}.targets"),
                    "mixes embedding deployments (capabilities: [embeddings]) with chat ones: a route serves one kind"
                        .into(),
                );
            }
        }
        errors
    }
}

/// Task routing: every task a rule or the default names has a route, and
/// that route is a plain one (no chains); keywords are not blank; regexes
/// compile.
fn check_tasks(at: &str, tasks: &TasksConfig, routes: &[RouteConfig], err: &mut impl FnMut(String, String)) {
    for (task, route) in &tasks.routes {
        match routes.iter().find(|r| &r.name == route) {
            None => err(format!("{at}.tasks.routes.{task}"), format!("no route named {route:?}")),
            Some(r) if r.tasks.is_some() => {
                err(format!("{at}.tasks.routes.{task}"), format!("{route:?} routes by task itself: tasks do not chain"))
            }
            Some(_) => {}
        }
    }
    let mapped = |task: &str| tasks.routes.contains_key(task);
    if !mapped(&tasks.default) {
        err(format!("{at}.tasks.default"), format!("{:?} has no route in tasks.routes", tasks.default));
    }
    for (i, rule) in tasks.rules.iter().enumerate() {
        let here = format!("{at}.tasks.rules[{i}]");
        if !mapped(&rule.task) {
            err(format!("{here}.task"), format!("{:?} has no route in tasks.routes", rule.task));
        }
        if rule.when.keywords.iter().any(|k| k.trim().is_empty()) {
            err(format!("{here}.when.keywords"), "expected non-blank keywords".into());
        }
        if let Some(Err(e)) = rule.when.regex.as_deref().map(regex::Regex::new) {
            err(format!("{here}.when.regex"), format!("not a regular expression: {e}"));
        }
    }
}

/// A route's split: named arms (not `stable`, each once) of known
/// deployments, shares that add up to at most 100%, groups and scenarios
/// that name an arm.
fn check_split(
    at: &str,
    split: &SplitConfig,
    deployments: &HashMap<&str, usize>,
    origins: &Origins,
    err: &mut impl FnMut(String, String),
) {
    if split.arms.is_empty() {
        err(format!("{at}.split.arms"), "expected at least one arm besides the route's own targets".into());
    }
    let mut names = HashSet::new();
    let mut total_bp = 0u64;
    for (i, arm) in split.arms.iter().enumerate() {
        let here = format!("{at}.split.arms[{i}]");
        if arm.name.trim().is_empty() || arm.name == "stable" || !names.insert(arm.name.as_str()) {
            err(format!("{here}.name"), format!("expected a unique name other than \"stable\", found {:?}", arm.name));
        }
        if arm.targets.is_empty() {
            err(format!("{here}.targets"), "expected at least one deployment".into());
        }
        for (j, t) in arm.targets.iter().enumerate() {
            if !deployments.contains_key(t.as_str()) && !origins.deployments.excuses(t) {
                err(format!("{here}.targets[{j}]"), format!("no deployment named {t:?} ({})", known(t, deployments)));
            }
        }
        let bp = arm.percent * 100.0;
        if !arm.percent.is_finite() || !(0.0..=100.0).contains(&arm.percent) || (bp - bp.round()).abs() > 1e-6 {
            err(
                format!("{here}.percent"),
                format!("expected 0 to 100 with at most two decimals, found {}", arm.percent),
            );
        } else {
            total_bp += bp.round() as u64;
        }
        if let Some(r) = &arm.rollout {
            for (j, step) in r.steps.iter().enumerate() {
                let bp = step * 100.0;
                if !step.is_finite() || !(0.0..=100.0).contains(step) || (bp - bp.round()).abs() > 1e-6 {
                    err(
                        format!("{here}.rollout.steps[{j}]"),
                        format!("expected 0 to 100 with at most two decimals, found {step}"),
                    );
                }
            }
            if let Some(every) = r.every {
                positive(&format!("{here}.rollout.every"), every, err);
            }
            if let Some(rate) = r.max_error_rate {
                if !(0.0..=1.0).contains(&rate) {
                    err(
                        format!("{here}.rollout.max_error_rate"),
                        format!("expected a share from 0 to 1, found {rate}"),
                    );
                }
            }
        }
    }
    if total_bp > 10_000 {
        err(
            format!("{at}.split.arms"),
            format!("the arms' percents add up to {:.2}, over 100", total_bp as f64 / 100.0),
        );
    }
    let arm_known = |a: &str| a == "stable" || names.contains(a);
    for (group, g) in &split.groups {
        if !arm_known(&g.arm) {
            err(
                format!("{at}.split.groups.{group}.arm"),
                format!(
                    "no arm named {:?} (arms: stable, {})",
                    g.arm,
                    split.arms.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    for (scenario, arm) in &split.scenarios {
        if !arm_known(arm) {
            err(format!("{at}.split.scenarios.{scenario}"), format!("no arm named {arm:?}"));
        }
    }
}

fn positive(path: &str, d: Duration, err: &mut impl FnMut(String, String)) {
    if d.get().is_zero() {
        err(path.to_string(), "expected a positive duration like \"500ms\" or \"5s\"".into());
    }
}

fn check_overrides(at: &str, o: &TimeoutOverrides, err: &mut impl FnMut(String, String)) {
    for (field, d) in [("connect", o.connect), ("first_token", o.first_token), ("idle", o.idle), ("total", o.total)] {
        if let Some(d) = d {
            positive(&format!("{at}.timeouts.{field}"), d, err);
        }
    }
}

fn check_storage_url(url: &str, err: &mut impl FnMut(String, String)) {
    let expected =
        "expected \"sqlite://path/to/file.db\", \"sqlite::memory:\" or \"postgres://user:password@host:5432/database\"";
    if let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) {
        if rest.is_empty() || rest.starts_with('/') {
            err("storage.url".into(), format!("{expected}: the PostgreSQL URL names no host, found {url:?}"));
        }
    } else if !url.starts_with("sqlite:") || url.trim_end() == "sqlite:" || url == "sqlite://" {
        err("storage.url".into(), format!("{expected}, found {url:?}"));
    }
}

fn check_base_url(at: &str, url: &str, has_simulator: bool, err: &mut impl FnMut(String, String)) {
    if url == EMBEDDED_SIM_URL {
        if !has_simulator {
            err(
                format!("{at}.base_url"),
                "\"sim://\" needs a `simulator:` section to start the embedded simulator".into(),
            );
        }
        return;
    }
    if url.starts_with("sim:") {
        err(format!("{at}.base_url"), format!("expected exactly \"sim://\" for the embedded simulator, found {url:?}"));
        return;
    }
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let ok = match host {
        Some(host) => {
            !host.is_empty() && !host.starts_with(':') && !url.contains(|c: char| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !ok {
        err(
            format!("{at}.base_url"),
            format!("expected an http:// or https:// URL with a host, like \"https://api.openai.com/v1\" (or \"sim://\"), found {url:?}"),
        );
    }
}

fn unique_names<'a>(
    names: impl Iterator<Item = &'a str>,
    section: &str,
    origin: &ListOrigin,
    err: &mut impl FnMut(String, String),
) -> HashMap<&'a str, usize> {
    let mut seen = HashMap::new();
    for (i, name) in names.enumerate() {
        let at = format!("{section}[{}].name", origin.at(i));
        if name.trim().is_empty() {
            err(at, "expected a non-empty name".into());
            continue;
        }
        if name.contains(|c: char| c.is_whitespace() || c.is_control()) {
            err(at.clone(), format!("expected a name without spaces, found {name:?}"));
        }
        if let Some(&first) = seen.get(name) {
            err(at, format!("{name:?} is already used by {section}[{}]", origin.at(first)));
        } else {
            seen.insert(name, i);
        }
    }
    seen
}

/// A hint for a name that is not there: the likely typo, else the names
/// that exist (the first few).
fn known(missing: &str, names: &HashMap<&str, usize>) -> String {
    const MOST_LISTED: usize = 8;
    let mut v: Vec<&str> = names.keys().copied().collect();
    v.sort_unstable();
    if let Some(likely) = closest(missing, &v) {
        return format!("did you mean {likely:?}?");
    }
    match v.len() {
        0 => "none are defined".into(),
        n if n > MOST_LISTED => format!("known: {}, … ({n} in all)", v[..MOST_LISTED].join(", ")),
        _ => format!("known: {}", v.join(", ")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{load_str, Config, ConfigError, ProviderConfig, SimulatorConfig};
    use std::collections::HashMap;
    use switchyard_types::{ProviderKind, Tier};

    fn problems(text: &str) -> Vec<ConfigError> {
        load_str(text, "t.yaml", &HashMap::new()).err().map(|e| e.0).unwrap_or_default()
    }

    fn messages_at(text: &str, path: &str) -> Vec<String> {
        problems(text).into_iter().filter(|e| e.path == path).map(|e| e.message).collect()
    }

    fn provider(name: &str, base_url: &str) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            kind: ProviderKind::OpenaiCompatible,
            base_url: base_url.into(),
            api_key: None,
            tier: Tier::L1,
            region: None,
            timeouts: Default::default(),
            headers: Default::default(),
            api_version: None,
            http2: false,
            volume_discounts: Vec::new(),
        }
    }

    #[test]
    fn validate_works_on_a_config_built_in_code() {
        let mut c = Config::default();
        assert!(c.validate().is_empty());
        c.providers = vec![provider("a", "sim://"), provider("a", "http://h:1/v1")];
        let v = c.validate();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0], ("providers[1].name".to_string(), "\"a\" is already used by providers[0]".to_string()));
        assert_eq!(v[1].0, "providers[0].base_url");
        c.simulator = Some(SimulatorConfig::default());
        c.providers.pop();
        assert!(c.validate().is_empty());
    }

    #[test]
    fn base_urls_need_a_scheme_and_a_host() {
        for good in ["http://h", "https://api.openai.com/v1", "http://10.0.0.5:8000/v1", "http://[::1]:8000/v1"] {
            let text = format!("providers:\n  - {{ name: p, kind: openai_compatible, base_url: \"{good}\" }}\n");
            assert!(problems(&text).is_empty(), "{good}: {:?}", problems(&text));
        }
        for bad in ["api.openai.com/v1", "https://", "http://:8000/v1", "ftp://h", "http://h /v1", "sim://x", ""] {
            let text = format!("providers:\n  - {{ name: p, kind: openai_compatible, base_url: \"{bad}\" }}\n");
            assert_eq!(messages_at(&text, "providers[0].base_url").len(), 1, "{bad:?} should be rejected");
        }
    }

    #[test]
    fn storage_is_sqlite_or_postgres() {
        assert!(problems("storage: { url: \"sqlite::memory:\" }").is_empty());
        assert!(problems("storage: { url: \"sqlite:///var/lib/s.db\" }").is_empty());
        assert!(problems("storage: { url: \"postgres://db/s\" }").is_empty());
        assert!(problems("storage: { url: \"postgresql://u:p@db:5432/s\" }").is_empty());
        let m = messages_at("storage: { url: \"postgres:///s\" }", "storage.url");
        assert!(m[0].contains("names no host"), "{m:?}");
        assert_eq!(messages_at("storage: { url: \"data.db\" }", "storage.url").len(), 1);
        assert_eq!(messages_at("storage: { url: \"sqlite://\" }", "storage.url").len(), 1);
    }

    #[test]
    fn durations_that_must_be_positive() {
        let text = "timeouts: { connect: 0s }\nusage: { flush_interval: 0 }\nreload: { poll_interval: 0ms }\nserver: { heartbeat: 0s }\nproviders:\n  - { name: p, kind: openai_compatible, base_url: \"http://h\", timeouts: { idle: 0s } }\n";
        let paths: Vec<String> = problems(text).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "timeouts.connect",
                "usage.flush_interval",
                "reload.poll_interval",
                "server.heartbeat",
                "providers[0].timeouts.idle"
            ]
        );
        // Polling is off: its interval does not matter.
        assert!(problems("reload: { watch: false, poll_interval: 0s }").is_empty());
    }

    #[test]
    fn header_names_and_values_are_checked_without_echoing_values() {
        let text = "providers:\n  - name: p\n    kind: openai_compatible\n    base_url: \"http://h\"\n    headers: { \"bad header\": x, X-Key: \"sk-secret\\nInjected: 1\" }\n";
        let errs = problems(text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"providers[0].headers") && paths.contains(&"providers[0].headers.X-Key"), "{errs:?}");
        assert!(errs.iter().all(|e| !e.message.contains("secret")), "{errs:?}");
    }

    #[test]
    fn routes_check_their_targets() {
        let base = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\ndeployments:\n  - { name: chat, provider: s, model: m }\n  - { name: emb, provider: s, model: e, capabilities: [embeddings] }\n";
        assert!(problems(base).is_empty());
        let errs = problems(&format!(
            "{base}routes:\n  - {{ name: r, targets: [chat, emb, chat] }}\n  - {{ name: e, targets: [] }}\n"
        ));
        let shown: Vec<(String, String)> = errs.into_iter().map(|e| (e.path, e.message)).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert_eq!(shown[0], ("routes[0].targets[2]".into(), "\"chat\" is listed twice".into()));
        assert!(shown[1].1.starts_with("mixes embedding deployments"), "{shown:?}");
        assert_eq!(shown[2], ("routes[1].targets".into(), "expected at least one deployment".into()));
    }

    #[test]
    fn routing_fields_are_checked() {
        let text = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\ndeployments:\n  - { name: a, provider: s, model: m, quality: 1.5, weight: 0, context_window: 0 }\n  - { name: b, provider: s, model: m }\nroutes:\n  - { name: r, strategy: score, targets: [a], fallbacks: [b, a, zzz], score_weights: { security: -1, capability: 0, latency: 0, cost: 0 } }\n";
        let shown: Vec<(String, String)> = problems(text).into_iter().map(|e| (e.path, e.message)).collect();
        let paths: Vec<&str> = shown.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "deployments[0].context_window",
                "deployments[0].quality",
                "deployments[0].weight",
                "routes[0].fallbacks[1]",
                "routes[0].fallbacks[2]",
                "routes[0].score_weights.security",
                "routes[0].score_weights"
            ],
            "{shown:?}"
        );
        assert_eq!(shown[3].1, "\"a\" is listed twice");
        assert!(shown[4].1.starts_with("no deployment named \"zzz\""), "{shown:?}");
        let bad_strategy =
            messages_at("routes:\n  - { name: r, strategy: fastest, targets: [] }\n", "routes[0].strategy");
        assert!(bad_strategy[0].contains("unknown variant `fastest`"), "{bad_strategy:?}");
    }

    #[test]
    fn task_routes_are_checked() {
        let text = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\ndeployments:\n  - { name: a, provider: s, model: m }\nroutes:\n  - { name: plain, targets: [a] }\n  - name: auto\n    targets: [a]\n    tasks:\n      rules: [{ task: code, when: { regex: \"(unclosed\", keywords: [\" \"] } }, { task: nope }]\n      routes: { code: plain, loop: auto, gone: missing }\n      default: chat\n";
        let shown: Vec<(String, String)> = problems(text).into_iter().map(|e| (e.path, e.message)).collect();
        let paths: Vec<&str> = shown.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routes[1].tasks",
                "routes[1].tasks.routes.gone",
                "routes[1].tasks.routes.loop",
                "routes[1].tasks.default",
                "routes[1].tasks.rules[0].when.keywords",
                "routes[1].tasks.rules[0].when.regex",
                "routes[1].tasks.rules[1].task",
            ],
            "{shown:?}"
        );
        assert!(shown[2].1.contains("tasks do not chain"), "{shown:?}");
        // A task route needs no targets of its own.
        let ok = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\ndeployments:\n  - { name: a, provider: s, model: m }\nroutes:\n  - { name: plain, targets: [a] }\n  - { name: auto, tasks: { routes: { chat: plain }, default: chat } }\n";
        assert!(problems(ok).is_empty(), "{:?}", problems(ok));
    }

    #[test]
    fn cascades_are_checked() {
        let base = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\ndeployments:\n  - { name: a, provider: s, model: m }\nroutes:\n";
        let empty =
            messages_at(&format!("{base}  - {{ name: r, targets: [a], cascade: {{}} }}\n"), "routes[0].cascade");
        assert!(empty[0].starts_with("expected `on`"), "{empty:?}");
        let bad = messages_at(
            &format!("{base}  - {{ name: r, targets: [a], cascade: {{ require: \"(\" }} }}\n"),
            "routes[0].cascade.require",
        );
        assert!(bad[0].starts_with("not a regular expression"), "{bad:?}");
        let unknown = messages_at(
            &format!("{base}  - {{ name: r, targets: [a], cascade: {{ on: [slow] }} }}\n"),
            "routes[0].cascade.on[0]",
        );
        assert!(unknown[0].contains("unknown variant `slow`"), "{unknown:?}");
    }

    #[test]
    fn splits_are_checked() {
        let text = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\ndeployments:\n  - { name: a, provider: s, model: m }\n  - { name: e, provider: s, model: e, capabilities: [embeddings] }\nroutes:\n  - name: r\n    targets: [a]\n    split:\n      arms: [{ name: stable, targets: [a], percent: 60 }, { name: c, targets: [zzz, e], percent: 50.555 }, { name: d, targets: [], percent: 45 }]\n      groups: { g: { arm: nope, subjects: [x] } }\n      scenarios: { s: gone }\n";
        let shown: Vec<(String, String)> = problems(text).into_iter().map(|e| (e.path, e.message)).collect();
        let paths: Vec<&str> = shown.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routes[0].split.arms[0].name",
                "routes[0].split.arms[1].targets[0]",
                "routes[0].split.arms[1].percent",
                "routes[0].split.arms[2].targets",
                "routes[0].split.arms",
                "routes[0].split.groups.g.arm",
                "routes[0].split.scenarios.s",
                "routes[0].targets",
            ],
            "{shown:?}"
        );
        assert_eq!(shown[4].1, "the arms' percents add up to 105.00, over 100");
        assert!(shown[7].1.starts_with("mixes embedding deployments"), "{shown:?}");
    }

    #[test]
    fn deployments_check_model_price_and_capabilities() {
        let text = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\ndeployments:\n  - { name: d, provider: s, model: \"\", price: { input_per_mtok: -1 }, capabilities: [] }\n";
        let paths: Vec<String> = problems(text).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            ["deployments[0].model", "deployments[0].price.input_per_mtok", "deployments[0].capabilities"]
        );
    }

    #[test]
    fn volume_discounts_are_percentages_in_ascending_tiers() {
        let text = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\", volume_discounts: [{ from_tokens: 100, percent: 5 }, { from_tokens: 100, percent: 12.5 }, { from_tokens: 200, percent: 0.001 }, { from_tokens: 300, percent: 101 }] }\n";
        let paths: Vec<String> = problems(text).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "providers[0].volume_discounts[1].from_tokens",
                "providers[0].volume_discounts[2].percent",
                "providers[0].volume_discounts[3].percent"
            ]
        );
        let ok = "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\", volume_discounts: [{ from_tokens: 0, percent: 12.5 }, { from_tokens: 10, percent: 100 }] }\n";
        assert!(problems(ok).iter().all(|e| !e.path.contains("volume")), "{:?}", problems(ok));
    }

    #[test]
    fn simulator_settings_are_shaped_right() {
        let errs = problems("simulator: { listen: \"nowhere\", default: 5, models: { m: [1] } }");
        let paths: Vec<String> = errs.into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["simulator.listen", "simulator.default", "simulator.models.m"]);
        assert!(problems("simulator: { default: { ttft_ms: 5 }, models: { m: { hang: true } } }").is_empty());
    }

    #[test]
    fn names_must_be_present_and_without_spaces() {
        let errs = problems("routes:\n  - { name: \"\", targets: [] }\n  - { name: \"my route\", targets: [] }\n");
        let shown: Vec<(String, String)> = errs.into_iter().map(|e| (e.path, e.message)).collect();
        assert!(shown.contains(&("routes[0].name".into(), "expected a non-empty name".into())), "{shown:?}");
        assert!(shown.iter().any(|(p, m)| p == "routes[1].name" && m.contains("without spaces")), "{shown:?}");
    }

    #[test]
    fn long_lists_of_known_names_are_cut_short() {
        let mut text = String::from(
            "simulator: {}\nproviders:\n  - { name: s, kind: openai_compatible, base_url: \"sim://\" }\ndeployments:\n",
        );
        for i in 0..12 {
            text.push_str(&format!("  - {{ name: deployment-{i:02}, provider: s, model: m }}\n"));
        }
        text.push_str("routes:\n  - { name: r, targets: [zzz] }\n");
        let m = messages_at(&text, "routes[0].targets[0]");
        assert!(m[0].ends_with("deployment-07, … (12 in all))"), "{m:?}");
    }
}
