//! The gateway's shared state and its control operations (reload, who is
//! calling). The request path itself is in [`crate::pipeline`]; the admin
//! operations in [`crate::access::admin`].

use crate::access::audit::{Actor, AuditRecord, AuditSink, Origin};
use crate::access::{Caller, ChangeFeed, DirectoryHandle, Principal};
use crate::budget::Ledger;
use crate::error::{ErrorKind, GatewayError};
use crate::keys::digest;
use crate::limits::Limiter;
use crate::runtime::{BuildContext, Runtime};
use crate::store::Store;
use crate::usage::UsageSink;
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::Arc;
use switchyard_config::Config;
use switchyard_telemetry::Metrics;

pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    /// Keys, tenants, teams, users and plans, in memory.
    pub directory: DirectoryHandle,
    pub limiter: Limiter,
    /// Budget spend per scope and period (reservations and commits).
    pub ledger: Ledger,
    /// Monthly tokens per provider with volume discounts.
    pub volume: Arc<crate::volume::VolumeMeter>,
    /// Compute nodes' last heartbeats.
    pub nodes: crate::nodes::Nodes,
    pub changes: Option<Arc<dyn ChangeFeed>>,
    pub store: Arc<dyn Store>,
    pub usage: UsageSink,
    pub audit: AuditSink,
    /// Budget threshold alerts (fed by the ledger's crossings).
    pub alerts: Arc<crate::alerts::Alerts>,
    pub metrics: Arc<Metrics>,
    /// Fault injection rules (this replica's; `faults.enabled` only).
    pub faults: Arc<crate::faults::Faults>,
    sim_addr: Option<SocketAddr>,
    /// The stored config version running (0: none stored yet).
    pub(crate) config_version: std::sync::atomic::AtomicI64,
    /// When that version was made (unix ms).
    pub(crate) config_made_at: std::sync::atomic::AtomicI64,
    /// Rollouts' error counts at the start of each step (this replica).
    pub(crate) rollout_watch: crate::rollouts::Watch,
    /// Admission queues (per route with `queue`, and gateway-wide).
    pub admission: crate::resilience::admission::Admission,
}

/// What the gateway is built from besides its first snapshot.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub usage: UsageSink,
    pub audit: AuditSink,
    pub metrics: Arc<Metrics>,
    pub sim_addr: Option<SocketAddr>,
    /// In-process, or shared through Redis.
    pub limiter: Limiter,
    /// Budget spend per scope and period (reservations and commits).
    pub ledger: Ledger,
    /// Tells other replicas about directory changes (Redis), if configured.
    pub changes: Option<Arc<dyn ChangeFeed>>,
    /// Budget threshold alerts (`alerts::start`).
    pub alerts: Arc<crate::alerts::Alerts>,
    /// Fault injection rules; the first snapshot was built with them too
    /// ([`Runtime::build_with_faults`]).
    pub faults: Arc<crate::faults::Faults>,
}

impl Gateway {
    pub fn new(runtime: Runtime, parts: Parts) -> Self {
        Gateway {
            runtime: ArcSwap::from_pointee(runtime),
            directory: DirectoryHandle::default(),
            limiter: parts.limiter,
            volume: Arc::new(crate::volume::VolumeMeter::new(
                parts.ledger.zone().clone(),
                parts.ledger.shared_backend(),
            )),
            ledger: parts.ledger,
            nodes: crate::nodes::Nodes::default(),
            changes: parts.changes,
            store: parts.store,
            usage: parts.usage,
            audit: parts.audit,
            alerts: parts.alerts,
            metrics: parts.metrics,
            faults: parts.faults,
            sim_addr: parts.sim_addr,
            config_version: std::sync::atomic::AtomicI64::new(0),
            config_made_at: std::sync::atomic::AtomicI64::new(0),
            rollout_watch: crate::rollouts::Watch::default(),
            admission: Default::default(),
        }
    }

    /// The current snapshot; hold it for the whole request.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Builds a snapshot from `config` and swaps it in; on error the
    /// running snapshot stays.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let next = self.prepare(config)?;
        self.install(next);
        Ok(())
    }

    /// Builds a snapshot from `config` (sharing what is unchanged with the
    /// running one) without swapping it in.
    pub fn prepare(&self, config: Config) -> Result<Runtime, String> {
        let current = self.runtime.load_full();
        let ctx = BuildContext { sim_addr: self.sim_addr, previous: Some(&current) };
        Runtime::build_with_faults(config, ctx, Some(&self.faults))
    }

    /// Swaps `next` in: the next request sees it whole.
    pub fn install(&self, next: Runtime) {
        for note in next.notes() {
            tracing::warn!("{note}");
        }
        self.alerts.configure(&next.config.alerts);
        // Turning fault injection off ends every drill at once.
        if !next.config.faults.enabled {
            let dropped = self.faults.clear();
            if dropped > 0 {
                tracing::warn!(dropped, "faults.enabled is off: every fault rule dropped");
            }
        }
        self.runtime.store(Arc::new(next));
    }

    /// Who is calling the admin API: the bootstrap token (compared in
    /// constant time) or a valid key of a tenant in good standing. Refusals
    /// are 401 and audited (`auth.denied`).
    pub async fn admin_principal(&self, credential: Option<&str>, origin: &Origin) -> Result<Principal, GatewayError> {
        let Some(presented) = credential.filter(|c| !c.is_empty()) else {
            return Err(self.auth_denied(
                "admin",
                origin,
                None,
                "missing credential",
                "Missing admin credential: send Authorization: Bearer <token>.",
            ));
        };
        let rt = self.runtime();
        let bootstrap = rt.config.admin.bootstrap_token.as_str();
        // Compare digests so timing does not leak the token's length or prefix.
        if !bootstrap.is_empty() {
            let diff = digest(presented).iter().zip(digest(bootstrap)).fold(0u8, |acc, (x, y)| acc | (x ^ y));
            if diff == 0 {
                return Ok(Principal::Bootstrap);
            }
        }
        let caller = self.directory.load().caller(presented);
        match caller {
            None => Err(self.auth_denied("admin", origin, None, "unknown credential", "Invalid admin credential.")),
            Some(c) => match c.refusal(crate::now_unix_ms()) {
                Some(why) => Err(self.auth_denied("admin", origin, Some(&c), why, why)),
                None => Ok(Principal::Key(c)),
            },
        }
    }

    /// A 401, counted and audited: `auth.denied` for an unknown credential,
    /// `request.refused` for a known key refused by policy.
    pub fn auth_denied(
        &self,
        surface: &'static str,
        origin: &Origin,
        caller: Option<&Caller>,
        reason: &str,
        message: &str,
    ) -> GatewayError {
        let (action, actor, metric) = match caller {
            None => ("auth.denied", Actor::anonymous(), "unauthenticated"),
            Some(c) => ("request.refused", Actor::of_key(&c.key), "policy"),
        };
        self.metrics.access_denied.inc(&[surface, metric]);
        let mut record = AuditRecord::new(actor, action, origin).reason(reason);
        if let Some(c) = caller {
            record = record.tenant(Some(c.tenant_id())).target("key", &c.key.id);
        }
        self.audit.send_or_drop(record);
        GatewayError::new(ErrorKind::Unauthenticated, message)
    }
}
