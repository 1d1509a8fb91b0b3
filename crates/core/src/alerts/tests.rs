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

/// Answers each POST with the next of `statuses` (200 when they run out)
/// and hands over each body.
async fn receiver(statuses: Vec<u16>) -> (String, mpsc::UnboundedReceiver<(u16, serde_json::Value)>) {
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
            let head = String::from_utf8_lossy(&buf[..body_at]).to_ascii_lowercase();
            let length: usize = head
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
            let body = serde_json::from_slice(&buf[body_at..]).unwrap_or_default();
            let _ = tx.send((status, body));
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

async fn next(rx: &mut mpsc::UnboundedReceiver<(u16, serde_json::Value)>) -> (u16, serde_json::Value) {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("a delivery").expect("the receiver runs")
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
