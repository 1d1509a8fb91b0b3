//! The store's behaviour, run against every backend: `tests::sqlite::*`
//! always, `tests::postgres::*` against the server that
//! `SWITCHYARD_TEST_POSTGRES_URL` names (`tests/services.sh` starts one;
//! the URL's database is only used to create others). Each PostgreSQL test
//! makes a database of its own and drops it at the end, so tests run in
//! parallel. Without the URL the PostgreSQL tests skip, except where `CI`
//! is set: there they fail, so CI can never pass without running them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{PostgresStore, SqliteStore};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use switchyard_core::access::audit::{Actor, AuditQuery, AuditRecord};
use switchyard_core::access::Kind;
use switchyard_core::store::{Change, Store, StoreError};
use switchyard_core::usage::UsageRecord;
use switchyard_types::UsageSource;

/// Runs each named `async fn(&TestDb)` once per backend.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::TestDb::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(db) = super::TestDb::postgres().await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

for_each_backend!(
    directory_changes_carry_sequence_numbers_and_tombstones,
    audit_pages_filter_and_go_backwards,
    usage_batches_are_idempotent,
    large_usage_batches_are_written_in_chunks,
    concurrent_applies_number_changes_in_commit_order,
    node_heartbeats_keep_the_latest,
    config_versions_are_numbered_in_order,
);

mod alerts;
mod analytics;

// ---------------------------------------------------------------------------
// Harness

/// A database of one test's own.
pub(crate) struct TestDb {
    url: String,
    /// SQLite: the directory holding the file.
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the server's URL and the database to drop at the end.
    created: Option<(String, String)>,
}

/// A store opened on a [`TestDb`], with its backend's test-only reader.
pub(crate) enum Opened {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Deref for Opened {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        match self {
            Opened::Sqlite(s) => s,
            Opened::Postgres(s) => s,
        }
    }
}

impl Opened {
    async fn usage_records(&self) -> Vec<UsageRecord> {
        match self {
            Opened::Sqlite(s) => s.usage_records().await.unwrap(),
            Opened::Postgres(s) => s.usage_records().await.unwrap(),
        }
    }
}

// Test-only: which server to test against (the lint guards production
// config, which must go through interpolation).
#[allow(clippy::disallowed_methods)]
fn postgres_server_url() -> Option<String> {
    let url = std::env::var("SWITCHYARD_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty());
    if url.is_none() && ci {
        panic!(
            "CI is set but SWITCHYARD_TEST_POSTGRES_URL is not: the PostgreSQL tests must run in CI \
             (./test.sh starts a server through tests/services.sh)"
        );
    }
    url
}

/// `url` with its database replaced by `db` (query options kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let host_at = base.find("://").map_or(0, |i| i + 3);
    let base = base[host_at..].find('/').map_or(base, |i| &base[..host_at + i]);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/store.db", dir.path().display());
        TestDb { url, _dir: Some(dir), created: None }
    }

    /// A fresh database on the test server, or `None` (skip) when there is
    /// no server outside CI.
    async fn postgres() -> Option<TestDb> {
        let Some(server) = postgres_server_url() else {
            eprintln!("skipped: set SWITCHYARD_TEST_POSTGRES_URL (or source tests/services.sh) to run it");
            return None;
        };
        let name = switchyard_core::ids::time_ordered("sy_test");
        let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect to SWITCHYARD_TEST_POSTGRES_URL");
        // A collation other than bytewise, as production databases have,
        // when the server has ICU; its own default otherwise.
        let icu = format!("CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'");
        if sqlx::query(&icu).execute(&mut admin).await.is_err() {
            sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await.unwrap();
        }
        admin.close().await.unwrap();
        Some(TestDb { url: with_database(&server, &name), _dir: None, created: Some((server, name)) })
    }

    async fn open(&self) -> Opened {
        if self.created.is_some() {
            Opened::Postgres(PostgresStore::open(&self.url).await.unwrap())
        } else {
            Opened::Sqlite(SqliteStore::open(&self.url).await.unwrap())
        }
    }
}

impl Drop for TestDb {
    /// Drops the PostgreSQL database, on failure too. Drop cannot await, so
    /// a thread of its own runs the statement on a small runtime; FORCE
    /// ends connections a store still holds.
    fn drop(&mut self) {
        let Some((server, name)) = self.created.take() else { return };
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&server).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut admin).await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.url),
            Err(_) => eprintln!("dropping the test database {} panicked", self.url),
        }
    }
}

fn change(kind: Kind, id: &str, name: &str, doc: Option<&str>) -> Change {
    Change {
        kind,
        id: id.into(),
        tenant_id: "t".into(),
        name: name.into(),
        secret_hash: (kind == Kind::Key).then(|| format!("hash-{id}")),
        doc: doc.map(str::to_string),
    }
}

fn audit(action: &str) -> AuditRecord {
    AuditRecord::new(Actor::system(), action, &Default::default())
}

// ---------------------------------------------------------------------------
// Behaviour

async fn directory_changes_carry_sequence_numbers_and_tombstones(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.directory_seq().await.unwrap(), 0);
    let two = [change(Kind::Team, "a", "A", Some("{}")), change(Kind::Key, "k", "K", Some("{\"x\":1}"))];
    assert_eq!(store.apply(&two, &audit("x.create")).await.unwrap(), 2);
    // A live name is unique per kind and tenant, and a live secret hash
    // everywhere: refused as a conflict, nothing written (not even audit).
    let dup = store.apply(&[change(Kind::Team, "b", "A", Some("{}"))], &audit("x.create")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let mut same_secret = change(Kind::Key, "k2", "K2", Some("{}"));
    same_secret.secret_hash = Some("hash-k".into());
    let dup = store.apply(&[change(Kind::Team, "b", "B", Some("{}")), same_secret], &audit("x.create")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(store.directory_seq().await.unwrap(), 2);
    assert_eq!(store.directory_since(0).await.unwrap().len(), 2, "the refused batch left nothing behind");
    store.apply(&[change(Kind::Team, "a", "A", None)], &audit("x.delete")).await.unwrap();
    let since = store.directory_since(1).await.unwrap();
    assert_eq!(
        since.iter().map(|e| (e.id.as_str(), e.seq, e.deleted)).collect::<Vec<_>>(),
        [("k", 2, false), ("a", 3, true)]
    );
    assert_eq!(since[0].secret_hash.as_deref(), Some("hash-k"));
    assert_eq!(since[0].doc, "{\"x\":1}", "documents read back as written");
    assert_eq!((since[1].doc.as_str(), since[1].secret_hash.as_deref()), ("", None), "a tombstone");
    // The name of a deleted object is free again; reopening keeps everything.
    store.apply(&[change(Kind::Team, "c", "A", Some("{}"))], &audit("x.create")).await.unwrap();
    drop(store);
    let store = db.open().await;
    assert_eq!(store.directory_seq().await.unwrap(), 4);
    assert_eq!(store.directory_since(0).await.unwrap().len(), 3);
    assert_eq!(store.directory_since(4).await.unwrap(), []);
    store.ping().await.unwrap();
    // Every change wrote its audit entry.
    let q = AuditQuery { limit: 10, ..AuditQuery::default() };
    let actions: Vec<String> = store.audit_page(&q).await.unwrap().into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["x.create", "x.delete", "x.create"]);
}

async fn audit_pages_filter_and_go_backwards(db: &TestDb) {
    let store = db.open().await;
    let mut batch = Vec::new();
    for i in 0..5 {
        let mut r = audit(if i % 2 == 0 { "auth.denied" } else { "key.create" });
        r.id = format!("aud_{i}");
        r.at = i;
        r.tenant_id = Some(if i < 3 { "a" } else { "b" }.into());
        r = r.target("key", &format!("key_{}", i % 2));
        batch.push(r);
    }
    store.write_audit(&batch).await.unwrap();
    store.write_audit(&batch[..1]).await.unwrap(); // replayed: ignored
    let page = |q: AuditQuery| {
        let store = &store;
        async move { store.audit_page(&q).await.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>() }
    };
    assert_eq!(page(AuditQuery { limit: 2, ..Default::default() }).await, ["aud_4", "aud_3"]);
    assert_eq!(
        page(AuditQuery { limit: 9, before: Some("aud_3".into()), ..Default::default() }).await,
        ["aud_2", "aud_1", "aud_0"]
    );
    assert_eq!(
        page(AuditQuery {
            limit: 9,
            tenant_id: Some("a".into()),
            action: Some("auth.denied".into()),
            ..Default::default()
        })
        .await,
        ["aud_2", "aud_0"]
    );
    assert_eq!(
        page(AuditQuery { limit: 9, since: Some(1), until: Some(3), ..Default::default() }).await,
        ["aud_2", "aud_1"]
    );
    assert_eq!(
        page(AuditQuery {
            limit: 9,
            target_kind: Some("key".into()),
            target_id: Some("key_1".into()),
            ..Default::default()
        })
        .await,
        ["aud_3", "aud_1"]
    );
    // Ids compare bytewise, whatever the database's collation (PostgreSQL
    // test databases use ICU's en-US, where `a` < `A` and `_` < `B`).
    let mut odd = audit("x");
    for id in ["audB", "aud_A", "aud_9", "aud_a"] {
        odd.id = id.into();
        store.write_audit(std::slice::from_ref(&odd)).await.unwrap();
    }
    assert_eq!(
        page(AuditQuery { limit: 9, action: Some("x".into()), ..Default::default() }).await,
        ["aud_a", "aud_A", "aud_9", "audB"]
    );
    assert_eq!(
        page(AuditQuery { limit: 9, action: Some("x".into()), before: Some("aud_A".into()), ..Default::default() })
            .await,
        ["aud_9", "audB"]
    );
    let whole = store.audit_page(&AuditQuery { limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!(whole[0], odd, "the whole record reads back");
}

async fn usage_batches_are_idempotent(db: &TestDb) {
    let store = db.open().await;
    let mut r = UsageRecord::new("req1", "chat");
    r.status = 200;
    r.input_tokens = Some(3);
    r.usage_source = UsageSource::Estimated;
    store.write_usage(std::slice::from_ref(&r)).await.unwrap();
    store.write_usage(std::slice::from_ref(&r)).await.unwrap();
    let rows = store.usage_records().await;
    assert_eq!(rows.len(), 1, "a replayed record is not counted twice");
    assert_eq!(rows[0], r);
    // Another request that reuses the client's request id is its own row,
    // and every field reads back as written.
    let mut again = UsageRecord::new("req1", "embeddings");
    again.key_id = Some("key_1".into());
    again.tenant_id = Some("t".into());
    again.route = Some("chat".into());
    again.deployment = Some("d".into());
    again.stream = true;
    again.status = 499;
    again.error_kind = Some("client_closed".into());
    again.output_tokens = Some(u64::from(u32::MAX) + 1);
    again.usage_source = UsageSource::Reported;
    again.attempts = 3;
    again.latency_ms = 12.345;
    again.ttft_ms = Some(0.5);
    again.overhead_ms = 0.125;
    store.write_usage(std::slice::from_ref(&again)).await.unwrap();
    assert_eq!(store.usage_records().await, [r, again]);
    store.write_usage(&[]).await.unwrap();
}

async fn node_heartbeats_keep_the_latest(db: &TestDb) {
    use switchyard_core::store::NodeRow;
    let store = db.open().await;
    assert!(store.nodes().await.unwrap().is_empty());
    let row = |name: &str, seen_at: i64, doc: &str| NodeRow { name: name.into(), seen_at, doc: doc.into() };
    store.put_node(&row("gpu-1", 2_000, r#"{"node":"gpu-1","in_flight":2}"#)).await.unwrap();
    store.put_node(&row("gpu-0", 1_000, r#"{"node":"gpu-0"}"#)).await.unwrap();
    // An older heartbeat (a slow replica) does not move time back.
    store.put_node(&row("gpu-1", 1_500, r#"{"node":"gpu-1","in_flight":9}"#)).await.unwrap();
    assert_eq!(
        store.nodes().await.unwrap(),
        [row("gpu-0", 1_000, r#"{"node":"gpu-0"}"#), row("gpu-1", 2_000, r#"{"node":"gpu-1","in_flight":2}"#)]
    );
    store.put_node(&row("gpu-1", 3_000, r#"{"node":"gpu-1"}"#)).await.unwrap();
    assert_eq!(store.nodes().await.unwrap()[1].seen_at, 3_000);
}

async fn config_versions_are_numbered_in_order(db: &TestDb) {
    use switchyard_core::store::ConfigVersion;
    let store = db.open().await;
    assert!(store.config_versions().await.unwrap().is_empty());
    let v = |text: &str| ConfigVersion {
        version: 0,
        created_at: 7,
        actor: "system".into(),
        source: "file".into(),
        text: text.into(),
    };
    assert!(store.newest_config_version().await.unwrap().is_none());
    assert_eq!(store.newest_config_version_number().await.unwrap(), 0);
    assert_eq!(store.put_config_version(&v("a: 1\n"), 0).await.unwrap(), 1);
    assert_eq!(store.put_config_version(&v("a: 2\n"), 1).await.unwrap(), 2);
    // A writer that read version 1 is refused: version 2 came first.
    let stale = store.put_config_version(&v("a: 3\n"), 1).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict(_)), "{stale}");
    assert_eq!(store.newest_config_version().await.unwrap().map(|n| n.version), Some(2));
    assert_eq!(store.newest_config_version_number().await.unwrap(), 2);
    let all = store.config_versions().await.unwrap();
    assert_eq!(all.iter().map(|x| (x.version, x.text.as_str())).collect::<Vec<_>>(), [(1, "a: 1\n"), (2, "a: 2\n")]);
    assert_eq!(all[0], ConfigVersion { version: 1, ..v("a: 1\n") });
}

async fn large_usage_batches_are_written_in_chunks(db: &TestDb) {
    let store = db.open().await;
    // Larger than any one INSERT (256 rows for both backends), and a size
    // that needs every chunk size.
    let first = 5 * 256 + 64 + 16 + 4 + 1;
    let batch: Vec<UsageRecord> = (0..first + 2000)
        .map(|i| {
            let mut r = UsageRecord::new(&format!("req{i}"), "chat");
            r.status = 200;
            r.input_tokens = Some(i);
            r.latency_ms = i as f64 / 8.0;
            r
        })
        .collect();
    store.write_usage(&batch[..first as usize]).await.unwrap();
    // A replayed, overlapping batch adds only what is new.
    store.write_usage(&batch[1000..]).await.unwrap();
    assert_eq!(store.usage_records().await, batch);
}

async fn concurrent_applies_number_changes_in_commit_order(db: &TestDb) {
    const TASKS: usize = 8;
    const EACH: usize = 25;
    const TOTAL: i64 = (TASKS * EACH) as i64;
    let store: Arc<dyn Store> = crate::open(&db.url).await.unwrap();
    // A replica catching up reads "everything after what I have": it must
    // never see seq n + 1 committed before n, or it would skip n for good.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < TOTAL {
                let got = store.directory_since(seen).await.unwrap();
                for e in got {
                    assert_eq!(e.seq, seen + 1, "a reader saw seq {} after {seen}", e.seq);
                    seen = e.seq;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut writers = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = store.clone();
        writers.spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..EACH {
                let id = format!("team_{t}_{i}");
                let seq = store.apply(&[change(Kind::Team, &id, &id, Some("{}"))], &audit("team.create")).await;
                seqs.push((seq.unwrap(), id));
            }
            seqs
        });
    }
    let mut by_seq = BTreeMap::new();
    while let Some(seqs) = writers.join_next().await {
        let seqs = seqs.unwrap();
        assert!(seqs.windows(2).all(|w| w[0].0 < w[1].0), "one writer's changes in order: {seqs:?}");
        by_seq.extend(seqs);
    }
    reader.await.unwrap();
    assert_eq!(by_seq.keys().copied().collect::<Vec<_>>(), (1..=TOTAL).collect::<Vec<_>>(), "no gaps, no repeats");
    assert_eq!(store.directory_seq().await.unwrap(), TOTAL);
    for k in [0, 1, 57, TOTAL - 1, TOTAL] {
        let after = store.directory_since(k).await.unwrap();
        let got: Vec<(i64, &str)> = after.iter().map(|e| (e.seq, e.id.as_str())).collect();
        let want: Vec<(i64, &str)> = by_seq.range(k + 1..).map(|(s, id)| (*s, id.as_str())).collect();
        assert_eq!(got, want, "directory_since({k})");
    }
    let audit_rows = store.audit_page(&AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(audit_rows.len(), TASKS * EACH, "one audit entry per apply");
}

// ---------------------------------------------------------------------------
// Opening

#[tokio::test]
async fn open_chooses_the_backend_by_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap();
    store.ping().await.unwrap();
    crate::open("sqlite::memory:").await.unwrap().ping().await.unwrap();
    for bad in ["mysql://u:secret@h/db", "data.db", "http://h"] {
        let Err(StoreError::Unavailable(m)) = crate::open(bad).await else { panic!("{bad} was accepted") };
        assert!(m.contains("postgres://") && m.contains("sqlite://"), "{m}");
        assert!(!m.contains("secret"), "{m}");
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_without_echoing_the_password() {
    // Port 1 on loopback: refused at once.
    let started = std::time::Instant::now();
    let Err(StoreError::Unavailable(m)) = crate::open("postgres://sy:secret@127.0.0.1:1/db").await else {
        panic!("opened a server that is not there")
    };
    assert!(m.contains("127.0.0.1:1/db") && !m.contains("secret"), "{m}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "bounded by the connect timeout");
    let Err(StoreError::Unavailable(m)) = crate::open("postgresql://h:notaport/db").await else {
        panic!("accepted a bad URL")
    };
    assert!(m.contains("invalid PostgreSQL URL"), "{m}");
}

#[test]
fn the_test_database_replaces_the_servers() {
    assert_eq!(with_database("postgres://p@127.0.0.1:5/postgres", "x"), "postgres://p@127.0.0.1:5/x");
    assert_eq!(with_database("postgres://p@h:5", "x"), "postgres://p@h:5/x");
    assert_eq!(with_database("postgresql://p@h/db?sslmode=disable", "x"), "postgresql://p@h/x?sslmode=disable");
}
