//! `GET /api/v1/analytics/cost`'s query string → a checked [`CostQuery`]:
//! a 400 naming the parameter for anything wrong, unknown or repeated.

use super::calendar::{day_of, day_start, parse_date, parse_instant};
use super::rollup::{Dim, DAY_MS};
use crate::access::model::invalid;
use crate::budget::Zone;
use crate::error::GatewayError;

/// What rows can be grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Model,
    Deployment,
    Route,
    Operation,
    Tenant,
    Team,
    Key,
    User,
    /// Tag key and value (the tag rollup).
    Tag,
    /// Time buckets of the query's granularity.
    Date,
}

impl Group {
    const ALL: [Group; 10] = [
        Group::Model,
        Group::Deployment,
        Group::Route,
        Group::Operation,
        Group::Tenant,
        Group::Team,
        Group::Key,
        Group::User,
        Group::Tag,
        Group::Date,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Model => "model",
            Group::Deployment => "deployment",
            Group::Route => "route",
            Group::Operation => "operation",
            Group::Tenant => "tenant",
            Group::Team => "team",
            Group::Key => "key",
            Group::User => "user",
            Group::Tag => "tag",
            Group::Date => "date",
        }
    }

    /// The rollup dimensions it reads (none for `date`).
    pub fn dims(self) -> &'static [Dim] {
        match self {
            Group::Model => &[Dim::Model],
            Group::Deployment => &[Dim::Deployment],
            Group::Route => &[Dim::Route],
            Group::Operation => &[Dim::Operation],
            Group::Tenant => &[Dim::Tenant],
            Group::Team => &[Dim::Team],
            Group::Key => &[Dim::Key],
            Group::User => &[Dim::User],
            Group::Tag => &[Dim::TagKey, Dim::TagValue],
            Group::Date => &[],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
    Month,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Month => "month",
        }
    }

    /// The longest range a query at this granularity may span, in days.
    pub fn max_days(self) -> i64 {
        match self {
            Granularity::Hour => MAX_DAYS_BY_HOUR,
            Granularity::Day => MAX_DAYS_BY_DAY,
            Granularity::Month => MAX_DAYS,
        }
    }
}

/// An hour granularity answers at most 744 buckets; a day granularity 400.
pub const MAX_DAYS_BY_HOUR: i64 = 31;
pub const MAX_DAYS_BY_DAY: i64 = 400;
/// Any query: ten years.
pub const MAX_DAYS: i64 = 3660;
/// The default range: the 30 days ending today.
const DEFAULT_DAYS: i64 = 30;
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;
const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 100;
const MAX_FILTER_LEN: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// A checked analytics query.
#[derive(Clone, Debug, PartialEq)]
pub struct CostQuery {
    /// Only this tenant (a tenant-scoped caller's own is forced here).
    pub tenant_id: Option<String>,
    /// `[start_ms, end_ms)`.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Where dates and days begin.
    pub zone: Zone,
    pub group_by: Vec<Group>,
    /// `Some` exactly when `group_by` holds `date`.
    pub granularity: Option<Granularity>,
    /// Equality filters besides the tenant.
    pub filters: Vec<(Dim, String)>,
    pub limit: usize,
    pub top: usize,
    pub format: Format,
}

impl CostQuery {
    pub fn by_tag(&self) -> bool {
        self.group_by.contains(&Group::Tag)
    }
}

/// The parameters, for the error naming an unknown one.
const PARAMS: &str = "tenant_id, start_date, end_date, time_zone, group_by, granularity, limit, top, format, \
    team_id, key_id, user_id, route, deployment, model, operation, tag_key";

/// Filters by parameter name.
const FILTERS: [(&str, Dim); 8] = [
    ("team_id", Dim::Team),
    ("key_id", Dim::Key),
    ("user_id", Dim::User),
    ("route", Dim::Route),
    ("deployment", Dim::Deployment),
    ("model", Dim::Model),
    ("operation", Dim::Operation),
    ("tag_key", Dim::TagKey),
];

/// Parses and checks `query`; dates are read in `default_zone` unless
/// `time_zone` says otherwise; a missing date is counted from today
/// (`now_ms`).
pub fn parse(query: &[(String, String)], now_ms: i64, default_zone: &Zone) -> Result<CostQuery, GatewayError> {
    for (i, (k, _)) in query.iter().enumerate() {
        if query[..i].iter().any(|(seen, _)| seen == k) {
            return Err(invalid(k, format!("'{k}' is given twice.")));
        }
        if !PARAMS.split(", ").any(|p| p == k) {
            return Err(invalid(k, format!("Unknown query parameter '{k}'. Allowed: {PARAMS}.")));
        }
    }
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let zone = match get("time_zone") {
        None => default_zone.clone(),
        Some(v) => Zone::parse(v).map_err(|e| invalid("time_zone", format!("'time_zone': {e}.")))?,
    };
    let group_by = parse_groups(get("group_by"))?;
    let granularity = match get("granularity") {
        None => None,
        Some("hour") => Some(Granularity::Hour),
        Some("day") => Some(Granularity::Day),
        Some("month") => Some(Granularity::Month),
        Some(other) => {
            return Err(invalid("granularity", format!("'granularity' is hour, day or month, not '{other}'.")))
        }
    };
    let mut group_by = group_by;
    // A granularity asks for time buckets; `date` alone means days.
    let granularity = match (granularity, group_by.contains(&Group::Date)) {
        (Some(g), true) => Some(g),
        (Some(g), false) => {
            group_by.push(Group::Date);
            Some(g)
        }
        (None, true) => Some(Granularity::Day),
        (None, false) => None,
    };
    let today = day_of(now_ms, &zone);
    let start = get("start_date").map(|v| bound("start_date", v, &zone, false)).transpose()?;
    let end = get("end_date").map(|v| bound("end_date", v, &zone, true)).transpose()?;
    let (start_ms, end_ms) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, day_start(today + 1, &zone)),
        (None, Some(e)) => (day_start(day_of(e - 1, &zone) + 1 - DEFAULT_DAYS, &zone), e),
        (None, None) => (day_start(today + 1 - DEFAULT_DAYS, &zone), day_start(today + 1, &zone)),
    };
    // Two dates: the end day may be the start day, not before it.
    let both_dates = [get("start_date"), get("end_date")].iter().all(|v| v.is_some_and(|v| v.len() == 10));
    if end_ms < start_ms || (both_dates && end_ms == start_ms) {
        return Err(match end {
            Some(_) => invalid("end_date", "'end_date' is before 'start_date'."),
            None => invalid("start_date", "'start_date' is after today (the default 'end_date')."),
        });
    }
    let max_days = granularity.map_or(MAX_DAYS, Granularity::max_days);
    // Local days (a daylight-saving day has 23 or 25 hours).
    let days = if end_ms > start_ms { day_of(end_ms - 1, &zone) - day_of(start_ms, &zone) + 1 } else { 0 };
    if days > max_days || end_ms - start_ms > (max_days + 1) * DAY_MS {
        let at = granularity.map_or(String::new(), |g| format!(" at granularity '{}'", g.as_str()));
        return Err(invalid(
            "start_date",
            format!("A query{at} may span at most {max_days} days; this one spans more. Narrow the dates."),
        ));
    }
    let mut filters = Vec::new();
    for (name, dim) in FILTERS {
        if let Some(v) = get(name) {
            if v.is_empty() || v.chars().count() > MAX_FILTER_LEN {
                return Err(invalid(name, format!("'{name}' must be 1 to {MAX_FILTER_LEN} characters.")));
            }
            filters.push((dim, v.to_string()));
        }
    }
    let by_tag = group_by.contains(&Group::Tag);
    if let Some((name, _)) = FILTERS.iter().find(|(n, d)| get(n).is_some() && d.in_tags() != by_tag) {
        let why = if by_tag {
            "Tags are rolled up by tenant and hour only: with group_by=tag, filter by tenant_id and tag_key."
        } else {
            "'tag_key' applies with group_by=tag only."
        };
        return Err(invalid(name, why));
    }
    let tenant_id = match get("tenant_id") {
        Some(v) if v.is_empty() || v.chars().count() > MAX_FILTER_LEN => {
            return Err(invalid("tenant_id", format!("'tenant_id' must be 1 to {MAX_FILTER_LEN} characters.")))
        }
        v => v.map(str::to_string),
    };
    let number = |name: &str, default: usize, max: usize| -> Result<usize, GatewayError> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| invalid(name, format!("'{name}' must be an integer from 1 to {max}."))),
        }
    };
    let format = match get("format") {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(other) => return Err(invalid("format", format!("'format' is json or csv, not '{other}'."))),
    };
    Ok(CostQuery {
        tenant_id,
        start_ms,
        end_ms,
        zone,
        group_by,
        granularity,
        filters,
        limit: number("limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        top: number("top", DEFAULT_TOP, MAX_TOP)?,
        format,
    })
}

fn parse_groups(v: Option<&str>) -> Result<Vec<Group>, GatewayError> {
    let mut out: Vec<Group> = Vec::new();
    for name in v.unwrap_or("").split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(g) = Group::ALL.into_iter().find(|g| g.as_str() == name) else {
            let all: Vec<&str> = Group::ALL.iter().map(|g| g.as_str()).collect();
            return Err(invalid("group_by", format!("Unknown group '{name}'. Allowed: {}.", all.join(", "))));
        };
        if out.contains(&g) {
            return Err(invalid("group_by", format!("'{name}' is grouped by twice.")));
        }
        out.push(g);
    }
    if out.contains(&Group::Tag) {
        if let Some(other) = out.iter().find(|g| !matches!(g, Group::Tag | Group::Tenant | Group::Date)) {
            return Err(invalid(
                "group_by",
                format!(
                    "'tag' combines with 'tenant' and 'date' only, not '{}': tags are rolled up by tenant and hour.",
                    other.as_str()
                ),
            ));
        }
    }
    Ok(out)
}

/// A date (`YYYY-MM-DD`: its local midnight, or the next one for an
/// inclusive end) or an RFC 3339 instant (as is).
fn bound(name: &str, v: &str, zone: &Zone, end: bool) -> Result<i64, GatewayError> {
    if v.len() == 10 {
        if let Some(day) = parse_date(v) {
            return Ok(day_start(day + i64::from(end), zone));
        }
    } else if let Some(ms) = parse_instant(v) {
        return Ok(ms);
    }
    Err(invalid(
        name,
        format!("'{name}' must be a date (YYYY-MM-DD, from 1970 on) or an RFC 3339 instant (2026-01-31T18:30:00Z)."),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<CostQuery, GatewayError> {
        let query: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // 2026-01-15T12:00:00Z
        parse(&query, 1_768_478_400_000, &Zone::default())
    }

    fn param(pairs: &[(&str, &str)]) -> String {
        q(pairs).err().and_then(|e| e.param).unwrap_or_default()
    }

    #[test]
    fn defaults_are_the_last_30_days_ungrouped() {
        let got = q(&[]).unwrap();
        assert_eq!(got.end_ms - got.start_ms, 30 * DAY_MS);
        assert_eq!(got.end_ms, parse_date("2026-01-16").unwrap() * DAY_MS, "today is included");
        assert_eq!((got.group_by.len(), got.granularity, got.limit, got.top), (0, None, 1000, 10));
        assert_eq!(got.format, Format::Json);
    }

    #[test]
    fn dates_are_inclusive_days_in_the_offset() {
        let got = q(&[("start_date", "2026-01-01"), ("end_date", "2026-01-01"), ("time_zone", "+05:30")]).unwrap();
        assert_eq!(got.end_ms - got.start_ms, DAY_MS);
        assert_eq!(got.start_ms, parse_date("2026-01-01").unwrap() * DAY_MS - 330 * 60_000);
        // A daylight-saving day in Berlin has 23 hours; 31 of its days are
        // allowed by hour all the same.
        let got =
            q(&[("start_date", "2026-03-29"), ("end_date", "2026-03-29"), ("time_zone", "Europe/Berlin")]).unwrap();
        assert_eq!(got.end_ms - got.start_ms, 23 * 3_600_000);
        let got = q(&[
            ("start_date", "2026-10-01"),
            ("end_date", "2026-10-31"),
            ("granularity", "hour"),
            ("time_zone", "Europe/Berlin"),
        ]);
        assert_eq!(got.unwrap().end_ms, parse_date("2026-11-01").unwrap() * DAY_MS - 3_600_000);
        let got = q(&[("start_date", "2026-01-01T10:00:00Z"), ("end_date", "2026-01-01T10:00:00Z")]).unwrap();
        assert_eq!(got.end_ms, got.start_ms, "an empty range is allowed");
    }

    #[test]
    fn groups_and_granularity() {
        let got = q(&[("group_by", "model, date"), ("granularity", "month")]).unwrap();
        assert_eq!(got.group_by, [Group::Model, Group::Date]);
        assert_eq!(got.granularity, Some(Granularity::Month));
        assert_eq!(q(&[("group_by", "date")]).unwrap().granularity, Some(Granularity::Day));
        let got = q(&[("granularity", "hour"), ("start_date", "2026-01-10")]).unwrap();
        assert_eq!(got.group_by, [Group::Date], "a granularity groups by date");
        assert_eq!(
            q(&[("group_by", "tag,tenant"), ("tag_key", "env")]).unwrap().filters,
            [(Dim::TagKey, "env".to_string())]
        );
    }

    #[test]
    fn bad_input_names_the_parameter() {
        assert_eq!(param(&[("colour", "red")]), "colour");
        assert_eq!(param(&[("limit", "1"), ("limit", "2")]), "limit");
        assert_eq!(param(&[("group_by", "model,planet")]), "group_by");
        assert_eq!(param(&[("group_by", "model,model")]), "group_by");
        assert_eq!(param(&[("group_by", "tag,model")]), "group_by");
        assert_eq!(param(&[("group_by", "tag"), ("model", "m")]), "model");
        assert_eq!(param(&[("tag_key", "env")]), "tag_key");
        assert_eq!(param(&[("granularity", "week")]), "granularity");
        assert_eq!(param(&[("start_date", "2026-02-30")]), "start_date");
        assert_eq!(param(&[("end_date", "yesterday")]), "end_date");
        assert_eq!(param(&[("start_date", "2026-01-10"), ("end_date", "2026-01-09")]), "end_date");
        assert_eq!(param(&[("start_date", "2026-02-01")]), "start_date", "a start after today");
        assert_eq!(param(&[("time_zone", "Mars/Olympus")]), "time_zone");
        assert_eq!(param(&[("limit", "0")]), "limit");
        assert_eq!(param(&[("top", "101")]), "top");
        assert_eq!(param(&[("format", "xml")]), "format");
        assert_eq!(param(&[("model", "")]), "model");
        assert_eq!(param(&[("tenant_id", "")]), "tenant_id");
    }

    #[test]
    fn ranges_are_capped_by_granularity() {
        let span =
            |g: &str, start: &str| param(&[("granularity", g), ("start_date", start), ("end_date", "2026-01-31")]);
        assert_eq!(span("hour", "2026-01-01"), "", "31 days by hour");
        assert_eq!(span("hour", "2025-12-31"), "start_date", "32 days by hour");
        assert_eq!(span("day", "2024-12-28"), "", "400 days by day");
        assert_eq!(span("day", "2024-12-27"), "start_date");
        assert_eq!(param(&[("start_date", "2010-01-01")]), "start_date", "more than ten years");
    }
}
