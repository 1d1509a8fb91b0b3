//! The usage pipeline with PostgreSQL stopped under load: requests keep
//! succeeding without waiting on the store, records go to the spill file,
//! and once the database is back every request is stored exactly once and
//! the file is gone — without restarting the gateway. And SIGTERM while
//! the database is down: what was queued is spilled before exit and
//! replayed by the next start.
//!
//! Each test runs a PostgreSQL of its own (initdb into a temp dir, a free
//! port on loopback) since it stops it: the shared server of
//! `tests/services.sh` serves other tests at the same time. They run when
//! `SWITCHYARD_TEST_POSTGRES_URL` is set (services.sh found or installed
//! the binaries) and are skipped with a note otherwise — except under CI,
//! where they fail.

use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_testkit::{eventually, Harness, ADMIN_TOKEN};

/// The PostgreSQL binaries when the tests should run; `None` (skip)
/// outside CI when services.sh was not sourced.
fn pg_binaries() -> Option<PathBuf> {
    let configured = std::env::var("SWITCHYARD_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty());
    let ci = std::env::var("CI").is_ok_and(|c| !c.is_empty());
    if !configured {
        assert!(!ci, "SWITCHYARD_TEST_POSTGRES_URL is not set: CI must run the durability tests (tests/services.sh)");
        eprintln!("skipped: SWITCHYARD_TEST_POSTGRES_URL is not set (source tests/services.sh to run it)");
        return None;
    }
    // As services.sh: Debian's own binaries, the newest major version.
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| ["initdb", "pg_ctl", "postgres", "psql"].iter().all(|b| bin.join(b).exists()))
        .collect();
    dirs.sort();
    let bin = dirs.pop().map(|(_, bin)| bin);
    assert!(bin.is_some(), "SWITCHYARD_TEST_POSTGRES_URL is set but no PostgreSQL under /usr/lib/postgresql/*/bin");
    bin
}

/// A private PostgreSQL server, stopped (by its PID) when dropped.
struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    pid: Option<u32>,
    /// `postgres` when the tests run as root (initdb refuses root).
    user: Option<&'static str>,
}

impl Postgres {
    fn start(bin: PathBuf) -> Postgres {
        let dir = tempfile::Builder::new().prefix("sy-durability-").tempdir_in("/tmp").unwrap();
        let root = run("id", &["-u"], None).trim() == "0";
        let user = root.then_some("postgres");
        if root {
            run("chown", &["postgres:", &dir.path().display().to_string()], None);
        }
        let mut pg = Postgres { bin, dir, port: 0, pid: None, user };
        let data = pg.data();
        let initdb = pg.bin.join("initdb");
        let args = ["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"];
        run(initdb.to_str().unwrap(), &args, pg.user);
        for attempt in 1..=3 {
            pg.port = free_port();
            match pg.try_start() {
                Ok(()) => return pg,
                Err(e) if attempt == 3 => panic!("postgres did not start: {e}"),
                Err(e) => eprintln!("postgres did not start on port {} (attempt {attempt}): {e}", pg.port),
            }
        }
        unreachable!()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server on its data and port, and waits until it answers.
    fn try_start(&mut self) -> Result<(), String> {
        // fsync off: the database's own durability is not under test.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        let pg_ctl = self.bin.join("pg_ctl");
        let args = ["-D", &self.data(), "-l", &log, "-w", "-t", "30", "-o", &options, "start"];
        let out = command(pg_ctl.to_str().unwrap(), &args, self.user).output().unwrap();
        // pg_ctl may give up while the server still starts: its PID is in
        // the data directory either way, and is stopped on failure too.
        let pid_file = self.dir.path().join("data/postmaster.pid");
        self.pid = std::fs::read_to_string(pid_file).ok().and_then(|t| t.lines().next()?.trim().parse().ok());
        if out.status.success() && self.pid.is_some() {
            return Ok(());
        }
        self.stop();
        Err(format!("{}{}", String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(&log).unwrap_or_default()))
    }

    fn restart(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("postgres did not start again on port {}: {e}", self.port);
        }
    }

    /// Fast shutdown (SIGINT: sessions are ended, no waiting for clients),
    /// and waits until the process is gone; SIGKILL after 10 s.
    fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One query's rows, `|`-separated fields.
    fn query(&self, sql: &str) -> Vec<String> {
        let psql = self.bin.join("psql");
        let out = Command::new(psql).args([&self.url(), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().unwrap();
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
    }

    /// The request ids of the stored usage records, one per record.
    fn stored_request_ids(&self) -> Vec<String> {
        self.query("SELECT request_id FROM usage_records WHERE is_final")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn command(program: &str, args: &[&str], user: Option<&str>) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", program]).args(args).current_dir("/tmp");
            c
        }
        None => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    }
}

fn run(program: &str, args: &[&str], user: Option<&str>) -> String {
    let out = command(program, args, user).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a PID still runs: the server is a daemon whose parent is init,
/// which may take its time to reap it, and a zombie has stopped.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S …": the state follows the last ')'.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A port on 127.0.0.1 that nothing listens on, below the kernel's
/// ephemeral range so outgoing connections do not take it while the
/// server is stopped. The server's own bind is the real check.
fn free_port() -> u16 {
    loop {
        let port = 20_000 + fastrand::u16(..12_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn config(db: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:0", shutdown_grace: 5s }}
storage: {{ url: "{db}" }}
admin: {{ bootstrap_token: "{ADMIN_TOKEN}", refresh_interval: 250ms }}
usage: {{ flush_interval: 50ms, batch_size: 1000 }}
reload: {{ watch: false }}
timeouts: {{ first_token: 5s, idle: 5s, total: 10s }}
simulator:
  listen: "127.0.0.1:0"
  default: {{ answer_tokens: 8 }}
providers:
  - {{ name: sim, kind: openai_compatible, base_url: "sim://" }}
deployments:
  - {{ name: fast, provider: sim, model: model-a }}
routes:
  - {{ name: chat, targets: [fast] }}
"#
    )
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchyard"))
}

/// The spill file of a gateway on PostgreSQL: `data/` in its working
/// directory (the harness's temp dir).
fn spill_file(h: &Harness) -> PathBuf {
    h.dir.path().join("data/usage-spill.jsonl")
}

fn spilled_lines(h: &Harness) -> Option<usize> {
    std::fs::read_to_string(spill_file(h)).ok().map(|t| t.lines().count())
}

/// One request's outcome, timed from when it was sent.
struct Sample {
    request_id: String,
    sent: Instant,
    latency: Duration,
    status: u16,
}

async fn chat(h: &Harness, key: &str, request_id: String) -> Sample {
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "Say hello"}]});
    let sent = Instant::now();
    let r = h.post("/v1/chat/completions", key).header("x-request-id", &request_id).json(&body).send().await;
    let status = match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            status
        }
        Err(_) => 0,
    };
    Sample { request_id, sent, latency: sent.elapsed(), status }
}

/// One client of the steady load: a request every `every` until `stop`.
async fn client(h: &Harness, key: &str, n: usize, every: Duration, stop: &AtomicBool) -> Vec<Sample> {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        samples.push(chat(h, key, format!("load-{n}-{}", samples.len())).await);
    }
    samples
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(line_start)?.trim().parse::<f64>().ok()).unwrap_or(0.0) as u64
}

/// Asserts that the stored final records are exactly one per request sent.
fn assert_stored_once(pg: &Postgres, sent: &[String]) {
    let stored = pg.stored_request_ids();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a request has two final records");
    let expected: HashSet<&String> = sent.iter().collect();
    assert_eq!(expected.len(), sent.len());
    let missing = expected.difference(&unique).count();
    let extra = unique.difference(&expected).count();
    assert!(missing == 0 && extra == 0, "{missing} requests without a record, {extra} records of unknown requests");
    let ids = pg.query("SELECT count(*), count(DISTINCT id) FROM usage_records");
    assert_eq!(ids, [format!("{0}|{0}", sent.len())], "one record per request (one attempt each), ids unique");
}

const CLIENTS: usize = 8;
const EVERY: Duration = Duration::from_millis(40);
/// The longest a request may take while the store is down: below the
/// writer's store timeouts (2 s before spilling, the pool's 5 s), so a
/// request that waited on the store fails it, and far above the few
/// milliseconds they take, for two busy cores.
const MAX_LATENCY: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durability_postgres_stopped_under_load_loses_and_blocks_nothing() {
    let Some(pg_bin) = pg_binaries() else { return };
    let mut pg = Postgres::start(pg_bin);
    let h = Arc::new(Harness::start(bin(), &config(&pg.url())));
    let key = h.key().await;

    // Steady load from several clients, through the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (h, key, stop) = (h.clone(), key.clone(), stop.clone());
            tokio::spawn(async move { client(&h, &key, n, EVERY, &stop).await })
        })
        .collect();

    // Up: records reach the database.
    let stored = eventually(Duration::from_secs(10), || async { (pg.stored_request_ids().len() >= 50).then_some(()) });
    assert!(stored.await.is_some(), "no records stored while PostgreSQL was up:\n{}", h.stderr());

    // Down, load going on: the spill file appears and grows.
    let down = Instant::now();
    pg.stop();
    eprintln!("postgres stopped (fast shutdown) in {:?}", down.elapsed());
    let first = eventually(Duration::from_secs(10), || async { spilled_lines(&h).filter(|n| *n > 0) }).await;
    let first = first.unwrap_or_else(|| panic!("nothing spilled within 10 s of the stop:\n{}", h.stderr()));
    let first_spill = down.elapsed();
    let grown = eventually(Duration::from_secs(5), || async { spilled_lines(&h).filter(|n| *n > first) }).await;
    let grown = grown.unwrap_or_else(|| panic!("the spill file stopped at {first} records:\n{}", h.stderr()));
    // More of the outage, spilling as it goes, the store pinged in vain.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let spilled = spilled_lines(&h).unwrap_or(0);
    assert!(spilled >= grown);

    // Up again: the writer replays the file by itself.
    let up = Instant::now();
    pg.restart();
    let outage = up - down;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for c in clients {
        samples.extend(c.await.unwrap());
    }
    let replayed = eventually(Duration::from_secs(15), || async { spilled_lines(&h).is_none().then_some(()) }).await;
    assert!(replayed.is_some(), "the spill file was not replayed within 15 s of the restart:\n{}", h.stderr());
    let replay_time = up.elapsed();

    // Every request succeeded, without waiting on the store.
    let failed: Vec<_> = samples.iter().filter(|s| s.status != 200).map(|s| (&s.request_id, s.status)).collect();
    assert!(failed.is_empty(), "{} of {} requests failed: {failed:?}", failed.len(), samples.len());
    let during: Vec<Duration> = samples.iter().filter(|s| s.sent >= down && s.sent < up).map(|s| s.latency).collect();
    let mut all: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    all.sort();
    let max_down = during.iter().max().copied().unwrap_or_default();
    assert!(during.len() >= 50, "only {} requests while PostgreSQL was down", during.len());
    assert!(max_down < MAX_LATENCY, "a request took {max_down:?} while PostgreSQL was down");

    // Every request is stored exactly once.
    let sent: Vec<String> = samples.iter().map(|s| s.request_id.clone()).collect();
    let complete =
        eventually(Duration::from_secs(10), || async { (pg.stored_request_ids().len() >= sent.len()).then_some(()) });
    assert!(complete.await.is_some(), "records missing after the replay:\n{}", h.stderr());
    assert_stored_once(&pg, &sent);

    let metrics = h.metrics().await;
    let spilled_total = metric(&metrics, "switchyard_usage_records_total{result=\"spilled\"}");
    let replayed_total = metric(&metrics, "switchyard_usage_records_total{result=\"replayed\"}");
    assert!(spilled_total >= spilled as u64 && replayed_total >= spilled as u64, "{metrics}");
    assert_eq!(metric(&metrics, "switchyard_usage_records_total{result=\"failed\"}"), 0);
    assert_eq!(metric(&metrics, "switchyard_usage_records_total{result=\"lost\"}"), 0);
    eprintln!(
        "{} requests from {CLIENTS} clients, all 200; {} sent while PostgreSQL was down for {outage:?}; \
         first spill {first_spill:?} after the stop; {spilled_total} records spilled, {replayed_total} replayed, \
         spill file gone {replay_time:?} after the restart; latency while down: max {max_down:?}; \
         overall p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        during.len(),
        all[all.len() / 2],
        all[all.len() * 99 / 100],
        all[all.len() - 1],
    );
}

/// The harness's process has exited (a zombie until the harness reaps it).
fn exited(h: &Harness) -> bool {
    !alive(h.pid())
}

#[tokio::test]
async fn durability_sigterm_with_postgres_down_spills_then_replays_at_start() {
    let Some(pg_bin) = pg_binaries() else { return };
    let mut pg = Postgres::start(pg_bin);
    let mut h = Harness::start(bin(), &config(&pg.url()));
    let key = h.key().await;
    let mut sent = Vec::new();
    for i in 0..20 {
        let s = chat(&h, &key, format!("before-{i}")).await;
        assert_eq!(s.status, 200);
        sent.push(s.request_id);
    }
    let stored = eventually(Duration::from_secs(10), || async { (pg.stored_request_ids().len() == 20).then_some(()) });
    assert!(stored.await.is_some(), "{}", h.stderr());

    // Records queued while the database is down, then SIGTERM at once.
    pg.stop();
    let calls = (0..100).map(|i| chat(&h, &key, format!("queued-{i}")));
    for s in futures_util::future::join_all(calls).await {
        assert_eq!(s.status, 200, "{}", s.request_id);
        sent.push(s.request_id);
    }
    let term = Instant::now();
    h.signal("TERM");
    let gone = eventually(Duration::from_secs(15), || async { exited(&h).then_some(()) }).await;
    assert!(gone.is_some(), "no exit within 15 s of SIGTERM:\n{}", h.stderr());
    eprintln!("exited {:?} after SIGTERM with PostgreSQL down", term.elapsed());
    assert_eq!(spilled_lines(&h), Some(100), "every queued record spilled before exit:\n{}", h.stderr());

    // Database back, gateway started again: the file is replayed first.
    pg.restart();
    h.restart(bin());
    assert_eq!(spilled_lines(&h), None, "replayed and removed at start:\n{}", h.stderr());
    assert_stored_once(&pg, &sent);
}

/// The server and its backends (the pool's sessions), to freeze a
/// database that hangs rather than refuses.
fn server_processes(pid: u32) -> Vec<u32> {
    let children = std::fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|e| {
        let child: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // "pid (comm) S ppid …"
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == pid).then_some(child)
    });
    std::iter::once(pid).chain(children).collect()
}

/// SIGSTOPs the server's processes; SIGCONTs them when dropped.
struct Frozen(Vec<u32>);

impl Frozen {
    fn freeze(pg: &Postgres) -> Frozen {
        let pids = server_processes(pg.pid.unwrap());
        Frozen::signal(&pids, "-STOP");
        Frozen(pids)
    }

    fn signal(pids: &[u32], signal: &str) {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let _ = Command::new("kill").arg(signal).args(&pids).status();
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        Frozen::signal(&self.0, "-CONT");
    }
}

/// A database that hangs (every process stopped) holds the writer for
/// its 2 s store timeout; a small usage queue fills behind it, and a new
/// request waits 1 s for room, then is shed: 503 with `retry-after`, no
/// record. Once the writer spills, requests succeed again; thawed, the
/// database gets every admitted request's record once.
#[tokio::test]
async fn durability_hung_store_sheds_after_a_second_then_recovers() {
    let Some(pg_bin) = pg_binaries() else { return };
    let pg = Postgres::start(pg_bin);
    let usage = "usage: { queue_capacity: 8, batch_size: 1, flush_interval: 10ms }";
    let h =
        Harness::start(bin(), &config(&pg.url()).replace("usage: { flush_interval: 50ms, batch_size: 1000 }", usage));
    let key = h.key().await;
    let mut sent = Vec::new();
    for i in 0..5 {
        let s = chat(&h, &key, format!("before-{i}")).await;
        assert_eq!(s.status, 200);
        sent.push(s.request_id);
    }
    let stored = eventually(Duration::from_secs(10), || async { (pg.stored_request_ids().len() == 5).then_some(()) });
    assert!(stored.await.is_some(), "{}", h.stderr());

    let frozen = Frozen::freeze(&pg);
    let t0 = Instant::now();
    // One record held by the writer, eight queued: the next request waits.
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "Say hello"}]});
    let mut shed = None;
    for i in 0..40 {
        let request_id = format!("frozen-{i}");
        let sent_at = t0.elapsed();
        let r = h.post("/v1/chat/completions", &key).header("x-request-id", &request_id).json(&body).send().await;
        let r = r.unwrap();
        let status = r.status().as_u16();
        let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        if status == 503 {
            shed = Some((sent_at, t0.elapsed() - sent_at, retry_after, text));
            break;
        }
        assert_eq!(status, 200, "{text}");
        sent.push(request_id);
    }
    let (sent_at, waited, retry_after, text) = shed.expect("no request was shed while the store hung");
    eprintln!("shed after {} admitted requests, sent {sent_at:?} after the freeze, waited {waited:?}", sent.len() - 5);
    assert!(sent_at < Duration::from_secs(1), "the requests before it took {sent_at:?}: too slow to tell");
    assert!(waited >= Duration::from_millis(950), "shed after {waited:?}, not after waiting for room");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(text.contains("usage records"), "{text}");
    assert!((9..=12).contains(&(sent.len() - 5)), "{} admitted before the queue was full", sent.len() - 5);

    // The writer gives up on the store and spills: requests pass again.
    let recovered = eventually(Duration::from_secs(10), || async {
        let s = chat(&h, &key, format!("after-{}", fastrand::u64(..))).await;
        assert!(s.status == 200 || s.status == 503, "{}", s.status);
        (s.status == 200).then_some(s.request_id)
    });
    let id = recovered.await.unwrap_or_else(|| panic!("requests were still refused:\n{}", h.stderr()));
    sent.push(id);
    assert!(spilled_lines(&h).is_some_and(|n| n > 0), "nothing spilled:\n{}", h.stderr());

    drop(frozen);
    let replayed = eventually(Duration::from_secs(15), || async { spilled_lines(&h).is_none().then_some(()) }).await;
    assert!(replayed.is_some(), "the spill file was not replayed:\n{}", h.stderr());
    let complete =
        eventually(Duration::from_secs(10), || async { (pg.stored_request_ids().len() >= sent.len()).then_some(()) });
    assert!(complete.await.is_some(), "records missing after the replay:\n{}", h.stderr());
    // Every admitted request stored once; the shed ones (the first, and
    // the refused tries of the `eventually` loop) made no record.
    assert_stored_once(&pg, &sent);
    let metrics = h.metrics().await;
    assert!(metric(&metrics, "switchyard_requests_shed_total{reason=\"usage_queue_full\"}") >= 1, "{metrics}");
    assert_eq!(metric(&metrics, "switchyard_usage_records_total{result=\"lost\"}"), 0);
}
