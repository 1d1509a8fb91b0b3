//! `switchyard serve`: the start-up order, and the shutdown order.
//!
//! Start: config → embedded simulator (if configured) → store (migrations)
//! → usage writer (replays spilled records) → snapshot → budget alerts
//! (sends pending ones) → keys into memory → listener → reload watcher →
//! serve.
//!
//! Stop (SIGTERM / Ctrl-C): stop accepting, let in-flight requests finish
//! for up to `server.shutdown_grace`, drop what is left (their records are
//! written as client-closed), flush usage records, exit 0.

use crate::reload;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use switchyard_config::Config;
use switchyard_config::RedisFailure;
use switchyard_core::access::ChangeFeed;
use switchyard_core::budget::{Ledger, SharedBudgets, Zone};
use switchyard_core::gateway::Parts;
use switchyard_core::limits::{FailureMode, Limiter};
use switchyard_core::runtime::{BuildContext, Runtime};
use switchyard_core::usage::{start_writer, WriterSettings};
use switchyard_core::Gateway;
use switchyard_store::{RedisBudgets, RedisFeed, RedisLimiter};
use switchyard_telemetry::Metrics;
use tokio::sync::watch;

pub async fn run(path: PathBuf) -> Result<(), String> {
    let config = switchyard_config::load_file(&path).map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = watch::channel(false);

    let sim_addr = match start_simulator(&config, stop_rx.clone()).await? {
        Some(addr) => {
            println!("switchyard: simulator on http://{addr}");
            Some(addr)
        }
        None => None,
    };

    let store = switchyard_store::open(&config.storage.url).await.map_err(|e| e.to_string())?;
    let metrics = Arc::new(Metrics::new());
    let writer = WriterSettings {
        capacity: config.usage.queue_capacity,
        batch_size: config.usage.batch_size,
        flush_interval: config.usage.flush_interval.get(),
        spill_path: spill_path(&config.storage.url),
    };
    let (usage, writer_task) = start_writer(store.clone(), writer, metrics.clone());
    let audit_writer = WriterSettings {
        capacity: config.usage.queue_capacity,
        batch_size: config.usage.batch_size,
        flush_interval: config.usage.flush_interval.get(),
        spill_path: spill_path(&config.storage.url).map(|p| p.with_file_name("audit-spill.jsonl")),
    };
    let (audit, audit_task) = start_writer(store.clone(), audit_writer, metrics.clone());

    // Fault rules outlive snapshots: every snapshot's providers read them.
    let faults = Arc::new(switchyard_core::faults::Faults::new(metrics.clone()));
    let runtime = Runtime::build_with_faults(config.clone(), BuildContext { sim_addr, previous: None }, Some(&faults))?;
    for note in runtime.notes() {
        tracing::warn!("{note}");
    }
    let zone = budget_zone(&config)?;
    let (limiter, changes, ledger) = match connect_redis(&config).await? {
        Some(shared) => (shared.limiter, Some(shared.feed), Ledger::with_shared(zone, shared.budgets, shared.mode)),
        None => (Limiter::local(), None, Ledger::new(zone)),
    };
    // Sends the pending alerts a stop or a crash left, then those that fire.
    let (alerts, alerts_task) =
        switchyard_core::alerts::start(store.clone(), &config.alerts, ledger.zone().clone(), metrics.clone())?;
    let parts = Parts {
        store,
        usage: usage.clone(),
        audit: audit.clone(),
        metrics,
        sim_addr,
        limiter,
        changes,
        ledger,
        alerts,
        faults,
    };
    let gateway = Arc::new(Gateway::new(runtime, parts));
    let keys = gateway.load_directory().await.map_err(|e| format!("cannot load the directory: {e}"))?;
    // After the spill file was replayed (the usage writer did that first).
    usage.flush().await;
    gateway.seed_budgets().await.map_err(|e| format!("cannot read this period's spend: {e}"))?;
    gateway.seed_volume().await.map_err(|e| format!("cannot read this month's provider volume: {e}"))?;
    // The file, stored as a version if it is news; else the newest stored
    // version (changes made over the API survive restarts).
    if let Ok(text) = std::fs::read_to_string(&path) {
        gateway.start_config(&text).await;
    }
    // Other replicas' changes: announced through Redis (at once), and
    // polled for (the backstop).
    let changed = Arc::new(tokio::sync::Notify::new());
    let config_changed = Arc::new(tokio::sync::Notify::new());
    if let Some(redis) = &config.redis {
        let (directory, config) = (changed.clone(), config_changed.clone());
        // Config versions come as negative numbers (ChangeFeed).
        let on_change = move |seq: i64| if seq < 0 { config.notify_one() } else { directory.notify_one() };
        RedisFeed::subscribe(redis, on_change, stop_rx.clone())?;
    }
    tokio::spawn(poll_directory(gateway.clone(), changed, stop_rx.clone()));
    tokio::spawn(sync_config(gateway.clone(), config_changed, stop_rx.clone()));
    tokio::spawn(every_second(gateway.clone(), stop_rx.clone()));
    tokio::spawn(switchyard_core::resilience::prober::run(gateway.clone(), stop_rx.clone()));

    let listener = crate::listen::bind(&config.server.listen).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, keys, routes = config.routes.len(), "switchyard is serving");
    println!("switchyard: listening on http://{addr}");

    tokio::spawn(reload::watch(path, gateway.clone(), stop_rx.clone()));

    let app = switchyard_server::app(gateway.clone());
    // Nagle off on accepted connections: SSE events must leave at once.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let mut graceful_rx = stop_rx.clone();
    // A make-service: each connection gets a clone of the router (serving
    // the Router itself rebuilds its route table per connection, ~5 KiB),
    // with the peer address for the audit log.
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(app);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful_rx.wait_for(|s| *s).await;
    });
    let mut server = std::pin::pin!(server.into_future());
    let grace = config.server.shutdown_grace.get();
    tokio::select! {
        result = &mut server => result.map_err(|e| e.to_string())?,
        () = shutdown_signal() => {
            tracing::info!(grace = %config.server.shutdown_grace, "shutting down: draining in-flight requests");
            let _ = stop_tx.send(true);
            if tokio::time::timeout(grace, &mut server).await.is_err() {
                tracing::warn!("shutdown grace elapsed; closing the remaining connections");
            }
        }
    }
    let _ = stop_tx.send(true);
    // Everything queued so far (including records of requests cut by the
    // grace deadline, queued as they dropped) is written before exit.
    usage.flush().await;
    audit.flush().await;
    drop(usage);
    drop(audit);
    drop(gateway);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer_task).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), audit_task).await;
    // Ends once the last request holding its handle is gone; alerts it
    // could not send in time stay pending for the next start.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), alerts_task).await;
    tracing::info!("stopped");
    Ok(())
}

/// The shared limiter and change feed when `redis` is configured (read at
/// start; changing `redis` needs a restart). Redis being down at start is
/// not fatal: calls fail fast and `redis.on_failure` applies until it is up.
/// What replicas share through Redis, when it is configured.
struct Shared {
    limiter: Limiter,
    budgets: Arc<dyn SharedBudgets>,
    mode: FailureMode,
    feed: Arc<dyn ChangeFeed>,
}

async fn connect_redis(config: &Config) -> Result<Option<Shared>, String> {
    let Some(redis) = &config.redis else { return Ok(None) };
    let backend = RedisLimiter::connect(redis).await.map_err(|e| format!("redis: {e}"))?;
    let budgets = RedisBudgets::connect(redis).await.map_err(|e| format!("redis: {e}"))?;
    let mode = match redis.on_failure {
        RedisFailure::Local => FailureMode::Local,
        RedisFailure::Closed => FailureMode::Closed,
    };
    let feed = RedisFeed::connect(redis).await.map_err(|e| format!("redis: {e}"))?;
    tracing::info!(on_failure = ?redis.on_failure, "rate limits, budgets and directory changes shared through redis");
    Ok(Some(Shared {
        limiter: Limiter::shared(Arc::new(backend), mode),
        budgets: Arc::new(budgets),
        mode,
        feed: Arc::new(feed),
    }))
}

/// Every second: compute nodes' heartbeats received by other replicas and
/// nodes that went silent (docs/routing.md#compute-nodes; only when some
/// deployment runs on a node), and rollout steps that are due.
async fn every_second(gateway: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if gateway.runtime().config.deployments.iter().any(|d| d.node.is_some()) {
            gateway.poll_nodes().await;
        }
        gateway.rollout_tick().await;
    }
}

/// Runs config versions stored through other replicas: when one announces
/// a version (Redis), and every `admin.refresh_interval` regardless.
async fn sync_config(gateway: Arc<Gateway>, changed: Arc<tokio::sync::Notify>, mut stop: watch::Receiver<bool>) {
    while next_refresh(&gateway, &changed, &mut stop).await {
        gateway.sync_config().await;
    }
}

/// Waits for `admin.refresh_interval` or an announcement on `changed`;
/// `false` once the server stops.
async fn next_refresh(gateway: &Gateway, changed: &tokio::sync::Notify, stop: &mut watch::Receiver<bool>) -> bool {
    let interval = gateway.runtime().config.admin.refresh_interval.get();
    tokio::select! {
        _ = tokio::time::sleep(interval) => true,
        _ = changed.notified() => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Brings the directory up to date with changes made through other
/// replicas: when one announces a change (`changed`, from Redis), and every
/// `admin.refresh_interval` regardless. A failed poll is retried at the
/// next tick; the last good snapshot keeps serving meanwhile.
async fn poll_directory(gateway: Arc<Gateway>, changed: Arc<tokio::sync::Notify>, mut stop: watch::Receiver<bool>) {
    let mut failing = false;
    while next_refresh(&gateway, &changed, &mut stop).await {
        match gateway.directory.poll(&*gateway.store).await {
            Ok(n) => {
                if n > 0 {
                    gateway.metrics.directory_refreshes.inc(&["ok"]);
                    tracing::debug!(entries = n, "directory refreshed");
                }
                if failing {
                    tracing::info!("directory refresh works again");
                    failing = false;
                }
            }
            Err(e) => {
                gateway.metrics.directory_refreshes.inc(&["error"]);
                if !failing {
                    tracing::warn!(error = %e, "directory refresh failed; serving the last snapshot");
                    failing = true;
                }
            }
        }
        gateway.metrics.directory_seq.set(&[], gateway.directory.load().seq);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Where budget days and months begin (also checked by `config validate`).
pub fn budget_zone(config: &Config) -> Result<Zone, String> {
    Zone::parse(&config.budgets.time_zone).map_err(|e| format!("budgets.time_zone: {e}"))
}

/// The simulator's own schema, checked (also by `config validate`).
pub fn check_simulator(config: &Config) -> Result<Option<switchyard_sim::SimConfig>, String> {
    let Some(section) = &config.simulator else { return Ok(None) };
    let value = serde_json::json!({
        "default": if section.default.is_null() { serde_json::json!({}) } else { section.default.clone() },
        "models": section.models,
    });
    let sim: switchyard_sim::SimConfig = serde_json::from_value(value).map_err(|e| format!("simulator: {e}"))?;
    sim.validate().map_err(|e| format!("simulator.{e}"))?;
    Ok(Some(sim))
}

async fn start_simulator(config: &Config, mut stop: watch::Receiver<bool>) -> Result<Option<SocketAddr>, String> {
    let Some(sim_config) = check_simulator(config)? else { return Ok(None) };
    let listen = config.simulator.as_ref().and_then(|s| s.listen.clone()).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = crate::listen::bind(&listen).await.map_err(|e| format!("simulator: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let sim = switchyard_sim::Sim::new(sim_config);
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = switchyard_sim::serve(listener, sim, shutdown).await {
            tracing::error!("simulator stopped: {e}");
        }
    });
    Ok(Some(addr))
}

/// Spilled usage records live beside the database file; with a database
/// server, in `./data/` on this replica's own disk.
fn spill_path(url: &str) -> Option<PathBuf> {
    if url.contains(":memory:") {
        return None;
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Some(PathBuf::from("data/usage-spill.jsonl"));
    }
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
    Some(path.with_file_name("usage-spill.jsonl"))
}
