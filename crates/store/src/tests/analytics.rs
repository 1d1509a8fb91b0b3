//! The usage rollups and the analytics reads, on every backend, against
//! sums computed here from the raw records: a randomized dataset (tenants,
//! keys, models, tags, failed attempts, refusals, streams cut after their
//! 200, replayed and overlapping batches, a record twice in one batch),
//! read through whole hours and partial ones, at offsets of whole hours,
//! half hours and three quarters.

use super::{Opened, TestDb};
use std::collections::BTreeMap;
use std::sync::Arc;
use switchyard_core::analytics::calendar::{day_of, day_start, offsets, parse_date};
use switchyard_core::analytics::rollup::{DAY_MS, HOUR_MS};
use switchyard_core::analytics::{self, plan, Dim, RollupQuery, Source, TimeKey};
use switchyard_core::budget::{Offset, Zone};
use switchyard_core::ids::time_ordered_floor;
use switchyard_core::store::Store;
use switchyard_core::usage::UsageRecord;

for_each_backend!(
    analytics_rollups_equal_sums_over_the_raw_records,
    analytics_spend_since_reads_rollups_exactly,
    analytics_report_totals_equal_the_records,
    analytics_migration_backfills_existing_records,
    analytics_concurrent_writers_add_up,
);

/// 2026-03-10T00:00:00Z: the 40 days hold Berlin's change to summer time
/// (03-29) and Lord Howe Island's half-hour change back (04-05).
const BASE: i64 = 1_773_100_800_000;
const DAYS: i64 = 40;

const KEYS: [(&str, &str, Option<&str>, Option<&str>); 6] = [
    ("key_a1", "acme", Some("team_x"), Some("usr_1")),
    ("key_a2", "acme", Some("team_x"), None),
    ("key_a3", "acme", None, Some("usr_2")),
    ("key_g1", "globex", Some("team_y"), Some("usr_3")),
    ("key_g2", "globex", None, None),
    ("key_i1", "initech", Some("team_z"), Some("usr_4")),
];

const DEPLOYMENTS: [(&str, &str, &str, &str); 4] = [
    ("chat", "big", "model-big", "chat"),
    ("chat", "small", "model-small", "chat"),
    ("chat", "local", "model-local", "chat"),
    ("embed", "emb", "embed-1", "embeddings"),
];

const TAGS: [Option<&str>; 7] = [
    None,
    Some(r#"{"env":"prod"}"#),
    Some(r#"{"env":"dev","feature":"search"}"#),
    Some(r#"{"env":"prod","feature":"summarize, \"quoted\""}"#),
    Some(r#"{"n":1}"#),
    Some("not json"),
    Some(r#"{"env":"prod","team":"é=ü"}"#),
];

/// A request's records (a failed attempt before some), ids made the way
/// the gateway makes them: the millisecond first.
fn request(rng: &mut fastrand::Rng, n: usize, at: i64) -> Vec<UsageRecord> {
    let (key, tenant, team, user) = KEYS[rng.usize(..KEYS.len())];
    let (route, deployment, model, operation) = DEPLOYMENTS[rng.usize(..DEPLOYMENTS.len())];
    let id = format!("{}{:020x}", time_ordered_floor("use", at - rng.i64(0..3)), n);
    let mut r = UsageRecord {
        id: id.clone(),
        request_id: format!("req{n}"),
        created_at: at,
        key_id: Some(key.into()),
        tenant_id: Some(tenant.into()),
        team_id: team.map(str::to_string),
        user_id: user.map(str::to_string),
        operation: operation.into(),
        route: Some(route.into()),
        deployment: Some(deployment.into()),
        model: Some(model.into()),
        status: 200,
        input_tokens: Some(rng.u64(1..4000)),
        output_tokens: (operation == "chat").then(|| rng.u64(0..900)),
        cache_read_tokens: rng.u64(0..3) * 64,
        cache_write_tokens: rng.u64(0..2) * 32,
        attempt: 1,
        attempts: 1,
        cost_nanos: Some(rng.i64(0..5_000_000)),
        latency_ms: rng.f64() * 2000.0,
        end_user: rng.bool().then(|| "someone".to_string()),
        tags: TAGS[rng.usize(..TAGS.len())].map(str::to_string),
        ..UsageRecord::default()
    };
    let mut out = Vec::new();
    match rng.u8(..20) {
        0..=2 => {
            let mut failed = r.clone();
            failed.is_final = false;
            failed.status = 503;
            failed.error_kind = Some("upstream_failed".into());
            failed.input_tokens = None;
            failed.output_tokens = None;
            failed.cache_read_tokens = 0;
            failed.cache_write_tokens = 0;
            failed.cost_nanos = Some(0);
            failed.latency_ms = rng.f64() * 50.0;
            out.push(failed);
            r.attempt = 2;
            r.attempts = 2;
        }
        3 => {
            r.status = 502;
            r.error_kind = Some("upstream_failed".into());
            r.cost_nanos = Some(0);
        }
        4 => r.error_kind = Some("stream_cut".into()),
        5 => {
            // Refused by the gateway: no upstream, no cost, no key.
            r.status = 401;
            r.attempt = 0;
            r.attempts = 0;
            r.key_id = None;
            r.tenant_id = None;
            r.team_id = None;
            r.user_id = None;
            r.deployment = None;
            r.model = None;
            r.cost_nanos = None;
            r.input_tokens = None;
            r.output_tokens = None;
        }
        _ => {}
    }
    for r in out.iter_mut().chain(std::iter::once(&mut r)) {
        r.id = format!("{id}.{}", r.attempt);
    }
    out.push(r);
    out
}

/// `n` requests over 40 days, with some on the instants that matter: hour
/// edges and the midnights of +05:30 and +05:45.
fn dataset(seed: u64, n: usize) -> Vec<UsageRecord> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let at = match rng.u8(..10) {
            0 => {
                let hour = BASE + rng.i64(1..DAYS * 24) * HOUR_MS;
                hour + [-1, 0, 1, 30 * 60_000 - 1, 30 * 60_000, 15 * 60_000][rng.usize(..6)]
            }
            _ => BASE + rng.i64(0..DAYS * DAY_MS),
        };
        out.extend(request(&mut rng, i, at));
    }
    out
}

/// Writes `records` in random batches the way a writer with retries and a
/// spill file could: some batches again, some overlapping, one with a
/// record twice.
async fn write(store: &dyn Store, records: &[UsageRecord], seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut at = 0;
    let mut previous: &[UsageRecord] = &[];
    while at < records.len() {
        let end = (at + rng.usize(1..700)).min(records.len());
        let batch = &records[at..end];
        store.write_usage(batch).await.unwrap();
        match rng.u8(..8) {
            0 => store.write_usage(batch).await.unwrap(),
            1 => {
                let mut overlap = previous.to_vec();
                overlap.extend_from_slice(&batch[..batch.len() / 2]);
                store.write_usage(&overlap).await.unwrap();
            }
            2 => {
                let mut twice = batch[..batch.len().min(3)].to_vec();
                twice.extend_from_slice(&batch[..1]);
                store.write_usage(&twice).await.unwrap();
            }
            _ => {}
        }
        previous = batch;
        at = end;
    }
    // A batch holding a new record twice counts it once.
    let mut extra = request(&mut rng, 999_999, BASE + 5 * HOUR_MS + 7);
    extra.push(extra[0].clone());
    store.write_usage(&extra).await.unwrap();
}

/// The ten sums of records, written out here: the definitions the stores
/// must follow.
fn add(acc: &mut [i64; 10], r: &UsageRecord) {
    let failed = r.status >= 400 || r.error_kind.is_some();
    acc[0] += i64::from(r.is_final);
    acc[1] += i64::from(r.is_final && failed);
    acc[2] += i64::from(r.attempt > 0);
    acc[3] += i64::from(r.attempt > 0 && failed);
    acc[4] += r.input_tokens.unwrap_or(0) as i64;
    acc[5] += r.output_tokens.unwrap_or(0) as i64;
    acc[6] += r.cache_read_tokens as i64;
    acc[7] += r.cache_write_tokens as i64;
    acc[8] += r.cost_nanos.unwrap_or(0);
    if r.is_final {
        acc[9] += (r.latency_ms * 1000.0).trunc() as i64;
    }
}

/// A record's tags that are strings.
fn tags(r: &UsageRecord) -> Vec<(String, String)> {
    let Some(Ok(serde_json::Value::Object(m))) = r.tags.as_deref().map(serde_json::from_str::<serde_json::Value>)
    else {
        return Vec::new();
    };
    m.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect()
}

type Table = BTreeMap<(Vec<Option<String>>, Option<i64>), [i64; 10]>;

/// A read to check: `zone` is what its days are local to.
struct Case {
    name: &'static str,
    q: RollupQuery,
    start: i64,
    end: i64,
    zone: Zone,
}

/// What `c.q` must answer, from the records each once.
fn expected(records: &[UsageRecord], c: &Case) -> Table {
    let (q, start, end) = (&c.q, c.start, c.end);
    let mut seen = std::collections::HashSet::new();
    let mut out = Table::new();
    for r in records.iter().filter(|r| seen.insert(r.id.clone())) {
        if r.created_at < start || r.created_at >= end {
            continue;
        }
        let time = match q.time {
            TimeKey::Total => None,
            TimeKey::Hour => Some(r.created_at - r.created_at.rem_euclid(HOUR_MS)),
            TimeKey::Day { .. } => Some(day_of(r.created_at, &c.zone)),
        };
        let plain = |d: Dim| -> Option<String> {
            match d {
                Dim::Tenant => r.tenant_id.clone(),
                Dim::Team => r.team_id.clone(),
                Dim::Key => r.key_id.clone(),
                Dim::User => r.user_id.clone(),
                Dim::Route => r.route.clone(),
                Dim::Deployment => r.deployment.clone(),
                Dim::Model => r.model.clone(),
                Dim::Operation => Some(r.operation.clone()),
                Dim::TagKey | Dim::TagValue => None,
            }
        };
        let rows: Vec<Vec<(Dim, Option<String>)>> = match q.source {
            Source::Usage => vec![vec![]],
            Source::Tags => {
                tags(r).into_iter().map(|(k, v)| vec![(Dim::TagKey, Some(k)), (Dim::TagValue, Some(v))]).collect()
            }
        };
        for tag in rows {
            let value = |d: Dim| tag.iter().find(|(t, _)| *t == d).map_or_else(|| plain(d), |(_, v)| v.clone());
            if q.filters.iter().all(|(d, want)| value(*d).as_deref() == Some(want)) {
                let keys = q.dims.iter().map(|d| value(*d)).collect();
                add(out.entry((keys, time)).or_insert([0; 10]), r);
            }
        }
    }
    out
}

async fn answered(store: &dyn Store, q: &RollupQuery) -> Table {
    let mut out = Table::new();
    for row in store.usage_rollup(std::slice::from_ref(q)).await.unwrap().into_iter().flatten() {
        let acc = out.entry((row.keys, row.time)).or_insert([0; 10]);
        for (a, v) in acc.iter_mut().zip(row.sums.values()) {
            *a += v;
        }
    }
    out
}

const MIN: i64 = 60_000;

/// The reads every backend must answer exactly.
fn cases() -> Vec<Case> {
    let fixed = |minutes: i32| Zone::Fixed(Offset(minutes));
    let case = |name, source, dims: &[Dim], filters: &[(Dim, &str)], zone: Option<Zone>, hourly: bool, start, end| {
        let filters = filters.iter().map(|(d, v)| (*d, v.to_string())).collect();
        let time = match &zone {
            Some(z) => TimeKey::Day { offsets: offsets(z, start, end) },
            None if hourly => TimeKey::Hour,
            None => TimeKey::Total,
        };
        let q = plan::over(source, dims.to_vec(), filters, time, start, end);
        Case { name, q, start, end, zone: zone.unwrap_or_default() }
    };
    let day = |d: i64| BASE + d * DAY_MS;
    let local = |date: &str, zone: &Zone| day_start(parse_date(date).unwrap(), zone);
    let (ist, npt) = (fixed(330), fixed(345));
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    let lord_howe = Zone::parse("Australia/Lord_Howe").unwrap();
    vec![
        case("everything", Source::Usage, &[], &[], None, false, BASE, day(DAYS)),
        case(
            "by model and day at +05:30",
            Source::Usage,
            &[Dim::Model],
            &[],
            Some(ist.clone()),
            false,
            day(3) - 330 * MIN,
            day(20) - 330 * MIN,
        ),
        case(
            "acme by key and hour from mid-hour",
            Source::Usage,
            &[Dim::Key, Dim::Tenant],
            &[(Dim::Tenant, "acme")],
            None,
            true,
            day(5) + 17 * MIN + 3,
            day(7) + 45 * MIN,
        ),
        case(
            "tags by day at +05:45",
            Source::Tags,
            &[Dim::TagKey, Dim::TagValue, Dim::Tenant],
            &[],
            Some(npt.clone()),
            false,
            day(1) - 345 * MIN,
            day(31) - 345 * MIN,
        ),
        case(
            "one tag key of one tenant by hour",
            Source::Tags,
            &[Dim::TagValue],
            &[(Dim::TagKey, "env"), (Dim::Tenant, "acme")],
            None,
            true,
            day(2) + 1,
            day(4) - 1,
        ),
        case(
            "by route, deployment, operation, team and user between two instants",
            Source::Usage,
            &[Dim::Route, Dim::Deployment, Dim::Operation, Dim::Team, Dim::User],
            &[(Dim::Route, "chat")],
            None,
            false,
            day(9) + 123_457,
            day(33) + 7 * HOUR_MS + 59 * MIN,
        ),
        case(
            "by day at -03:30 inside one hour",
            Source::Usage,
            &[Dim::Key],
            &[],
            Some(fixed(-210)),
            false,
            day(8) + MIN,
            day(8) + 40 * MIN,
        ),
        case(
            "by model and day in Berlin across summer time",
            Source::Usage,
            &[Dim::Model],
            &[],
            Some(berlin.clone()),
            false,
            local("2026-03-20", &berlin),
            local("2026-04-05", &berlin),
        ),
        case(
            "tags by day on Lord Howe Island across its half-hour change",
            Source::Tags,
            &[Dim::TagValue],
            &[(Dim::TagKey, "env")],
            Some(lord_howe.clone()),
            false,
            local("2026-03-30", &lord_howe),
            local("2026-04-12", &lord_howe),
        ),
        case("an empty window", Source::Usage, &[Dim::Key], &[], None, true, day(8), day(8)),
    ]
}

async fn analytics_rollups_equal_sums_over_the_raw_records(db: &TestDb) {
    let store = db.open().await;
    // ~23,000 records: the benchmark's reads at CI scale (bench/analytics.sh runs 10M).
    let records = dataset(42, 20_000);
    write(&*store, &records, 43).await;
    let stored = store.usage_records().await;
    assert_eq!(stored.len(), {
        let mut ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() + 1
    });
    for c in cases() {
        let want = expected(&stored, &c);
        let got = answered(&*store, &c.q).await;
        assert_eq!(got, want, "{}", c.name);
        if c.name != "an empty window" {
            assert!(!want.is_empty(), "{}: the case selects something", c.name);
        }
    }
}

async fn analytics_spend_since_reads_rollups_exactly(db: &TestDb) {
    let store = db.open().await;
    let records = dataset(7, 2000);
    write(&*store, &records, 8).await;
    let stored = store.usage_records().await;
    for since in [BASE, BASE + 10 * DAY_MS - 330 * MIN, BASE + 17 * DAY_MS + 1, BASE + 39 * DAY_MS + HOUR_MS] {
        type Scope = (Option<String>, Option<String>, Option<String>);
        let mut want: BTreeMap<Scope, (i64, i64)> = BTreeMap::new();
        for r in stored.iter().filter(|r| r.created_at >= since) {
            let e = want.entry((r.tenant_id.clone(), r.team_id.clone(), r.key_id.clone())).or_default();
            e.0 += r.cost_nanos.unwrap_or(0);
            e.1 += (r.input_tokens.unwrap_or(0) + r.output_tokens.unwrap_or(0)) as i64;
        }
        let got: BTreeMap<_, _> = store
            .spend_since(since)
            .await
            .unwrap()
            .into_iter()
            .map(|s| ((s.tenant_id, s.team_id, s.key_id), (s.nanos, s.tokens)))
            .collect();
        assert_eq!(got, want, "since {since}");
    }
}

async fn analytics_report_totals_equal_the_records(db: &TestDb) {
    let store = db.open().await;
    let records = dataset(99, 3000);
    write(&*store, &records, 100).await;
    let stored = store.usage_records().await;
    let query: Vec<(String, String)> = [
        ("start_date", "2026-03-14"),
        ("end_date", "2026-04-03"),
        ("time_zone", "+05:30"),
        ("group_by", "key"),
        ("tenant_id", "acme"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let q = analytics::query::parse(&query, BASE + 60 * DAY_MS, &Zone::default()).unwrap();
    let report = analytics::run(&*store, &q, &|_, _| None).await.unwrap();
    let (start, end) = (BASE + 4 * DAY_MS - 330 * MIN, BASE + 25 * DAY_MS - 330 * MIN);
    let mut total = [0; 10];
    let mut by_key: BTreeMap<Option<String>, [i64; 10]> = BTreeMap::new();
    for r in stored.iter().filter(|r| r.created_at >= start && r.created_at < end) {
        if r.tenant_id.as_deref() == Some("acme") {
            add(&mut total, r);
            add(by_key.entry(r.key_id.clone()).or_insert([0; 10]), r);
        }
    }
    assert_eq!(report.totals.values(), total);
    assert_eq!(report.rows.len(), by_key.len());
    for row in &report.rows {
        assert_eq!(row.sums.values(), by_key[&row.labels[0].1], "{:?}", row.labels);
    }
    let previous: [i64; 10] = {
        let mut p = [0; 10];
        for r in stored.iter().filter(|r| r.created_at >= 2 * start - end && r.created_at < start) {
            if r.tenant_id.as_deref() == Some("acme") {
                add(&mut p, r);
            }
        }
        p
    };
    assert_eq!(report.previous.values(), previous);
    let json = analytics::render::json(&report);
    assert_eq!(json["totals"]["cost_nanos"], total[8]);
}

async fn analytics_migration_backfills_existing_records(db: &TestDb) {
    let store = db.open().await;
    let records = dataset(5, 1500);
    write(&*store, &records, 6).await;
    let stored = store.usage_records().await;
    // As if the records predated the rollups: empty them and run the
    // migration's backfill statements.
    let migration = match &store {
        Opened::Sqlite(_) => include_str!("../../migrations/0006_usage_rollups.sql"),
        Opened::Postgres(_) => include_str!("../../migrations/postgres/0005_usage_rollups.sql"),
    };
    let clear = "DELETE FROM usage_rollup_hourly; DELETE FROM usage_rollup_daily; DELETE FROM usage_rollup_tags;";
    let backfill = &migration[migration.find("-- Records written before this migration").unwrap()..];
    match &store {
        Opened::Sqlite(s) => {
            sqlx::raw_sql(clear).execute(s.pool()).await.unwrap();
            sqlx::raw_sql(backfill).execute(s.pool()).await.unwrap();
        }
        Opened::Postgres(s) => {
            sqlx::raw_sql(clear).execute(s.pool()).await.unwrap();
            sqlx::raw_sql(backfill).execute(s.pool()).await.unwrap();
        }
    }
    for c in cases() {
        assert_eq!(answered(&*store, &c.q).await, expected(&stored, &c), "after the backfill: {}", c.name);
    }
}

async fn analytics_concurrent_writers_add_up(db: &TestDb) {
    // Replicas writing at once into the same rollup rows (each its own
    // records, some batches twice): no deadlock, nothing lost or doubled.
    let store: Arc<dyn Store> = crate::open(&db.url).await.unwrap();
    let records = dataset(21, 3000);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4usize {
        let store = store.clone();
        let mine: Vec<UsageRecord> = records.iter().skip(w).step_by(4).cloned().collect();
        tasks.spawn(async move {
            for (i, batch) in mine.chunks(150).enumerate() {
                store.write_usage(batch).await.unwrap();
                if i % 3 == 0 {
                    store.write_usage(batch).await.unwrap();
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let c = cases().swap_remove(0);
    assert_eq!(answered(&*store, &c.q).await, expected(&records, &c), "{}", c.name);
}
