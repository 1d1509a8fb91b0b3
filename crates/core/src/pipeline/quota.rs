//! Budgets at admission: the request's estimated maximum cost — prompt
//! bytes / 4 and its `max_tokens` (or the configured default), at the
//! dearest prices of the deployments it may be sent to — is reserved against
//! every budget of its key, team and tenant, all-or-nothing. The actual cost
//! is committed when the request ends ([`super::account::Account`]); the
//! rest of the reservation is released then.

use super::admit::Head;
use super::limit::estimate;
use super::resolve::Plan;
use crate::access::Caller;
use crate::budget::Hold;
use crate::error::{ErrorKind, GatewayError};
use crate::Gateway;
use switchyard_providers::Operation;
use switchyard_types::cost::{cost_picos, to_nanos, PriceSheet, Tokens};

impl Gateway {
    /// Reserves the request's estimated maximum cost and tokens, or refuses
    /// it (429 `insufficient_quota`). `None`: no budget applies.
    pub(crate) fn reserve_budget(
        &self,
        caller: &Caller,
        plan: &Plan,
        op: Operation,
        head: &Head<'_>,
        body_len: usize,
        default_max_tokens: u64,
    ) -> Result<Option<Hold>, GatewayError> {
        if caller.caps.is_empty() {
            return Ok(None);
        }
        let (prompt, output) = estimate(op, head, body_len, default_max_tokens);
        let price = dearest(plan.attempts.iter().map(|d| &d.price));
        let nanos = to_nanos(cost_picos(&price, &Tokens { input: prompt, output, ..Tokens::default() }));
        let now = crate::now_unix_ms();
        match self.ledger.reserve(&caller.caps, nanos, prompt.saturating_add(output), now) {
            Ok(hold) => Ok(Some(hold)),
            Err(exceeded) => {
                let scope = exceeded.scope.split(':').next().unwrap_or("-");
                let period = match exceeded.period {
                    crate::budget::Period::Day => "day",
                    crate::budget::Period::Month => "month",
                };
                self.metrics.budget_exceeded.inc(&[scope, period]);
                let mut e = GatewayError::new(ErrorKind::QuotaExceeded, exceeded.message(self.ledger.offset()));
                let wait_ms = (exceeded.window.end_ms - now).max(1000);
                e.retry_after = Some(std::time::Duration::from_millis(wait_ms as u64));
                Err(e)
            }
        }
    }
}

impl Gateway {
    /// Rebuilds budget spend for the current day and month from the stored
    /// usage records, so a restart does not forget what was spent (records
    /// still waiting in the spill file are counted when replayed, not here).
    /// Skipped when no tenant, team or key has a budget.
    pub async fn seed_budgets(&self) -> Result<(), crate::StoreError> {
        // The rebuild scans the period's usage records (no rollup table
        // yet): only pay for it when some budget exists.
        if !self.directory.load().has_budgets() {
            return Ok(());
        }
        let now = crate::now_unix_ms();
        for period in [crate::budget::Period::Day, crate::budget::Period::Month] {
            let w = crate::budget::window(period, now, self.ledger.offset());
            for row in self.store.spend_since(w.start_ms).await? {
                let tokens = u64::try_from(row.tokens).unwrap_or(0);
                let scopes = [
                    row.key_id.map(|k| format!("key:{k}")),
                    row.team_id.map(|t| format!("team:{t}")),
                    row.tenant_id.map(|t| format!("tenant:{t}")),
                ];
                for scope in scopes.into_iter().flatten() {
                    self.ledger.seed(&scope, period, w.start_ms, row.nanos, tokens);
                }
            }
        }
        Ok(())
    }
}

/// Each price at its highest among `sheets`: what the request could cost
/// wherever it ends up (a fallback may be dearer than the first choice).
fn dearest<'a>(sheets: impl Iterator<Item = &'a PriceSheet>) -> PriceSheet {
    sheets.fold(PriceSheet::default(), |m, p| PriceSheet {
        input: m.input.max(p.input),
        cached_input: m.cached_input.max(p.cached_input),
        cache_write: m.cache_write.max(p.cache_write),
        output: m.output.max(p.output),
        per_request: m.per_request.max(p.per_request),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dearest_price_of_each_kind_is_reserved() {
        let a = PriceSheet { input: 10, output: 1, ..PriceSheet::default() };
        let b = PriceSheet { input: 2, output: 30, per_request: 5, ..PriceSheet::default() };
        let d = dearest([a, b].iter());
        assert_eq!((d.input, d.output, d.per_request), (10, 30, 5));
        assert_eq!(dearest(std::iter::empty()), PriceSheet::default());
    }
}
