//! Budget counters shared by replicas: the [`SharedBudgets`] seam (Redis
//! implements it in the `store` crate) and the [`Hold`] a reservation
//! returns, in this process's ledger or in the shared one.
//!
//! With a shared backend every reservation is one atomic call across all
//! the request's budget accounts — the same check as the local ledger's
//! (committed + reserved + this ≤ cap, all-or-nothing) — so replicas
//! together overspend by no more than one process does (module doc of
//! [`super`]). Settling (commit or release) is fire and forget, bounded in
//! time; a reservation that is never settled (a replica that died) expires
//! with its lease (`redis.lease`), so it cannot hold budget forever.
//!
//! When the backend does not answer, `redis.on_failure` decides, as for
//! rate limits: `local` reserves in this process's ledger (each replica
//! then counts alone until Redis is back), `closed` refuses with 503.

use super::ledger::{Key, Limits, LocalHold};
use super::{Cap, Crossing, Dimension, Exceeded, Ledger, Period, Spend, Window};
use crate::limits::{BackendDown, BoxFuture, FailureMode};
use std::sync::Arc;

/// One budget account as the shared backend sees it: a scope's window and
/// its caps (the tightest of the caps naming it), and whether they refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetAccount {
    pub scope: Arc<str>,
    pub period: Period,
    pub window: Window,
    pub max_nanos: Option<i64>,
    pub max_tokens: Option<u64>,
    /// `false`: reserved and committed but never refused (see [`Cap::enforce`]).
    pub enforce: bool,
}

/// Why the shared backend refused: the first enforced account (in order)
/// that the reservation would pass, on which dimension, and its spend as
/// it stood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedRefusal {
    pub index: usize,
    pub dimension: Dimension,
    pub spend: Spend,
}

/// Committed spend of one account around a settle: `(nanos, tokens)`
/// before and after.
pub type Moved = ((i64, u64), (i64, u64));

/// Budget counters shared by replicas.
pub trait SharedBudgets: Send + Sync + 'static {
    /// Reserves `nanos` and `tokens` in every account at once, or refuses
    /// and changes nothing. `Ok(Ok(id))`: the hold's id, to settle with.
    fn reserve<'a>(
        &'a self,
        accounts: &'a [BudgetAccount],
        nanos: i64,
        tokens: u64,
    ) -> BoxFuture<'a, Result<Result<String, SharedRefusal>, BackendDown>>;
    /// Frees hold `id` (reserved `reserved`) and commits `actual` (`None`:
    /// nothing). Fire and forget, bounded in time; `moved` gets each
    /// account's committed spend before and after, in account order
    /// (never called when the backend failed).
    fn settle(
        &self,
        accounts: Vec<BudgetAccount>,
        id: String,
        reserved: (i64, u64),
        actual: Option<(i64, u64)>,
        moved: Box<dyn FnOnce(Vec<Moved>) + Send>,
    );
    /// Sets an account's committed spend when the backend holds none for
    /// its window yet (rebuilt from stored usage at start); an account
    /// the backend already counts is left alone.
    fn seed<'a>(
        &'a self,
        account: &'a BudgetAccount,
        nanos: i64,
        tokens: u64,
    ) -> BoxFuture<'a, Result<(), BackendDown>>;
    /// An account's spend as the backend holds it.
    fn spend<'a>(&'a self, account: &'a BudgetAccount) -> BoxFuture<'a, Result<Spend, BackendDown>>;
    /// Adds `tokens` to the monthly volume counter `name` (kept until
    /// `expire_at_ms`). Fire and forget; `total` gets the counter after the
    /// addition (never called when the backend failed).
    fn add_volume(&self, name: &str, expire_at_ms: i64, tokens: u64, total: Box<dyn FnOnce(u64) + Send>);
    /// Sets the volume counter `name` to `tokens` unless it exists, and
    /// answers its value.
    fn seed_volume<'a>(
        &'a self,
        name: &'a str,
        expire_at_ms: i64,
        tokens: u64,
    ) -> BoxFuture<'a, Result<u64, BackendDown>>;
}

pub(super) struct Remote {
    pub(super) backend: Arc<dyn SharedBudgets>,
    pub(super) on_failure: FailureMode,
}

/// Why a reservation was not made.
#[derive(Debug)]
pub enum NotReserved {
    Exceeded(Exceeded),
    /// The shared backend is down and the failure mode is `closed`.
    Unavailable(BackendDown),
}

impl Ledger {
    /// Counts in `backend`, shared by replicas; `on_failure` decides when
    /// it does not answer.
    pub fn with_shared(zone: super::Zone, backend: Arc<dyn SharedBudgets>, on_failure: FailureMode) -> Ledger {
        let mut ledger = Ledger::new(zone);
        ledger.remote = Some(Remote { backend, on_failure });
        ledger
    }

    pub fn is_shared(&self) -> bool {
        self.remote.is_some()
    }

    /// The shared backend, when there is one (provider volume shares it).
    pub fn shared_backend(&self) -> Option<Arc<dyn SharedBudgets>> {
        self.remote.as_ref().map(|r| r.backend.clone())
    }

    /// Reserves under every cap: in the shared backend when there is one,
    /// else (or when it is down and `on_failure` is `local`) in this
    /// process's ledger. `fell_back` is called when the backend was down.
    pub async fn admit(
        &self,
        caps: &[Cap],
        nanos: i64,
        tokens: u64,
        now_ms: i64,
        fell_back: impl FnOnce(&BackendDown),
    ) -> Result<Hold, NotReserved> {
        let Some(remote) = &self.remote else {
            return self.reserve(caps, nanos, tokens, now_ms).map_err(NotReserved::Exceeded);
        };
        let accounts = self.accounts(caps, now_ms);
        if accounts.is_empty() {
            return self.reserve(caps, nanos, tokens, now_ms).map_err(NotReserved::Exceeded);
        }
        let nanos = nanos.max(0);
        match remote.backend.reserve(&accounts, nanos, tokens).await {
            Ok(Ok(id)) => Ok(Hold::Shared(SharedHold {
                backend: remote.backend.clone(),
                accounts,
                id,
                nanos,
                tokens,
                settled: false,
            })),
            Ok(Err(refusal)) => {
                let account = accounts.get(refusal.index).ok_or_else(|| {
                    NotReserved::Unavailable(BackendDown(format!(
                        "the shared ledger named account {} of {}",
                        refusal.index,
                        accounts.len()
                    )))
                })?;
                let limit = match refusal.dimension {
                    Dimension::Cost => account.max_nanos.unwrap_or(0),
                    Dimension::Tokens => account.max_tokens.map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX)),
                };
                Err(NotReserved::Exceeded(Exceeded {
                    scope: account.scope.clone(),
                    period: account.period,
                    window: account.window,
                    dimension: refusal.dimension,
                    limit: limit.max(0),
                    spend: refusal.spend,
                }))
            }
            Err(down) => {
                fell_back(&down);
                match remote.on_failure {
                    FailureMode::Local => self.reserve(caps, nanos, tokens, now_ms).map_err(NotReserved::Exceeded),
                    FailureMode::Closed => Err(NotReserved::Unavailable(down)),
                }
            }
        }
    }

    /// Adds stored spend to the account of `scope`'s window containing
    /// `window_start_ms`, here and — when the shared backend does not count
    /// that window yet — there.
    pub async fn seed_shared(
        &self,
        scope: &str,
        period: Period,
        window_start_ms: i64,
        nanos: i64,
        tokens: u64,
    ) -> Result<(), BackendDown> {
        self.seed(scope, period, window_start_ms, nanos, tokens);
        let Some(remote) = &self.remote else { return Ok(()) };
        let account = BudgetAccount {
            scope: Arc::from(scope),
            period,
            window: super::window(period, window_start_ms, self.zone()),
            max_nanos: None,
            max_tokens: None,
            enforce: false,
        };
        remote.backend.seed(&account, nanos.max(0), tokens).await
    }

    /// A scope's spend in the window containing now: the shared backend's
    /// when there is one.
    pub async fn current_spend(&self, scope: &str, period: Period, now_ms: i64) -> Result<Spend, BackendDown> {
        let Some(remote) = &self.remote else { return Ok(self.spend(scope, period, now_ms)) };
        let account = BudgetAccount {
            scope: Arc::from(scope),
            period,
            window: super::window(period, now_ms, self.zone()),
            max_nanos: None,
            max_tokens: None,
            enforce: false,
        };
        remote.backend.spend(&account).await
    }

    /// One account per distinct (scope, period) among caps that cap
    /// something: the tightest caps, enforced if any cap naming it is.
    fn accounts(&self, caps: &[Cap], now_ms: i64) -> Vec<BudgetAccount> {
        let mut accounts: Vec<BudgetAccount> = Vec::with_capacity(caps.len());
        for cap in caps.iter().filter(|c| c.max_nanos.is_some() || c.max_tokens.is_some()) {
            let max_nanos = cap.max_nanos.map(|m| m.max(0));
            match accounts.iter_mut().find(|a| a.scope == cap.scope && a.period == cap.period) {
                Some(a) => {
                    a.max_nanos = min(a.max_nanos, max_nanos);
                    a.max_tokens = min(a.max_tokens, cap.max_tokens);
                    a.enforce |= cap.enforce;
                }
                None => accounts.push(BudgetAccount {
                    scope: cap.scope.clone(),
                    period: cap.period,
                    window: super::window(cap.period, now_ms, self.zone()),
                    max_nanos,
                    max_tokens: cap.max_tokens,
                    enforce: cap.enforce,
                }),
            }
        }
        accounts
    }
}

fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A request's reservation under its budgets, in this process's ledger or
/// in the shared one. Committing settles it; dropping it uncommitted frees
/// it and commits nothing. `Send + 'static`, so it can live in a stream.
#[derive(Debug)]
pub enum Hold {
    Local(LocalHold),
    Shared(SharedHold),
}

impl Hold {
    /// Commits the actual cost and tokens and frees the reservation;
    /// returns the budgets whose committed spend moved to another whole
    /// percent of their cap. A shared hold settles in the background and
    /// returns nothing here: use [`commit_then`](Self::commit_then) to hear
    /// of its crossings.
    pub fn commit(self, actual_nanos: i64, actual_tokens: u64) -> Vec<Crossing> {
        match self {
            Hold::Local(hold) => hold.commit(actual_nanos.max(0), actual_tokens),
            Hold::Shared(mut hold) => {
                hold.settle(Some((actual_nanos.max(0), actual_tokens)), Box::new(drop));
                Vec::new()
            }
        }
    }

    /// Like [`commit`](Self::commit), handing the crossings to `moved` —
    /// at once for a local hold, when the backend answers for a shared one
    /// (not at all when there are none, or the backend failed).
    pub fn commit_then(
        self,
        actual_nanos: i64,
        actual_tokens: u64,
        moved: impl FnOnce(Vec<Crossing>) + Send + 'static,
    ) {
        let actual = (actual_nanos.max(0), actual_tokens);
        match self {
            Hold::Local(hold) => {
                let crossings = hold.commit(actual.0, actual.1);
                if !crossings.is_empty() {
                    moved(crossings);
                }
            }
            Hold::Shared(mut hold) => hold.settle(Some(actual), Box::new(moved)),
        }
    }

    /// The amounts reserved in each window.
    pub fn reserved(&self) -> (i64, u64) {
        match self {
            Hold::Local(hold) => hold.reserved(),
            Hold::Shared(hold) => (hold.nanos, hold.tokens),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Hold::Shared(_))
    }
}

/// A reservation in the shared backend.
pub struct SharedHold {
    backend: Arc<dyn SharedBudgets>,
    accounts: Vec<BudgetAccount>,
    id: String,
    nanos: i64,
    tokens: u64,
    settled: bool,
}

impl std::fmt::Debug for SharedHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedHold")
            .field("id", &self.id)
            .field("accounts", &self.accounts)
            .field("nanos", &self.nanos)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl SharedHold {
    fn settle(&mut self, actual: Option<(i64, u64)>, moved: Box<dyn FnOnce(Vec<Crossing>) + Send>) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let accounts = std::mem::take(&mut self.accounts);
        let limits: Vec<(Key, Limits)> = accounts
            .iter()
            .map(|a| {
                let key = (a.scope.clone(), a.period, a.window.start_ms);
                (key, Limits { window: a.window, max_nanos: a.max_nanos, max_tokens: a.max_tokens })
            })
            .collect();
        let report = move |spends: Vec<Moved>| {
            let mut crossings = Vec::new();
            for ((key, limits), ((bn, bt), (an, at))) in limits.iter().zip(spends) {
                let before = Spend { committed_nanos: bn, committed_tokens: bt, ..Spend::default() };
                let after = Spend { committed_nanos: an, committed_tokens: at, ..Spend::default() };
                limits.moved(key, &before, &after, &mut crossings);
            }
            if !crossings.is_empty() {
                moved(crossings);
            }
        };
        let id = std::mem::take(&mut self.id);
        self.backend.settle(accounts, id, (self.nanos, self.tokens), actual, Box::new(report));
    }
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        self.settle(None, Box::new(|_| {}));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::budget::{Action, Offset, Zone};
    use std::sync::Mutex;

    const DOLLAR: i64 = 1_000_000_000;
    /// 2026-12-05T12:00Z.
    const NOW: i64 = 1_796_472_000_000;

    /// A backend that answers like a shared ledger would (one process's
    /// ledger behind it), or is down.
    struct Fake {
        inner: Ledger,
        holds: Mutex<Vec<(String, crate::budget::Hold)>>,
        down: bool,
        seeded: Mutex<Vec<(Arc<str>, i64, u64)>>,
    }

    impl Fake {
        fn new(down: bool) -> Arc<Fake> {
            Arc::new(Fake { inner: Ledger::default(), holds: Mutex::default(), down, seeded: Mutex::default() })
        }
    }

    fn caps_of(accounts: &[BudgetAccount]) -> Vec<Cap> {
        accounts
            .iter()
            .map(|a| Cap {
                scope: a.scope.clone(),
                period: a.period,
                max_nanos: a.max_nanos,
                max_tokens: a.max_tokens,
                action: Action::Block,
                enforce: a.enforce,
            })
            .collect()
    }

    impl SharedBudgets for Fake {
        fn reserve<'a>(
            &'a self,
            accounts: &'a [BudgetAccount],
            nanos: i64,
            tokens: u64,
        ) -> BoxFuture<'a, Result<Result<String, SharedRefusal>, BackendDown>> {
            Box::pin(async move {
                if self.down {
                    return Err(BackendDown("down".into()));
                }
                match self.inner.reserve(&caps_of(accounts), nanos, tokens, NOW) {
                    Ok(hold) => {
                        let id = format!("h{}", self.holds.lock().unwrap().len());
                        self.holds.lock().unwrap().push((id.clone(), hold));
                        Ok(Ok(id))
                    }
                    Err(e) => {
                        let index = accounts.iter().position(|a| a.scope == e.scope).unwrap();
                        Ok(Err(SharedRefusal { index, dimension: e.dimension, spend: e.spend }))
                    }
                }
            })
        }

        fn settle(
            &self,
            accounts: Vec<BudgetAccount>,
            id: String,
            _reserved: (i64, u64),
            actual: Option<(i64, u64)>,
            moved: Box<dyn FnOnce(Vec<Moved>) + Send>,
        ) {
            let at = self.holds.lock().unwrap().iter().position(|(h, _)| *h == id).unwrap();
            let (_, hold) = self.holds.lock().unwrap().remove(at);
            let before: Vec<Spend> = accounts.iter().map(|a| self.inner.spend(&a.scope, a.period, NOW)).collect();
            match actual {
                Some((n, t)) => drop(hold.commit(n, t)),
                None => drop(hold),
            }
            let after = accounts.iter().map(|a| self.inner.spend(&a.scope, a.period, NOW));
            moved(
                before
                    .iter()
                    .zip(after)
                    .map(|(b, a)| ((b.committed_nanos, b.committed_tokens), (a.committed_nanos, a.committed_tokens)))
                    .collect(),
            );
        }

        fn seed<'a>(&'a self, a: &'a BudgetAccount, nanos: i64, tokens: u64) -> BoxFuture<'a, Result<(), BackendDown>> {
            Box::pin(async move {
                self.seeded.lock().unwrap().push((a.scope.clone(), nanos, tokens));
                Ok(())
            })
        }

        fn spend<'a>(&'a self, a: &'a BudgetAccount) -> BoxFuture<'a, Result<Spend, BackendDown>> {
            Box::pin(async move { Ok(self.inner.spend(&a.scope, a.period, NOW)) })
        }

        fn add_volume(&self, _: &str, _: i64, tokens: u64, total: Box<dyn FnOnce(u64) + Send>) {
            total(tokens);
        }

        fn seed_volume<'a>(&'a self, _: &'a str, _: i64, tokens: u64) -> BoxFuture<'a, Result<u64, BackendDown>> {
            Box::pin(async move { Ok(tokens) })
        }
    }

    fn cap(scope: &str, max: i64) -> Cap {
        Cap {
            scope: Arc::from(scope),
            period: Period::Day,
            max_nanos: Some(max),
            max_tokens: None,
            action: Action::Block,
            enforce: true,
        }
    }

    fn shared(fake: &Arc<Fake>, on_failure: FailureMode) -> Ledger {
        Ledger::with_shared(Zone::Fixed(Offset(0)), fake.clone(), on_failure)
    }

    #[tokio::test]
    async fn reservations_go_to_the_shared_backend_and_report_crossings() {
        let fake = Fake::new(false);
        let ledger = shared(&fake, FailureMode::Closed);
        let caps = [cap("key:k", DOLLAR), cap("tenant:t", 10 * DOLLAR)];
        let hold = ledger.admit(&caps, DOLLAR / 2, 10, NOW, |_| panic!("up")).await.unwrap();
        assert!(hold.is_shared());
        assert_eq!(hold.reserved(), (DOLLAR / 2, 10));
        assert_eq!(ledger.current_spend("key:k", Period::Day, NOW).await.unwrap().reserved_nanos, DOLLAR / 2);
        assert_eq!(ledger.spend("key:k", Period::Day, NOW), Spend::default(), "nothing in the local ledger");
        let refused = ledger.admit(&caps, DOLLAR / 2 + 1, 0, NOW, |_| panic!("up")).await.unwrap_err();
        let NotReserved::Exceeded(e) = refused else { panic!("{refused:?}") };
        assert_eq!((&*e.scope, e.limit, e.spend.reserved_nanos), ("key:k", DOLLAR, DOLLAR / 2));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        hold.commit_then(DOLLAR / 2, 10, move |c| sink.lock().unwrap().extend(c));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].crosses(50) && !seen[0].crosses(51) && seen[1].crosses(5));
        let spend = ledger.current_spend("key:k", Period::Day, NOW).await.unwrap();
        assert_eq!((spend.committed_nanos, spend.reserved_nanos), (DOLLAR / 2, 0));
    }

    #[tokio::test]
    async fn a_dropped_shared_hold_is_released() {
        let fake = Fake::new(false);
        let ledger = shared(&fake, FailureMode::Closed);
        drop(ledger.admit(&[cap("key:k", DOLLAR)], DOLLAR, 0, NOW, |_| {}).await.unwrap());
        assert_eq!(ledger.current_spend("key:k", Period::Day, NOW).await.unwrap(), Spend::default());
        assert!(fake.holds.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_down_backend_falls_back_or_refuses() {
        let fake = Fake::new(true);
        let mut fell = 0;
        let local = shared(&fake, FailureMode::Local);
        let hold = local.admit(&[cap("key:k", DOLLAR)], DOLLAR, 0, NOW, |_| fell += 1).await.unwrap();
        assert!(!hold.is_shared());
        assert_eq!(local.spend("key:k", Period::Day, NOW).reserved_nanos, DOLLAR);
        assert_eq!(fell, 1);
        let closed = shared(&fake, FailureMode::Closed);
        let refused = closed.admit(&[cap("key:k", DOLLAR)], 1, 0, NOW, |_| {}).await.unwrap_err();
        assert!(matches!(refused, NotReserved::Unavailable(_)), "{refused:?}");
    }

    #[tokio::test]
    async fn caps_on_one_account_merge_and_empty_caps_stay_local() {
        let fake = Fake::new(false);
        let ledger = shared(&fake, FailureMode::Closed);
        let mut loose = cap("key:k", 5 * DOLLAR);
        loose.enforce = false;
        let accounts = ledger.accounts(&[cap("key:k", 2 * DOLLAR), loose, cap("team:t", DOLLAR)], NOW);
        assert_eq!(accounts.len(), 2);
        assert_eq!((accounts[0].max_nanos, accounts[0].enforce), (Some(2 * DOLLAR), true));
        let none = Cap { max_nanos: None, ..cap("key:k", 0) };
        let hold = ledger.admit(&[none], 1, 1, NOW, |_| {}).await.unwrap();
        assert!(!hold.is_shared(), "nothing to share");
        ledger.seed_shared("tenant:t", Period::Month, NOW, 7, 3).await.unwrap();
        assert_eq!(fake.seeded.lock().unwrap().as_slice(), [(Arc::from("tenant:t"), 7, 3)]);
        assert_eq!(ledger.spend("tenant:t", Period::Month, NOW).committed_nanos, 7, "seeded here too");
    }
}
