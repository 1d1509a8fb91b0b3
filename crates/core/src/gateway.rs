//! The gateway's shared state and its control operations (reload, keys).
//! The request path itself is in [`crate::pipeline`].

use crate::error::{ErrorKind, GatewayError};
use crate::ids::time_ordered;
use crate::keys::{generate_secret, hash_secret, KeyCache, KeyRecord, KeyStatus};
use crate::runtime::{BuildContext, Runtime};
use crate::store::{Store, StoreError};
use crate::usage::UsageSink;
use arc_swap::ArcSwap;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use switchyard_config::Config;
use switchyard_telemetry::Metrics;

pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    pub keys: KeyCache,
    pub store: Arc<dyn Store>,
    pub usage: UsageSink,
    pub metrics: Arc<Metrics>,
    sim_addr: Option<SocketAddr>,
}

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Route names; absent means every route.
    #[serde(default)]
    pub allowed_routes: Option<Vec<String>>,
    /// Unix milliseconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

impl Gateway {
    pub fn new(
        runtime: Runtime,
        store: Arc<dyn Store>,
        usage: UsageSink,
        metrics: Arc<Metrics>,
        sim_addr: Option<SocketAddr>,
    ) -> Self {
        Gateway { runtime: ArcSwap::from_pointee(runtime), keys: KeyCache::default(), store, usage, metrics, sim_addr }
    }

    /// The current snapshot; hold it for the whole request.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Builds a snapshot from `config` and swaps it in; on error the
    /// running snapshot stays.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let current = self.runtime.load_full();
        let next = Runtime::build(config, BuildContext { sim_addr: self.sim_addr, previous: Some(&current) })?;
        for note in next.notes() {
            tracing::warn!("{note}");
        }
        self.runtime.store(Arc::new(next));
        Ok(())
    }

    /// Fills the key cache from the store.
    pub async fn load_keys(&self) -> Result<usize, StoreError> {
        let keys = self.store.load_keys().await?;
        let n = keys.len();
        self.keys.replace_all(keys);
        Ok(n)
    }

    /// Checks the admin bearer token in constant time.
    pub fn check_admin(&self, presented: Option<&str>) -> Result<(), GatewayError> {
        let rt = self.runtime();
        let expected = rt.config.admin.bootstrap_token.as_str();
        if expected.is_empty() {
            return Err(GatewayError::new(
                ErrorKind::PermissionDenied,
                "the admin API is disabled: set admin.bootstrap_token",
            ));
        }
        let Some(presented) = presented else {
            return Err(GatewayError::new(
                ErrorKind::Unauthenticated,
                "missing admin token: send Authorization: Bearer <admin token>",
            ));
        };
        // Compare hashes so timing does not leak the token's length or prefix.
        let (a, b) = (hash_secret(presented), hash_secret(expected));
        let diff = a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        if diff != 0 {
            return Err(GatewayError::new(ErrorKind::Unauthenticated, "invalid admin token"));
        }
        Ok(())
    }

    /// Creates a key; the secret is returned here and never again.
    pub async fn create_key(&self, req: NewKey) -> Result<(KeyRecord, String), GatewayError> {
        let bad = |m: String, p: &str| GatewayError::new(ErrorKind::InvalidRequest, m).with_param(p);
        let name = req.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(bad("name must be 1 to 200 characters".into(), "name"));
        }
        if let Some(routes) = &req.allowed_routes {
            let rt = self.runtime();
            if let Some(unknown) = routes.iter().find(|r| !rt.routes.contains_key(*r)) {
                return Err(bad(format!("allowed_routes: no route named {unknown:?}"), "allowed_routes"));
            }
        }
        let now = crate::now_unix_ms();
        if req.expires_at.is_some_and(|t| t <= now) {
            return Err(bad("expires_at is in the past".into(), "expires_at"));
        }
        let secret = generate_secret().map_err(|e| GatewayError::new(ErrorKind::Internal, e))?;
        let record = KeyRecord {
            id: time_ordered("key"),
            name: name.to_string(),
            hash: hash_secret(&secret),
            prefix: secret.chars().take(10).collect(),
            tenant_id: req.tenant_id.unwrap_or_else(|| "default".into()),
            team_id: req.team_id,
            user_id: req.user_id,
            roles: req.roles.unwrap_or_else(|| vec!["developer".into()]),
            allowed_routes: req.allowed_routes,
            status: KeyStatus::Active,
            expires_at: req.expires_at,
            metadata: req.metadata.unwrap_or(serde_json::Value::Object(Default::default())),
            created_at: now,
        };
        self.store
            .insert_key(&record)
            .await
            .map_err(|e| GatewayError::new(ErrorKind::Overloaded, format!("could not save the key: {e}")))?;
        self.keys.upsert(record.clone());
        tracing::info!(key_id = %record.id, tenant_id = %record.tenant_id, "key created");
        Ok((record, secret))
    }
}
