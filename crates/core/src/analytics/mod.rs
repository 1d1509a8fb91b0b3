//! Spend analytics: `GET /api/v1/analytics/cost` (docs/analytics.md).
//! Queries read hourly rollups that the usage writer keeps in the same
//! transaction as the raw records (docs/adr/0008), never on the request
//! path: only the admin API runs them.
//!
//! | module | holds |
//! | --- | --- |
//! | [`rollup`] | the rollups' rows and sums; what a batch adds; [`rollup::RollupQuery`], the store's read, and its reference answer from raw records |
//! | [`plan`] | a time range → whole hours (rollups) and partial hours (raw records) |
//! | [`query`] | the query string → a checked [`CostQuery`] (400 naming the parameter) |
//! | [`calendar`] | dates, RFC 3339 instants and bucket labels in the budgets' offset |
//! | [`report`] | running a query: rows, totals, top spenders, trend |
//! | [`suggest`] | cost-saving suggestions from the window's usage |
//! | [`render`] | the JSON answer and CSV |

pub mod calendar;
pub mod plan;
pub mod query;
pub mod render;
pub mod report;
pub mod rollup;
pub mod suggest;

pub use query::{CostQuery, Format, Granularity, Group};
pub use report::{run, Report};
pub use rollup::{Dim, RollupQuery, RollupRow, Source, Sums, TimeKey};

use crate::access::audit::Origin;
use crate::access::{Permission, Principal};
use crate::budget::Zone;
use crate::error::{ErrorKind, GatewayError};
use crate::store::{SpendRow, StoreError};
use crate::Gateway;
use std::collections::BTreeMap;

impl Gateway {
    /// `GET /api/v1/analytics/cost`: `usage.read`; a tenant-scoped caller
    /// sees its own tenant only (asking for another answers an empty
    /// report, as the audit log does). Dates are read in `budgets.time_zone`
    /// unless the query names a `time_zone`.
    pub async fn analytics_cost(
        &self,
        who: &Principal,
        query: &[(String, String)],
        origin: &Origin,
    ) -> Result<Report, GatewayError> {
        self.require(who, Permission::UsageRead, origin).await?;
        // Checked at start and on reload; UTC if it ever is not.
        let zone = Zone::parse(&self.runtime().config.budgets.time_zone).unwrap_or_default();
        let mut q = query::parse(query, crate::now_unix_ms(), &zone)?;
        if let Some(mine) = who.tenant_scope() {
            if q.tenant_id.as_deref().is_some_and(|t| t != mine) {
                return Ok(Report::empty(q));
            }
            q.tenant_id = Some(mine.to_string());
        }
        let dir = self.directory.snapshot();
        let names = move |dim: Dim, id: &str| match dim {
            Dim::Key => dir.keys.get(id).map(|k| k.name.clone()),
            Dim::Team => dir.teams.get(id).map(|t| t.name.clone()),
            Dim::User => dir.users.get(id).map(|u| u.name.clone()),
            Dim::Tenant => dir.tenants.get(id).map(|t| t.name.clone()),
            _ => None,
        };
        let started = std::time::Instant::now();
        let report = run(&*self.store, &q, &names).await.map_err(|e: StoreError| {
            GatewayError::new(ErrorKind::Overloaded, format!("The usage store could not answer; try again: {e}"))
        })?;
        tracing::info!(
            tenant = ?q.tenant_id,
            group_by = ?q.group_by.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            days = (q.end_ms - q.start_ms) / rollup::DAY_MS,
            rows = report.rows.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "analytics query"
        );
        Ok(report)
    }
}

impl Report {
    /// A report with nothing in it (another tenant's, to a tenant's caller).
    pub fn empty(query: CostQuery) -> Report {
        Report {
            previous_start_ms: report::previous_start(&query),
            query,
            totals: Sums::default(),
            rows: Vec::new(),
            truncated: false,
            top: vec![("keys", Vec::new()), ("users", Vec::new()), ("teams", Vec::new())],
            previous: Sums::default(),
            suggestions: Vec::new(),
        }
    }
}

/// [`crate::store::Store::spend_since`] from rollup rows keyed by tenant,
/// team and key ([`plan::since`]).
pub fn spend_rows(rows: Vec<RollupRow>) -> Vec<SpendRow> {
    let mut by: BTreeMap<Vec<Option<String>>, SpendRow> = BTreeMap::new();
    for r in rows {
        let row = by.entry(r.keys.clone()).or_insert_with(|| {
            let mut keys = r.keys.into_iter();
            SpendRow {
                tenant_id: keys.next().flatten(),
                team_id: keys.next().flatten(),
                key_id: keys.next().flatten(),
                ..SpendRow::default()
            }
        });
        row.nanos = row.nanos.saturating_add(r.sums.cost_nanos);
        row.tokens = row.tokens.saturating_add(r.sums.total_tokens());
    }
    by.into_values().collect()
}
