//! What an alert is: which thresholds a budget movement reached, the stored
//! row (one per budget, period window, dimension and threshold), its
//! delivery status, and the filters of the list.

use crate::budget::{Crossing, Dimension, Period};

/// The delivery status of an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    /// Being sent (or left by a stop or a crash: sent again at the next
    /// start, or by the periodic sweep).
    Pending,
    /// Every webhook answered 2xx.
    Delivered,
    /// A webhook refused it (4xx) or did not answer within the attempts.
    Failed,
    /// No webhook was configured when it fired: recorded and listed only.
    Recorded,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 4] =
        [AlertStatus::Pending, AlertStatus::Delivered, AlertStatus::Failed, AlertStatus::Recorded];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Delivered => "delivered",
            AlertStatus::Failed => "failed",
            AlertStatus::Recorded => "recorded",
        }
    }

    pub fn parse(s: &str) -> Option<AlertStatus> {
        AlertStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Where an alert's delivery stands; updated after every attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub status: AlertStatus,
    /// Attempts made so far, every webhook counted.
    pub attempts: u32,
    /// The last failure (status or error, and which webhook: scheme and
    /// host only, never the path, which may be a credential).
    pub last_error: Option<String>,
    /// Unix ms of the last change.
    pub updated_at: i64,
}

/// One fired alert: a budget reached a threshold in one window. Unique per
/// [`AlertKey`] in the store, so it fires once across restarts and
/// replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRecord {
    /// `alr_…`, time-ordered.
    pub id: String,
    pub tenant_id: Option<String>,
    /// `tenant:ID`, `team:ID` or `key:ID`.
    pub scope: String,
    pub period: Period,
    /// The window, unix ms, `[start, end)`.
    pub window_start: i64,
    pub window_end: i64,
    pub dimension: Dimension,
    /// Percent of the cap.
    pub threshold: u32,
    /// The cap: nano-dollars or tokens.
    pub limit: i64,
    /// Committed spend when it fired (a refusal: spent plus held, at least
    /// the cap).
    pub spent: i64,
    /// A request was refused by this budget.
    pub refused: bool,
    /// Unix ms.
    pub fired_at: i64,
    pub delivery: Delivery,
}

/// What makes an alert unique.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub scope: String,
    pub period: Period,
    pub window_start: i64,
    pub dimension: Dimension,
    pub threshold: u32,
}

impl AlertRecord {
    /// The alert for `threshold` of `crossing`, fired now, not yet sent
    /// (`Recorded` when there is nowhere to send it).
    pub fn new(tenant_id: &str, c: &Crossing, threshold: u32, now_ms: i64, has_webhooks: bool) -> AlertRecord {
        let status = if has_webhooks { AlertStatus::Pending } else { AlertStatus::Recorded };
        AlertRecord {
            id: crate::ids::time_ordered("alr"),
            tenant_id: Some(tenant_id.to_string()).filter(|t| !t.is_empty()),
            scope: c.scope.to_string(),
            period: c.period,
            window_start: c.window.start_ms,
            window_end: c.window.end_ms,
            dimension: c.dimension,
            threshold,
            limit: c.limit,
            spent: c.after,
            refused: c.refused,
            fired_at: now_ms,
            delivery: Delivery { status, attempts: 0, last_error: None, updated_at: now_ms },
        }
    }

    pub fn key(&self) -> AlertKey {
        AlertKey {
            scope: self.scope.clone(),
            period: self.period,
            window_start: self.window_start,
            dimension: self.dimension,
            threshold: self.threshold,
        }
    }

    /// `("key", "key_1")` from `key:key_1`.
    pub fn scope_parts(&self) -> (&str, &str) {
        self.scope.split_once(':').unwrap_or(("", &self.scope))
    }
}

/// The thresholds (ascending, from `thresholds`) that `c` makes due.
///
/// Committed spend moved: every threshold the spend is now **at or above**
/// — not only those this movement crossed. The store keeps each alert once,
/// so the lower ones already fired are skipped there; and one that was
/// never recorded (the notice was dropped from a full queue, the process
/// stopped first, the cap was lowered, or spend was rebuilt at start) fires
/// on the next movement instead of never.
///
/// A refusal makes 100 due only ([`Crossing::crosses`]): the budget is
/// exhausted for the request it refused, whatever was committed.
pub fn due(c: &Crossing, thresholds: &[u32]) -> Vec<u32> {
    if c.refused {
        return thresholds.iter().copied().filter(|t| c.crosses(*t)).collect();
    }
    if c.after <= 0 {
        // Nothing spent reaches nothing, even under a zero cap.
        return Vec::new();
    }
    let spent = i128::from(c.after) * 100;
    let limit = i128::from(c.limit.max(0));
    thresholds.iter().copied().filter(|t| limit * i128::from(*t) <= spent).collect()
}

/// Dimension as stored and shown.
pub fn dimension_str(d: Dimension) -> &'static str {
    match d {
        Dimension::Cost => "cost",
        Dimension::Tokens => "tokens",
    }
}

pub fn parse_dimension(s: &str) -> Option<Dimension> {
    match s {
        "cost" => Some(Dimension::Cost),
        "tokens" => Some(Dimension::Tokens),
        _ => None,
    }
}

pub fn period_str(p: Period) -> &'static str {
    match p {
        Period::Day => "day",
        Period::Month => "month",
    }
}

pub fn parse_period(s: &str) -> Option<Period> {
    match s {
        "day" => Some(Period::Day),
        "month" => Some(Period::Month),
        _ => None,
    }
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertQuery {
    pub tenant_id: Option<String>,
    /// `key:ID`, `team:ID`, `tenant:ID`.
    pub scope: Option<String>,
    pub status: Option<AlertStatus>,
    /// `fired_at`, unix ms, inclusive.
    pub since: Option<i64>,
    /// `fired_at`, unix ms, exclusive.
    pub until: Option<i64>,
    /// Only alerts with an id below this one (paging, newest first).
    pub before: Option<String>,
    pub limit: usize,
}

impl AlertQuery {
    /// Whether `a` passes the filters (in-memory fakes; the stores say the
    /// same in SQL).
    pub fn matches(&self, a: &AlertRecord) -> bool {
        self.tenant_id.as_deref().is_none_or(|t| a.tenant_id.as_deref() == Some(t))
            && self.scope.as_deref().is_none_or(|s| a.scope == s)
            && self.status.is_none_or(|s| a.delivery.status == s)
            && self.since.is_none_or(|s| a.fired_at >= s)
            && self.until.is_none_or(|u| a.fired_at < u)
            && self.before.as_deref().is_none_or(|b| a.id.as_str() < b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Window;
    use std::sync::Arc;

    const DEFAULT: [u32; 4] = [50, 80, 95, 100];

    fn moved(before: i64, after: i64, limit: i64) -> Crossing {
        Crossing {
            scope: Arc::from("key:k1"),
            period: Period::Month,
            window: Window { period: Period::Month, start_ms: 0, end_ms: 10 },
            dimension: Dimension::Cost,
            limit,
            before,
            after,
            refused: false,
        }
    }

    #[test]
    fn spend_makes_due_every_threshold_it_is_at_or_above() {
        assert_eq!(due(&moved(0, 49, 100), &DEFAULT), Vec::<u32>::new());
        assert_eq!(due(&moved(49, 50, 100), &DEFAULT), [50]);
        assert_eq!(due(&moved(50, 79, 100), &DEFAULT), [50], "already fired: the store skips it");
        assert_eq!(due(&moved(79, 96, 100), &DEFAULT), [50, 80, 95]);
        assert_eq!(due(&moved(96, 130, 100), &DEFAULT), DEFAULT);
        // Exact arithmetic: 80% of 3 nano-dollars is 2.4.
        assert_eq!(due(&moved(0, 2, 3), &[66, 67, 80]), [66]);
        assert_eq!(due(&moved(0, i64::MAX, i64::MAX), &[100, 1000]), [100]);
        assert_eq!(due(&moved(0, 5, 1), &[100, 500, 1000]), [100, 500]);
    }

    /// Whatever the ledger calls a crossing is due here too (the rule here
    /// is wider: see `due`).
    #[test]
    fn every_threshold_a_movement_crosses_is_due() {
        for (before, after) in [(0, 50), (49, 51), (79, 80), (94, 100), (0, 100), (99, 250)] {
            let c = moved(before, after, 100);
            let crossed: Vec<u32> = DEFAULT.into_iter().filter(|t| c.crosses(*t)).collect();
            let due = due(&c, &DEFAULT);
            assert!(crossed.iter().all(|t| due.contains(t)), "{before}→{after}: {crossed:?} ⊄ {due:?}");
        }
    }

    #[test]
    fn a_refusal_makes_only_100_due() {
        let refused = Crossing { refused: true, ..moved(10, 100, 100) };
        assert_eq!(due(&refused, &DEFAULT), [100]);
        assert_eq!(due(&refused, &[50, 80]), Vec::<u32>::new());
    }

    #[test]
    fn a_zero_cap_is_reached_by_any_spend() {
        assert_eq!(due(&moved(0, 1, 0), &[50, 100]), [50, 100]);
        assert_eq!(due(&moved(0, 0, 0), &[50, 100]), Vec::<u32>::new());
    }

    #[test]
    fn queries_filter_like_the_stores() {
        let mut a = AlertRecord::new("t1", &moved(0, 50, 100), 50, 1_000, true);
        a.id = "alr_5".into();
        let q = |f: fn(&mut AlertQuery)| {
            let mut q = AlertQuery { limit: 10, ..AlertQuery::default() };
            f(&mut q);
            q.matches(&a)
        };
        assert!(q(|_| {}));
        assert!(q(|q| q.tenant_id = Some("t1".into())));
        assert!(!q(|q| q.tenant_id = Some("t2".into())));
        assert!(q(|q| q.scope = Some("key:k1".into())));
        assert!(!q(|q| q.status = Some(AlertStatus::Delivered)));
        assert!(q(|q| q.status = Some(AlertStatus::Pending)));
        assert!(q(|q| q.since = Some(1_000)));
        assert!(!q(|q| q.until = Some(1_000)));
        assert!(!q(|q| q.before = Some("alr_5".into())));
        assert_eq!(a.scope_parts(), ("key", "k1"));
        assert_eq!(AlertRecord::new("", &moved(0, 50, 100), 50, 1, false).delivery.status, AlertStatus::Recorded);
        for s in AlertStatus::ALL {
            assert_eq!(AlertStatus::parse(s.as_str()), Some(s));
        }
    }
}
