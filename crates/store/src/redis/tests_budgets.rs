//! The shared budget ledger against a real Redis (`SWITCHYARD_TEST_REDIS_URL`;
//! skipped without one, except under `CI`). Parity: each scenario runs
//! against the in-process ledger and the Redis one (through core's
//! `Ledger`), which must agree on every decision and figure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::tests::{config, server_url};
use super::RedisBudgets;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_core::budget::{
    Action, Cap, Crossing, Dimension, Hold, Ledger, NotReserved, Offset, Period, SharedBudgets, Spend, Zone,
};
use switchyard_core::limits::FailureMode;

const DOLLAR: i64 = 1_000_000_000;

async fn budgets(lease: Duration) -> Option<(RedisBudgets, switchyard_config::RedisConfig)> {
    let config = config(&server_url()?, lease);
    Some((RedisBudgets::connect(&config).await.unwrap(), config))
}

/// A ledger on Redis and one in process, with the same zone.
async fn pair(lease: Duration) -> Option<(Ledger, Ledger, Arc<RedisBudgets>)> {
    let (redis, _) = budgets(lease).await?;
    let redis = Arc::new(redis);
    let shared = Ledger::with_shared(Zone::Fixed(Offset(0)), redis.clone(), FailureMode::Closed);
    Some((shared, Ledger::new(Zone::Fixed(Offset(0))), redis))
}

fn cap(scope: &str, period: Period, max_nanos: Option<i64>, max_tokens: Option<u64>) -> Cap {
    Cap { scope: Arc::from(scope), period, max_nanos, max_tokens, action: Action::Block, enforce: true }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn admit(ledger: &Ledger, caps: &[Cap], nanos: i64, tokens: u64) -> Result<Hold, NotReserved> {
    ledger.admit(caps, nanos, tokens, now(), |down| panic!("redis down: {}", down.0)).await
}

/// Waits until the backend's spawned settles are answered.
async fn settled(redis: &RedisBudgets) {
    for _ in 0..200 {
        if redis.background_in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("settles still in flight");
}

async fn spend(ledger: &Ledger, scope: &str, period: Period) -> Spend {
    ledger.current_spend(scope, period, now()).await.unwrap()
}

#[tokio::test]
async fn reservations_commits_and_refusals_match_the_local_ledger() {
    let Some((shared, local, redis)) = pair(Duration::from_secs(60)).await else { return };
    let caps = [
        cap("key:k1", Period::Day, Some(DOLLAR), None),
        cap("tenant:t1", Period::Month, Some(10 * DOLLAR), Some(1_000)),
    ];
    for (nanos, tokens) in [(DOLLAR / 4, 100), (DOLLAR / 4, 100), (DOLLAR / 2, 100)] {
        let a = admit(&shared, &caps, nanos, tokens).await.unwrap();
        let b = admit(&local, &caps, nanos, tokens).await.unwrap();
        assert!(a.is_shared() && !b.is_shared());
        std::mem::forget((a, b)); // held until the end of the test
    }
    for scope in ["key:k1", "tenant:t1"] {
        let period = if scope.starts_with("key") { Period::Day } else { Period::Month };
        assert_eq!(spend(&shared, scope, period).await, spend(&local, scope, period).await, "{scope}");
    }
    // The key's dollar is held: one more nano-dollar is refused by both,
    // naming the key and its figures.
    let NotReserved::Exceeded(a) = admit(&shared, &caps, 1, 0).await.unwrap_err() else { panic!() };
    let NotReserved::Exceeded(b) = admit(&local, &caps, 1, 0).await.unwrap_err() else { panic!() };
    assert_eq!((&a.scope, a.dimension, a.limit, a.spend), (&b.scope, b.dimension, b.limit, b.spend));
    assert_eq!((&*a.scope, a.dimension, a.spend.reserved_nanos), ("key:k1", Dimension::Cost, DOLLAR));
    // Tokens: 300 held of 1,000; 701 more is refused by the tenant's cap.
    let NotReserved::Exceeded(t) = admit(&shared, &caps[1..], 0, 701).await.unwrap_err() else { panic!() };
    assert_eq!((&*t.scope, t.dimension, t.limit), ("tenant:t1", Dimension::Tokens, 1_000));
    let _ = redis;
}

#[tokio::test]
async fn a_commit_replaces_the_reservation_and_reports_crossings() {
    let Some((shared, _, redis)) = pair(Duration::from_secs(60)).await else { return };
    let caps = [cap("key:k2", Period::Day, Some(DOLLAR), Some(100))];
    let hold = admit(&shared, &caps, DOLLAR / 2, 50).await.unwrap();
    let seen: Arc<Mutex<Vec<Crossing>>> = Arc::default();
    let sink = seen.clone();
    hold.commit_then(DOLLAR / 5, 80, move |c| sink.lock().unwrap().extend(c));
    settled(&redis).await;
    let s = spend(&shared, "key:k2", Period::Day).await;
    assert_eq!(s, Spend { committed_nanos: DOLLAR / 5, reserved_nanos: 0, committed_tokens: 80, reserved_tokens: 0 });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let tokens = seen.iter().find(|c| c.dimension == Dimension::Tokens).unwrap();
    assert!(tokens.crosses(80) && !tokens.crosses(81) && tokens.crosses(50));
    // A dropped hold gives its reservation back and commits nothing.
    drop(admit(&shared, &caps, DOLLAR / 2, 10).await.unwrap());
    settled(&redis).await;
    assert_eq!(spend(&shared, "key:k2", Period::Day).await, s);
}

#[tokio::test]
async fn an_abandoned_hold_expires_with_its_lease() {
    let Some((shared, _, redis)) = pair(Duration::from_millis(300)).await else { return };
    let caps = [cap("key:k3", Period::Day, Some(DOLLAR), None)];
    // A replica that dies holding a reservation never settles it.
    let hold = admit(&shared, &caps, DOLLAR, 0).await.unwrap();
    std::mem::forget(hold);
    assert!(admit(&shared, &caps, 1, 0).await.is_err(), "held");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = admit(&shared, &caps, DOLLAR, 0).await.expect("the lease ended: the budget is free again");
    assert_eq!(spend(&shared, "key:k3", Period::Day).await.reserved_nanos, DOLLAR);
    drop(again);
    settled(&redis).await;
}

#[tokio::test]
async fn seeding_sets_an_account_once() {
    let Some((shared, _, _)) = pair(Duration::from_secs(60)).await else { return };
    let start = switchyard_core::budget::window(Period::Month, now(), &Zone::Fixed(Offset(0))).start_ms;
    shared.seed_shared("tenant:seeded", Period::Month, start, 3 * DOLLAR, 30).await.unwrap();
    // A second replica starting later finds Redis counting already.
    shared.seed_shared("tenant:seeded", Period::Month, start, 1, 1).await.unwrap();
    let s = spend(&shared, "tenant:seeded", Period::Month).await;
    assert_eq!((s.committed_nanos, s.committed_tokens), (3 * DOLLAR, 30));
}

/// Two "replicas" (two ledgers on one Redis) reserving concurrently never
/// hold more than the cap between them.
#[tokio::test]
async fn replicas_share_one_cap() {
    let Some((a, _, redis_a)) = pair(Duration::from_secs(60)).await else { return };
    let (redis_b, _) = budgets(Duration::from_secs(60)).await.unwrap();
    // Same key prefix as `a`'s backend, so they share counters.
    let b_config = {
        let mut c = config(&server_url().unwrap(), Duration::from_secs(60));
        c.key_prefix = redis_a_prefix(&redis_a);
        c
    };
    drop(redis_b);
    let redis_b = Arc::new(RedisBudgets::connect(&b_config).await.unwrap());
    let b = Ledger::with_shared(Zone::Fixed(Offset(0)), redis_b.clone(), FailureMode::Closed);
    let caps = [cap("team:shared", Period::Day, Some(10 * DOLLAR), None)];
    let tries = (0..50).map(|i| {
        let ledger = if i % 2 == 0 { &a } else { &b };
        let caps = &caps;
        async move { admit(ledger, caps, DOLLAR, 0).await }
    });
    let results = futures_util::future::join_all(tries).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(admitted, 10, "exactly the cap's worth across both replicas");
    let s = spend(&b, "team:shared", Period::Day).await;
    assert_eq!(s.reserved_nanos, 10 * DOLLAR);
    drop(results);
    settled(&redis_a).await;
    settled(&redis_b).await;
    assert_eq!(spend(&a, "team:shared", Period::Day).await.reserved_nanos, 0);
}

fn redis_a_prefix(r: &RedisBudgets) -> String {
    format!("{r:?}").split('"').nth(1).unwrap().trim_end_matches(":bg:").to_string()
}

#[tokio::test]
async fn a_redis_that_does_not_answer_falls_back_or_refuses() {
    let Some(_) = server_url() else { return };
    // A port nothing listens on.
    let mut config = config("redis://127.0.0.1:1", Duration::from_secs(60));
    config.timeout = switchyard_config::Duration(Duration::from_millis(100));
    let down: Arc<dyn SharedBudgets> = Arc::new(RedisBudgets::connect(&config).await.unwrap());
    let caps = [cap("key:k4", Period::Day, Some(DOLLAR), None)];
    let local = Ledger::with_shared(Zone::Fixed(Offset(0)), down.clone(), FailureMode::Local);
    let mut fell = 0;
    let hold = local.admit(&caps, DOLLAR, 0, now(), |_| fell += 1).await.unwrap();
    assert!(!hold.is_shared() && fell == 1, "reserved in this process");
    let closed = Ledger::with_shared(Zone::Fixed(Offset(0)), down, FailureMode::Closed);
    let refused = closed.admit(&caps, 1, 0, now(), |_| {}).await.unwrap_err();
    assert!(matches!(refused, NotReserved::Unavailable(_)), "{refused:?}");
}

/// Provider volume: seeded once (the first replica's store figure), then
/// every addition answers the shared total.
#[tokio::test]
async fn provider_volume_is_one_counter() {
    let Some((redis, _)) = budgets(Duration::from_secs(60)).await else { return };
    let expire = now() + 3_600_000;
    assert_eq!(redis.seed_volume("vol:openai:1", expire, 1_000).await.unwrap(), 1_000);
    assert_eq!(redis.seed_volume("vol:openai:1", expire, 7).await.unwrap(), 1_000, "already counted");
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    for tokens in [10, 20] {
        let sink = seen.clone();
        redis.add_volume("vol:openai:1", expire, tokens, Box::new(move |t| sink.lock().unwrap().push(t)));
        settled(&redis).await;
    }
    assert_eq!(seen.lock().unwrap().as_slice(), [1_010, 1_030]);
}
