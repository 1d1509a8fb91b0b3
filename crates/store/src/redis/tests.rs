//! The Redis backend against a real Redis (`SWITCHYARD_TEST_REDIS_URL`;
//! `tests/services.sh` starts one). Without it these tests skip with a
//! note, except where `CI` is set: there they fail. Each test writes under
//! a random key prefix, so tests run in parallel on one server.
//!
//! Parity: each scenario runs step by step against the in-process limiter
//! and the Redis one (through core's `Limiter`), which must agree on every
//! decision and, within the clock drift between the two, on every figure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{RedisFeed, RedisLimiter};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_config::{RedisConfig, RedisFailure};
use switchyard_core::access::ChangeFeed;
use switchyard_core::limits::{
    Admission, Check, Dimension, FailureMode, Grant, Limiter, Limits, NotAdmitted, Quota, Refusal, SharedBackend,
    Window,
};

const SECOND: Duration = Duration::from_secs(1);
/// How far figures in time may differ between the two limiters (their
/// clocks start a few ms apart; a loaded test machine adds more).
const DRIFT: Duration = Duration::from_millis(250);

pub(super) fn server_url() -> Option<String> {
    let url = std::env::var("SWITCHYARD_TEST_REDIS_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() && std::env::var("CI").is_ok_and(|v| !v.is_empty()) {
        panic!(
            "CI is set but SWITCHYARD_TEST_REDIS_URL is not: the Redis tests must run in CI \
             (./test.sh starts a server through tests/services.sh)"
        );
    }
    if url.is_none() {
        eprintln!("skipped: set SWITCHYARD_TEST_REDIS_URL (or source tests/services.sh) to run it");
    }
    url
}

pub(super) fn config(url: &str, lease: Duration) -> RedisConfig {
    RedisConfig {
        url: url.to_string(),
        // Generous: parallel tests on a busy machine, not a latency test.
        timeout: switchyard_config::Duration(2 * SECOND),
        on_failure: RedisFailure::Closed,
        key_prefix: format!("sy-test-{:016x}", fastrand::u64(..)),
        lease: switchyard_config::Duration(lease),
    }
}

/// A config for the test server, `None` (skip) without one.
fn test_config() -> Option<RedisConfig> {
    Some(config(&server_url()?, 60 * SECOND))
}

fn check(scope: &str, limits: Limits) -> Check {
    Check { scope: Arc::from(scope), limits }
}

fn rpm(n: u64) -> Limits {
    Limits { rpm: Some(n), ..Limits::default() }
}

fn tpm(n: u64) -> Limits {
    Limits { tpm: Some(n), ..Limits::default() }
}

fn concurrent(n: u64) -> Limits {
    Limits { max_concurrent: Some(n), ..Limits::default() }
}

/// `remaining` is `expected`, or one more: at 1000 per minute a unit
/// refills every 60 ms of the test's own running time.
fn assert_about(remaining: u64, expected: u64) {
    assert!((expected..=expected + 1).contains(&remaining), "remaining {remaining}, expected {expected}");
}

fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) <= DRIFT
}

/// `a` and `b` agree: the same limit, remaining within one unit (a unit
/// may refill between the two calls), resets within [`DRIFT`].
fn assert_windows(what: &str, a: Option<Window>, b: Option<Window>) {
    match (a, b) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            assert_eq!(a.limit, b.limit, "{what}: limit");
            assert!(a.remaining.abs_diff(b.remaining) <= 1, "{what}: remaining {a:?} vs {b:?}");
            assert!(close(a.reset, b.reset), "{what}: reset {a:?} vs {b:?}");
        }
        _ => panic!("{what}: {a:?} vs {b:?}"),
    }
}

fn assert_quotas(local: &Quota, redis: &Quota) {
    assert_windows("requests", local.requests, redis.requests);
    assert_windows("tokens", local.tokens, redis.tokens);
}

/// The same scenario against both limiters.
struct Pair {
    local: Limiter,
    shared: Limiter,
    redis: Arc<RedisLimiter>,
}

#[derive(Debug)]
struct Both {
    local: Admission,
    shared: Admission,
}

impl Pair {
    async fn new() -> Option<Pair> {
        let redis = Arc::new(RedisLimiter::connect(&test_config()?).await.unwrap());
        Some(Pair { local: Limiter::local(), shared: Limiter::shared(redis.clone(), FailureMode::Closed), redis })
    }

    /// Admits on both; they must agree. Answers the Redis side's figures.
    async fn admit(&self, checks: &[Check], tokens: u64) -> Result<Both, Refusal> {
        let local = self.local.admit(checks, tokens, |_| {}).await;
        let shared = self.shared.admit(checks, tokens, |down| panic!("redis down: {down:?}")).await;
        match (local, shared) {
            (Ok(local), Ok(shared)) => {
                assert_quotas(local.quota(), shared.quota());
                Ok(Both { local, shared })
            }
            (Err(NotAdmitted::Refused(l)), Err(NotAdmitted::Refused(r))) => {
                assert_eq!((&l.scope, l.dimension, l.limit), (&r.scope, r.dimension, r.limit), "refusal");
                match (l.retry_after, r.retry_after) {
                    (None, None) => {}
                    (Some(a), Some(b)) => assert!(close(a, b), "retry after {a:?} vs {b:?}"),
                    (a, b) => panic!("retry after {a:?} vs {b:?}"),
                }
                assert_quotas(&l.quota, &r.quota);
                Err(r)
            }
            (local, shared) => panic!("the limiters disagree: local {local:?}, redis {shared:?}"),
        }
    }

    /// Waits until the Redis limiter's releases and reconciliations are
    /// answered (the local limiter applies them at once).
    async fn settle(&self) {
        let deadline = Instant::now() + 5 * SECOND;
        while self.redis.background_in_flight() > 0 {
            assert!(Instant::now() < deadline, "background calls still pending");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn release(&self, both: Both) {
        drop(both);
        self.settle().await;
    }

    async fn reconcile(&self, both: &mut Both, actual: u64) {
        both.local.reconcile(actual, Instant::now());
        both.shared.reconcile(actual, Instant::now());
        self.settle().await;
    }
}

macro_rules! pair_or_skip {
    () => {
        match Pair::new().await {
            Some(pair) => pair,
            None => return,
        }
    };
}

#[tokio::test]
async fn rpm_allows_a_burst_then_refuses_for_an_interval() {
    let pair = pair_or_skip!();
    let checks = [check("key:k1", rpm(60))];
    for i in 0..60 {
        let a = pair.admit(&checks, 0).await.unwrap();
        assert_eq!(a.shared.quota().requests.unwrap().remaining, 59 - i);
    }
    let refused = pair.admit(&checks, 0).await.unwrap_err();
    assert_eq!((refused.dimension, refused.limit, &*refused.scope), (Dimension::Requests, 60, "key:k1"));
    assert!(close(refused.retry_after.unwrap(), SECOND), "{refused:?}");
    let window = refused.quota.requests.unwrap();
    assert_eq!((window.limit, window.remaining), (60, 0));
    assert!(close(window.reset, 60 * SECOND));
}

#[tokio::test]
async fn tpm_charges_the_cost() {
    let pair = pair_or_skip!();
    let checks = [check("tenant:acme", tpm(1000))];
    let a = pair.admit(&checks, 600).await.unwrap();
    let window = a.shared.quota().tokens.unwrap();
    assert_eq!(window.limit, 1000);
    assert_about(window.remaining, 400);
    assert!(close(window.reset, 36 * SECOND));
    let refused = pair.admit(&checks, 500).await.unwrap_err();
    assert_eq!(refused.dimension, Dimension::Tokens);
    assert!(close(refused.retry_after.unwrap(), 6 * SECOND), "{refused:?}");
    // Zero tokens pass even an empty bucket.
    pair.admit(&checks, 400).await.unwrap();
    assert_eq!(pair.admit(&checks, 0).await.unwrap().shared.quota().tokens.unwrap().remaining, 0);
}

#[tokio::test]
async fn more_than_the_limit_never_passes() {
    let pair = pair_or_skip!();
    let refused = pair.admit(&[check("tenant:acme", tpm(1000))], 1001).await.unwrap_err();
    assert_eq!((refused.dimension, refused.retry_after), (Dimension::Tokens, None));
    assert_eq!(refused.quota.tokens.unwrap().remaining, 1000);
    let refused = pair.admit(&[check("key:closed", rpm(0))], 0).await.unwrap_err();
    assert_eq!((refused.dimension, refused.retry_after), (Dimension::Requests, None));
}

#[tokio::test]
async fn a_refusal_consumes_nothing_anywhere() {
    let pair = pair_or_skip!();
    let key = check("key:k1", Limits { rpm: Some(10), tpm: Some(100), max_concurrent: Some(5) });
    let route = check("route:acme:chat", rpm(1));
    let _first = pair.admit(&[key.clone(), route.clone()], 10).await.unwrap();
    let refused = pair.admit(&[key.clone(), route], 10).await.unwrap_err();
    assert_eq!(&*refused.scope, "route:acme:chat");
    // The key's figures are what they were after the first request.
    let a = pair.admit(std::slice::from_ref(&key), 0).await.unwrap();
    assert_eq!(a.shared.quota().requests.unwrap().remaining, 8);
    assert_eq!(a.shared.quota().tokens.unwrap().remaining, 90);
    // Two slots held (the first and this one) of five: three more pass.
    let _held: Vec<Both> = hold(&pair, &key, 3).await;
    assert_eq!(pair.admit(&[key], 0).await.unwrap_err().dimension, Dimension::Concurrency);
}

/// `n` admissions of `check`, all of which must pass.
async fn hold(pair: &Pair, check: &Check, n: usize) -> Vec<Both> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pair.admit(std::slice::from_ref(check), 0).await.unwrap());
    }
    held
}

#[tokio::test]
async fn the_longest_wait_is_reported() {
    let pair = pair_or_skip!();
    let fast = check("key:fast", rpm(60));
    let slow = check("tenant:slow", rpm(1));
    pair.admit(&[fast.clone(), slow.clone()], 0).await.unwrap();
    for _ in 0..59 {
        pair.admit(std::slice::from_ref(&fast), 0).await.unwrap();
    }
    let refused = pair.admit(&[fast, slow], 0).await.unwrap_err();
    assert_eq!(&*refused.scope, "tenant:slow");
    assert!(close(refused.retry_after.unwrap(), 60 * SECOND));
    assert_eq!(refused.quota.requests.unwrap().remaining, 0);
}

#[tokio::test]
async fn concurrency_slots_are_held_until_release() {
    let pair = pair_or_skip!();
    let checks = [check("key:k1", concurrent(2))];
    let first = pair.admit(&checks, 0).await.unwrap();
    let _second = pair.admit(&checks, 0).await.unwrap();
    let refused = pair.admit(&checks, 0).await.unwrap_err();
    assert_eq!((refused.dimension, refused.limit, refused.retry_after), (Dimension::Concurrency, 2, Some(SECOND)));
    pair.release(first).await;
    let _third = pair.admit(&checks, 0).await.unwrap();
    assert!(pair.admit(&checks, 0).await.is_err());

    let closed = [check("key:k2", concurrent(0))];
    assert_eq!(pair.admit(&closed, 0).await.unwrap_err().retry_after, None);
}

#[tokio::test]
async fn a_scope_listed_twice_is_charged_twice() {
    let pair = pair_or_skip!();
    let twice = [check("key:k1", rpm(2)), check("key:k1", rpm(2))];
    let a = pair.admit(&twice, 0).await.unwrap();
    assert_eq!(a.shared.quota().requests.unwrap().remaining, 0);
    assert!(pair.admit(&twice[..1], 0).await.is_err());

    let slots = [check("key:k2", concurrent(2)), check("key:k2", concurrent(2))];
    let both = pair.admit(&slots, 0).await.unwrap();
    assert!(pair.admit(&slots[..1], 0).await.is_err());
    pair.release(both).await;
    let _again = pair.admit(&slots, 0).await.unwrap();
}

#[tokio::test]
async fn reconcile_refunds_and_charges() {
    let pair = pair_or_skip!();
    let checks = [check("key:k1", tpm(1000))];
    let mut a = pair.admit(&checks, 400).await.unwrap();
    let remaining = || async { pair.admit(&checks, 0).await.unwrap().shared.quota().tokens.unwrap().remaining };
    assert_about(remaining().await, 600);
    pair.reconcile(&mut a, 100).await;
    assert_about(remaining().await, 900);
    pair.reconcile(&mut a, 700).await;
    assert_about(remaining().await, 300);
    pair.reconcile(&mut a, 1500).await;
    assert_eq!(remaining().await, 0);
    // 500 tokens of debt: even one token waits for them, then its own 60 ms.
    let refused = pair.admit(&checks, 1).await.unwrap_err();
    assert!(close(refused.retry_after.unwrap(), Duration::from_millis(30_060)), "{refused:?}");
    pair.reconcile(&mut a, 0).await;
    assert_eq!(remaining().await, 1000);
}

#[tokio::test]
async fn quota_shows_the_tightest_scope_per_dimension() {
    let pair = pair_or_skip!();
    let key = check("key:k1", Limits { rpm: Some(10), tpm: Some(50_000), max_concurrent: None });
    let tenant = check("tenant:acme", Limits { rpm: Some(100), tpm: Some(1000), max_concurrent: None });
    for _ in 0..95 {
        pair.admit(std::slice::from_ref(&tenant), 0).await.unwrap();
    }
    let a = pair.admit(&[key, tenant], 100).await.unwrap();
    let requests = a.shared.quota().requests.unwrap();
    assert_eq!((requests.limit, requests.remaining), (100, 4));
    let tokens = a.shared.quota().tokens.unwrap();
    assert_eq!(tokens.limit, 1000);
    assert_about(tokens.remaining, 900);
}

#[tokio::test]
async fn no_limits_cost_no_round_trip() {
    let pair = pair_or_skip!();
    let a = pair.admit(&[check("key:free", Limits::default())], 10).await.unwrap();
    assert_eq!(*a.shared.quota(), Quota::default());
}

/// `limiter.lua`'s GCRA functions, run on `ARGV` by a harness that
/// replaces the script's body: `c tat now cost limit` (check) or
/// `a tat now reserved actual limit` (adjust), repeated.
fn gcra_harness() -> String {
    let script = include_str!("limiter.lua");
    let functions = &script[..script.find("local t = redis.call('TIME')").unwrap()];
    format!(
        "{functions}
local out, i = {{}}, 1
while i <= #ARGV do
  local a = {{}}
  for j = 1, 5 do a[j] = tonumber(ARGV[i + j]) end
  if ARGV[i] == 'c' then
    local ok, tat, rem, reset, retry = check(a[1], a[2], a[3], a[4])
    for _, v in ipairs({{ ok and 1 or 0, tat, rem, reset, retry }}) do out[#out + 1] = v end
    i = i + 5
  else
    out[#out + 1] = adjust(a[1], a[2], a[3], a[4], a[5])
    i = i + 6
  end
end
return out"
    )
}

/// The port is line for line: on random inputs within the documented
/// exact range (times below 2^53 µs, costs and limits below 1.5e8), the
/// script's figures are gcra.rs's, to the µs and the unit.
#[tokio::test]
async fn the_script_computes_what_gcra_rs_computes() {
    use switchyard_core::limits::{gcra, WINDOW_US};
    let Some(config) = test_config() else { return };
    let mut conn = redis::Client::open(config.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let harness = redis::Script::new(&gcra_harness());
    let mut rng = fastrand::Rng::with_seed(0x6c7561);
    for _ in 0..20 {
        let mut call = harness.prepare_invoke();
        let mut expected: Vec<i64> = Vec::new();
        for _ in 0..100 {
            let now = rng.i64(1_700_000_000_000_000..1_900_000_000_000_000);
            let tat = match rng.u8(0..4) {
                0 => 0,
                _ => now + rng.i64(-2 * WINDOW_US..=3 * WINDOW_US),
            };
            let limit = match rng.u8(0..3) {
                0 => rng.u64(0..=100),
                1 => rng.u64(0..=100_000),
                _ => rng.u64(0..150_000_000),
            };
            let cost = |rng: &mut fastrand::Rng| match rng.u8(0..8) {
                0 => 0,
                1 => limit + rng.u64(0..=limit.max(1)),
                _ => rng.u64(0..=limit),
            };
            if rng.bool() {
                let c = cost(&mut rng);
                call.arg("c").arg(tat).arg(now).arg(c).arg(limit);
                let o = gcra::check(tat, now, c, limit, WINDOW_US);
                let remaining = i64::try_from(o.remaining).unwrap();
                expected.extend([
                    i64::from(o.allowed),
                    o.new_tat,
                    remaining,
                    o.reset_us,
                    o.retry_after_us.unwrap_or(-1),
                ]);
            } else {
                let (reserved, actual) = (cost(&mut rng), cost(&mut rng));
                call.arg("a").arg(tat).arg(now).arg(reserved).arg(actual).arg(limit);
                expected.push(gcra::adjust(tat, now, reserved, actual, limit, WINDOW_US));
            }
        }
        let got: Vec<i64> = call.invoke_async(&mut conn).await.unwrap();
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn two_replicas_together_admit_exactly_the_limit() {
    let Some(config) = test_config() else { return };
    let replicas = [RedisLimiter::connect(&config).await.unwrap(), RedisLimiter::connect(&config).await.unwrap()];
    let replicas = replicas.map(Arc::new);
    let checks: Arc<[Check]> = Arc::from([check("tenant:acme", rpm(100)), check("key:k1", tpm(1_000_000))]);
    let mut tasks = Vec::new();
    for replica in &replicas {
        for _ in 0..200 {
            let (replica, checks) = (replica.clone(), checks.clone());
            tasks.push(tokio::spawn(async move { replica.admit(&checks, 10).await.unwrap().is_ok() }));
        }
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 100);
}

#[tokio::test]
async fn an_unreleased_lease_expires() {
    let Some(url) = server_url() else { return };
    let lease = Duration::from_millis(300);
    let config = config(&url, lease);
    let limiter = RedisLimiter::connect(&config).await.unwrap();
    let checks = [check("key:k1", concurrent(1))];
    let started = Instant::now();
    // A replica that dies holding its slot: the grant is never released.
    let _lost = limiter.admit(&checks, 0).await.unwrap().unwrap();
    assert_eq!(limiter.admit(&checks, 0).await.unwrap().unwrap_err().dimension, Dimension::Concurrency);
    // The lease set lives no longer than the lease.
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = conn.pttl(format!("{}:rc:key:k1", config.key_prefix)).await.unwrap();
    assert!(ttl > 0 && ttl <= 301, "pttl {ttl}");
    loop {
        if limiter.admit(&checks, 0).await.unwrap().is_ok() {
            break;
        }
        assert!(started.elapsed() < 5 * lease, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= lease);
}

#[tokio::test]
async fn idle_scopes_vanish() {
    let Some(config) = test_config() else { return };
    let limiter = RedisLimiter::connect(&config).await.unwrap();
    limiter
        .admit(&[check("key:k1", Limits { rpm: Some(60), tpm: Some(600), ..Limits::default() })], 30)
        .await
        .unwrap()
        .unwrap();
    let mut conn = redis::Client::open(config.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    // The furthest TAT is 3 s ahead (30 of 600 per minute): then 1 s of slack.
    let ttl: i64 = conn.pttl(format!("{}:rl:key:k1", config.key_prefix)).await.unwrap();
    assert!((2_900..=4_000).contains(&ttl), "pttl {ttl}");
}

/// A port nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_and_the_limiter_falls_back() {
    let mut config = config(&closed_port_url(), 60 * SECOND);
    config.timeout = switchyard_config::Duration(Duration::from_millis(100));
    let started = Instant::now();
    let limiter = Arc::new(RedisLimiter::connect(&config).await.unwrap());
    assert!(started.elapsed() < 2 * SECOND, "connect took {:?}", started.elapsed());
    let checks = [check("key:k1", rpm(1))];
    for _ in 0..5 {
        let started = Instant::now();
        let down = limiter.admit(&checks, 0).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(300), "{:?}: {down:?}", started.elapsed());
    }
    let open = Limiter::shared(limiter.clone(), FailureMode::Local);
    let mut fell_back = 0;
    assert!(open.admit(&checks, 0, |_| fell_back += 1).await.is_ok());
    assert!(matches!(open.admit(&checks, 0, |_| fell_back += 1).await, Err(NotAdmitted::Refused(_))));
    assert_eq!(fell_back, 2);
    let closed = Limiter::shared(limiter, FailureMode::Closed);
    assert!(matches!(closed.admit(&checks, 0, |_| {}).await, Err(NotAdmitted::Unavailable(_))));
}

/// Admits until Redis answers again (each failure pauses the limiter
/// for a moment); fails after `within`. Answers Redis's decision.
async fn admit_until_answered(limiter: &RedisLimiter, checks: &[Check], within: Duration) -> Result<Grant, Refusal> {
    let deadline = Instant::now() + within;
    loop {
        match limiter.admit(checks, 0).await {
            Ok(decision) => return decision,
            Err(down) => assert!(Instant::now() < deadline, "redis never answered again: {down:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_dropped_connection_is_replaced() {
    let Some(config) = test_config() else { return };
    let limiter = RedisLimiter::connect(&config).await.unwrap();
    let checks = [check("key:k1", rpm(1000))];
    limiter.admit(&checks, 0).await.unwrap().unwrap();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut limiter.connection()).await.unwrap();
    let mut admin = redis::Client::open(config.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(&mut admin).await.unwrap();
    assert_eq!(killed, 1);
    admit_until_answered(&limiter, &checks, 5 * SECOND).await.unwrap();
}

/// A Redis of the test's own on a free port (`redis-server` on the PATH),
/// stopped when dropped.
struct OwnServer(std::process::Child);

impl OwnServer {
    fn start(url: &str) -> Option<OwnServer> {
        let port = url.rsplit(':').next()?;
        let child = std::process::Command::new("redis-server")
            .args(["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        Some(OwnServer(child))
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_redis_down_at_start_is_used_once_it_is_up() {
    if server_url().is_none() {
        return;
    }
    let mut config = config(&closed_port_url(), 60 * SECOND);
    config.timeout = switchyard_config::Duration(Duration::from_millis(200));
    let limiter = RedisLimiter::connect(&config).await.unwrap();
    let checks = [check("key:k1", rpm(1))];
    assert!(limiter.admit(&checks, 0).await.is_err());
    let Some(_server) = OwnServer::start(&config.url) else {
        eprintln!("skipped: needs redis-server on the PATH");
        return;
    };
    admit_until_answered(&limiter, &checks, 10 * SECOND).await.unwrap();
    // Counted in Redis from now on.
    assert!(limiter.admit(&checks, 0).await.unwrap().is_err());
}

#[tokio::test]
async fn a_slot_taken_after_a_timeout_is_freed() {
    if server_url().is_none() {
        return;
    }
    // A server of our own: pausing it must not slow other tests down.
    let mut config = config(&closed_port_url(), 60 * SECOND);
    config.timeout = switchyard_config::Duration(Duration::from_millis(100));
    let Some(_server) = OwnServer::start(&config.url) else {
        eprintln!("skipped: needs redis-server on the PATH");
        return;
    };
    let limiter = RedisLimiter::connect(&config).await.unwrap();
    admit_until_answered(&limiter, &[check("key:warm", rpm(10))], 10 * SECOND).await.unwrap();
    let mut admin = redis::Client::open(config.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(400).arg("WRITE").query_async(&mut admin).await.unwrap();
    let checks = [check("key:k1", concurrent(1))];
    // The script runs once the pause ends, after we stopped waiting: its
    // slot would be held for the whole lease (a minute) if not freed.
    assert!(limiter.admit(&checks, 0).await.is_err());
    admit_until_answered(&limiter, &checks, 10 * SECOND).await.expect("the slot is free");
}

#[tokio::test]
async fn a_malformed_url_is_an_error() {
    let config = config("http://nope", SECOND);
    assert!(RedisLimiter::connect(&config).await.is_err());
    assert!(RedisFeed::connect(&config).await.is_err());
}

async fn next(received: &mut tokio::sync::mpsc::UnboundedReceiver<i64>) -> i64 {
    tokio::time::timeout(10 * SECOND, received.recv()).await.expect("no announcement arrived").unwrap()
}

/// Subscribers on `channel`, as Redis counts them.
async fn subscribers(conn: &mut redis::aio::MultiplexedConnection, channel: &str) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query_async(conn).await.unwrap();
    n
}

/// Ids of the server's pub/sub clients.
async fn pubsub_clients(conn: &mut redis::aio::MultiplexedConnection) -> Vec<i64> {
    let list: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub").query_async(conn).await.unwrap();
    list.lines().filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok()).collect()
}

async fn wait_for_subscriber(conn: &mut redis::aio::MultiplexedConnection, channel: &str) {
    let deadline = Instant::now() + 10 * SECOND;
    while subscribers(conn, channel).await < 1 {
        assert!(Instant::now() < deadline, "no subscriber on {channel}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn announcements_reach_subscribers_across_reconnects() {
    let Some(config) = test_config() else { return };
    let channel = format!("{}:directory", config.key_prefix);
    let mut admin = redis::Client::open(config.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let (seen, mut received) = tokio::sync::mpsc::unbounded_channel();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let others = pubsub_clients(&mut admin).await;
    let subscriber = RedisFeed::subscribe(&config, move |seq| seen.send(seq).unwrap(), shutdown).unwrap();
    let feed = RedisFeed::connect(&config).await.unwrap();

    wait_for_subscriber(&mut admin, &channel).await;
    feed.announce(41);
    feed.announce(42);
    assert_eq!(next(&mut received).await, 41);
    assert_eq!(next(&mut received).await, 42);

    // The server drops the subscriber's connection: it comes back.
    // Only ours: other tests may hold subscriptions on this server.
    let ours: Vec<i64> = pubsub_clients(&mut admin).await.into_iter().filter(|id| !others.contains(id)).collect();
    assert_eq!(ours.len(), 1, "our subscriber among {ours:?}");
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(ours[0]).query_async(&mut admin).await.unwrap();
    assert_eq!(killed, 1);
    wait_for_subscriber(&mut admin, &channel).await;
    feed.announce(43);
    assert_eq!(next(&mut received).await, 43);

    stop.send(true).unwrap();
    tokio::time::timeout(5 * SECOND, subscriber).await.expect("the subscriber did not stop").unwrap();
}

/// Median and 99th percentile of one admission's round trip on this
/// server (run with `--run-ignored only`; prints its figures).
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn admit_round_trip_latency() {
    let Some(config) = test_config() else { return };
    let limiter = RedisLimiter::connect(&config).await.unwrap();
    let checks = [
        check("key:k1", Limits { rpm: Some(1_000_000), tpm: Some(100_000_000), max_concurrent: None }),
        check("tenant:acme", Limits { rpm: Some(1_000_000), tpm: Some(100_000_000), max_concurrent: Some(100) }),
    ];
    let mut times = Vec::with_capacity(1000);
    for _ in 0..1100 {
        let started = Instant::now();
        let grant = limiter.admit(&checks, 100).await.unwrap().unwrap();
        times.push(started.elapsed());
        limiter.release(&grant);
    }
    let mut times = times.split_off(100);
    times.sort();
    eprintln!(
        "admit round trip over {} calls: median {:?}, p99 {:?}, max {:?}",
        times.len(),
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );
}
