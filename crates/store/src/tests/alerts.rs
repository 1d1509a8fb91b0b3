//! Budget alerts, on every backend: once per (scope, period window,
//! dimension, threshold), their delivery status, pages, and taking over a
//! pending alert.

use super::TestDb;
use std::sync::Arc;
use switchyard_core::alerts::{AlertQuery, AlertRecord, AlertStatus, Delivery};
use switchyard_core::budget::{Dimension, Period};
use switchyard_core::store::Store;

for_each_backend!(budget_alerts_fire_once_and_keep_their_delivery, one_of_many_concurrent_inserts_fires);

fn alert(id: &str, tenant: &str, scope: &str, threshold: u32, fired_at: i64) -> AlertRecord {
    AlertRecord {
        id: id.into(),
        tenant_id: Some(tenant.into()),
        scope: scope.into(),
        period: Period::Month,
        window_start: 1_796_083_200_000,
        window_end: 1_798_761_600_000,
        dimension: Dimension::Cost,
        threshold,
        limit: 2_000_000,
        spent: 1_600_000,
        refused: false,
        fired_at,
        delivery: Delivery { status: AlertStatus::Pending, attempts: 0, last_error: None, updated_at: fired_at },
    }
}

async fn budget_alerts_fire_once_and_keep_their_delivery(db: &TestDb) {
    let store = db.open().await;
    let a = alert("alr_1", "t1", "key:k1", 80, 1_000);
    assert!(store.insert_alert(&a).await.unwrap(), "fired");
    let again = AlertRecord { id: "alr_x".into(), fired_at: 5_000, ..a.clone() };
    assert!(!store.insert_alert(&again).await.unwrap(), "the same threshold of the same window fires once");
    // Any other part of the key is another alert.
    let others = [
        AlertRecord { id: "alr_2".into(), threshold: 95, ..a.clone() },
        AlertRecord { id: "alr_3".into(), dimension: Dimension::Tokens, ..a.clone() },
        AlertRecord { id: "alr_4".into(), period: Period::Day, ..a.clone() },
        AlertRecord { id: "alr_5".into(), window_start: a.window_end, fired_at: 2_000, ..a.clone() },
        AlertRecord { id: "alr_6".into(), scope: "team:tm".into(), tenant_id: Some("t2".into()), ..a.clone() },
    ];
    for o in &others {
        assert!(store.insert_alert(o).await.unwrap(), "{}", o.id);
    }
    let page = |q: AlertQuery| {
        let store = &store;
        async move { store.alerts_page(&q).await.unwrap().into_iter().map(|a| a.id).collect::<Vec<_>>() }
    };
    let q = |limit| AlertQuery { limit, ..AlertQuery::default() };
    assert_eq!(page(q(3)).await, ["alr_6", "alr_5", "alr_4"], "newest first");
    assert_eq!(page(AlertQuery { before: Some("alr_4".into()), ..q(9) }).await, ["alr_3", "alr_2", "alr_1"]);
    assert_eq!(page(AlertQuery { tenant_id: Some("t2".into()), ..q(9) }).await, ["alr_6"]);
    assert_eq!(page(AlertQuery { scope: Some("team:tm".into()), ..q(9) }).await, ["alr_6"]);
    assert_eq!(page(AlertQuery { since: Some(2_000), ..q(9) }).await, ["alr_5"]);
    assert_eq!(page(AlertQuery { until: Some(2_000), ..q(1) }).await, ["alr_6"]);

    // Delivery: after each attempt, and at the end.
    let failed = Delivery {
        status: AlertStatus::Failed,
        attempts: 3,
        last_error: Some("http://h: status 500".into()),
        updated_at: 9,
    };
    store.mark_alert("alr_1", &failed).await.unwrap();
    let read = store.alerts_page(&AlertQuery { scope: Some("key:k1".into()), ..q(9) }).await.unwrap();
    let one = read.iter().find(|r| r.id == "alr_1").unwrap();
    assert_eq!(*one, AlertRecord { delivery: failed.clone(), ..a.clone() }, "every field reads back");
    assert_eq!(page(AlertQuery { status: Some(AlertStatus::Failed), ..q(9) }).await, ["alr_1"]);
    let refused = AlertRecord { id: "alr_7".into(), refused: true, threshold: 100, spent: i64::MAX, ..a.clone() };
    assert!(store.insert_alert(&refused).await.unwrap());
    let read = store.alerts_page(&AlertQuery { limit: 1, ..AlertQuery::default() }).await.unwrap();
    assert_eq!(read, [refused]);

    // Pending alerts nobody sends any more: oldest first, then taken over
    // by one caller only.
    let pending = store.pending_alerts(1_001, 10).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["alr_2", "alr_3", "alr_4", "alr_5", "alr_6", "alr_7"], "pending, updated before 1001");
    assert!(store.pending_alerts(1_000, 10).await.unwrap().is_empty(), "updated at 1000 is not before 1000");
    assert_eq!(store.pending_alerts(1_001, 2).await.unwrap().len(), 2);
    assert!(store.claim_alert("alr_2", 1_000, 50_000).await.unwrap());
    assert!(!store.claim_alert("alr_2", 1_000, 50_001).await.unwrap(), "taken already");
    assert!(!store.claim_alert("alr_1", 9, 50_000).await.unwrap(), "not pending");
    assert!(store.pending_alerts(1_001, 10).await.unwrap().iter().all(|p| p.id != "alr_2"));
    let delivered = Delivery { status: AlertStatus::Delivered, attempts: 1, last_error: None, updated_at: 50_002 };
    store.mark_alert("alr_2", &delivered).await.unwrap();
    assert!(store.pending_alerts(i64::MAX, 10).await.unwrap().iter().all(|p| p.id != "alr_2"));
}

/// Replicas reaching a threshold at once: one insert wins.
async fn one_of_many_concurrent_inserts_fires(db: &TestDb) {
    let stores: Vec<Arc<dyn Store>> = vec![crate::open(&db.url).await.unwrap(), crate::open(&db.url).await.unwrap()];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let store = stores[i % 2].clone();
        tasks.spawn(async move { store.insert_alert(&alert(&format!("alr_{i:02}"), "t", "tenant:t", 50, 1)).await });
    }
    let mut fired = 0;
    while let Some(done) = tasks.join_next().await {
        fired += usize::from(done.unwrap().unwrap());
    }
    assert_eq!(fired, 1);
    assert_eq!(stores[0].alerts_page(&AlertQuery { limit: 99, ..AlertQuery::default() }).await.unwrap().len(), 1);
}
