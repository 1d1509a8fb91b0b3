//! The in-process limiter: per-scope GCRA state in 16 mutex-guarded shards.
//!
//! Invariants a reader must keep:
//! - An admission locks every shard its scopes live in, in index order (so
//!   two admissions never wait on each other in a cycle), decides on
//!   working copies, and writes back only when every check passed: a
//!   refusal consumes nothing.
//! - A scope's state lives while its TATs are in the future or it holds a
//!   concurrency slot; an occasional sweep drops the rest, so the maps stay
//!   bounded by the scopes active in the last window.
//! - A poisoned mutex is recovered, not propagated: the state is a few
//!   integers that are valid after any partial update.

use super::{gcra, Check, Dimension, Quota, Refusal, Window, WINDOW_US};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// Admissions between two sweeps of idle scopes (a power of two: the
/// counter is tested with a mask).
const SWEEP_EVERY: u64 = 4096;
const _: () = assert!(SWEEP_EVERY.is_power_of_two());
/// When a concurrency refusal suggests trying again: slots free when
/// requests end, which no clock predicts.
const CONCURRENCY_RETRY: Duration = Duration::from_secs(1);

/// One scope's state. A TAT at or before now means "nothing used".
#[derive(Clone, Copy, Debug, Default)]
struct State {
    requests_tat: i64,
    tokens_tat: i64,
    in_flight: u64,
}

impl State {
    fn is_idle(&self, now: i64) -> bool {
        self.requests_tat <= now && self.tokens_tat <= now && self.in_flight == 0
    }
}

type Map = HashMap<Arc<str>, State, BuildHasherDefault<Fnv>>;

/// FNV-1a. Scope names are made by the gateway (ids, configured route
/// names), never by clients, so a keyed hash buys nothing here; SipHash cost
/// ~400 instructions per scope per request (bench/callgrind.sh).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Shared {
    /// µs are counted from here.
    epoch: Instant,
    shards: [Mutex<Map>; SHARDS],
    admits: AtomicU64,
}

impl Shared {
    fn micros(&self, now: Instant) -> i64 {
        i64::try_from(now.saturating_duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX)
    }

    fn shard_of(scope: &str) -> usize {
        let mut hasher = Fnv::default();
        hasher.write(scope.as_bytes());
        // The high bits: FNV's low bits mix the last bytes least.
        (hasher.finish() >> 60) as usize % SHARDS
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Map> {
        self.shards[shard].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sweep(&self, now: i64) {
        for shard in 0..SHARDS {
            self.lock(shard).retain(|_, state| !state.is_idle(now));
        }
    }
}

/// The in-process rate limiter. Cheap to share by reference; admissions keep
/// what they need alive on their own.
pub struct LocalLimiter {
    shared: Arc<Shared>,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LocalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLimiter").field("scopes", &self.scopes()).finish()
    }
}

impl LocalLimiter {
    pub fn new() -> Self {
        let shared = Shared {
            epoch: Instant::now(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::default())),
            admits: AtomicU64::new(0),
        };
        LocalLimiter { shared: Arc::new(shared) }
    }

    /// Checks every scope; admits only if all pass, consuming 1 request and
    /// `tokens` tokens in each scope with rpm/tpm, and one concurrency slot
    /// in each scope with max_concurrent. Refused: nothing is consumed, and
    /// the refusal is the one with the longest wait (never, first).
    pub fn admit(&self, checks: &[Check], tokens: u64, now: Instant) -> Result<LocalAdmission, Refusal> {
        let shared = &self.shared;
        let now_us = shared.micros(now);
        let checks: Vec<&Check> = checks.iter().filter(|c| !c.limits.is_empty()).collect();

        let mut wanted = [false; SHARDS];
        for check in &checks {
            wanted[Shared::shard_of(&check.scope)] = true;
        }
        // Locked in index order; see the module doc.
        let mut guards: [Option<MutexGuard<'_, Map>>; SHARDS] = Default::default();
        for (shard, guard) in guards.iter_mut().enumerate() {
            if wanted[shard] {
                *guard = Some(shared.lock(shard));
            }
        }
        let stored = |guards: &[Option<MutexGuard<'_, Map>>; SHARDS], scope: &Arc<str>| {
            guards[Shared::shard_of(scope)].as_ref().and_then(|map| map.get(scope)).copied().unwrap_or_default()
        };

        // Decide on working copies, one per distinct scope (a scope listed
        // twice is charged twice).
        let mut work: Vec<(Arc<str>, State)> = Vec::with_capacity(checks.len());
        let mut tally = Tally::default();
        for check in &checks {
            let index = match work.iter().position(|(scope, _)| *scope == check.scope) {
                Some(index) => index,
                None => {
                    work.push((check.scope.clone(), stored(&guards, &check.scope)));
                    work.len() - 1
                }
            };
            tally.charge(&mut work[index].1, check, tokens, now_us);
        }
        if let Some(mut refusal) = tally.refusal {
            refusal.quota = peek(&checks, now_us, |scope| stored(&guards, scope));
            return Err(refusal);
        }
        for (scope, state) in work {
            if let Some(map) = guards[Shared::shard_of(&scope)].as_mut() {
                map.insert(scope, state);
            }
        }
        drop(guards);

        let admits = shared.admits.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if admits & (SWEEP_EVERY - 1) == 0 {
            shared.sweep(now_us);
        }
        let Tally { quota, slots, token_scopes, .. } = tally;
        Ok(LocalAdmission { shared: shared.clone(), slots, token_scopes, reserved: tokens, quota })
    }

    /// Number of scopes held in memory.
    pub fn scopes(&self) -> usize {
        (0..SHARDS).map(|shard| self.shared.lock(shard).len()).sum()
    }
}

/// What one admission has charged so far, or why it is refused.
#[derive(Default)]
struct Tally {
    /// After the charges (for an admission).
    quota: Quota,
    slots: Vec<Arc<str>>,
    token_scopes: Vec<(Arc<str>, u64)>,
    /// The longest wait of the refused checks.
    refusal: Option<Refusal>,
}

impl Tally {
    /// Charges one check's dimensions to `state` (a working copy, dropped
    /// if anything refuses).
    fn charge(&mut self, state: &mut State, check: &Check, tokens: u64, now: i64) {
        let Check { scope, limits } = check;
        if let Some(limit) = limits.rpm {
            let o = gcra::check(state.requests_tat, now, 1, limit, WINDOW_US);
            if o.allowed {
                state.requests_tat = o.new_tat;
                Quota::tighten(&mut self.quota.requests, Window::of(limit, &o));
            } else {
                self.refuse(scope, Dimension::Requests, limit, wait(o.retry_after_us));
            }
        }
        if let Some(limit) = limits.tpm {
            let o = gcra::check(state.tokens_tat, now, tokens, limit, WINDOW_US);
            if o.allowed {
                state.tokens_tat = o.new_tat;
                Quota::tighten(&mut self.quota.tokens, Window::of(limit, &o));
                self.token_scopes.push((scope.clone(), limit));
            } else {
                self.refuse(scope, Dimension::Tokens, limit, wait(o.retry_after_us));
            }
        }
        if let Some(max) = limits.max_concurrent {
            if state.in_flight < max {
                state.in_flight += 1;
                self.slots.push(scope.clone());
            } else {
                self.refuse(scope, Dimension::Concurrency, max, (max > 0).then_some(CONCURRENCY_RETRY));
            }
        }
    }

    fn refuse(&mut self, scope: &Arc<str>, dimension: Dimension, limit: u64, retry_after: Option<Duration>) {
        let refusal = Refusal { scope: scope.clone(), dimension, limit, retry_after, quota: Quota::default() };
        if self.refusal.as_ref().is_none_or(|worst| refusal.outlasts(worst)) {
            self.refusal = Some(refusal);
        }
    }
}

fn wait(retry_after_us: Option<i64>) -> Option<Duration> {
    retry_after_us.map(|us| Duration::from_micros(u64::try_from(us).unwrap_or(0)))
}

/// The quota as it stands, nothing consumed: what a refused client is told.
fn peek(checks: &[&Check], now: i64, state_of: impl Fn(&Arc<str>) -> State) -> Quota {
    let mut quota = Quota::default();
    for check in checks {
        let state = state_of(&check.scope);
        if let Some(limit) = check.limits.rpm {
            let o = gcra::check(state.requests_tat, now, 0, limit, WINDOW_US);
            Quota::tighten(&mut quota.requests, Window::of(limit, &o));
        }
        if let Some(limit) = check.limits.tpm {
            let o = gcra::check(state.tokens_tat, now, 0, limit, WINDOW_US);
            Quota::tighten(&mut quota.tokens, Window::of(limit, &o));
        }
    }
    quota
}

/// An admitted request: holds its concurrency slots (released on drop) and
/// remembers its token reservation. `Send + 'static`, so it can live in a
/// response stream.
pub struct LocalAdmission {
    shared: Arc<Shared>,
    /// Scopes where this request holds a slot (a scope listed twice, twice).
    slots: Vec<Arc<str>>,
    /// Scopes with a tpm limit, and that limit at admission.
    token_scopes: Vec<(Arc<str>, u64)>,
    /// Tokens charged so far in each of `token_scopes`.
    reserved: u64,
    quota: Quota,
}

impl std::fmt::Debug for LocalAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdmission")
            .field("slots", &self.slots)
            .field("token_scopes", &self.token_scopes)
            .field("reserved", &self.reserved)
            .field("quota", &self.quota)
            .finish()
    }
}

impl LocalAdmission {
    /// The figures at admission (after this request's charge).
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The request's real token count is known: charge the difference from
    /// the reservation (refund when smaller, charge extra when larger —
    /// never refuses; a later request pays). May be called again with a
    /// newer count.
    pub fn reconcile(&mut self, actual_tokens: u64, now: Instant) {
        if actual_tokens == self.reserved {
            return;
        }
        let now_us = self.shared.micros(now);
        for (scope, limit) in &self.token_scopes {
            let mut map = self.shared.lock(Shared::shard_of(scope));
            // A swept scope is re-created: its TAT was in the past anyway.
            let state = map.entry(scope.clone()).or_default();
            state.tokens_tat = gcra::adjust(state.tokens_tat, now_us, self.reserved, actual_tokens, *limit, WINDOW_US);
        }
        self.reserved = actual_tokens;
    }
}

impl Drop for LocalAdmission {
    fn drop(&mut self) {
        for scope in &self.slots {
            let mut map = self.shared.lock(Shared::shard_of(scope));
            if let Some(state) = map.get_mut(scope) {
                state.in_flight = state.in_flight.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::Limits;
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

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

    /// A limiter and a base instant at or after its epoch.
    fn limiter() -> (LocalLimiter, Instant) {
        let limiter = LocalLimiter::new();
        let base = Instant::now();
        (limiter, base)
    }

    #[test]
    fn admissions_live_across_awaits() {
        fn send_static<T: Send + 'static>() {}
        send_static::<LocalAdmission>();
        send_static::<Refusal>();
    }

    #[test]
    fn rpm_allows_a_burst_then_one_per_interval() {
        let (limiter, base) = limiter();
        let checks = [check("key:k1", rpm(60))];
        for i in 0..60 {
            let a = limiter.admit(&checks, 0, base).unwrap();
            assert_eq!(a.quota().requests.unwrap().remaining, 59 - i);
        }
        let refused = limiter.admit(&checks, 0, base).unwrap_err();
        assert_eq!((refused.dimension, refused.limit, &*refused.scope), (Dimension::Requests, 60, "key:k1"));
        assert_eq!(refused.retry_after, Some(SECOND));
        assert_eq!(refused.quota.requests, Some(Window { limit: 60, remaining: 0, reset: 60 * SECOND }));

        let later = base + SECOND;
        assert!(limiter.admit(&checks, 0, later - Duration::from_micros(1)).is_err());
        assert!(limiter.admit(&checks, 0, later).is_ok());
        assert_eq!(limiter.admit(&checks, 0, later).unwrap_err().retry_after, Some(SECOND));
    }

    #[test]
    fn tpm_charges_the_cost() {
        let (limiter, base) = limiter();
        let checks = [check("tenant:acme", tpm(1000))];
        let a = limiter.admit(&checks, 600, base).unwrap();
        assert_eq!(a.quota().tokens, Some(Window { limit: 1000, remaining: 400, reset: 36 * SECOND }));
        let refused = limiter.admit(&checks, 500, base).unwrap_err();
        assert_eq!(refused.dimension, Dimension::Tokens);
        // 100 tokens must drain: 100 × 60 ms.
        assert_eq!(refused.retry_after, Some(Duration::from_secs(6)));
        assert!(limiter.admit(&checks, 500, base + Duration::from_secs(6)).is_ok());
    }

    #[test]
    fn a_request_larger_than_the_tpm_limit_never_passes() {
        let (limiter, base) = limiter();
        let checks = [check("tenant:acme", tpm(1000))];
        let refused = limiter.admit(&checks, 1001, base).unwrap_err();
        assert_eq!((refused.dimension, refused.retry_after), (Dimension::Tokens, None));
        assert!(refused.message().contains("needs more tokens than the limit allows"));
        assert_eq!(refused.quota.tokens.unwrap().remaining, 1000);
    }

    #[test]
    fn zero_tokens_always_pass() {
        let (limiter, base) = limiter();
        let checks = [check("tenant:acme", tpm(1000))];
        limiter.admit(&checks, 1000, base).unwrap();
        assert!(limiter.admit(&checks, 1, base).is_err());
        for _ in 0..3 {
            let a = limiter.admit(&checks, 0, base).unwrap();
            assert_eq!(a.quota().tokens.unwrap().remaining, 0);
        }
    }

    #[test]
    fn a_refusal_consumes_nothing_anywhere() {
        let (limiter, base) = limiter();
        let key = check("key:k1", Limits { rpm: Some(10), tpm: Some(100), max_concurrent: Some(5) });
        let route = check("route:acme:chat", rpm(1));
        let _first = limiter.admit(&[key.clone(), route.clone()], 10, base).unwrap();

        let refused = limiter.admit(&[key.clone(), route], 10, base).unwrap_err();
        assert_eq!(&*refused.scope, "route:acme:chat");
        // The key's figures are what they were after the first request.
        let a = limiter.admit(&[key], 0, base).unwrap();
        assert_eq!(a.quota().requests.unwrap().remaining, 8);
        assert_eq!(a.quota().tokens.unwrap().remaining, 90);
        let held = limiter.shared.lock(Shared::shard_of("key:k1")).get("key:k1").unwrap().in_flight;
        assert_eq!(held, 2);
    }

    #[test]
    fn the_longest_wait_is_reported() {
        let (limiter, base) = limiter();
        let fast = check("key:fast", rpm(60));
        let slow = check("tenant:slow", rpm(1));
        limiter.admit(&[fast.clone(), slow.clone()], 0, base).unwrap();
        for _ in 0..59 {
            limiter.admit(std::slice::from_ref(&fast), 0, base).unwrap();
        }
        let refused = limiter.admit(&[fast, slow], 0, base).unwrap_err();
        assert_eq!((&*refused.scope, refused.retry_after), ("tenant:slow", Some(60 * SECOND)));
        assert_eq!(refused.quota.requests.unwrap().remaining, 0);
    }

    #[test]
    fn concurrency_slots_are_held_until_drop() {
        let (limiter, base) = limiter();
        let checks = [check("key:k1", concurrent(2))];
        let first = limiter.admit(&checks, 0, base).unwrap();
        let _second = limiter.admit(&checks, 0, base).unwrap();
        let refused = limiter.admit(&checks, 0, base).unwrap_err();
        assert_eq!((refused.dimension, refused.limit), (Dimension::Concurrency, 2));
        assert_eq!(refused.retry_after, Some(CONCURRENCY_RETRY));
        drop(first);
        let _third = limiter.admit(&checks, 0, base).unwrap();
        assert!(limiter.admit(&checks, 0, base).is_err());

        let closed = [check("key:k2", concurrent(0))];
        assert_eq!(limiter.admit(&closed, 0, base).unwrap_err().retry_after, None);
    }

    #[test]
    fn reconcile_refunds_and_charges() {
        let (limiter, base) = limiter();
        let checks = [check("key:k1", tpm(1000))];
        let remaining = || limiter.admit(&checks, 0, base).unwrap().quota().tokens.unwrap().remaining;
        let mut a = limiter.admit(&checks, 400, base).unwrap();
        assert_eq!(remaining(), 600);
        a.reconcile(100, base);
        assert_eq!(remaining(), 900);
        a.reconcile(700, base);
        assert_eq!(remaining(), 300);
        a.reconcile(1500, base);
        assert_eq!(remaining(), 0);
        // 500 tokens of debt: even one token waits for them, then its own 60 ms.
        let refused = limiter.admit(&checks, 1, base).unwrap_err();
        assert_eq!(refused.retry_after, Some(Duration::from_millis(30_060)));
        a.reconcile(0, base);
        assert_eq!(remaining(), 1000);
    }

    #[test]
    fn quota_shows_the_tightest_scope_per_dimension() {
        let (limiter, base) = limiter();
        let key = check("key:k1", Limits { rpm: Some(10), tpm: Some(50_000), max_concurrent: None });
        let tenant = check("tenant:acme", Limits { rpm: Some(100), tpm: Some(1000), max_concurrent: None });
        for _ in 0..95 {
            limiter.admit(std::slice::from_ref(&tenant), 0, base).unwrap();
        }
        let a = limiter.admit(&[key, tenant], 100, base).unwrap();
        assert_eq!(a.quota().requests, Some(Window { limit: 100, remaining: 4, reset: Duration::from_millis(57_600) }));
        assert_eq!(a.quota().tokens, Some(Window { limit: 1000, remaining: 900, reset: 6 * SECOND }));
    }

    #[test]
    fn the_sweep_drops_idle_scopes_only() {
        let (limiter, base) = limiter();
        let _held = limiter.admit(&[check("key:busy", concurrent(1))], 0, base).unwrap();
        let done = limiter.admit(&[check("key:done", concurrent(1))], 0, base).unwrap();
        drop(done);
        limiter.admit(&[check("key:recent", rpm(60))], 0, base).unwrap();
        assert_eq!(limiter.scopes(), 3);

        limiter.shared.sweep(limiter.shared.micros(base));
        assert_eq!(limiter.scopes(), 2, "only key:done is idle");
        limiter.shared.sweep(limiter.shared.micros(base + SECOND));
        assert_eq!(limiter.scopes(), 1, "key:recent has refilled");
        drop(_held);
        limiter.shared.sweep(limiter.shared.micros(base + SECOND));
        assert_eq!(limiter.scopes(), 0);
    }

    #[test]
    fn admissions_trigger_the_sweep() {
        let (limiter, base) = limiter();
        limiter.admit(&[check("key:old", rpm(60))], 0, base).unwrap();
        let later = base + 2 * SECOND;
        let busy = [check("key:busy", rpm(1_000_000))];
        for _ in 0..SWEEP_EVERY - 2 {
            limiter.admit(&busy, 0, later).unwrap();
        }
        assert_eq!(limiter.scopes(), 2);
        limiter.admit(&busy, 0, later).unwrap();
        assert_eq!(limiter.scopes(), 1);
    }

    #[test]
    #[allow(clippy::panic)]
    fn a_poisoned_shard_still_works() {
        let (limiter, base) = limiter();
        let checks = [check("key:k1", rpm(2))];
        limiter.admit(&checks, 0, base).unwrap();
        let shard = Shared::shard_of("key:k1");
        let shared = limiter.shared.clone();
        let _ = std::thread::spawn(move || {
            let _guard = shared.lock(shard);
            panic!("poison the shard");
        })
        .join();
        assert!(limiter.shared.shards[shard].is_poisoned());
        assert!(limiter.admit(&checks, 0, base).is_ok());
        assert!(limiter.admit(&checks, 0, base).is_err());
    }

    #[test]
    fn threads_together_get_exactly_the_limit() {
        let (limiter, base) = limiter();
        let checks = [check("tenant:acme", rpm(1000)), check("key:k1", Limits::default())];
        let admitted: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1000).filter(|_| limiter.admit(&checks, 0, base).is_ok()).count()))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(admitted, 1000);
    }

    /// Random admits and reconciles against one tpm limit. At every
    /// admission of a positive cost, the tokens charged so far (actuals of earlier requests,
    /// this one's reservation) stay within `L · (t + W) / W`, plus under
    /// 1 µs of rounding per request (see `gcra`).
    #[test]
    fn random_traffic_never_beats_the_rate() {
        let mut rng = fastrand::Rng::with_seed(0x5717c4);
        let (mut admitted, mut refused) = (0, 0);
        for _ in 0..20 {
            let (limiter, base) = limiter();
            let limit = rng.u64(1..=5000);
            let checks = [check("tenant:acme", tpm(limit))];
            let (mut elapsed, mut charged, mut requests) = (Duration::ZERO, 0u128, 0u128);
            for _ in 0..2000 {
                elapsed += match rng.u8(0..50) {
                    0 => Duration::from_micros(rng.u64(0..120_000_000)),
                    1..=9 => Duration::ZERO,
                    _ => Duration::from_micros(rng.u64(0..200_000)),
                };
                let now = base + elapsed;
                let cost = if rng.u8(0..20) == 0 { rng.u64(0..=limit * 2) } else { rng.u64(0..=limit / 4) };
                match limiter.admit(&checks, cost, now) {
                    Ok(mut a) => {
                        admitted += 1;
                        requests += 1;
                        charged += u128::from(cost);
                        let t = u128::try_from(limiter.shared.micros(now)).unwrap();
                        let w = WINDOW_US as u128;
                        // A zero cost passes even a bucket in debt: it checks nothing.
                        let bound = u128::from(limit) * (t + w + requests);
                        assert!(cost == 0 || charged * w <= bound, "limit {limit} at {t} µs");
                        if rng.bool() {
                            let actual = rng.u64(0..=cost.saturating_mul(2));
                            a.reconcile(actual, now);
                            charged = charged - u128::from(cost) + u128::from(actual);
                        }
                    }
                    Err(r) => {
                        refused += 1;
                        assert!(cost > 0);
                        assert_eq!(r.retry_after.is_none(), cost > limit);
                    }
                }
            }
        }
        assert!(admitted > 1000 && refused > 1000, "admitted {admitted}, refused {refused}");
    }
}
