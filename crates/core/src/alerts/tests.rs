//! The worker against the in-memory store and a receiver on loopback
//! (plain HTTP/1.1 written by hand: the core has no server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::budget::{Dimension, Period, Window};
use crate::store::memory::MemoryStore;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

/// One POST the receiver answered.
struct Hit {
    status: u16,
    /// The request line and headers, as sent.
    head: String,
    raw: Vec<u8>,
    body: serde_json::Value,
}

impl Hit {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Answers each POST with the next of `statuses` (200 when they run out)
/// and hands over each request.
async fn receiver(statuses: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Hit>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter();
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body_at = loop {
                let n = tcp.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(body_at) = body_at else { continue };
            let head = String::from_utf8_lossy(&buf[..body_at]).to_string();
            let length: usize = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            while buf.len() < body_at + length {
                let n = tcp.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = statuses.next().unwrap_or(200);
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tcp.write_all(answer.as_bytes()).await;
            let raw = buf[body_at..].to_vec();
            let body = serde_json::from_slice(&raw).unwrap_or_default();
            let _ = tx.send(Hit { status, head, raw, body });
        }
    });
    (url, rx)
}

fn config(url: &str) -> AlertsConfig {
    let webhook = switchyard_config::WebhookConfig {
        url: url.into(),
        format: switchyard_config::WebhookFormat::Json,
        secret: None,
        headers: Default::default(),
    };
    AlertsConfig {
        webhooks: vec![webhook],
        backoff: switchyard_config::Duration::from_millis(10),
        ..AlertsConfig::default()
    }
}

fn moved(scope: &str, before: i64, after: i64) -> Crossing {
    Crossing {
        scope: Arc::from(scope),
        period: Period::Day,
        window: Window { period: Period::Day, start_ms: 0, end_ms: 86_400_000 },
        dimension: Dimension::Cost,
        limit: 100,
        before,
        after,
        refused: false,
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Hit>) -> (u16, serde_json::Value) {
    let hit = hit(rx).await;
    (hit.status, hit.body)
}

async fn hit(rx: &mut mpsc::UnboundedReceiver<Hit>) -> Hit {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("a delivery").expect("the receiver runs")
}

/// Waits until `switchyard_alert_events_total{event="node.silent",result}` is `n`.
async fn until_events(metrics: &Metrics, result: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while metrics.alert_events.get(&["node.silent", result]) != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{result}: {}",
            metrics.alert_events.get(&["node.silent", result])
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn silent(node: &str) -> Event {
    Event {
        event: "node.silent",
        subject: format!("node:{node}"),
        message: format!("Compute node {node} has sent no heartbeat for 61.0 s (timeout 60 s)."),
        details: serde_json::json!({"node": node, "deployments": ["qwen"]}),
        fired_at: crate::now_unix_ms(),
    }
}

fn start_events(config: &AlertsConfig) -> (Arc<MemoryStore>, Arc<Metrics>, Arc<Alerts>) {
    let store = Arc::new(MemoryStore::default());
    let metrics = Arc::new(Metrics::new());
    let (alerts, _task) =
        start_with(store.clone(), config, Zone::default(), metrics.clone(), Duration::from_secs(3600)).unwrap();
    (store, metrics, alerts)
}

/// Waits until `check` holds for the store's alerts.
async fn until(store: &MemoryStore, check: impl Fn(&[AlertRecord]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check(&store.alerts.lock().unwrap()) {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", store.alerts.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_threshold_fires_once_and_its_row_says_delivered() {
    let (url, mut rx) = receiver(vec![500]).await;
    let store = Arc::new(MemoryStore::default());
    let metrics = Arc::new(Metrics::new());
    let (alerts, _task) =
        start_with(store.clone(), &config(&url), Zone::default(), metrics.clone(), Duration::from_secs(3600)).unwrap();
    alerts.notify("t1", vec![moved("key:a", 0, 60)]);
    alerts.notify("t1", vec![moved("key:a", 60, 61)]);
    alerts.notify("t1", Vec::new());
    // A 500 first, then the retry is taken.
    assert_eq!(next(&mut rx).await.0, 500);
    let (status, body) = next(&mut rx).await;
    assert_eq!(
        (status, &body["scope"], &body["threshold_percent"]),
        (200, &serde_json::json!("key:a"), &serde_json::json!(50))
    );
    // Another scope's alert: once it is in, the second notice was handled.
    alerts.notify("t1", vec![moved("key:b", 0, 100)]);
    for _ in 0..4 {
        assert_eq!(next(&mut rx).await.1["scope"], "key:b");
    }
    until(&store, |a| a.iter().all(|a| a.delivery.status == AlertStatus::Delivered)).await;
    let rows = store.alerts.lock().unwrap().clone();
    assert_eq!(rows.len(), 5);
    let a = rows.iter().find(|r| r.scope == "key:a").unwrap();
    assert_eq!(
        (a.delivery.attempts, a.delivery.last_error.as_deref().map(|e| e.contains("status 500"))),
        (2, Some(true))
    );
    assert_eq!(metrics.alerts.get(&["fired"]), 5);
    assert_eq!(metrics.alerts.get(&["delivered"]), 5);
    assert_eq!(metrics.alerts_queue_depth.get(&[]), 0);
}

#[tokio::test]
async fn pending_alerts_are_sent_again_at_start() {
    let (url, mut rx) = receiver(Vec::new()).await;
    let store = Arc::new(MemoryStore::default());
    let now = crate::now_unix_ms();
    let mut left = AlertRecord::new("t1", &moved("team:x", 0, 96), 95, now, true);
    left.delivery.attempts = 2;
    store.alerts.lock().unwrap().push(left.clone());
    let done = AlertRecord { id: "alr_done".into(), threshold: 50, ..left.clone() };
    let done = AlertRecord { delivery: Delivery { status: AlertStatus::Failed, ..done.delivery.clone() }, ..done };
    store.alerts.lock().unwrap().push(done);
    let metrics = Arc::new(Metrics::new());
    let (_alerts, _task) =
        start_with(store.clone(), &config(&url), Zone::default(), metrics, Duration::from_secs(3600)).unwrap();
    let (_, body) = next(&mut rx).await;
    assert_eq!(body["alert_id"], left.id.as_str());
    until(&store, |a| a.iter().any(|a| a.id == left.id && a.delivery.status == AlertStatus::Delivered)).await;
    let attempts = store.alerts.lock().unwrap().iter().find(|a| a.id == left.id).map(|a| a.delivery.attempts);
    assert_eq!(attempts, Some(3), "counted on from where it was");
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_err(), "a failed alert is not resent");
}

#[tokio::test]
async fn an_alert_the_store_refused_is_recorded_when_it_is_back() {
    let (url, mut rx) = receiver(Vec::new()).await;
    let store = Arc::new(MemoryStore::default());
    store.down.store(true, Ordering::SeqCst);
    let metrics = Arc::new(Metrics::new());
    let (alerts, _task) =
        start_with(store.clone(), &config(&url), Zone::default(), metrics.clone(), Duration::from_millis(50)).unwrap();
    alerts.notify("t1", vec![moved("tenant:t1", 0, 50)]);
    // One thread: the worker takes the notice and tries the (always
    // ready) in-memory insert in one poll, so once the queue is empty the
    // insert has been refused.
    let deadline = tokio::time::Instant::now() + WAIT;
    while metrics.alerts_queue_depth.get(&[]) != 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    assert!(store.alerts.lock().unwrap().is_empty());
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(next(&mut rx).await.1["scope"], "tenant:t1");
    until(&store, |a| a.len() == 1 && a[0].delivery.status == AlertStatus::Delivered).await;
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_never_waits() {
    let (tx, _rx) = mpsc::channel(1);
    let metrics = Arc::new(Metrics::new());
    let settings = Arc::new(ArcSwap::from_pointee(Settings::from_config(&AlertsConfig::default())));
    let alerts = Alerts { tx, settings, metrics: metrics.clone(), last_drop_log: AtomicI64::new(0) };
    alerts.notify("t1", Vec::new());
    assert_eq!(metrics.alerts_queue_depth.get(&[]), 0, "nothing to say: nothing sent");
    alerts.notify("t1", vec![moved("key:a", 0, 50)]);
    alerts.notify("t1", vec![moved("key:a", 50, 60)]);
    assert_eq!((metrics.alerts_queue_depth.get(&[]), metrics.alerts.get(&["dropped"])), (1, 1));
}

#[tokio::test]
async fn without_webhooks_alerts_are_recorded_only() {
    let store = Arc::new(MemoryStore::default());
    let metrics = Arc::new(Metrics::new());
    let (alerts, task) = start_with(
        store.clone(),
        &AlertsConfig::default(),
        Zone::default(),
        metrics.clone(),
        Duration::from_secs(3600),
    )
    .unwrap();
    alerts.notify("t1", vec![Crossing { refused: true, ..moved("key:a", 10, 100) }]);
    until(&store, |a| a.len() == 1).await;
    let a = store.alerts.lock().unwrap()[0].clone();
    assert_eq!((a.threshold, a.refused, a.delivery.status), (100, true, AlertStatus::Recorded));
    // Every handle gone: the worker ends.
    drop(alerts);
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn an_event_reaches_json_and_slack_webhooks_signed_under_one_id() {
    let (json_url, mut json_rx) = receiver(Vec::new()).await;
    let (slack_url, mut slack_rx) = receiver(Vec::new()).await;
    let mut config = config(&json_url);
    config.webhooks[0].secret = Some("s3cret".into());
    config.webhooks.push(switchyard_config::WebhookConfig {
        url: slack_url,
        format: switchyard_config::WebhookFormat::Slack,
        secret: Some("other".into()),
        headers: Default::default(),
    });
    let (store, metrics, alerts) = start_events(&config);
    let event = silent("gpu-1");
    alerts.event(event.clone());

    let json = hit(&mut json_rx).await;
    assert_eq!(json.status, 200);
    assert_eq!(json.header("x-switchyard-signature"), Some(signature(b"s3cret", &json.raw)));
    let id = json.header("x-switchyard-alert-id").unwrap();
    assert!(id.starts_with("alr_"), "{id}");
    assert_eq!(
        json.body,
        serde_json::json!({
            "event": "node.silent", "alert_id": id, "subject": "node:gpu-1",
            "message": "Compute node gpu-1 has sent no heartbeat for 61.0 s (timeout 60 s).",
            "details": {"node": "gpu-1", "deployments": ["qwen"]},
            "fired_at": crate::budget::period::rfc3339(event.fired_at, &Zone::default()),
        })
    );
    let slack = hit(&mut slack_rx).await;
    assert_eq!(slack.header("x-switchyard-signature"), Some(signature(b"other", &slack.raw)));
    assert_eq!(slack.header("x-switchyard-alert-id"), Some(id), "one id for every webhook");
    assert_eq!(
        slack.body,
        serde_json::json!({"text": ":warning: Compute node gpu-1 has sent no heartbeat for 61.0 s (timeout 60 s). (node.silent)"})
    );

    until_events(&metrics, "delivered", 2).await;
    assert_eq!(metrics.alert_events.get(&["node.silent", "fired"]), 1);
    assert_eq!(metrics.alerts_queue_depth.get(&[]), 0);
    assert!(store.alerts.lock().unwrap().is_empty(), "events are not stored as alert rows");
    assert_eq!(metrics.alerts.get(&["delivered"]), 0, "not counted as budget alerts");
}

#[tokio::test]
async fn an_event_is_retried_after_a_503_then_delivered() {
    let (url, mut rx) = receiver(vec![503]).await;
    let (_store, metrics, alerts) = start_events(&config(&url));
    alerts.event(silent("gpu-2"));
    let first = hit(&mut rx).await;
    let second = hit(&mut rx).await;
    assert_eq!((first.status, second.status), (503, 200));
    assert_eq!(first.header("x-switchyard-alert-id"), second.header("x-switchyard-alert-id"));
    assert_eq!(first.raw, second.raw, "the same body again");
    until_events(&metrics, "delivered", 1).await;
    assert_eq!(metrics.alert_events.get(&["node.silent", "failed"]), 0);
}

#[tokio::test]
async fn an_event_refused_with_a_400_is_not_retried() {
    let (url, mut rx) = receiver(vec![400]).await;
    let (_store, metrics, alerts) = start_events(&config(&url));
    alerts.event(silent("gpu-3"));
    assert_eq!(hit(&mut rx).await.status, 400);
    // A retry would have been answered 200 (and counted delivered, not failed).
    until_events(&metrics, "failed", 1).await;
    assert_eq!(metrics.alert_events.get(&["node.silent", "delivered"]), 0);
    assert!(rx.try_recv().is_err(), "sent once");
}

#[tokio::test]
async fn a_full_queue_drops_events_and_counts_them() {
    let (tx, _rx) = mpsc::channel(1);
    let metrics = Arc::new(Metrics::new());
    let settings = Arc::new(ArcSwap::from_pointee(Settings::from_config(&AlertsConfig::default())));
    let alerts = Alerts { tx, settings, metrics: metrics.clone(), last_drop_log: AtomicI64::new(0) };
    alerts.event(silent("gpu-1"));
    alerts.event(silent("gpu-2"));
    alerts.notify("t1", vec![moved("key:a", 0, 50)]);
    assert_eq!(metrics.alerts_queue_depth.get(&[]), 1, "events and budget movements share the queue");
    assert_eq!(metrics.alert_events.get(&["node.silent", "dropped"]), 1);
    assert_eq!(metrics.alerts.get(&["dropped"]), 1, "each counted as what it was");
}
