//! Monthly token volume per provider, for volume discounts
//! (`providers[].volume_discounts`, docs/cost.md#volume-discounts).
//!
//! Only providers with discount tiers are counted. A request's tokens are
//! added when its record is written; the tier reached by the volume
//! *before* them prices the whole request (`switchyard_types::cost::discounted`).
//! Months are the budgets' calendar months (`budgets.time_zone`). At start
//! the month's volume is rebuilt from stored usage. With Redis configured
//! the count is shared by replicas: each addition is sent to one counter
//! per provider and month (fire and forget), and the total Redis answers
//! replaces this process's count when larger — so a replica prices with
//! the shared volume as of its last answer.

use crate::budget::{window, Period, SharedBudgets, Zone};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// provider → (month start in unix ms, tokens that month).
type Months = Mutex<HashMap<String, (i64, u64)>>;

/// Tokens per provider in the current month.
#[derive(Default)]
pub struct VolumeMeter {
    zone: Zone,
    months: Arc<Months>,
    shared: Option<Arc<dyn SharedBudgets>>,
}

impl std::fmt::Debug for VolumeMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeMeter").field("zone", &self.zone).field("shared", &self.shared.is_some()).finish()
    }
}

/// The shared counter's name for a provider's month.
fn counter(provider: &str, month_start_ms: i64) -> String {
    format!("vol:{provider}:{month_start_ms}")
}

/// Raises the provider's count for `month` to `total` (a shared total
/// never lowers what this process counted).
fn raise(months: &Months, provider: &str, month: i64, total: u64) {
    let mut months = months.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(entry) = months.get_mut(provider) {
        if entry.0 == month && entry.1 < total {
            entry.1 = total;
        }
    }
}

impl VolumeMeter {
    /// Counting in `zone`'s months; in `shared` too when given.
    pub fn new(zone: Zone, shared: Option<Arc<dyn SharedBudgets>>) -> VolumeMeter {
        VolumeMeter { zone, months: Arc::default(), shared }
    }

    /// Adds `tokens` to the provider's month containing `now_ms` and returns
    /// the volume before them (0 in a new month).
    pub fn add(&self, provider: &str, tokens: u64, now_ms: i64) -> u64 {
        let month = window(Period::Month, now_ms, &self.zone);
        let before = {
            let mut months = self.months.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = match months.get_mut(provider) {
                Some(entry) => entry,
                None => months.entry(provider.to_string()).or_insert((month.start_ms, 0)),
            };
            if entry.0 != month.start_ms {
                *entry = (month.start_ms, 0);
            }
            let before = entry.1;
            entry.1 = before.saturating_add(tokens);
            before
        };
        if let Some(shared) = &self.shared {
            let (months, name) = (self.months.clone(), provider.to_string());
            let expire = month.end_ms.saturating_add(month.end_ms - month.start_ms);
            let update = move |total| raise(&months, &name, month.start_ms, total);
            shared.add_volume(&counter(provider, month.start_ms), expire, tokens, Box::new(update));
        }
        before
    }

    /// Adds stored volume (at start) to the provider's month containing
    /// `month_ms`; volume of an earlier month than the one held is ignored.
    /// With a shared counter, the shared total wins where it exists.
    pub async fn seed(&self, provider: &str, month_ms: i64, tokens: u64) {
        let month = window(Period::Month, month_ms, &self.zone);
        let total = {
            let mut months = self.months.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = months.entry(provider.to_string()).or_insert((month.start_ms, 0));
            if entry.0 < month.start_ms {
                *entry = (month.start_ms, 0);
            }
            if entry.0 == month.start_ms {
                entry.1 = entry.1.saturating_add(tokens);
            }
            entry.1
        };
        if let Some(shared) = &self.shared {
            let expire = month.end_ms.saturating_add(month.end_ms - month.start_ms);
            match shared.seed_volume(&counter(provider, month.start_ms), expire, total).await {
                Ok(total) => raise(&self.months, provider, month.start_ms, total),
                Err(down) => {
                    tracing::warn!(error = %down.0, provider, "cannot read the shared provider volume; counting from the store's")
                }
            }
        }
    }

    /// The provider's volume in the month containing `now_ms`.
    pub fn volume(&self, provider: &str, now_ms: i64) -> u64 {
        let month = window(Period::Month, now_ms, &self.zone).start_ms;
        let months = self.months.lock().unwrap_or_else(PoisonError::into_inner);
        months.get(provider).filter(|(start, _)| *start == month).map_or(0, |(_, tokens)| *tokens)
    }
}

impl crate::Gateway {
    /// Rebuilds this month's volume of every provider with discount tiers
    /// from the stored usage records (after the spill file was replayed).
    /// Skipped when no provider has tiers.
    pub async fn seed_volume(&self) -> Result<(), crate::StoreError> {
        let rt = self.runtime();
        let discounted: HashMap<&str, &str> = rt
            .routes
            .values()
            .flat_map(|r| r.targets.iter())
            .filter(|d| !d.discounts.is_empty())
            .map(|d| (d.name.as_str(), d.provider_name.as_str()))
            .collect();
        if discounted.is_empty() {
            return Ok(());
        }
        let now = crate::now_unix_ms();
        let month = window(Period::Month, now, self.ledger.zone()).start_ms;
        let mut by_provider: HashMap<&str, u64> = HashMap::new();
        for (deployment, tokens) in self.store.volume_since(month).await? {
            if let Some(provider) = discounted.get(deployment.as_str()) {
                *by_provider.entry(provider).or_default() += u64::try_from(tokens).unwrap_or(0);
            }
        }
        for (provider, tokens) in by_provider {
            self.volume.seed(provider, month, tokens).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// 2026-12-05T12:00Z and 2027-01-01T00:00Z.
    const DEC: i64 = 1_796_472_000_000;
    const JAN: i64 = 1_798_761_600_000;

    #[test]
    fn volume_adds_up_per_provider_and_month() {
        let meter = VolumeMeter::default();
        assert_eq!(meter.add("openai", 100, DEC), 0);
        assert_eq!(meter.add("openai", 50, DEC), 100);
        assert_eq!(meter.add("anthropic", 7, DEC), 0);
        assert_eq!(meter.volume("openai", DEC), 150);
        // A new month starts from zero.
        assert_eq!(meter.add("openai", 1, JAN), 0);
        assert_eq!(meter.volume("openai", JAN), 1);
        assert_eq!(meter.volume("openai", DEC), 0, "December is gone");
    }

    /// A shared counter that another replica has already added to.
    struct Elsewhere(Mutex<u64>);

    impl SharedBudgets for Elsewhere {
        fn reserve<'a>(
            &'a self,
            _: &'a [crate::budget::BudgetAccount],
            _: i64,
            _: u64,
        ) -> crate::limits::BoxFuture<
            'a,
            Result<Result<String, crate::budget::SharedRefusal>, crate::limits::BackendDown>,
        > {
            Box::pin(async { Err(crate::limits::BackendDown("volume only".into())) })
        }
        fn settle(
            &self,
            _: Vec<crate::budget::BudgetAccount>,
            _: String,
            _: (i64, u64),
            _: Option<(i64, u64)>,
            _: Box<dyn FnOnce(Vec<crate::budget::Moved>) + Send>,
        ) {
        }
        fn seed<'a>(
            &'a self,
            _: &'a crate::budget::BudgetAccount,
            _: i64,
            _: u64,
        ) -> crate::limits::BoxFuture<'a, Result<(), crate::limits::BackendDown>> {
            Box::pin(async { Ok(()) })
        }
        fn spend<'a>(
            &'a self,
            _: &'a crate::budget::BudgetAccount,
        ) -> crate::limits::BoxFuture<'a, Result<crate::budget::Spend, crate::limits::BackendDown>> {
            Box::pin(async { Ok(crate::budget::Spend::default()) })
        }
        fn add_volume(&self, _: &str, _: i64, tokens: u64, total: Box<dyn FnOnce(u64) + Send>) {
            let mut count = self.0.lock().unwrap();
            *count += tokens;
            total(*count);
        }
        fn seed_volume<'a>(
            &'a self,
            _: &'a str,
            _: i64,
            _: u64,
        ) -> crate::limits::BoxFuture<'a, Result<u64, crate::limits::BackendDown>> {
            Box::pin(async { Ok(*self.0.lock().unwrap()) })
        }
    }

    #[tokio::test]
    async fn a_shared_total_raises_this_replicas_count() {
        let shared = Arc::new(Elsewhere(Mutex::new(5_000)));
        let meter = VolumeMeter::new(Zone::default(), Some(shared.clone()));
        // The store knew 100 tokens; Redis counts 5,000 (other replicas).
        meter.seed("openai", DEC, 100).await;
        assert_eq!(meter.volume("openai", DEC), 5_000);
        assert_eq!(meter.add("openai", 10, DEC), 5_000);
        *shared.0.lock().unwrap() += 1_000; // another replica's traffic
        assert_eq!(meter.add("openai", 1, DEC), 5_010, "priced with what was known");
        assert_eq!(meter.volume("openai", DEC), 6_011, "then raised to the shared total");
    }

    #[tokio::test]
    async fn seeding_counts_the_current_month_only() {
        let meter = VolumeMeter::default();
        meter.seed("openai", DEC, 1_000).await;
        meter.seed("openai", DEC - 1, 5).await;
        assert_eq!(meter.add("openai", 10, DEC), 1_005);
        meter.seed("openai", JAN, 3).await;
        assert_eq!(meter.volume("openai", JAN), 3);
        meter.seed("openai", DEC, 99).await;
        assert_eq!(meter.volume("openai", JAN), 3, "an older month's seed is ignored");
    }
}
