//! The in-process budget ledger: spend per (scope, period, window start) in
//! 16 mutex-guarded shards.
//!
//! Invariants a reader must keep:
//! - A reservation locks every shard its scopes live in, in index order (so
//!   two reservations never wait on each other in a cycle), checks every cap
//!   against the stored spend, and writes only when every check passed: a
//!   refusal changes nothing.
//! - Caps naming the same scope and period share one account (one
//!   [`Spend`] per window), charged once per reservation however many caps
//!   check it.
//! - A [`Hold`] remembers the exact keys it reserved under, so it settles in
//!   those windows whatever the clock says when the request ends.
//! - A window lives while it is the current or the previous one, or holds a
//!   reservation; an occasional sweep drops the rest, so the maps stay
//!   bounded by the scopes active in the last two periods.
//! - A poisoned mutex is recovered, not propagated: a [`Spend`] is four
//!   integers, each valid after any partial update.

use super::period::{self, Period, Window, Zone};
use super::shared::Hold;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const SHARDS: usize = 16;
/// Reservations between two sweeps of old windows (a power of two: the
/// counter is tested with a mask).
const SWEEP_EVERY: u64 = 4096;
const _: () = assert!(SWEEP_EVERY.is_power_of_two());

/// One budget to check: who, which period, the caps (None = no cap on that
/// dimension), and what a refusal turns into.
#[derive(Clone, Debug)]
pub struct Cap {
    pub scope: Arc<str>,
    pub period: Period,
    pub max_nanos: Option<i64>,
    pub max_tokens: Option<u64>,
    pub action: Action,
    /// `false`: reserved and committed like any other (spend is counted,
    /// alerts fire) but never refused — a budget whose action let the
    /// request through anyway.
    pub enforce: bool,
}

/// What a request that would pass a budget gets (`OnExceed` in the
/// directory's model).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// 429 `insufficient_quota`.
    Block,
    /// Served from this route instead.
    Downgrade(Arc<str>),
    /// Let through at this many requests per minute (per budget scope).
    Throttle(u64),
}

impl Cap {
    fn is_empty(&self) -> bool {
        self.max_nanos.is_none() && self.max_tokens.is_none()
    }
}

/// One scope's account in one window. Committed amounts are what finished
/// requests spent (and what was seeded); reserved amounts are held by
/// requests in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spend {
    pub committed_nanos: i64,
    pub reserved_nanos: i64,
    pub committed_tokens: u64,
    pub reserved_tokens: u64,
}

impl Spend {
    /// Spent plus held, as a refusal tells it (saturating).
    fn nanos(&self) -> i64 {
        self.committed_nanos.saturating_add(self.reserved_nanos)
    }

    /// Spent plus held, as a refusal tells it (saturating).
    fn tokens(&self) -> u64 {
        self.committed_tokens.saturating_add(self.reserved_tokens)
    }

    fn holds_anything(&self) -> bool {
        self.reserved_nanos != 0 || self.reserved_tokens != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    Cost,
    Tokens,
}

/// Why a reservation was refused: the first cap (in `caps` order) that would
/// be exceeded.
#[derive(Clone, Debug)]
pub struct Exceeded {
    pub scope: Arc<str>,
    pub period: Period,
    pub window: Window,
    pub dimension: Dimension,
    /// Nano-dollars or tokens.
    pub limit: i64,
    /// The account as it stood, this request not included.
    pub spend: Spend,
}

impl Exceeded {
    /// OpenAI-like: "Budget exceeded for tenant:acme: $12.50 of $12.50 this
    /// month (resets 2027-01-01T00:00:00+08:00)." (tokens: "1,000 of 1,000
    /// tokens today"). The first figure is spent plus held by requests in
    /// flight — what the cap was checked against.
    pub fn message(&self, zone: &Zone) -> String {
        let (used, limit) = match self.dimension {
            Dimension::Cost => (dollars(self.spend.nanos()), dollars(self.limit)),
            Dimension::Tokens => {
                (grouped(self.spend.tokens()), format!("{} tokens", grouped(self.limit.max(0).unsigned_abs())))
            }
        };
        let when = match self.period {
            Period::Day => "today",
            Period::Month => "this month",
        };
        let resets = period::rfc3339(self.window.end_ms, zone);
        format!("Budget exceeded for {}: {used} of {limit} {when} (resets {resets}).", self.scope)
    }
}

impl Exceeded {
    /// The refusal as alerting sees it: the budget is at its cap.
    pub fn crossing(&self) -> Crossing {
        let before = match self.dimension {
            Dimension::Cost => self.spend.nanos(),
            Dimension::Tokens => i64::try_from(self.spend.tokens()).unwrap_or(i64::MAX),
        };
        Crossing {
            scope: self.scope.clone(),
            period: self.period,
            window: self.window,
            dimension: self.dimension,
            limit: self.limit,
            before,
            after: before.max(self.limit),
            refused: true,
        }
    }
}

/// A budget's committed spend moved to another whole percent of its cap
/// (or a request was refused by it): what alerting needs to see which
/// thresholds were crossed. Thresholds are alerting's business
/// (`crate::alerts`); the ledger only says where spend went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crossing {
    pub scope: Arc<str>,
    pub period: Period,
    pub window: Window,
    pub dimension: Dimension,
    /// The cap, in nano-dollars or tokens.
    pub limit: i64,
    /// Committed before and after (a refusal: spent plus held, and the cap).
    pub before: i64,
    pub after: i64,
    /// A reservation was refused by this budget (it is exhausted for that
    /// request), rather than spend committed.
    pub refused: bool,
}

impl Crossing {
    /// Whether this move crosses `percent` of the cap: committed spend went
    /// from below it to at or above it. A refusal crosses 100 only: the
    /// budget is exhausted for the request it refused.
    pub fn crosses(&self, percent: u32) -> bool {
        if self.refused {
            return percent == 100;
        }
        let at = i128::from(self.limit.max(0)) * i128::from(percent);
        i128::from(self.before) * 100 < at && at <= i128::from(self.after) * 100
    }
}

/// Nano-dollars as `$1,234.50`: at least cents, more decimals only when the
/// amount has them (`$0.000315`), never rounded.
fn dollars(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let frac = format!("{:09}", n % 1_000_000_000);
    let trimmed = frac.trim_end_matches('0');
    let decimals = if trimmed.len() < 2 { &frac[..2] } else { trimmed };
    format!("{sign}${}.{decimals}", grouped(n / 1_000_000_000))
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// (scope, period, window start in unix ms).
pub(super) type Key = (Arc<str>, Period, i64);
type Map = HashMap<Key, Spend>;

struct Shared {
    zone: Zone,
    shards: [Mutex<Map>; SHARDS],
    reservations: AtomicU64,
}

impl Shared {
    /// By scope alone, so one scope's windows share a shard. SipHash with
    /// fixed keys: stable, and one hash per scope per request is noise next
    /// to the request itself.
    fn shard_of(scope: &str) -> usize {
        let mut hasher = DefaultHasher::new();
        scope.hash(&mut hasher);
        (hasher.finish() % SHARDS as u64) as usize
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Map> {
        self.shards[shard].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops windows that ended more than one full period before `now_ms`
    /// (the window after them has ended too) and hold no reservation.
    fn sweep(&self, now_ms: i64) {
        for shard in 0..SHARDS {
            self.lock(shard).retain(|(_, period, start), spend| {
                let ended = period::window(*period, *start, &self.zone).end_ms;
                spend.holds_anything() || now_ms < period::window(*period, ended, &self.zone).end_ms
            });
        }
    }
}

/// The budget ledger. Cheap to share by reference; holds keep what they
/// need alive on their own.
pub struct Ledger {
    shared: Arc<Shared>,
    /// Counters shared by replicas (Redis), if configured: then this
    /// process's own counters decide only while the backend is down.
    pub(super) remote: Option<super::shared::Remote>,
}

impl Default for Ledger {
    /// Periods counted in UTC.
    fn default() -> Self {
        Ledger::new(Zone::default())
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("zone", &self.shared.zone).field("windows", &self.windows()).finish()
    }
}

impl Ledger {
    /// Days and months begin at midnight in `zone`.
    pub fn new(zone: Zone) -> Ledger {
        let shared = Shared {
            zone,
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            reservations: AtomicU64::new(0),
        };
        Ledger { shared: Arc::new(shared), remote: None }
    }

    pub fn zone(&self) -> &Zone {
        &self.shared.zone
    }

    /// Reserves `nanos` and `tokens` under every cap (those with both caps
    /// None are skipped), all-or-nothing: admitted iff for each cap
    /// committed + reserved + this ≤ max (per dimension). Refused: nothing
    /// changes. Negative amounts and caps count as 0.
    pub fn reserve(&self, caps: &[Cap], nanos: i64, tokens: u64, now_ms: i64) -> Result<Hold, Exceeded> {
        let shared = &self.shared;
        let nanos = nanos.max(0);

        // One account per distinct key; each cap remembers which.
        let mut accounts: Vec<(Key, Window)> = Vec::with_capacity(caps.len());
        let mut limits: Vec<Limits> = Vec::with_capacity(caps.len());
        let mut checks: Vec<(&Cap, usize)> = Vec::with_capacity(caps.len());
        for cap in caps.iter().filter(|cap| !cap.is_empty()) {
            let window = period::window(cap.period, now_ms, &shared.zone);
            let key = (cap.scope.clone(), cap.period, window.start_ms);
            let index = match accounts.iter().position(|(k, _)| *k == key) {
                Some(index) => index,
                None => {
                    accounts.push((key, window));
                    limits.push(Limits { window, max_nanos: None, max_tokens: None });
                    accounts.len() - 1
                }
            };
            limits[index].tighten(cap);
            checks.push((cap, index));
        }

        let mut wanted = [false; SHARDS];
        for ((scope, _, _), _) in &accounts {
            wanted[Shared::shard_of(scope)] = true;
        }
        // Locked in index order; see the module doc.
        let mut guards: [Option<MutexGuard<'_, Map>>; SHARDS] = Default::default();
        for (shard, guard) in guards.iter_mut().enumerate() {
            if wanted[shard] {
                *guard = Some(shared.lock(shard));
            }
        }

        for (cap, index) in &checks {
            let (key, window) = &accounts[*index];
            let spend =
                guards[Shared::shard_of(&key.0)].as_ref().and_then(|map| map.get(key)).copied().unwrap_or_default();
            if !cap.enforce {
                continue;
            }
            if let Some((dimension, limit)) = overrun(cap, &spend, nanos, tokens) {
                let scope = cap.scope.clone();
                return Err(Exceeded { scope, period: cap.period, window: *window, dimension, limit, spend });
            }
        }
        let keys: Vec<Key> = accounts.into_iter().map(|(key, _)| key).collect();
        for key in &keys {
            if let Some(map) = guards[Shared::shard_of(&key.0)].as_mut() {
                let spend = map.entry(key.clone()).or_default();
                spend.reserved_nanos = spend.reserved_nanos.saturating_add(nanos);
                spend.reserved_tokens = spend.reserved_tokens.saturating_add(tokens);
            }
        }
        drop(guards);

        let count = shared.reservations.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if count & (SWEEP_EVERY - 1) == 0 {
            shared.sweep(now_ms);
        }
        Ok(Hold::Local(LocalHold { shared: shared.clone(), keys, limits, nanos, tokens }))
    }

    /// What a scope has spent and holds in the window containing now.
    pub fn spend(&self, scope: &str, period: Period, now_ms: i64) -> Spend {
        let start = period::window(period, now_ms, &self.shared.zone).start_ms;
        let key: Key = (Arc::from(scope), period, start);
        self.shared.lock(Shared::shard_of(scope)).get(&key).copied().unwrap_or_default()
    }

    /// Adds already-committed spend (rebuilding from stored usage at start)
    /// to the window containing `window_start_ms` (its start, or any instant
    /// in it). Idempotence is the caller's business.
    pub fn seed(&self, scope: &str, period: Period, window_start_ms: i64, nanos: i64, tokens: u64) {
        let start = period::window(period, window_start_ms, &self.shared.zone).start_ms;
        let mut map = self.shared.lock(Shared::shard_of(scope));
        let spend = map.entry((Arc::from(scope), period, start)).or_default();
        spend.committed_nanos = spend.committed_nanos.saturating_add(nanos.max(0));
        spend.committed_tokens = spend.committed_tokens.saturating_add(tokens);
    }

    /// Number of windows held (tests); windows that ended more than one
    /// full period ago are dropped by an occasional sweep.
    pub fn windows(&self) -> usize {
        (0..SHARDS).map(|shard| self.shared.lock(shard).len()).sum()
    }
}

/// The first dimension of `cap` that `nanos` / `tokens` would push past its
/// max, with that max.
fn overrun(cap: &Cap, spend: &Spend, nanos: i64, tokens: u64) -> Option<(Dimension, i64)> {
    // Summed wide: a saturated account must not look like it fits.
    if let Some(max) = cap.max_nanos.map(|max| max.max(0)) {
        let total = i128::from(spend.committed_nanos) + i128::from(spend.reserved_nanos) + i128::from(nanos);
        if total > i128::from(max) {
            return Some((Dimension::Cost, max));
        }
    }
    if let Some(max) = cap.max_tokens {
        let total = u128::from(spend.committed_tokens) + u128::from(spend.reserved_tokens) + u128::from(tokens);
        if total > u128::from(max) {
            return Some((Dimension::Tokens, i64::try_from(max).unwrap_or(i64::MAX)));
        }
    }
    None
}

/// A reservation in this process's ledger. `commit` moves the actual
/// amounts into committed and frees the reservation (in the windows it was
/// made in, even if the period rolled over meanwhile); dropping it
/// uncommitted frees the reservation and commits nothing. `Send +
/// 'static`, so it can live in a response stream.
pub struct LocalHold {
    shared: Arc<Shared>,
    /// The accounts reserved in; emptied once settled.
    keys: Vec<Key>,
    /// Each account's caps (same order as `keys`), to tell alerting which
    /// moved.
    limits: Vec<Limits>,
    nanos: i64,
    tokens: u64,
}

impl std::fmt::Debug for LocalHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalHold")
            .field("keys", &self.keys)
            .field("nanos", &self.nanos)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl LocalHold {
    /// The request's actual cost and tokens are known: they are committed
    /// whatever they are (more than reserved included — the money is spent;
    /// later reservations see it), and the reservation is freed. Returns
    /// the budgets whose committed spend moved to another whole percent of
    /// their cap (usually none: no allocation then).
    pub fn commit(mut self, actual_nanos: i64, actual_tokens: u64) -> Vec<Crossing> {
        self.settle(Some((actual_nanos.max(0), actual_tokens)))
    }

    /// The amounts reserved in each window.
    pub fn reserved(&self) -> (i64, u64) {
        (self.nanos, self.tokens)
    }

    fn settle(&mut self, actual: Option<(i64, u64)>) -> Vec<Crossing> {
        let mut crossings = Vec::new();
        let limits = std::mem::take(&mut self.limits);
        for (i, key) in std::mem::take(&mut self.keys).into_iter().enumerate() {
            let mut map = self.shared.lock(Shared::shard_of(&key.0));
            let spend = match actual {
                // A window swept while holding nothing (a zero
                // reservation) comes back: the spend must land.
                Some(_) => map.entry(key.clone()).or_default(),
                None => match map.get_mut(&key) {
                    Some(spend) => spend,
                    None => continue,
                },
            };
            let before = *spend;
            spend.reserved_nanos = spend.reserved_nanos.saturating_sub(self.nanos).max(0);
            spend.reserved_tokens = spend.reserved_tokens.saturating_sub(self.tokens);
            if let Some((nanos, tokens)) = actual {
                spend.committed_nanos = spend.committed_nanos.saturating_add(nanos);
                spend.committed_tokens = spend.committed_tokens.saturating_add(tokens);
            }
            let after = *spend;
            drop(map);
            if let Some(limits) = limits.get(i) {
                limits.moved(&key, &before, &after, &mut crossings);
            }
        }
        crossings
    }
}

/// One account's caps as a hold remembers them (the tightest when several
/// caps share the account).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) window: Window,
    pub(super) max_nanos: Option<i64>,
    pub(super) max_tokens: Option<u64>,
}

impl Limits {
    pub(super) fn tighten(&mut self, cap: &Cap) {
        fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        self.max_nanos = min(self.max_nanos, cap.max_nanos.map(|m| m.max(0)));
        self.max_tokens = min(self.max_tokens, cap.max_tokens);
    }

    /// Pushes a crossing per capped dimension whose committed spend moved
    /// to another whole percent of the cap.
    pub(super) fn moved(&self, key: &Key, before: &Spend, after: &Spend, out: &mut Vec<Crossing>) {
        let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let dimensions = [
            (Dimension::Cost, self.max_nanos, before.committed_nanos, after.committed_nanos),
            (
                Dimension::Tokens,
                self.max_tokens.map(tokens),
                tokens(before.committed_tokens),
                tokens(after.committed_tokens),
            ),
        ];
        for (dimension, limit, b, a) in dimensions {
            let Some(limit) = limit else { continue };
            let percent =
                |n: i64| if limit == 0 { i128::from(n > 0) * 100 } else { i128::from(n) * 100 / i128::from(limit) };
            if a > b && percent(a) != percent(b) {
                out.push(Crossing {
                    scope: key.0.clone(),
                    period: key.1,
                    window: self.window,
                    dimension,
                    limit,
                    before: b,
                    after: a,
                    refused: false,
                });
            }
        }
    }
}

impl Drop for LocalHold {
    fn drop(&mut self) {
        self.settle(None);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::budget::Offset;

    const UTC: Zone = Zone::Fixed(Offset(0));

    const DAY_MS: i64 = 86_400_000;
    const DOLLAR: i64 = 1_000_000_000;
    /// 2026-12-05T12:00Z.
    const NOW: i64 = 1_796_472_000_000;
    /// 2026-12-05T00:00Z, the start of NOW's day in UTC.
    const TODAY: i64 = 1_796_428_800_000;

    fn cost(scope: &str, period: Period, max: i64) -> Cap {
        Cap {
            scope: Arc::from(scope),
            period,
            max_nanos: Some(max),
            max_tokens: None,
            action: Action::Block,
            enforce: true,
        }
    }

    fn tokens(scope: &str, period: Period, max: u64) -> Cap {
        Cap {
            scope: Arc::from(scope),
            period,
            max_nanos: None,
            max_tokens: Some(max),
            action: Action::Block,
            enforce: true,
        }
    }

    fn spend(committed_nanos: i64, reserved_nanos: i64, committed_tokens: u64, reserved_tokens: u64) -> Spend {
        Spend { committed_nanos, reserved_nanos, committed_tokens, reserved_tokens }
    }

    #[test]
    fn the_constants_are_what_they_say() {
        assert_eq!(period::rfc3339(NOW, &UTC), "2026-12-05T12:00:00Z");
        assert_eq!(period::window(Period::Day, NOW, &UTC).start_ms, TODAY);
    }

    #[test]
    fn holds_live_across_awaits() {
        fn send_static<T: Send + Sync + 'static>() {}
        send_static::<Hold>();
        send_static::<Exceeded>();
        send_static::<Ledger>();
    }

    #[test]
    fn reservations_fit_under_the_cap_then_refuse() {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Month, 10 * DOLLAR)];
        let a = ledger.reserve(&caps, 4 * DOLLAR, 100, NOW).unwrap();
        let b = ledger.reserve(&caps, 4 * DOLLAR, 100, NOW).unwrap();
        assert_eq!(a.reserved(), (4 * DOLLAR, 100));
        assert_eq!(ledger.spend("tenant:acme", Period::Month, NOW), spend(0, 8 * DOLLAR, 0, 200));

        let refused = ledger.reserve(&caps, 2 * DOLLAR + 1, 0, NOW).unwrap_err();
        assert_eq!((&*refused.scope, refused.period), ("tenant:acme", Period::Month));
        assert_eq!((refused.dimension, refused.limit), (Dimension::Cost, 10 * DOLLAR));
        assert_eq!(refused.spend, spend(0, 8 * DOLLAR, 0, 200));
        assert_eq!(refused.window, period::window(Period::Month, NOW, &UTC));
        // Exactly up to the cap passes.
        let c = ledger.reserve(&caps, 2 * DOLLAR, 0, NOW).unwrap();
        assert!(ledger.reserve(&caps, 1, 0, NOW).is_err());
        assert!(ledger.reserve(&caps, 0, 0, NOW).is_ok(), "nothing more than the cap");
        drop((a, b, c));
    }

    #[test]
    fn commits_report_the_budgets_whose_percent_moved() {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Month, 10 * DOLLAR), tokens("key:k1", Period::Day, 1_000)];
        // 4.9 % of the money, 50 % of the tokens.
        let moved = ledger.reserve(&caps, DOLLAR, 600, NOW).unwrap().commit(DOLLAR / 2 - DOLLAR / 100, 500);
        assert_eq!(moved.len(), 2, "{moved:?}");
        let money = moved.iter().find(|c| c.dimension == Dimension::Cost).unwrap();
        assert_eq!((&*money.scope, money.period, money.limit), ("tenant:acme", Period::Month, 10 * DOLLAR));
        assert_eq!((money.before, money.after, money.refused), (0, DOLLAR / 2 - DOLLAR / 100, false));
        assert!(!money.crosses(5) && !money.crosses(50));
        let toks = moved.iter().find(|c| c.dimension == Dimension::Tokens).unwrap();
        assert_eq!(toks.window, period::window(Period::Day, NOW, &UTC));
        assert!(toks.crosses(50) && toks.crosses(1) && !toks.crosses(51), "{toks:?}");
        // Within the same whole percent: nothing to report, nothing allocated.
        let moved = ledger.reserve(&caps, 0, 0, NOW).unwrap().commit(DOLLAR / 1000, 1);
        assert!(moved.is_empty(), "{moved:?}");
        assert_eq!(moved.capacity(), 0);
        // An uncommitted hold reports nothing.
        drop(ledger.reserve(&caps, DOLLAR, 1, NOW).unwrap());
        // Past the cap (an overrun): 100 is crossed, and more.
        let moved = ledger.reserve(&caps, 0, 0, NOW).unwrap().commit(0, 700);
        let toks = &moved[0];
        assert_eq!((toks.before, toks.after), (501, 1_201));
        assert!(toks.crosses(100) && toks.crosses(120) && !toks.crosses(50));
    }

    #[test]
    fn a_refusal_crosses_100_only_and_an_unenforced_cap_counts_without_refusing() {
        let ledger = Ledger::default();
        let mut caps = [cost("key:k1", Period::Day, DOLLAR)];
        let held = ledger.reserve(&caps, DOLLAR, 0, NOW).unwrap();
        let refused = ledger.reserve(&caps, 1, 0, NOW).unwrap_err().crossing();
        assert!(refused.refused && refused.crosses(100) && !refused.crosses(95) && !refused.crosses(120));
        caps[0].enforce = false;
        let over = ledger.reserve(&caps, DOLLAR, 0, NOW).unwrap();
        assert_eq!(ledger.spend("key:k1", Period::Day, NOW), spend(0, 2 * DOLLAR, 0, 0));
        drop(held);
        let moved = over.commit(3 * DOLLAR / 2, 0);
        assert_eq!((moved[0].before, moved[0].after), (0, 3 * DOLLAR / 2));
        assert!(moved[0].crosses(100) && moved[0].crosses(150));
    }

    #[test]
    fn a_refusal_reserves_nothing_anywhere() {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Month, 10 * DOLLAR), tokens("key:k1", Period::Day, 1_000)];
        let _held = ledger.reserve(&caps, DOLLAR, 900, NOW).unwrap();
        let refused = ledger.reserve(&caps, DOLLAR, 101, NOW).unwrap_err();
        assert_eq!((&*refused.scope, refused.period, refused.dimension), ("key:k1", Period::Day, Dimension::Tokens));
        // Every account holds both amounts, whichever dimensions its caps check.
        assert_eq!((refused.limit, refused.spend), (1_000, spend(0, DOLLAR, 0, 900)));
        assert_eq!(ledger.spend("tenant:acme", Period::Month, NOW), spend(0, DOLLAR, 0, 900));
        assert_eq!(ledger.spend("key:k1", Period::Day, NOW), spend(0, DOLLAR, 0, 900));

        // Both over: the first cap listed is the one reported.
        let refused = ledger.reserve(&caps, 10 * DOLLAR, 101, NOW).unwrap_err();
        assert_eq!((&*refused.scope, refused.dimension), ("tenant:acme", Dimension::Cost));
        // Within one cap, cost is checked before tokens.
        let both = Cap { max_tokens: Some(0), ..cost("team:t", Period::Day, 0) };
        assert_eq!(ledger.reserve(&[both], 1, 1, NOW).unwrap_err().dimension, Dimension::Cost);
        assert_eq!(ledger.spend("team:t", Period::Day, NOW), Spend::default());
    }

    #[test]
    fn caps_without_limits_are_skipped() {
        let ledger = Ledger::default();
        let none = Cap {
            scope: Arc::from("key:k1"),
            period: Period::Day,
            max_nanos: None,
            max_tokens: None,
            action: Action::Block,
            enforce: true,
        };
        let hold = ledger.reserve(&[none], DOLLAR, 10, NOW).unwrap();
        assert_eq!(ledger.windows(), 0);
        hold.commit(DOLLAR, 10);
        assert_eq!(ledger.windows(), 0);
    }

    /// Two caps on one scope and period (say, money and tokens given
    /// separately) check one account, charged once.
    #[test]
    fn caps_on_one_account_charge_it_once() {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Day, 10 * DOLLAR), tokens("tenant:acme", Period::Day, 1_000)];
        let hold = ledger.reserve(&caps, 6 * DOLLAR, 600, NOW).unwrap();
        assert_eq!(ledger.spend("tenant:acme", Period::Day, NOW), spend(0, 6 * DOLLAR, 0, 600));
        assert_eq!(ledger.reserve(&caps, 4 * DOLLAR, 401, NOW).unwrap_err().dimension, Dimension::Tokens);
        hold.commit(5 * DOLLAR, 500);
        assert_eq!(ledger.spend("tenant:acme", Period::Day, NOW), spend(5 * DOLLAR, 0, 500, 0));
        assert_eq!(ledger.windows(), 1);
    }

    #[test]
    fn committing_less_frees_the_rest() {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Day, 10 * DOLLAR)];
        ledger.reserve(&caps, 8 * DOLLAR, 800, NOW).unwrap().commit(3 * DOLLAR, 300);
        assert_eq!(ledger.spend("tenant:acme", Period::Day, NOW), spend(3 * DOLLAR, 0, 300, 0));
        assert!(ledger.reserve(&caps, 7 * DOLLAR, 0, NOW).is_ok());
        assert!(ledger.reserve(&caps, 7 * DOLLAR + 1, 0, NOW).is_err());
    }

    #[test]
    fn committing_more_is_recorded_and_seen() {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Day, 10 * DOLLAR)];
        ledger.reserve(&caps, 2 * DOLLAR, 10, NOW).unwrap().commit(9 * DOLLAR, 90);
        assert_eq!(ledger.spend("tenant:acme", Period::Day, NOW), spend(9 * DOLLAR, 0, 90, 0));
        let refused = ledger.reserve(&caps, 2 * DOLLAR, 0, NOW).unwrap_err();
        assert_eq!(refused.spend.committed_nanos, 9 * DOLLAR);
        ledger.reserve(&caps, DOLLAR, 0, NOW).unwrap().commit(3 * DOLLAR, 0);
        assert_eq!(ledger.spend("tenant:acme", Period::Day, NOW).committed_nanos, 12 * DOLLAR);
        assert!(ledger.reserve(&caps, 0, 0, NOW).is_err(), "over the cap, even nothing is refused");
    }

    #[test]
    fn dropping_a_hold_frees_it_and_commits_nothing() {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Month, 10 * DOLLAR), tokens("key:k1", Period::Day, 1_000)];
        let hold = ledger.reserve(&caps, 10 * DOLLAR, 1_000, NOW).unwrap();
        assert!(ledger.reserve(&caps, 1, 0, NOW).is_err());
        drop(hold);
        assert_eq!(ledger.spend("tenant:acme", Period::Month, NOW), Spend::default());
        assert_eq!(ledger.spend("key:k1", Period::Day, NOW), Spend::default());
        assert!(ledger.reserve(&caps, 10 * DOLLAR, 1_000, NOW).is_ok());
    }

    #[test]
    fn negative_amounts_count_as_zero() {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Day, DOLLAR)];
        let hold = ledger.reserve(&caps, -5 * DOLLAR, 0, NOW).unwrap();
        assert_eq!(hold.reserved(), (0, 0));
        hold.commit(-DOLLAR, 0);
        ledger.seed("tenant:acme", Period::Day, TODAY, -DOLLAR, 0);
        assert_eq!(ledger.spend("tenant:acme", Period::Day, NOW), Spend::default());
        let refused = ledger.reserve(&[cost("key:k1", Period::Day, -1)], 1, 0, NOW).unwrap_err();
        assert_eq!(refused.limit, 0);
        assert!(ledger.reserve(&[cost("key:k1", Period::Day, -1)], 0, 0, NOW).is_ok());
    }

    #[test]
    fn amounts_saturate() {
        let ledger = Ledger::default();
        let caps = [Cap { max_tokens: Some(u64::MAX), ..cost("tenant:acme", Period::Day, i64::MAX) }];
        ledger.reserve(&caps, i64::MAX, u64::MAX, NOW).unwrap().commit(i64::MAX, u64::MAX);
        ledger.seed("tenant:acme", Period::Day, TODAY, i64::MAX, u64::MAX);
        assert_eq!(ledger.spend("tenant:acme", Period::Day, NOW), spend(i64::MAX, 0, u64::MAX, 0));
        assert_eq!(ledger.reserve(&caps, 1, 0, NOW).unwrap_err().limit, i64::MAX);
    }

    #[test]
    fn a_new_day_starts_from_zero() {
        let ledger = Ledger::default();
        let caps = [cost("key:k1", Period::Day, 10 * DOLLAR)];
        ledger.reserve(&caps, 10 * DOLLAR, 0, NOW).unwrap().commit(10 * DOLLAR, 100);
        assert!(ledger.reserve(&caps, 1, 0, TODAY + DAY_MS - 1).is_err());

        let tomorrow = TODAY + DAY_MS;
        assert_eq!(ledger.spend("key:k1", Period::Day, tomorrow), Spend::default());
        ledger.reserve(&caps, 4 * DOLLAR, 0, tomorrow).unwrap().commit(4 * DOLLAR, 40);
        assert_eq!(ledger.spend("key:k1", Period::Day, tomorrow), spend(4 * DOLLAR, 0, 40, 0));
        assert_eq!(ledger.spend("key:k1", Period::Day, NOW), spend(10 * DOLLAR, 0, 100, 0), "yesterday stays");
        assert_eq!(ledger.windows(), 2);
    }

    #[test]
    fn a_hold_settles_in_the_window_it_reserved_in() {
        let ledger = Ledger::default();
        let caps = [cost("key:k1", Period::Day, 10 * DOLLAR), cost("tenant:acme", Period::Month, 100 * DOLLAR)];
        let late = TODAY + DAY_MS - 1;
        let hold = ledger.reserve(&caps, 2 * DOLLAR, 20, late).unwrap();
        let tomorrow = TODAY + DAY_MS;
        let other = ledger.reserve(&caps, DOLLAR, 10, tomorrow).unwrap();
        // The request ends after midnight; its spend belongs to the day it
        // started in.
        hold.commit(3 * DOLLAR, 30);
        assert_eq!(ledger.spend("key:k1", Period::Day, late), spend(3 * DOLLAR, 0, 30, 0));
        assert_eq!(ledger.spend("key:k1", Period::Day, tomorrow), spend(0, DOLLAR, 0, 10));
        // Same month: one account for both.
        assert_eq!(ledger.spend("tenant:acme", Period::Month, tomorrow), spend(3 * DOLLAR, DOLLAR, 30, 10));
        other.commit(DOLLAR, 10);
        assert_eq!(ledger.spend("key:k1", Period::Day, tomorrow), spend(DOLLAR, 0, 10, 0));
    }

    /// Windows follow the ledger's offset: in +08:00, 2026-12-05T16:00Z
    /// begins December 6th.
    #[test]
    fn windows_follow_the_offset() {
        let ledger = Ledger::new(Zone::Fixed(Offset(480)));
        assert_eq!(ledger.zone(), &Zone::Fixed(Offset(480)));
        let caps = [cost("key:k1", Period::Day, 10 * DOLLAR)];
        let local_midnight = TODAY + 16 * 3_600_000;
        ledger.reserve(&caps, DOLLAR, 0, local_midnight - 1).unwrap().commit(DOLLAR, 0);
        assert_eq!(ledger.spend("key:k1", Period::Day, TODAY).committed_nanos, DOLLAR, "00:00Z is 08:00 local");
        assert_eq!(ledger.spend("key:k1", Period::Day, local_midnight), Spend::default());
        let refused = ledger.reserve(&caps, 11 * DOLLAR, 0, local_midnight).unwrap_err();
        assert_eq!(refused.window.start_ms, local_midnight);
    }

    #[test]
    fn seeding_adds_to_committed() {
        let ledger = Ledger::default();
        ledger.seed("tenant:acme", Period::Month, period::window(Period::Month, NOW, &UTC).start_ms, DOLLAR, 10);
        // Any instant of the window names it.
        ledger.seed("tenant:acme", Period::Month, NOW - DAY_MS, 2 * DOLLAR, 20);
        ledger.seed("tenant:acme", Period::Day, TODAY, 5 * DOLLAR, 50);
        assert_eq!(ledger.spend("tenant:acme", Period::Month, NOW), spend(3 * DOLLAR, 0, 30, 0));
        assert_eq!(ledger.spend("tenant:acme", Period::Day, NOW), spend(5 * DOLLAR, 0, 50, 0));
        let caps = [cost("tenant:acme", Period::Month, 4 * DOLLAR)];
        assert!(ledger.reserve(&caps, DOLLAR + 1, 0, NOW).is_err());
        ledger.reserve(&caps, DOLLAR, 0, NOW).unwrap().commit(DOLLAR, 0);
        assert_eq!(ledger.spend("tenant:acme", Period::Month, NOW).committed_nanos, 4 * DOLLAR);
    }

    fn exceeded(dimension: Dimension, period: Period, limit: i64, spend: Spend, window: Window) -> Exceeded {
        Exceeded { scope: Arc::from("tenant:acme"), period, window, dimension, limit, spend }
    }

    #[test]
    fn messages_say_what_was_spent_and_when_it_resets() {
        let plus_8 = &Zone::Fixed(Offset::parse("+08:00").unwrap());
        // 2026-12-31T10:00Z: December in +08:00, resetting at its midnight.
        let month = period::window(Period::Month, 1_798_711_200_000, plus_8);
        let e = exceeded(Dimension::Cost, Period::Month, 12_500_000_000, spend(12 * DOLLAR, DOLLAR / 2, 0, 0), month);
        assert_eq!(
            e.message(plus_8),
            "Budget exceeded for tenant:acme: $12.50 of $12.50 this month (resets 2027-01-01T00:00:00+08:00)."
        );
        let day = period::window(Period::Day, NOW, &UTC);
        let e = exceeded(Dimension::Tokens, Period::Day, 1_000, spend(0, 0, 1_000, 0), day);
        assert_eq!(
            e.message(&UTC),
            "Budget exceeded for tenant:acme: 1,000 of 1,000 tokens today (resets 2026-12-06T00:00:00Z)."
        );
        let e = exceeded(Dimension::Tokens, Period::Day, 1_234_567, spend(0, 0, 999, 1), day);
        assert!(e
            .message(&Zone::Fixed(Offset(-330)))
            .contains(": 1,000 of 1,234,567 tokens today (resets 2026-12-05T18:30:00-05:30)."));
    }

    #[test]
    fn dollars_keep_every_nano() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(12_500_000_000), "$12.50");
        assert_eq!(dollars(315_000), "$0.000315");
        assert_eq!(dollars(1), "$0.000000001");
        assert_eq!(dollars(1_234_567 * DOLLAR + 100_000_000), "$1,234,567.10");
        assert_eq!(dollars(-DOLLAR), "-$1.00");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn the_sweep_drops_windows_older_than_one_period() {
        let ledger = Ledger::default();
        let day_caps = [cost("key:k1", Period::Day, 10 * DOLLAR)];
        let month_caps = [cost("tenant:acme", Period::Month, 10 * DOLLAR)];
        ledger.reserve(&day_caps, DOLLAR, 0, NOW).unwrap().commit(DOLLAR, 0);
        ledger.reserve(&month_caps, DOLLAR, 0, NOW).unwrap().commit(DOLLAR, 0);
        let held = ledger.reserve(&[cost("key:busy", Period::Day, 10 * DOLLAR)], DOLLAR, 0, NOW).unwrap();
        assert_eq!(ledger.windows(), 3);

        // Tomorrow, today is the previous window: kept.
        ledger.shared.sweep(TODAY + 2 * DAY_MS - 1);
        assert_eq!(ledger.windows(), 3);
        // The day after, it has ended more than a day ago; the held one stays.
        ledger.shared.sweep(TODAY + 2 * DAY_MS);
        assert_eq!(ledger.windows(), 2);
        assert_eq!(ledger.spend("key:k1", Period::Day, NOW), Spend::default());
        // December is kept through January, dropped on February 1st.
        let february = 1_801_440_000_000; // 2027-02-01T00:00Z
        ledger.shared.sweep(february - 1);
        assert_eq!(ledger.windows(), 2);
        ledger.shared.sweep(february);
        assert_eq!(ledger.windows(), 1);
        held.commit(DOLLAR, 0);
        assert_eq!(ledger.spend("key:busy", Period::Day, NOW).committed_nanos, DOLLAR);
        ledger.shared.sweep(february);
        assert_eq!(ledger.windows(), 0);
    }

    #[test]
    fn reservations_trigger_the_sweep() {
        let ledger = Ledger::default();
        ledger.seed("key:old", Period::Day, TODAY, DOLLAR, 0);
        let later = TODAY + 2 * DAY_MS;
        let busy = [tokens("key:busy", Period::Day, u64::MAX)];
        for _ in 0..SWEEP_EVERY - 1 {
            ledger.reserve(&busy, 0, 1, later).unwrap().commit(0, 1);
        }
        assert_eq!(ledger.windows(), 2);
        ledger.reserve(&busy, 0, 1, later).unwrap().commit(0, 1);
        assert_eq!(ledger.windows(), 1);
        assert_eq!(ledger.spend("key:busy", Period::Day, later).committed_tokens, SWEEP_EVERY);
    }

    #[test]
    #[allow(clippy::panic)]
    fn a_poisoned_shard_still_works() {
        let ledger = Ledger::default();
        let caps = [cost("key:k1", Period::Day, 2 * DOLLAR)];
        let hold = ledger.reserve(&caps, DOLLAR, 0, NOW).unwrap();
        let shard = Shared::shard_of("key:k1");
        let shared = ledger.shared.clone();
        let _ = std::thread::spawn(move || {
            let _guard = shared.lock(shard);
            panic!("poison the shard");
        })
        .join();
        assert!(ledger.shared.shards[shard].is_poisoned());
        assert!(ledger.reserve(&caps, DOLLAR + 1, 0, NOW).is_err());
        hold.commit(DOLLAR, 0);
        ledger.reserve(&caps, DOLLAR, 0, NOW).unwrap().commit(DOLLAR, 0);
        assert_eq!(ledger.spend("key:k1", Period::Day, NOW), spend(2 * DOLLAR, 0, 0, 0));
    }

    /// 50 threads, each reserving `estimate` and committing `actual`
    /// `rounds` times against one cap of `max`, a second scope riding
    /// along. Returns (admitted, the final spend).
    fn hammer(max: i64, estimate: i64, actual: i64, rounds: usize) -> (i64, Spend) {
        let ledger = Ledger::default();
        let caps = [cost("tenant:acme", Period::Month, max), tokens("key:k1", Period::Day, u64::MAX)];
        let start = std::sync::Barrier::new(50);
        let admitted: i64 = std::thread::scope(|s| {
            let workers: Vec<_> = (0..50)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let mut admitted = 0;
                        for _ in 0..rounds {
                            if let Ok(hold) = ledger.reserve(&caps, estimate, 1, NOW) {
                                admitted += 1;
                                std::thread::yield_now();
                                hold.commit(actual, 1);
                            }
                        }
                        admitted
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        let key = ledger.spend("key:k1", Period::Day, NOW);
        assert_eq!(key, spend(admitted * actual, 0, admitted as u64, 0), "every admission reached both scopes once");
        (admitted, ledger.spend("tenant:acme", Period::Month, NOW))
    }

    /// The bound of the module doc: committed ≤ max + the overruns of the
    /// requests in flight; with actual ≤ estimate, never above max.
    #[test]
    fn concurrent_overspend_stays_within_the_bound() {
        let (max, estimate) = (10 * DOLLAR, DOLLAR);

        let actual = 3 * DOLLAR;
        let (admitted, end) = hammer(max, estimate, actual, 4);
        assert!((1..=max / estimate).contains(&admitted), "admitted {admitted}");
        assert!(end.committed_nanos <= max + admitted * (actual - estimate), "{end:?}, admitted {admitted}");
        assert_eq!((end.committed_nanos, end.reserved_nanos), (admitted * actual, 0));

        // Exact estimates: the cap is reached and never passed.
        let (admitted, end) = hammer(max, estimate, estimate, 4);
        assert_eq!((admitted, end), (10, spend(max, 0, 10, 0)));

        // Estimates above the actuals: never over.
        let actual = DOLLAR / 4;
        let (admitted, end) = hammer(max, estimate, actual, 4);
        assert!(end.committed_nanos <= max, "{end:?}");
        assert_eq!(end.committed_nanos, admitted * actual);
        // Refusals need 10 dollars spent or held, so at least 10 got in.
        assert!(admitted >= max / estimate, "admitted {admitted}");
    }
}
