//! A [`Report`] as the API's JSON, or its rows as CSV (RFC 4180). Every
//! figure is named here once:
//!
//! | figure | meaning |
//! | --- | --- |
//! | `requests` | final records (one per request) |
//! | `errors`, `error_rate` | final records with status ≥ 400 or an error kind; `errors / requests` |
//! | `attempts`, `failed_attempts` | upstream attempts (failovers included) and those that failed |
//! | `input_tokens` … `total_tokens` | over every record; total = input + output |
//! | `cost_usd`, `cost_nanos` | exact: a decimal text of dollars, and integer nano-dollars |
//! | `avg_latency_ms` | mean latency of requests (null without requests) |

use super::calendar::instant_label;
use super::report::{Report, Row};
use super::rollup::Sums;
use super::suggest::Suggestion;
use serde_json::{json, Map, Value};
use switchyard_types::cost::usd_text;

const FIGURES: [&str; 13] = [
    "requests",
    "errors",
    "error_rate",
    "attempts",
    "failed_attempts",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost_usd",
    "cost_nanos",
    "avg_latency_ms",
];

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The figures of `s`, in [`FIGURES`] order.
fn figures(s: &Sums) -> [Value; 13] {
    let latency = (s.requests > 0).then(|| round(s.latency_us as f64 / s.requests as f64 / 1000.0, 3));
    [
        json!(s.requests),
        json!(s.errors),
        json!(round(ratio(s.errors, s.requests), 6)),
        json!(s.attempts),
        json!(s.failed_attempts),
        json!(s.input_tokens),
        json!(s.output_tokens),
        json!(s.cache_read_tokens),
        json!(s.cache_write_tokens),
        json!(s.total_tokens()),
        json!(usd_text(s.cost_nanos)),
        json!(s.cost_nanos),
        json!(latency),
    ]
}

fn figures_object(s: &Sums) -> Map<String, Value> {
    FIGURES.iter().map(|f| f.to_string()).zip(figures(s)).collect()
}

/// Percent change from `before` to `now`, or null from zero.
fn change(before: i64, now: i64) -> Value {
    if before == 0 {
        Value::Null
    } else {
        json!(round((now - before) as f64 * 100.0 / before as f64, 2))
    }
}

fn row_json(r: &Row) -> Value {
    let mut o: Map<String, Value> = r.labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    o.extend(figures_object(&r.sums));
    Value::Object(o)
}

fn suggestion_json(s: &Suggestion) -> Value {
    json!({
        "kind": "cheaper_deployment",
        "route": s.route,
        "deployment": s.deployment,
        "alternative": s.alternative,
        "attempts": s.attempts,
        "success_rate": round(s.success_rate(), 6),
        "alternative_attempts": s.alternative_attempts,
        "alternative_success_rate": round(s.alternative_success_rate(), 6),
        "cost_per_success_usd": usd_text(s.cost_per_success_nanos),
        "alternative_cost_per_success_usd": usd_text(s.alternative_cost_per_success_nanos),
        "spend_usd": usd_text(s.spend_nanos),
        "share_of_spend": round(s.share_of_spend, 6),
        "window_savings_usd": usd_text(s.window_savings_nanos),
        "estimated_monthly_savings_usd": usd_text(s.monthly_savings_nanos),
        "message": format!(
            "On route '{}', '{}' cost ${} per successful attempt ({:.1}% of {} attempts succeeded); '{}' on the same \
             route cost ${} and succeeded as often or more ({:.1}% of {}). Sending this traffic there would have \
             saved about ${} in this period (~${} a month at this rate).",
            s.route,
            s.deployment,
            usd_text(s.cost_per_success_nanos),
            s.success_rate() * 100.0,
            s.attempts,
            s.alternative,
            usd_text(s.alternative_cost_per_success_nanos),
            s.alternative_success_rate() * 100.0,
            s.alternative_attempts,
            usd_text(s.window_savings_nanos),
            usd_text(s.monthly_savings_nanos),
        ),
    })
}

/// The API's JSON answer.
pub fn json(r: &Report) -> Value {
    let q = &r.query;
    let filters: Map<String, Value> = q.filters.iter().map(|(d, v)| (d.column().to_string(), json!(v))).collect();
    let top: Map<String, Value> = r
        .top
        .iter()
        .map(|(kind, list)| {
            let list: Vec<Value> = list
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id, "name": s.name, "requests": s.sums.requests, "total_tokens": s.sums.total_tokens(),
                        "cost_usd": usd_text(s.sums.cost_nanos), "cost_nanos": s.sums.cost_nanos,
                    })
                })
                .collect();
            (kind.to_string(), Value::Array(list))
        })
        .collect();
    let (now, before) = (&r.totals, &r.previous);
    json!({
        "object": "analytics.cost",
        "tenant_id": q.tenant_id,
        "start": instant_label(q.start_ms, &q.zone),
        "end": instant_label(q.end_ms, &q.zone),
        "time_zone": q.zone.to_string(),
        "group_by": q.group_by.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "granularity": q.granularity.map(|g| g.as_str()),
        "filters": filters,
        "totals": figures_object(now),
        "rows": r.rows.iter().map(row_json).collect::<Vec<_>>(),
        "truncated": r.truncated,
        "top_spenders": top,
        "trend": {
            "previous_start": instant_label(r.previous_start_ms, &q.zone),
            "previous_end": instant_label(q.start_ms, &q.zone),
            "previous": figures_object(before),
            "cost_change_nanos": now.cost_nanos - before.cost_nanos,
            "cost_change_pct": change(before.cost_nanos, now.cost_nanos),
            "requests_change_pct": change(before.requests, now.requests),
            "tokens_change_pct": change(before.total_tokens(), now.total_tokens()),
            "error_rate_change": round(ratio(now.errors, now.requests) - ratio(before.errors, before.requests), 6),
        },
        "suggestions": r.suggestions.iter().map(suggestion_json).collect::<Vec<_>>(),
    })
}

/// The rows as CSV: a header of the group labels and the figures, then one
/// line per row (CRLF line ends).
pub fn csv(r: &Report) -> String {
    let mut header: Vec<String> = Vec::new();
    for g in &r.query.group_by {
        match g {
            super::query::Group::Tag => header.extend(["tag_key".to_string(), "tag_value".to_string()]),
            other => header.push(super::report::field(*other).to_string()),
        }
    }
    header.extend(FIGURES.iter().map(|f| f.to_string()));
    let mut out = line(header.iter().map(String::as_str));
    for row in &r.rows {
        let labels = row.labels.iter().map(|(_, v)| v.as_deref().map(cell).unwrap_or_default());
        let figures = figures(&row.sums).into_iter().map(|v| match v {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        });
        let cells: Vec<String> = labels.chain(figures).collect();
        out.push_str(&line(cells.iter().map(String::as_str)));
    }
    out
}

fn line<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    let mut s = cells.map(quote).collect::<Vec<_>>().join(",");
    s.push_str("\r\n");
    s
}

/// A label cell: text a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@`, tab, CR first) is prefixed with `'` (labels include client-chosen
/// tag values).
fn cell(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

fn quote(v: &str) -> String {
    if v.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-5"), "'-5");
        assert_eq!(cell("gpt-4o"), "gpt-4o");
        assert_eq!(line(["a", "b,c"].into_iter()), "a,\"b,c\"\r\n");
    }

    #[test]
    fn figures_are_exact_and_rates_are_rounded() {
        let s = Sums { requests: 3, errors: 1, cost_nanos: 1_234_567_891, latency_us: 10_000, ..Sums::default() };
        let f = figures_object(&s);
        assert_eq!(f["cost_usd"], "1.234567891");
        assert_eq!(f["cost_nanos"], 1_234_567_891);
        assert_eq!(f["error_rate"], 0.333333);
        assert_eq!(f["avg_latency_ms"], 3.333);
        assert_eq!(figures_object(&Sums::default())["avg_latency_ms"], Value::Null);
        assert_eq!(change(0, 5), Value::Null);
        assert_eq!(change(200, 250), json!(25.0));
    }
}
