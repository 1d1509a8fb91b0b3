//! The limiter the gateway holds: in-process ([`LocalLimiter`]) when it
//! runs alone, or a shared backend (Redis, implemented in the store crate
//! behind [`SharedBackend`]) when replicas must count together. Either way
//! the request holds an [`Admission`]: its concurrency slots until it ends,
//! and its token reservation until the real usage corrects it.
//!
//! When the shared backend cannot answer in time, [`FailureMode`] decides:
//! `local` admits under this replica's own counters (fail open, still
//! limited), `closed` refuses with 503 — never a hang.

use super::local::{LocalAdmission, LocalLimiter};
use super::{Check, Quota, Refusal};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The shared backend did not answer (unreachable, timed out, broken).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendDown(pub String);

/// What a shared backend grants: the figures after this request's charge,
/// and what to give back later.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    pub quota: Quota,
    /// Scopes where a concurrency slot is held.
    pub slots: Vec<Arc<str>>,
    /// Scopes with a tpm limit, and that limit.
    pub token_scopes: Vec<(Arc<str>, u64)>,
    /// Names this admission's slots in the backend (leases).
    pub lease: String,
}

/// A rate-limit store shared by replicas, with the in-process limiter's
/// semantics (all-or-nothing; same GCRA, see [`super::gcra`]).
pub trait SharedBackend: Send + Sync + 'static {
    fn admit<'a>(
        &'a self,
        checks: &'a [Check],
        tokens: u64,
    ) -> BoxFuture<'a, Result<Result<Grant, Refusal>, BackendDown>>;
    /// Frees the grant's concurrency slots. Fire and forget: a slot that
    /// cannot be freed expires with its lease.
    fn release(&self, grant: &Grant);
    /// Moves the token charge from `reserved` to `actual`. Fire and forget.
    fn reconcile(&self, grant: &Grant, reserved: u64, actual: u64);
}

/// What to do when the shared backend does not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureMode {
    /// Admit under this replica's own counters.
    Local,
    /// Refuse (503) until the backend answers again.
    Closed,
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum NotAdmitted {
    Refused(Refusal),
    /// The shared backend is down and the failure mode is `closed`.
    Unavailable(BackendDown),
}

pub struct Limiter {
    local: LocalLimiter,
    shared: Option<Arc<dyn SharedBackend>>,
    on_failure: FailureMode,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::local()
    }
}

impl Limiter {
    /// Counts in this process only.
    pub fn local() -> Limiter {
        Limiter { local: LocalLimiter::new(), shared: None, on_failure: FailureMode::Local }
    }

    pub fn shared(backend: Arc<dyn SharedBackend>, on_failure: FailureMode) -> Limiter {
        Limiter { local: LocalLimiter::new(), shared: Some(backend), on_failure }
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Admits under every check, or says why not. `fell_back` is called
    /// when the shared backend was down and local counters decided.
    pub async fn admit(
        &self,
        checks: &[Check],
        tokens: u64,
        fell_back: impl FnOnce(&BackendDown),
    ) -> Result<Admission, NotAdmitted> {
        let Some(backend) = &self.shared else {
            return self.admit_locally(checks, tokens);
        };
        match backend.admit(checks, tokens).await {
            Ok(Ok(grant)) => Ok(Admission(Inner::Shared { backend: backend.clone(), grant, reserved: tokens })),
            Ok(Err(refusal)) => Err(NotAdmitted::Refused(refusal)),
            Err(down) => {
                fell_back(&down);
                match self.on_failure {
                    FailureMode::Local => self.admit_locally(checks, tokens),
                    FailureMode::Closed => Err(NotAdmitted::Unavailable(down)),
                }
            }
        }
    }

    fn admit_locally(&self, checks: &[Check], tokens: u64) -> Result<Admission, NotAdmitted> {
        match self.local.admit(checks, tokens, Instant::now()) {
            Ok(a) => Ok(Admission(Inner::Local(a))),
            Err(r) => Err(NotAdmitted::Refused(r)),
        }
    }

    /// Scopes held in this process's counters (tests, metrics).
    pub fn local_scopes(&self) -> usize {
        self.local.scopes()
    }
}

/// An admitted request's place under the limits: slots are freed when it
/// drops; [`reconcile`](Self::reconcile) corrects the token charge.
#[derive(Debug)]
pub struct Admission(Inner);

enum Inner {
    Local(LocalAdmission),
    Shared { backend: Arc<dyn SharedBackend>, grant: Grant, reserved: u64 },
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inner::Local(a) => a.fmt(f),
            Inner::Shared { grant, reserved, .. } => {
                f.debug_struct("Shared").field("grant", grant).field("reserved", reserved).finish()
            }
        }
    }
}

impl Admission {
    pub fn quota(&self) -> &Quota {
        match &self.0 {
            Inner::Local(a) => a.quota(),
            Inner::Shared { grant, .. } => &grant.quota,
        }
    }

    /// The real token count is known: charge the difference.
    pub fn reconcile(&mut self, actual_tokens: u64, now: Instant) {
        match &mut self.0 {
            Inner::Local(a) => a.reconcile(actual_tokens, now),
            Inner::Shared { backend, grant, reserved } => {
                if actual_tokens != *reserved && !grant.token_scopes.is_empty() {
                    backend.reconcile(grant, *reserved, actual_tokens);
                }
                *reserved = actual_tokens;
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Inner::Shared { backend, grant, .. } = self {
            if !grant.slots.is_empty() {
                backend.release(grant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::limits::Limits;
    use std::sync::Mutex;

    /// A backend that is down, or counts admits and releases.
    #[derive(Default)]
    struct Fake {
        down: bool,
        released: Mutex<Vec<String>>,
        reconciled: Mutex<Vec<(u64, u64)>>,
    }

    impl SharedBackend for Fake {
        fn admit<'a>(
            &'a self,
            checks: &'a [Check],
            _: u64,
        ) -> BoxFuture<'a, Result<Result<Grant, Refusal>, BackendDown>> {
            Box::pin(async move {
                if self.down {
                    return Err(BackendDown("connection refused".into()));
                }
                let slots =
                    checks.iter().filter(|c| c.limits.max_concurrent.is_some()).map(|c| c.scope.clone()).collect();
                let token_scopes = checks.iter().filter_map(|c| Some((c.scope.clone(), c.limits.tpm?))).collect();
                Ok(Ok(Grant { slots, token_scopes, lease: "l1".into(), ..Grant::default() }))
            })
        }
        fn release(&self, grant: &Grant) {
            self.released.lock().unwrap().push(grant.lease.clone());
        }
        fn reconcile(&self, _: &Grant, reserved: u64, actual: u64) {
            self.reconciled.lock().unwrap().push((reserved, actual));
        }
    }

    fn checks(limits: Limits) -> Vec<Check> {
        vec![Check { scope: Arc::from("key:a"), limits }]
    }

    #[tokio::test]
    async fn shared_admissions_release_and_reconcile_through_the_backend() {
        let fake = Arc::new(Fake::default());
        let limiter = Limiter::shared(fake.clone(), FailureMode::Closed);
        let limits = Limits { tpm: Some(100), max_concurrent: Some(1), ..Limits::default() };
        let mut a = limiter.admit(&checks(limits), 10, |_| panic!("not down")).await.unwrap();
        a.reconcile(4, Instant::now());
        a.reconcile(4, Instant::now()); // unchanged: nothing sent
        drop(a);
        assert_eq!(*fake.reconciled.lock().unwrap(), [(10, 4)]);
        assert_eq!(*fake.released.lock().unwrap(), ["l1"]);
    }

    #[tokio::test]
    async fn a_down_backend_falls_back_or_refuses_as_configured() {
        let down = Arc::new(Fake { down: true, ..Fake::default() });
        let limits = Limits { rpm: Some(1), ..Limits::default() };
        let open = Limiter::shared(down.clone(), FailureMode::Local);
        let mut fell = 0;
        assert!(open.admit(&checks(limits), 0, |_| fell += 1).await.is_ok());
        // Local counters still limit.
        assert!(matches!(open.admit(&checks(limits), 0, |_| fell += 1).await, Err(NotAdmitted::Refused(_))));
        assert_eq!(fell, 2);
        let closed = Limiter::shared(down, FailureMode::Closed);
        assert!(matches!(closed.admit(&checks(limits), 0, |_| {}).await, Err(NotAdmitted::Unavailable(_))));
    }
}
