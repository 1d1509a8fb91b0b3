//! Budgets at admission: the request's estimated maximum cost — prompt
//! bytes / 4 and its `max_tokens` (or the configured default), at the
//! dearest prices of the deployments it may be sent to — is reserved against
//! every budget of its key, team and tenant, all-or-nothing. The actual cost
//! is committed when the request ends ([`super::account::Account`]); the
//! rest of the reservation is released then. A budget that would be passed
//! blocks, downgrades or throttles the request (its `on_exceed`).

use crate::access::Caller;
use crate::budget::{Action, Exceeded, Hold, NotReserved, Period};
use crate::error::{ErrorKind, GatewayError};
use crate::limits::{headers, Check, Limits, NotAdmitted};
use crate::routing::{self, Plan};
use crate::runtime::Runtime;
use crate::Gateway;
use std::borrow::Cow;
use std::sync::Arc;
use switchyard_providers::Operation;
use switchyard_types::cost::{cost_picos, to_nanos, PriceSheet, Tokens};

/// What the budgets made of a request that got through.
#[derive(Default)]
pub(crate) struct Budgeted {
    /// The reservation (`None`: no budget applies).
    pub hold: Option<Hold>,
    /// `x-switchyard-budget-action` when a spent budget's action let the
    /// request through: `downgrade; …` or `throttle; …`.
    pub action: Option<String>,
}

impl Gateway {
    /// Reserves the request's estimated maximum cost and tokens under every
    /// budget of its key, team and tenant. A budget that would be passed
    /// acts: `block` refuses (429 `insufficient_quota`); `downgrade`
    /// replaces the plan with its route's and `throttle` lets the request
    /// through at its rate — either way that budget still counts the
    /// request's spend but no longer refuses it, and the reservation is
    /// tried again with the other budgets.
    pub(crate) async fn reserve_budget(
        &self,
        rt: &Runtime,
        caller: &Caller,
        plan: &mut Plan,
        request: &routing::Request<'_>,
    ) -> Result<Budgeted, GatewayError> {
        if caller.caps.is_empty() {
            return Ok(Budgeted::default());
        }
        // The same estimate limits use (prompt bytes / 4, answer allowance).
        let (prompt, output) = (request.needs.prompt_tokens, request.needs.output_tokens);
        let op = if request.needs.embeddings { Operation::Embeddings } else { Operation::Chat };
        let mut caps = Cow::Borrowed(&caller.caps[..]);
        let mut actions: Vec<String> = Vec::new();
        // Each round relaxes one budget: at most one round per budget.
        for _ in 0..=caller.caps.len() {
            let price = dearest(plan.steps.iter().map(|s| &s.deployment.price));
            let nanos = to_nanos(cost_picos(&price, &Tokens { input: prompt, output, ..Tokens::default() }));
            // A cascade may pay for every step: reserve for each.
            let attempts = if plan.route.cascade.is_some() { plan.steps.len().max(1) as i64 } else { 1 };
            let nanos = nanos.saturating_mul(attempts);
            let now = crate::now_unix_ms();
            let fell_back = |down: &crate::limits::BackendDown| {
                self.metrics.budget_backend_failures.inc(&[]);
                tracing::warn!(error = %down.0, "shared budget store unavailable; applying the configured failure mode");
            };
            let tokens = prompt.saturating_add(output).saturating_mul(attempts as u64);
            let exceeded = match self.ledger.admit(&caps, nanos, tokens, now, fell_back).await {
                Ok(hold) => {
                    let action = (!actions.is_empty()).then(|| actions.join(", "));
                    return Ok(Budgeted { hold: Some(hold), action });
                }
                Err(NotReserved::Exceeded(exceeded)) => exceeded,
                Err(NotReserved::Unavailable(down)) => {
                    let mut e = GatewayError::new(
                        ErrorKind::Overloaded,
                        format!("Budgets cannot be checked right now ({}); try again shortly.", down.0),
                    );
                    e.retry_after = Some(std::time::Duration::from_secs(1));
                    return Err(e);
                }
            };
            let Some(i) =
                caps.iter().position(|c| c.enforce && c.scope == exceeded.scope && c.period == exceeded.period)
            else {
                return Err(self.budget_refused(caller.tenant_id(), &exceeded, now, None));
            };
            let budget = format!("scope={}; period={}", exceeded.scope, period_name(exceeded.period));
            match caps[i].action.clone() {
                Action::Block => return Err(self.budget_refused(caller.tenant_id(), &exceeded, now, None)),
                Action::Downgrade(to) => {
                    let Some(route) = rt.routes.get(&*to).filter(|r| caller.may_use(&r.name)) else {
                        let why = format!("its downgrade route `{to}` is not available to this key");
                        return Err(self.budget_refused(caller.tenant_id(), &exceeded, now, Some(&why)));
                    };
                    if route.embeddings != (op == Operation::Embeddings) {
                        let why = format!("its downgrade route `{to}` does not serve {}", op.as_str());
                        return Err(self.budget_refused(caller.tenant_id(), &exceeded, now, Some(&why)));
                    }
                    // The cheaper route is routed like any other: its
                    // filters (classification above all) apply.
                    let downgraded = match routing::plan(route, request) {
                        Ok(p) => p,
                        Err(e) => {
                            let why = format!("its downgrade route `{to}` cannot serve it ({})", e.message);
                            return Err(self.budget_refused(caller.tenant_id(), &exceeded, now, Some(&why)));
                        }
                    };
                    actions.push(format!("downgrade; {budget}; from={}; to={to}", plan.route.name));
                    self.metrics.budget_actions.inc(&["downgrade"]);
                    *plan = downgraded;
                }
                Action::Throttle(rpm) => {
                    let scope = Arc::from(format!("budget:{}:{}", exceeded.scope, period_name(exceeded.period)));
                    let check = Check { scope, limits: Limits { rpm: Some(rpm), ..Limits::default() } };
                    let fell_back = |down: &crate::limits::BackendDown| {
                        self.metrics.rate_limit_backend_failures.inc(&[]);
                        tracing::warn!(error = %down.0, "rate-limit store unavailable; applying the configured failure mode");
                    };
                    match self.limiter.admit(std::slice::from_ref(&check), 0, fell_back).await {
                        Ok(_) => {}
                        Err(NotAdmitted::Refused(refusal)) => {
                            self.metrics.budget_actions.inc(&["throttle_refused"]);
                            let mut e = GatewayError::new(
                                ErrorKind::RateLimited,
                                format!(
                                    "{} Requests over it are throttled to {rpm} per minute; try again shortly.",
                                    exceeded.message(self.ledger.zone())
                                ),
                            );
                            e.retry_after = refusal.retry_after;
                            e.rate_limits = headers::headers(&refusal.quota);
                            return Err(e);
                        }
                        Err(NotAdmitted::Unavailable(down)) => {
                            let mut e = GatewayError::new(
                                ErrorKind::Overloaded,
                                format!("Rate limits cannot be checked right now ({}); try again shortly.", down.0),
                            );
                            e.retry_after = Some(std::time::Duration::from_secs(1));
                            return Err(e);
                        }
                    }
                    actions.push(format!("throttle; {budget}; rpm={rpm}"));
                    self.metrics.budget_actions.inc(&["throttle"]);
                }
            }
            caps.to_mut()[i].enforce = false;
        }
        // Unreachable in practice: every round relaxed a budget.
        Err(GatewayError::new(ErrorKind::QuotaExceeded, "Budget exceeded."))
    }

    /// A budget refused the request: counted, alerted (its 100% threshold,
    /// once per period), and told as 429 `insufficient_quota` with
    /// `retry-after` until the period ends.
    fn budget_refused(&self, tenant_id: &str, exceeded: &Exceeded, now: i64, why: Option<&str>) -> GatewayError {
        let scope = exceeded.scope.split(':').next().unwrap_or("-");
        self.metrics.budget_exceeded.inc(&[scope, period_name(exceeded.period)]);
        self.alerts.notify(tenant_id, vec![exceeded.crossing()]);
        let mut message = exceeded.message(self.ledger.zone());
        if let Some(why) = why {
            message = format!("{} It cannot downgrade: {why}.", message);
        }
        let mut e = GatewayError::new(ErrorKind::QuotaExceeded, message);
        let wait_ms = (exceeded.window.end_ms - now).max(1000);
        e.retry_after = Some(std::time::Duration::from_millis(wait_ms as u64));
        e
    }
}

fn period_name(period: Period) -> &'static str {
    match period {
        Period::Day => "day",
        Period::Month => "month",
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
            let w = crate::budget::window(period, now, self.ledger.zone());
            // Rows are per (tenant, team, key): a tenant's spend is the sum
            // of its rows.
            let mut by_scope: std::collections::HashMap<String, (i64, u64)> = Default::default();
            for row in self.store.spend_since(w.start_ms).await? {
                let tokens = u64::try_from(row.tokens).unwrap_or(0);
                let scopes = [
                    row.key_id.map(|k| format!("key:{k}")),
                    row.team_id.map(|t| format!("team:{t}")),
                    row.tenant_id.map(|t| format!("tenant:{t}")),
                ];
                for scope in scopes.into_iter().flatten() {
                    let sum = by_scope.entry(scope).or_default();
                    *sum = (sum.0.saturating_add(row.nanos), sum.1.saturating_add(tokens));
                }
            }
            for (scope, (nanos, tokens)) in by_scope {
                if let Err(down) = self.ledger.seed_shared(&scope, period, w.start_ms, nanos, tokens).await {
                    tracing::warn!(error = %down.0, scope, "cannot seed the shared budget counters; they count from zero");
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
