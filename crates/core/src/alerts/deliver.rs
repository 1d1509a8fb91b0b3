//! Sending a budget alert or an operational event to every webhook, with
//! retries: one loop for both ([`Courier::send`]).
//!
//! | answer | what happens |
//! | --- | --- |
//! | 2xx | delivered |
//! | 408, 429, 5xx, no answer within `timeout`, connection refused or cut | retried after a backoff, up to `retries` times |
//! | any other status (4xx, a redirect) | failed at once: the receiver refused it, sending it again changes nothing |
//!
//! The backoff doubles from `backoff` per retry, up to [`MAX_BACKOFF`], with
//! "equal jitter" (half fixed, half random) so receivers recovering from an
//! outage are not hit by every gateway at once. After each attempt a budget
//! alert's row says how far it got, so the list shows it and a crash leaves
//! it `pending`, to be sent again; an event has no row (best effort).

use super::event::Event;
use super::record::{AlertRecord, AlertStatus, Delivery};
use crate::budget::period::Zone;
use crate::store::Store;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use switchyard_config::{AlertsConfig, WebhookFormat};
use switchyard_providers::http::{post_bytes, Client};
use switchyard_telemetry::Metrics;
use tokio::sync::Mutex;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How much of a receiver's error answer is kept in `last_error`.
const ERROR_SNIPPET: usize = 200;
/// How much of a receiver's answer is read at all.
const MAX_ANSWER: usize = 16 * 1024;

pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-switchyard-signature");
pub const ALERT_ID_HEADER: HeaderName = HeaderName::from_static("x-switchyard-alert-id");

/// One configured webhook, ready to send to.
pub struct Webhook {
    uri: http::Uri,
    format: WebhookFormat,
    secret: Option<Vec<u8>>,
    headers: HeaderMap,
    /// `scheme://host[:port]`: how logs and `last_error` name it (the path
    /// of a chat webhook is a credential).
    pub origin: String,
}

impl Webhook {
    /// `None` (logged) for a URL or header the config check would have
    /// refused.
    fn build(w: &switchyard_config::WebhookConfig, index: usize) -> Option<Webhook> {
        let Ok(uri) = w.url.parse::<http::Uri>() else {
            tracing::warn!(webhook = index, "alerts.webhooks[{index}].url is not a valid URL; it is skipped");
            return None;
        };
        let origin = format!("{}://{}", uri.scheme_str().unwrap_or("http"), uri.authority().map_or("", |a| a.host()));
        let origin = match uri.port_u16() {
            Some(port) => format!("{origin}:{port}"),
            None => origin,
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in &w.headers {
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                (Ok(n), Ok(mut v)) => {
                    v.set_sensitive(true);
                    headers.insert(n, v);
                }
                _ => tracing::warn!(webhook = %origin, header = %name, "invalid webhook header; it is not sent"),
            }
        }
        let secret = w.secret.as_ref().map(|s| s.as_bytes().to_vec());
        Some(Webhook { uri, format: w.format, secret, headers, origin })
    }
}

/// How deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts per webhook, the first included (≥ 1).
    pub attempts: u32,
    pub timeout: Duration,
    /// The wait before the first retry.
    pub backoff: Duration,
}

impl Retry {
    /// The wait after failed attempt `n` (1-based): `backoff · 2ⁿ⁻¹`, capped
    /// at [`MAX_BACKOFF`], of which the second half is scaled by `jitter`
    /// (0..1).
    pub fn wait(&self, n: u32, jitter: f64) -> Duration {
        crate::resilience::backoff::backoff(self.backoff, MAX_BACKOFF, n, jitter)
    }

    /// The longest one webhook's delivery can take: every attempt timing
    /// out, every wait at its longest.
    pub fn longest(&self) -> Duration {
        let waits: Duration = (1..self.attempts).map(|n| self.wait(n, 1.0)).sum();
        self.timeout.saturating_mul(self.attempts) + waits
    }
}

/// The alert settings in force (swapped whole on reload).
pub struct Settings {
    pub thresholds: Vec<u32>,
    pub webhooks: Vec<Webhook>,
    pub retry: Retry,
}

impl Settings {
    pub fn from_config(c: &AlertsConfig) -> Settings {
        Settings {
            thresholds: c.thresholds.clone(),
            webhooks: c.webhooks.iter().enumerate().filter_map(|(i, w)| Webhook::build(w, i)).collect(),
            retry: Retry {
                attempts: c.retries.saturating_add(1),
                timeout: c.timeout.get().max(Duration::from_millis(1)),
                backoff: c.backoff.get(),
            },
        }
    }
}

/// What one attempt's answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Worth another attempt, with why.
    Retry(String),
    /// Another attempt would be refused too.
    GiveUp(String),
}

/// Classifies a receiver's answer (see the module table).
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Delivered;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(ERROR_SNIPPET)]);
    let text = text.trim();
    let why = if text.is_empty() { format!("status {status}") } else { format!("status {status}: {text}") };
    if status == 408 || status == 429 || status >= 500 {
        Outcome::Retry(why)
    } else {
        Outcome::GiveUp(why)
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let mut out = String::from("sha256=");
    for b in mac.finalize().into_bytes() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// What delivery needs besides the alert.
pub struct Courier {
    pub client: Client,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub zone: Zone,
}

/// The alert's progress across its webhooks, written after each attempt.
struct Progress {
    delivery: Delivery,
    failed: bool,
}

/// One thing to send — a budget alert or an event — with both its bodies,
/// made once for every webhook.
struct Parcel<'a> {
    /// How logs name it ("budget alert").
    what: &'a str,
    /// The alert id (`x-switchyard-alert-id`).
    id: &'a str,
    json: Bytes,
    slack: Bytes,
}

impl Parcel<'_> {
    fn body(&self, format: WebhookFormat) -> Bytes {
        match format {
            WebhookFormat::Json => self.json.clone(),
            WebhookFormat::Slack => self.slack.clone(),
        }
    }
}

/// One attempt at one webhook, as the caller's hook sees it.
struct Attempt {
    /// What went wrong, the webhook's origin first; `None`: delivered.
    error: Option<String>,
    /// Another attempt follows (after a backoff).
    retrying: bool,
}

/// How one webhook's delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Delivered,
    /// Refused, or out of attempts.
    Failed,
}

impl Sent {
    /// The `result` label.
    fn as_str(self) -> &'static str {
        match self {
            Sent::Delivered => "delivered",
            Sent::Failed => "failed",
        }
    }
}

impl Courier {
    /// Sends `alert` to every webhook of `settings` at once, each with its
    /// own retries, and leaves its final status on its row.
    pub async fn deliver(&self, settings: &Settings, alert: AlertRecord) {
        let progress = Mutex::new(Progress {
            delivery: Delivery { status: AlertStatus::Pending, ..alert.delivery.clone() },
            failed: false,
        });
        let parcel = Parcel {
            what: "budget alert",
            id: &alert.id,
            json: Bytes::from(super::payload::json_body(&alert, &self.zone).to_string()),
            slack: Bytes::from(super::payload::slack_body(&alert, &self.zone).to_string()),
        };
        let sends = settings.webhooks.iter().map(|w| async {
            let after = |a| self.progressed(&alert.id, &progress, a);
            let sent = self.send(w, settings.retry, &parcel, after).await;
            self.metrics.alerts.inc(&[sent.as_str()]);
        });
        futures_util::future::join_all(sends).await;
        let mut p = progress.lock().await;
        p.delivery.status = match (settings.webhooks.is_empty(), p.failed) {
            // The webhooks were removed by a reload meanwhile.
            (true, _) => AlertStatus::Recorded,
            (false, true) => AlertStatus::Failed,
            (false, false) => AlertStatus::Delivered,
        };
        p.delivery.updated_at = crate::now_unix_ms();
        self.mark(&alert.id, &p.delivery).await;
    }

    /// Sends event `e`, as alert `id`, to every webhook of `settings` at
    /// once, each with its own retries. Nothing is stored: what a stop cuts
    /// short is not sent again.
    pub async fn deliver_event(&self, settings: &Settings, id: &str, e: &Event) {
        let what = format!("{} event", e.event);
        let parcel = Parcel {
            what: &what,
            id,
            json: Bytes::from(super::event::json_body(e, id, &self.zone).to_string()),
            slack: Bytes::from(super::event::slack_body(e).to_string()),
        };
        let sends = settings.webhooks.iter().map(|w| async {
            let sent = self.send(w, settings.retry, &parcel, |_| async {}).await;
            self.metrics.alert_events.inc(&[e.event, sent.as_str()]);
        });
        futures_util::future::join_all(sends).await;
    }

    /// A budget alert's row after an attempt: attempts counted, the last
    /// error kept, and written at once when a retry follows (how far it
    /// got, and a fresh `updated_at` so no sweep takes it over meanwhile).
    async fn progressed(&self, id: &str, progress: &Mutex<Progress>, a: Attempt) {
        let mut p = progress.lock().await;
        p.delivery.attempts = p.delivery.attempts.saturating_add(1);
        p.delivery.updated_at = crate::now_unix_ms();
        p.failed |= a.error.is_some() && !a.retrying;
        if a.error.is_some() {
            p.delivery.last_error = a.error;
        }
        if a.retrying {
            self.mark(id, &p.delivery).await;
        }
    }

    /// Sends `parcel` to `w` until it is taken, refused or out of
    /// attempts (see the module table); `after` runs after every attempt,
    /// before the wait for the next.
    async fn send<F, Fut>(&self, w: &Webhook, retry: Retry, parcel: &Parcel<'_>, mut after: F) -> Sent
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (what, id) = (parcel.what, parcel.id);
        let body = parcel.body(w.format);
        let mut headers = w.headers.clone();
        if let Ok(id) = HeaderValue::from_str(id) {
            headers.insert(ALERT_ID_HEADER, id);
        }
        if let Some(secret) = &w.secret {
            if let Ok(v) = HeaderValue::from_str(&signature(secret, &body)) {
                headers.insert(SIGNATURE_HEADER, v);
            }
        }
        for n in 1..=retry.attempts {
            let sent = post_bytes(&self.client, w.uri.clone(), headers.clone(), body.clone(), MAX_ANSWER);
            let outcome = match tokio::time::timeout(retry.timeout, sent).await {
                Ok(Ok((status, answer))) => classify(status, &answer),
                Ok(Err(e)) => Outcome::Retry(format!("{}: {}", e.kind.as_str(), e.message)),
                Err(_) => Outcome::Retry(format!("no answer within {:?}", retry.timeout)),
            };
            let last = n == retry.attempts;
            let error = match &outcome {
                Outcome::Delivered => None,
                Outcome::Retry(why) | Outcome::GiveUp(why) => Some(format!("{}: {why}", w.origin)),
            };
            after(Attempt { error, retrying: matches!(outcome, Outcome::Retry(_)) && !last }).await;
            match outcome {
                Outcome::Delivered => {
                    tracing::info!(alert = %id, webhook = %w.origin, attempt = n, "{what} delivered");
                    return Sent::Delivered;
                }
                Outcome::GiveUp(why) => {
                    tracing::warn!(alert = %id, webhook = %w.origin, attempt = n, error = %why, "{what} refused by the webhook; not retried");
                    return Sent::Failed;
                }
                Outcome::Retry(why) if last => {
                    tracing::warn!(alert = %id, webhook = %w.origin, attempts = n, error = %why, "{what} not delivered; giving up");
                    return Sent::Failed;
                }
                Outcome::Retry(why) => {
                    let wait = retry.wait(n, fastrand::f64());
                    tracing::debug!(alert = %id, webhook = %w.origin, attempt = n, error = %why, ?wait, "{what} delivery failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Sent::Failed // `attempts` ≥ 1: not reached
    }

    async fn mark(&self, id: &str, delivery: &Delivery) {
        if let Err(e) = self.store.mark_alert(id, delivery).await {
            tracing::warn!(alert = %id, error = %e, "could not record the alert's delivery status");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_once() {
        assert_eq!(classify(200, b""), Outcome::Delivered);
        assert_eq!(classify(204, b"ignored"), Outcome::Delivered);
        assert_eq!(classify(500, b""), Outcome::Retry("status 500".into()));
        assert_eq!(classify(503, b" busy \n"), Outcome::Retry("status 503: busy".into()));
        assert!(matches!(classify(408, b""), Outcome::Retry(_)));
        assert!(matches!(classify(429, b""), Outcome::Retry(_)));
        assert_eq!(classify(404, b"no_service"), Outcome::GiveUp("status 404: no_service".into()));
        assert!(matches!(classify(400, b""), Outcome::GiveUp(_)));
        assert!(matches!(classify(301, b""), Outcome::GiveUp(_)), "redirects are not followed");
        let long = vec![b'x'; 10_000];
        let Outcome::Retry(why) = classify(502, &long) else { unreachable!() };
        assert_eq!(why.len(), "status 502: ".len() + ERROR_SNIPPET);
    }

    #[test]
    fn the_backoff_doubles_with_jitter_up_to_the_cap() {
        let r = Retry { attempts: 5, timeout: Duration::from_secs(10), backoff: Duration::from_secs(1) };
        assert_eq!(r.wait(1, 0.0), Duration::from_millis(500));
        assert_eq!(r.wait(1, 1.0), Duration::from_secs(1));
        assert_eq!(r.wait(2, 0.5), Duration::from_millis(1500));
        assert_eq!(r.wait(4, 1.0), Duration::from_secs(8));
        assert_eq!(r.wait(10, 1.0), MAX_BACKOFF);
        assert_eq!(r.wait(40, 0.0), MAX_BACKOFF / 2, "no overflow");
        for n in 1..8 {
            let (low, high) = (r.wait(n, 0.0), r.wait(n, 1.0));
            assert!(low <= r.wait(n, fastrand::f64()) && r.wait(n, fastrand::f64()) <= high);
            assert_eq!(high, low * 2);
        }
        // 5 attempts of 10 s and waits of at most 1 + 2 + 4 + 8 s.
        assert_eq!(r.longest(), Duration::from_secs(65));
        assert_eq!(Retry { attempts: 1, ..r }.longest(), Duration::from_secs(10));
    }

    /// RFC 4231, test case 2.
    #[test]
    fn signatures_are_hmac_sha256() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhooks_are_named_by_origin_only() {
        let w = switchyard_config::WebhookConfig {
            url: "https://hooks.slack.com/services/T000/B000/SECRET".into(),
            format: WebhookFormat::Slack,
            secret: None,
            headers: [("authorization".to_string(), "Bearer x".to_string())].into(),
        };
        let built = Webhook::build(&w, 0).map(|w| (w.origin, w.headers.len()));
        assert_eq!(built, Some(("https://hooks.slack.com".to_string(), 3)));
        let local = switchyard_config::WebhookConfig { url: "http://127.0.0.1:9000/x".into(), ..w };
        assert_eq!(Webhook::build(&local, 0).map(|w| w.origin).as_deref(), Some("http://127.0.0.1:9000"));
    }
}
