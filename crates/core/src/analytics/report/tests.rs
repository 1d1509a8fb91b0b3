//! Reports over the in-memory store, checked against sums computed here
//! from the records themselves (the stores' SQL is checked against the
//! same kind of sums in `switchyard-store`'s tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::analytics::calendar::{day_label, parse_date};
use crate::analytics::query::parse;
use crate::analytics::rollup::{DAY_MS, HOUR_MS};
use crate::budget::{Offset, Zone};
use crate::store::memory::MemoryStore;
use crate::usage::UsageRecord;

/// 2026-01-10T00:00:00Z.
fn base() -> i64 {
    parse_date("2026-01-10").unwrap() * DAY_MS
}

/// Records over four days from `base()`, of two tenants, five keys, three
/// deployments of route `chat`, tags on some, a failed attempt before some
/// requests, and refusals.
fn dataset(seed: u64, n: usize) -> Vec<UsageRecord> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let at = base() + rng.i64(0..4 * DAY_MS);
        let key = rng.usize(0..5);
        let deployment = ["big", "small", "mid"][rng.usize(0..3)];
        let mut r = UsageRecord {
            id: format!("use_{i:06}"),
            request_id: format!("req{i}"),
            created_at: at,
            tenant_id: Some(if key < 3 { "acme" } else { "globex" }.into()),
            team_id: key.is_multiple_of(2).then(|| format!("team{}", key % 3)),
            key_id: Some(format!("key{key}")),
            user_id: (key != 4).then(|| format!("user{key}")),
            operation: "chat".into(),
            route: Some("chat".into()),
            deployment: Some(deployment.into()),
            model: Some(format!("model-{deployment}")),
            status: if rng.u8(0..10) == 0 { 502 } else { 200 },
            input_tokens: Some(rng.u64(0..500)),
            output_tokens: Some(rng.u64(0..200)),
            cache_read_tokens: rng.u64(0..5),
            attempt: 1,
            attempts: 1,
            cost_nanos: Some(rng.i64(0..20_000) * if deployment == "big" { 10 } else { 1 }),
            latency_ms: rng.f64() * 900.0,
            tags: match rng.u8(0..3) {
                0 => None,
                1 => Some(r#"{"env":"prod"}"#.into()),
                _ => Some(format!(r#"{{"env":"dev","feature":"f{}"}}"#, rng.u8(0..3))),
            },
            ..UsageRecord::default()
        };
        if rng.u8(0..6) == 0 {
            // A failed attempt first: not the request, costs nothing.
            let mut failed = r.clone();
            failed.id = format!("{}.1", r.id);
            failed.is_final = false;
            failed.status = 503;
            failed.error_kind = Some("upstream_failed".into());
            failed.cost_nanos = Some(0);
            failed.input_tokens = None;
            failed.output_tokens = None;
            out.push(failed);
            r.attempt = 2;
            r.attempts = 2;
        }
        if rng.u8(0..20) == 0 {
            // Refused before any upstream.
            r.status = 429;
            r.attempt = 0;
            r.deployment = None;
            r.model = None;
            r.cost_nanos = None;
        }
        r.id = format!("{}.{}", r.id, r.attempt);
        out.push(r);
    }
    out
}

/// The figures written out by hand.
#[derive(Debug, Default, PartialEq)]
struct Fig {
    requests: i64,
    errors: i64,
    attempts: i64,
    tokens: i64,
    cost: i64,
}

fn fig(records: &[&UsageRecord]) -> Fig {
    let mut f = Fig::default();
    for r in records {
        if r.is_final {
            f.requests += 1;
            if r.status >= 400 || r.error_kind.is_some() {
                f.errors += 1;
            }
        }
        if r.attempt > 0 {
            f.attempts += 1;
        }
        f.tokens += (r.input_tokens.unwrap_or(0) + r.output_tokens.unwrap_or(0)) as i64;
        f.cost += r.cost_nanos.unwrap_or(0);
    }
    f
}

fn fig_of(s: &Sums) -> Fig {
    Fig {
        requests: s.requests,
        errors: s.errors,
        attempts: s.attempts,
        tokens: s.input_tokens + s.output_tokens,
        cost: s.cost_nanos,
    }
}

async fn report(store: &MemoryStore, pairs: &[(&str, &str)]) -> Report {
    let query: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let q = parse(&query, base() + 20 * DAY_MS, &Zone::default()).unwrap();
    run(store, &q, &|_, _| None).await.unwrap()
}

fn store_with(records: &[UsageRecord]) -> MemoryStore {
    let store = MemoryStore::default();
    for chunk in records.chunks(97) {
        store.usage_batches.lock().unwrap().push(chunk.to_vec());
    }
    // A replayed batch changes nothing.
    store.usage_batches.lock().unwrap().push(records[..50].to_vec());
    store
}

#[tokio::test]
async fn rows_by_model_and_day_at_an_offset_equal_sums_over_the_records() {
    let records = dataset(7, 3000);
    let store = store_with(&records);
    let r = report(
        &store,
        &[
            ("start_date", "2026-01-10"),
            ("end_date", "2026-01-12"),
            ("time_zone", "+05:30"),
            ("group_by", "model,date"),
            ("tenant_id", "acme"),
        ],
    )
    .await;
    let off = 330 * 60_000;
    let (start, end) = (base() - off, base() + 3 * DAY_MS - off);
    let mine: Vec<&UsageRecord> = records
        .iter()
        .filter(|r| r.created_at >= start && r.created_at < end && r.tenant_id.as_deref() == Some("acme"))
        .collect();
    assert_eq!(fig_of(&r.totals), fig(&mine));
    let mut groups: BTreeMap<(String, Option<String>), Vec<&UsageRecord>> = BTreeMap::new();
    for rec in &mine {
        let day = day_label((rec.created_at + off).div_euclid(DAY_MS));
        groups.entry((day, rec.model.clone())).or_default().push(rec);
    }
    assert_eq!(r.rows.len(), groups.len());
    for row in &r.rows {
        let model = row.labels[0].1.clone();
        let day = row.labels[1].1.clone().unwrap();
        assert_eq!(fig_of(&row.sums), fig(&groups[&(day.clone(), model.clone())]), "{day} {model:?}");
    }
    assert_eq!(r.rows[0].labels[1].1.as_deref(), Some("2026-01-10"), "sorted by date first");
    // Top spenders: acme's keys, largest first.
    let keys = &r.top.iter().find(|(k, _)| *k == "keys").unwrap().1;
    for s in keys {
        let of_key: Vec<&UsageRecord> = mine.iter().copied().filter(|r| r.key_id.as_deref() == Some(&s.id)).collect();
        assert_eq!(s.sums.cost_nanos, fig(&of_key).cost);
    }
    assert!(keys.windows(2).all(|w| w[0].sums.cost_nanos >= w[1].sums.cost_nanos));
    assert_eq!(keys.len(), 3, "acme has three keys");
    assert!(r.top.iter().all(|(k, _)| *k != "tenants"), "a tenant's report lists no tenants");
}

#[tokio::test]
async fn months_hours_tags_and_the_trend() {
    let records = dataset(11, 2000);
    let store = store_with(&records);
    let by_month =
        report(&store, &[("start_date", "2026-01-01"), ("end_date", "2026-02-28"), ("granularity", "month")]).await;
    assert_eq!(by_month.rows.len(), 1);
    assert_eq!(by_month.rows[0].labels, [("date", Some("2026-01".to_string()))]);
    let all: Vec<&UsageRecord> = records.iter().collect();
    assert_eq!(fig_of(&by_month.rows[0].sums), fig(&all));
    assert_eq!(fig_of(&by_month.totals), fig(&all));

    // Hour buckets over one day, starting mid-hour: the first bucket holds
    // only what came after the start.
    let start = base() + DAY_MS + HOUR_MS / 2;
    let s = crate::analytics::calendar::instant_label(start, &Zone::Fixed(Offset(0)));
    let e = crate::analytics::calendar::instant_label(start + DAY_MS, &Zone::Fixed(Offset(0)));
    let by_hour = report(&store, &[("start_date", &s), ("end_date", &e), ("granularity", "hour")]).await;
    assert_eq!(by_hour.rows.len(), 25);
    let first: Vec<&UsageRecord> =
        records.iter().filter(|r| r.created_at >= start && r.created_at < start + HOUR_MS / 2).collect();
    assert_eq!(fig_of(&by_hour.rows[0].sums), fig(&first));
    assert_eq!(by_hour.rows[0].labels[0].1.as_deref(), Some("2026-01-11T00:00:00Z"));

    // Tags: one row per (key, value); a record with two tags is in two rows.
    let by_tag = report(&store, &[("start_date", "2026-01-10"), ("end_date", "2026-01-13"), ("group_by", "tag")]).await;
    let prod = by_tag.rows.iter().find(|r| r.labels[1].1.as_deref() == Some("prod")).unwrap();
    let tagged: Vec<&UsageRecord> =
        records.iter().filter(|r| r.tags.as_deref().is_some_and(|t| t.contains("\"prod\""))).collect();
    assert_eq!(fig_of(&prod.sums), fig(&tagged));
    assert_eq!(fig_of(&by_tag.totals), fig(&all), "totals count each record once");

    // The trend compares with the window just before: days 2–3 vs 0–1.
    let trend = report(&store, &[("start_date", "2026-01-12"), ("end_date", "2026-01-13")]).await;
    let before: Vec<&UsageRecord> = records.iter().filter(|r| r.created_at < base() + 2 * DAY_MS).collect();
    assert_eq!(fig_of(&trend.previous), fig(&before));
    assert_eq!(trend.previous_start_ms, base());
}

#[tokio::test]
async fn limits_cut_rows_not_totals_and_empty_ranges_are_empty() {
    let records = dataset(3, 500);
    let store = store_with(&records);
    let r = report(
        &store,
        &[("start_date", "2026-01-10"), ("end_date", "2026-01-13"), ("group_by", "key"), ("limit", "2")],
    )
    .await;
    assert_eq!((r.rows.len(), r.truncated), (2, true));
    assert!(r.rows[0].sums.cost_nanos >= r.rows[1].sums.cost_nanos);
    let all: Vec<&UsageRecord> = records.iter().collect();
    assert_eq!(fig_of(&r.totals), fig(&all));
    let empty =
        report(&store, &[("start_date", "2025-01-01"), ("end_date", "2025-01-31"), ("group_by", "model")]).await;
    assert_eq!((empty.rows.len(), empty.totals, empty.suggestions.len()), (0, Sums::default(), 0));
    let json = crate::analytics::render::json(&empty);
    assert_eq!(json["totals"]["cost_usd"], "0");
    assert_eq!(json["trend"]["cost_change_pct"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_dear_deployment_gets_a_suggestion() {
    // "big" costs ten times "small" per request; both fail ~10%.
    let records = dataset(5, 3000);
    let store = store_with(&records);
    let r = report(&store, &[("start_date", "2026-01-10"), ("end_date", "2026-01-13")]).await;
    let s = r.suggestions.iter().find(|s| s.deployment == "big").expect("a suggestion for big");
    assert_ne!(s.alternative, "big");
    assert!(s.monthly_savings_nanos > s.window_savings_nanos, "four days scaled to thirty");
    let json = crate::analytics::render::json(&r);
    assert!(json["suggestions"][0]["message"].as_str().unwrap().contains("route 'chat'"));
    let csv = crate::analytics::render::csv(&r);
    assert!(csv.starts_with("requests,errors,error_rate,"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "a header and the one ungrouped row");
}
