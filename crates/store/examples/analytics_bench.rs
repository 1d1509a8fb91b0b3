//! Analytics at scale (run by `bench/analytics.sh`; docs/analytics.md
//! quotes its figures): seeds usage records through the real write path
//! (`Store::write_usage`: raw rows and rollups in one transaction, in
//! batches as the gateway's writer sends them), then times typical
//! analytics queries through the same code the API runs.
//!
//! ```text
//! analytics_bench [--records N] [--batch N] [--sqlite FILE] [--postgres SERVER_URL]
//! ```
//! `--postgres` names a server whose database is only used to create a
//! scratch one (dropped at the end). Without `--sqlite` or `--postgres`
//! nothing is measured.

// A benchmark program: its own argument parsing, and failing loudly is fine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use sqlx::Connection;
use std::time::{Duration, Instant};
use switchyard_core::analytics::{self, query};
use switchyard_core::budget::Zone;
use switchyard_core::ids::time_ordered_floor;
use switchyard_core::store::Store;
use switchyard_core::usage::UsageRecord;
use switchyard_store::{PostgresStore, SqliteStore};

/// 2026-11-01T00:00:00Z: the data fills November 2026.
const START: i64 = 1_793_491_200_000;
const DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

struct Args {
    records: u64,
    batch: usize,
    sqlite: Option<String>,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args { records: 10_000_000, batch: 2000, sqlite: None, postgres: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--records" => a.records = value().parse().expect("--records N"),
            "--batch" => a.batch = value().parse().expect("--batch N"),
            "--sqlite" => a.sqlite = Some(value()),
            "--postgres" => a.postgres = Some(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Who and what, skewed as real traffic is: a few keys make most requests.
struct Shape {
    keys: Vec<(String, String, Option<String>, Option<String>)>,
}

/// A deployment: name, model, nano-dollars per 1k tokens.
type Deployment = (&'static str, &'static str, i64);

const ROUTES: [(&str, &[Deployment]); 3] = [
    (
        "chat",
        &[
            ("gpt-4o", "gpt-4o-2024-08-06", 6_250),
            ("gpt-4o-mini", "gpt-4o-mini", 375),
            ("claude", "claude-sonnet-4", 9_000),
        ],
    ),
    ("reasoning", &[("o3", "o3", 5_000), ("deepseek-r1", "deepseek-reasoner", 1_100)]),
    ("embed", &[("embed-small", "text-embedding-3-small", 20)]),
];

const FEATURES: [&str; 10] =
    ["search", "summarize", "chat", "translate", "classify", "extract", "draft", "review", "qa", "agent"];

impl Shape {
    fn new() -> Shape {
        let mut keys = Vec::new();
        for k in 0..400 {
            let tenant = format!("tenant_{}", k % 8);
            let team = (k % 3 != 0).then(|| format!("team_{}_{}", k % 8, k % 5));
            let user = (k % 4 != 0).then(|| format!("usr_{}", k % 250));
            keys.push((format!("key_{k:04}"), tenant, team, user));
        }
        Shape { keys }
    }

    fn record(&self, rng: &mut fastrand::Rng, i: u64, n: u64) -> UsageRecord {
        let at = START + (i as i64) * (DAYS * DAY_MS) / (n as i64) + rng.i64(0..1000);
        // u³ skews toward the first keys (the heavy users).
        let u = rng.f64();
        let (key, tenant, team, user) = &self.keys[((u * u * u) * self.keys.len() as f64) as usize];
        let (route, deployments) = ROUTES[match rng.u8(..10) {
            0..=6 => 0,
            7 | 8 => 1,
            _ => 2,
        }];
        let (deployment, model, per_k) = deployments[rng.usize(..deployments.len())];
        let input = rng.u64(50..4000);
        let output = if route == "embed" { 0 } else { rng.u64(10..1200) };
        let failed = rng.u8(..100) < 3;
        UsageRecord {
            id: format!("{}{i:020x}.1", time_ordered_floor("use", at)),
            request_id: format!("req_{i}"),
            created_at: at,
            key_id: Some(key.clone()),
            tenant_id: Some(tenant.clone()),
            team_id: team.clone(),
            user_id: user.clone(),
            operation: if route == "embed" { "embeddings" } else { "chat" }.into(),
            route: Some(route.into()),
            deployment: Some(deployment.into()),
            model: Some(model.into()),
            stream: rng.bool(),
            status: if failed { 502 } else { 200 },
            error_kind: failed.then(|| "upstream_failed".to_string()),
            input_tokens: Some(input),
            output_tokens: Some(output),
            usage_source: switchyard_types::UsageSource::Reported,
            attempts: 1,
            attempt: 1,
            latency_ms: 200.0 + rng.f64() * 3000.0,
            ttft_ms: Some(rng.f64() * 500.0),
            overhead_ms: 0.2,
            cost_nanos: Some(if failed { 0 } else { ((input + output) as i64) * per_k / 1000 }),
            tags: (rng.u8(..10) < 3).then(|| {
                format!(
                    r#"{{"env":"{}","feature":"{}"}}"#,
                    ["prod", "staging"][rng.usize(..2)],
                    FEATURES[rng.usize(..10)]
                )
            }),
            ..UsageRecord::default()
        }
    }
}

async fn seed(store: &dyn Store, n: u64, batch: usize) -> Duration {
    let shape = Shape::new();
    let mut rng = fastrand::Rng::with_seed(2026);
    let started = Instant::now();
    let mut buf = Vec::with_capacity(batch);
    let mut last_report = Instant::now();
    for i in 0..n {
        buf.push(shape.record(&mut rng, i, n));
        if buf.len() == batch || i + 1 == n {
            store.write_usage(&buf).await.unwrap();
            buf.clear();
            if last_report.elapsed() > Duration::from_secs(30) {
                let rate = (i + 1) as f64 / started.elapsed().as_secs_f64();
                eprintln!("  … {} records, {rate:.0}/s", i + 1);
                last_report = Instant::now();
            }
        }
    }
    started.elapsed()
}

/// The queries, as the API receives them.
const QUERIES: [(&str, &str); 7] = [
    ("month by model", "start_date=2026-11-01&end_date=2026-11-30&group_by=model"),
    ("month by day", "start_date=2026-11-01&end_date=2026-11-30&granularity=day"),
    ("month, top keys (by key)", "start_date=2026-11-01&end_date=2026-11-30&group_by=key&limit=20"),
    ("month by tag", "start_date=2026-11-01&end_date=2026-11-30&group_by=tag"),
    (
        "one tenant by day at +05:30",
        "start_date=2026-11-01&end_date=2026-11-30&granularity=day&tenant_id=tenant_3&time_zone=%2B05:30",
    ),
    ("week by hour", "start_date=2026-11-10&end_date=2026-11-16&granularity=hour"),
    (
        "one key, month by model and day",
        "start_date=2026-11-01&end_date=2026-11-30&group_by=model,date&key_id=key_0007",
    ),
];

fn parse_query(q: &str) -> query::CostQuery {
    let pairs: Vec<(String, String)> = q
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.replace("%2B", "+"))
        })
        .collect();
    query::parse(&pairs, START + DAYS * DAY_MS, &Zone::default()).unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The fastest and the median of 5 runs of `$body`.
macro_rules! timed {
    ($body:expr) => {{
        let mut runs = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            $body;
            runs.push(t.elapsed());
        }
        runs.sort();
        (runs[0], runs[2])
    }};
}

async fn measure(name: &str, store: &dyn Store, records: u64, seeded: Duration, counts: (i64, i64, i64, i64)) {
    println!("\n### {name}\n");
    println!(
        "Seeded {records} records in {:.1} s ({:.0} records/s, batches of the writer's size); \
         {} raw rows; rollup rows: {} hourly, {} daily, {} tags.\n",
        seeded.as_secs_f64(),
        records as f64 / seeded.as_secs_f64(),
        counts.0,
        counts.1,
        counts.2,
        counts.3
    );
    println!("| query | rows | fastest ms | median ms |\n| --- | ---: | ---: | ---: |");
    for (label, q) in QUERIES {
        let q = parse_query(q);
        let mut rows = 0;
        let (fast, median) = timed!(rows = analytics::run(store, &q, &|_, _| None).await.unwrap().rows.len());
        println!("| {label} | {rows} | {} | {} |", ms(fast), ms(median));
    }
    let (fast, median) = timed!(store.spend_since(START).await.unwrap());
    println!("| budgets' start-up rebuild (`spend_since` the month's start) | — | {} | {} |", ms(fast), ms(median));
}

/// Rows of the raw table and of both rollups.
macro_rules! counts {
    ($pool:expr) => {{
        let mut c = [0i64; 4];
        for (i, table) in
            ["usage_records", "usage_rollup_hourly", "usage_rollup_daily", "usage_rollup_tags"].iter().enumerate()
        {
            c[i] = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one($pool).await.unwrap();
        }
        (c[0], c[1], c[2], c[3])
    }};
}

/// A raw scan for comparison: what the month by model costs without rollups.
const RAW_SCAN: &str =
    "SELECT model, SUM(cost_nanos) FROM usage_records WHERE created_at >= 1793491200000 GROUP BY model";

#[tokio::main]
async fn main() {
    let a = args();
    if let Some(path) = &a.sqlite {
        let _ = std::fs::remove_file(path);
        let store = SqliteStore::open(&format!("sqlite://{path}")).await.unwrap();
        eprintln!("sqlite: seeding {} records into {path}", a.records);
        let seeded = seed(&store, a.records, a.batch).await;
        let c = counts!(store.pool());
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        measure(&format!("SQLite ({} MiB file)", size >> 20), &store, a.records, seeded, c).await;
        let (fast, median) = timed!(sqlx::query(RAW_SCAN).execute(store.pool()).await.unwrap());
        println!("| for comparison: month by model as a scan of the raw records | — | {} | {} |", ms(fast), ms(median));
    }
    if let Some(server) = &a.postgres {
        let name = format!("sy_bench_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await.unwrap();
        let (base, rest) = server.rsplit_once('/').unwrap();
        let query = rest.split_once('?').map_or(String::new(), |(_, q)| format!("?{q}"));
        let url = format!("{base}/{name}{query}");
        {
            let store = PostgresStore::open(&url).await.unwrap();
            eprintln!("postgres: seeding {} records into {name}", a.records);
            let seeded = seed(&store, a.records, a.batch).await;
            sqlx::query("VACUUM ANALYZE").execute(store.pool()).await.unwrap();
            let c = counts!(store.pool());
            let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(store.pool())
                .await
                .unwrap();
            measure(&format!("PostgreSQL ({} MiB database)", size >> 20), &store, a.records, seeded, c).await;
            let (fast, median) = timed!(sqlx::query(RAW_SCAN).execute(store.pool()).await.unwrap());
            println!(
                "| for comparison: month by model as a scan of the raw records | — | {} | {} |",
                ms(fast),
                ms(median)
            );
            store.pool().close().await;
        }
        sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).execute(&mut admin).await.unwrap();
    }
}
