//! The `alerts:` section: budget thresholds and the webhooks their alerts
//! are sent to (docs/cost.md#alerts). A file of its own so `schema.rs` and
//! `validate.rs` stay small; the rules are the same (unknown fields are
//! errors, checks are pure and report every problem with its path).

use crate::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most retries a delivery may be given: with the backoff capped at a
/// minute, ten retries already span several minutes.
pub const MAX_ALERT_RETRIES: u32 = 10;
/// The highest threshold, in percent of a budget's cap.
pub const MAX_THRESHOLD: u32 = 1000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Percent of a budget's cap at which an alert fires (once per budget,
    /// period and dimension), ascending; empty: no alerts.
    pub thresholds: Vec<u32>,
    /// Where alerts are sent; none: alerts are still recorded and listed.
    pub webhooks: Vec<WebhookConfig>,
    /// Retries after a failed delivery attempt (`retries + 1` attempts).
    pub retries: u32,
    /// Deadline of one delivery attempt (connect, send, answer).
    pub timeout: Duration,
    /// Wait before the first retry; it doubles per retry, up to a minute,
    /// with jitter.
    pub backoff: Duration,
    /// Budget movements waiting for the alert worker; when full, new ones
    /// are dropped and counted. Read at start.
    pub queue_capacity: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            thresholds: vec![50, 80, 95, 100],
            webhooks: Vec::new(),
            retries: 4,
            timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
            queue_capacity: 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://`. Chat incoming-webhook URLs are credentials:
    /// take them from the environment.
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Signs each body: `x-switchyard-signature: sha256=<hex HMAC-SHA256>`.
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
    /// Extra headers sent with every delivery (e.g. `authorization`).
    #[serde(default, skip_serializing)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The alert as a JSON object (`event: budget.threshold`).
    #[default]
    Json,
    /// `{"text": "…"}`: what Slack (and Mattermost, Rocket.Chat, Teams'
    /// Slack-compatible hooks) accept.
    Slack,
}

/// Every problem of the section, as `(path, message)`.
pub(crate) fn check(a: &AlertsConfig, err: &mut impl FnMut(String, String)) {
    for (i, t) in a.thresholds.iter().enumerate() {
        if !(1..=MAX_THRESHOLD).contains(t) {
            err(
                format!("alerts.thresholds[{i}]"),
                format!("expected a percent of the budget from 1 to {MAX_THRESHOLD}, found {t}"),
            );
        } else if i > 0 && a.thresholds[i - 1] >= *t {
            err(
                format!("alerts.thresholds[{i}]"),
                format!(
                    "expected thresholds in ascending order without repeats, found {t} after {}",
                    a.thresholds[i - 1]
                ),
            );
        }
    }
    if a.retries > MAX_ALERT_RETRIES {
        err("alerts.retries".into(), format!("expected at most {MAX_ALERT_RETRIES} retries, found {}", a.retries));
    }
    for (field, d) in [("timeout", a.timeout), ("backoff", a.backoff)] {
        if d.get().is_zero() {
            err(format!("alerts.{field}"), "expected a positive duration like \"500ms\" or \"5s\"".into());
        }
    }
    if a.queue_capacity == 0 {
        err("alerts.queue_capacity".into(), "expected a positive number".into());
    }
    for (i, w) in a.webhooks.iter().enumerate() {
        let at = format!("alerts.webhooks[{i}]");
        if !is_http_url(&w.url) {
            // The URL may be a credential (chat webhooks): not echoed.
            err(format!("{at}.url"), "expected an http:// or https:// URL with a host, without spaces".into());
        }
        if w.secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
            err(format!("{at}.secret"), "expected a non-empty secret (or no `secret`)".into());
        }
        for (name, value) in &w.headers {
            if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                err(
                    format!("{at}.headers"),
                    format!("{name:?} is not a valid header name: expected letters, digits, - and _"),
                );
            }
            if value.chars().any(char::is_control) {
                err(
                    format!("{at}.headers.{name}"),
                    "expected a header value without control characters (line breaks, tabs)".into(),
                );
            }
        }
    }
}

fn is_http_url(url: &str) -> bool {
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(host) => {
            !host.is_empty()
                && !host.starts_with(':')
                && !host.contains('@')
                && !url.contains(|c: char| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{load_str, AlertsConfig, WebhookFormat};
    use std::collections::HashMap;

    fn problems(text: &str) -> Vec<(String, String)> {
        match load_str(text, "t.yaml", &HashMap::new()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = load_str("", "t.yaml", &HashMap::new()).unwrap();
        assert_eq!(c.alerts, AlertsConfig::default());
        assert_eq!(c.alerts.thresholds, [50, 80, 95, 100]);
        assert!(c.alerts.webhooks.is_empty());
        let c = load_str(
            "alerts:\n  thresholds: [80]\n  webhooks:\n    - { url: \"https://hooks.example/x\", format: slack, secret: s }\n",
            "t.yaml",
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(c.alerts.thresholds, [80]);
        assert_eq!(c.alerts.webhooks[0].format, WebhookFormat::Slack);
        assert_eq!(c.alerts.webhooks[0].secret.as_deref(), Some("s"));
        assert_eq!(c.alerts.retries, 4, "the rest keep their defaults");
    }

    #[test]
    fn every_problem_is_named_by_its_path() {
        let text = r#"
alerts:
  thresholds: [50, 0, 80, 80, 1001]
  retries: 11
  timeout: 0s
  queue_capacity: 0
  webhooks:
    - { url: "ftp://hooks.example/x" }
    - { url: "https://hooks.example/x", secret: "", headers: { "bad name": v, ok: "a\nb" } }
    - { url: "https://", format: xml }
"#;
        let found = problems(text);
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        for want in [
            "alerts.thresholds[1]",
            "alerts.thresholds[3]",
            "alerts.thresholds[4]",
            "alerts.retries",
            "alerts.timeout",
            "alerts.queue_capacity",
            "alerts.webhooks[0].url",
            "alerts.webhooks[1].secret",
            "alerts.webhooks[1].headers",
            "alerts.webhooks[1].headers.ok",
            "alerts.webhooks[2].format",
        ] {
            assert!(paths.contains(&want), "{want} missing from {found:?}");
        }
        assert!(!paths.contains(&"alerts.thresholds[2]"), "80 after 0 is ascending: {found:?}");
        let unknown = problems("alerts: { threshold: [50] }");
        assert_eq!(unknown[0].0, "alerts.threshold", "{unknown:?}");
        // A URL is never echoed: it may carry a token.
        let url = problems("alerts: { webhooks: [{ url: \"hooks.example/T0KEN\" }] }");
        assert!(!url[0].1.contains("T0KEN"), "{url:?}");
    }
}
