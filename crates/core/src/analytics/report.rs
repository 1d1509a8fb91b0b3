//! Runs a [`CostQuery`] against the store and shapes the answer: totals,
//! rows per group, top spenders, the trend against the previous window and
//! suggestions. Three reads of the rollups, whatever the query:
//!
//! | read | dimensions | window | gives |
//! | --- | --- | --- | --- |
//! | main | the query's `group_by` (and time) | the query's | `rows` |
//! | overview | tenant, team, key, user, route, deployment | the query's | `totals`, `top_spenders`, `suggestions` |
//! | previous | none | the same length just before | `trend` |

use super::calendar::{instant_label, offsets};
use super::query::{CostQuery, Granularity, Group};
use super::rollup::{merge, Dim, RollupRow, Source, Sums, TimeKey};
use super::suggest::{suggest, Suggestion};
use super::{calendar, plan};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;

const OVERVIEW: [Dim; 6] = [Dim::Tenant, Dim::Team, Dim::Key, Dim::User, Dim::Route, Dim::Deployment];

/// A display name for an id (a key's, team's, user's or tenant's name from
/// the directory), if known.
pub type Names<'a> = &'a (dyn Fn(Dim, &str) -> Option<String> + Sync);

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub query: CostQuery,
    pub totals: Sums,
    pub rows: Vec<Row>,
    /// Rows were left off past `limit` (totals still count them).
    pub truncated: bool,
    pub top: Vec<(&'static str, Vec<Spender>)>,
    pub previous_start_ms: i64,
    pub previous: Sums,
    pub suggestions: Vec<Suggestion>,
}

/// One group: its labels in `group_by` order, then its sums.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub labels: Vec<(&'static str, Option<String>)>,
    pub sums: Sums,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Spender {
    pub id: String,
    pub name: Option<String>,
    pub sums: Sums,
}

/// The answer to `q`: `q.tenant_id` is trusted (the caller's scope is
/// applied before).
pub async fn run(store: &dyn Store, q: &CostQuery, names: Names<'_>) -> Result<Report, StoreError> {
    let mut filters = q.filters.clone();
    if let Some(t) = &q.tenant_id {
        filters.push((Dim::Tenant, t.clone()));
    }
    let usage_filters: Vec<(Dim, String)> = filters.iter().filter(|(d, _)| *d != Dim::TagKey).cloned().collect();
    let time = match q.granularity {
        None => TimeKey::Total,
        Some(Granularity::Hour) => TimeKey::Hour,
        Some(Granularity::Day | Granularity::Month) => TimeKey::Day { offsets: offsets(&q.zone, q.start_ms, q.end_ms) },
    };
    let dims: Vec<Dim> = q.group_by.iter().flat_map(|g| g.dims()).copied().collect();
    let source = if q.by_tag() { Source::Tags } else { Source::Usage };
    let main = plan::over(source, dims, filters, time, q.start_ms, q.end_ms);
    let overview =
        plan::over(Source::Usage, OVERVIEW.to_vec(), usage_filters.clone(), TimeKey::Total, q.start_ms, q.end_ms);
    let length = q.end_ms - q.start_ms;
    let previous_start_ms = previous_start(q);
    let previous = plan::over(Source::Usage, Vec::new(), usage_filters, TimeKey::Total, previous_start_ms, q.start_ms);

    // One snapshot: the rows, the totals and the trend agree.
    let mut answers = store.usage_rollup(&[main, overview, previous]).await?.into_iter();
    let (main_rows, overview_rows, previous_rows) = (
        answers.next().unwrap_or_default(),
        merge(answers.next().unwrap_or_default()),
        answers.next().unwrap_or_default(),
    );
    let mut previous_sums = Sums::default();
    for r in previous_rows {
        previous_sums.add(&r.sums);
    }

    let mut totals = Sums::default();
    for r in &overview_rows {
        totals.add(&r.sums);
    }
    let (rows, truncated) = shape_rows(q, main_rows);
    let mut by_deployment: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for r in &overview_rows {
        if let (Some(route), Some(deployment)) = (&r.keys[4], &r.keys[5]) {
            by_deployment.entry((route.clone(), deployment.clone())).or_default().add(&r.sums);
        }
    }
    let mut top = vec![
        ("keys", spenders(&overview_rows, 2, Dim::Key, q.top, names)),
        ("users", spenders(&overview_rows, 3, Dim::User, q.top, names)),
        ("teams", spenders(&overview_rows, 1, Dim::Team, q.top, names)),
    ];
    if q.tenant_id.is_none() {
        top.push(("tenants", spenders(&overview_rows, 0, Dim::Tenant, q.top, names)));
    }
    Ok(Report {
        query: q.clone(),
        totals,
        rows,
        truncated,
        top,
        previous_start_ms,
        previous: previous_sums,
        suggestions: suggest(&by_deployment, length, totals.cost_nanos),
    })
}

/// Where the window before the query's begins: as many local days before
/// when the query spans whole days (a daylight-saving day keeps its 23 or
/// 25 hours), else as long before.
pub fn previous_start(q: &CostQuery) -> i64 {
    let (start, end, zone) = (q.start_ms, q.end_ms, &q.zone);
    let first = calendar::day_of(start, zone);
    let last = calendar::day_of(end - 1, zone);
    let whole_days =
        end > start && calendar::day_start(first, zone) == start && calendar::day_start(last + 1, zone) == end;
    if whole_days {
        calendar::day_start(first - (last - first + 1), zone)
    } else {
        start - (end - start)
    }
}

/// Rows with labels, months folded from days, sorted (by time, then by
/// cost, largest first) and cut at `limit`.
fn shape_rows(q: &CostQuery, rows: Vec<RollupRow>) -> (Vec<Row>, bool) {
    let month = q.granularity == Some(Granularity::Month);
    let rows = merge(
        rows.into_iter()
            .map(|mut r| {
                if month {
                    r.time = r.time.map(calendar::month_of);
                }
                r
            })
            .collect(),
    );
    let mut keyed: Vec<(Option<i64>, Row)> = rows
        .into_iter()
        .map(|r| {
            let mut keys = r.keys.into_iter();
            let mut labels = Vec::new();
            for g in &q.group_by {
                match g {
                    Group::Date => labels.push(("date", r.time.map(|t| time_label(q, t)))),
                    Group::Tag => {
                        labels.push(("tag_key", keys.next().flatten()));
                        labels.push(("tag_value", keys.next().flatten()));
                    }
                    other => labels.push((field(*other), keys.next().flatten())),
                }
            }
            (r.time, Row { labels, sums: r.sums })
        })
        .collect();
    keyed.sort_by(|(ta, a), (tb, b)| {
        ta.cmp(tb).then(b.sums.cost_nanos.cmp(&a.sums.cost_nanos)).then_with(|| a.labels.cmp(&b.labels))
    });
    let truncated = keyed.len() > q.limit;
    keyed.truncate(q.limit);
    (keyed.into_iter().map(|(_, r)| r).collect(), truncated)
}

/// A row's field for a group.
pub fn field(g: Group) -> &'static str {
    match g {
        Group::Model => "model",
        Group::Deployment => "deployment",
        Group::Route => "route",
        Group::Operation => "operation",
        Group::Tenant => "tenant_id",
        Group::Team => "team_id",
        Group::Key => "key_id",
        Group::User => "user_id",
        Group::Tag => "tag",
        Group::Date => "date",
    }
}

fn time_label(q: &CostQuery, t: i64) -> String {
    match q.granularity {
        Some(Granularity::Hour) => instant_label(t, &q.zone),
        Some(Granularity::Month) => calendar::month_label(t),
        _ => calendar::day_label(t),
    }
}

/// The `top` largest spenders by the overview's dimension at `index`.
fn spenders(rows: &[RollupRow], index: usize, dim: Dim, top: usize, names: Names<'_>) -> Vec<Spender> {
    let mut by: BTreeMap<&str, Sums> = BTreeMap::new();
    for r in rows {
        if let Some(id) = r.keys[index].as_deref() {
            by.entry(id).or_default().add(&r.sums);
        }
    }
    let mut list: Vec<(&str, Sums)> = by.into_iter().collect();
    list.sort_by(|a, b| b.1.cost_nanos.cmp(&a.1.cost_nanos).then(a.0.cmp(b.0)));
    list.into_iter().take(top).map(|(id, sums)| Spender { id: id.to_string(), name: names(dim, id), sums }).collect()
}

#[cfg(test)]
mod tests;
