//! Admission control: bounded queues in front of the attempt loop.
//!
//! ```text
//! request ─▶ its route's gate (routes[].queue: max_concurrency, max_queue, timeout)
//!         ─▶ the gateway's gate (resilience.admission: max_concurrency, max_queue, timeout),
//!            where waiting requests are let in by their route's priority
//!         ─▶ attempts; both slots are held until the answer (or stream) ends
//! full queue, or no slot within the timeout (or the request's deadline) → 503 + retry-after
//! ```
//!
//! A [`Gate`] is a counting semaphore with a bounded wait list ordered by
//! priority (higher first), then arrival. Nothing waits without bound: the
//! list has a length and every waiter a deadline. Gates survive reloads
//! (their limits are set again from the new config), so waiting requests
//! are not lost.

use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Why a request was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// The wait list is full.
    QueueFull,
    /// No slot came free in time.
    Timeout,
}

impl Shed {
    pub fn as_str(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::Timeout => "queue_timeout",
        }
    }
}

struct Waiter {
    priority: u32,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    /// Higher priority first, then earlier arrival.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority.cmp(&other.priority).then(other.seq.cmp(&self.seq))
    }
}

struct State {
    capacity: usize,
    max_queue: usize,
    in_use: usize,
    waiting: BinaryHeap<Waiter>,
    seq: u64,
}

/// A bounded, prioritised semaphore.
pub struct Gate {
    state: Mutex<State>,
}

/// A slot, released when dropped.
pub struct Permit(Arc<Gate>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Gate {
    pub fn new(capacity: usize, max_queue: usize) -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::new(State { capacity, max_queue, in_use: 0, waiting: BinaryHeap::new(), seq: 0 }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// New limits (a reload); raising the capacity lets waiters in.
    pub fn configure(&self, capacity: usize, max_queue: usize) {
        let mut s = self.lock();
        s.capacity = capacity;
        s.max_queue = max_queue;
        Self::hand_over(&mut s);
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// A slot, now or after waiting up to `until`.
    pub async fn acquire(self: &Arc<Self>, priority: u32, until: Instant) -> Result<Permit, Shed> {
        let (mut rx, seq) = {
            let mut s = self.lock();
            if s.in_use < s.capacity && s.waiting.is_empty() {
                s.in_use += 1;
                return Ok(Permit(self.clone()));
            }
            if s.waiting.len() >= s.max_queue {
                return Err(Shed::QueueFull);
            }
            let (tx, rx) = oneshot::channel();
            s.seq += 1;
            let seq = s.seq;
            s.waiting.push(Waiter { priority, seq, wake: tx });
            (rx, seq)
        };
        match tokio::time::timeout_at(until, &mut rx).await {
            // The slot was counted as ours when it was handed over.
            Ok(Ok(())) => return Ok(Permit(self.clone())),
            // Dropped unsent: the gate is going away.
            Ok(Err(_)) => return Err(Shed::Timeout),
            Err(_) => {}
        }
        // Out of time. Still on the list: not handed a slot, leave. Off the
        // list: handed one at the last moment (our receiver was alive, so
        // it was counted): keep it.
        let mut s = self.lock();
        let before = s.waiting.len();
        s.waiting.retain(|w| w.seq != seq);
        if s.waiting.len() < before {
            Err(Shed::Timeout)
        } else {
            Ok(Permit(self.clone()))
        }
    }

    fn release(&self) {
        let mut s = self.lock();
        s.in_use = s.in_use.saturating_sub(1);
        Self::hand_over(&mut s);
    }

    /// Free slots to the best waiters still waiting.
    fn hand_over(s: &mut State) {
        while s.in_use < s.capacity {
            let Some(w) = s.waiting.pop() else { break };
            if w.wake.send(()).is_ok() {
                s.in_use += 1;
            }
        }
    }
}

/// The gates of one gateway: one per route with a queue, and one for all.
#[derive(Default)]
pub struct Admission {
    global: Mutex<Option<Arc<Gate>>>,
    routes: Mutex<HashMap<String, Arc<Gate>>>,
}

/// Both slots of one request.
#[derive(Default)]
pub struct Admitted {
    _route: Option<Permit>,
    _global: Option<Permit>,
}

impl Admission {
    /// The gate for `route` with these limits (made on first use, limits
    /// set again when they changed).
    fn gate(map: &Mutex<HashMap<String, Arc<Gate>>>, name: &str, capacity: usize, max_queue: usize) -> Arc<Gate> {
        let mut m = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let g = m.entry(name.to_string()).or_insert_with(|| Gate::new(capacity, max_queue));
        g.configure(capacity, max_queue);
        g.clone()
    }

    /// Lets a request on `route` in, waiting where its queues allow, or
    /// sheds it.
    pub async fn admit(
        &self,
        route: &str,
        queue: Option<&switchyard_config::QueueConfig>,
        global: &switchyard_config::AdmissionConfig,
        deadline: Instant,
        metrics: &switchyard_telemetry::Metrics,
    ) -> Result<Admitted, (Shed, &'static str)> {
        let mut admitted = Admitted::default();
        let priority = queue.map_or(0, |q| q.priority);
        if let Some(q) = queue {
            let gate = Self::gate(&self.routes, route, q.max_concurrency as usize, q.max_queue as usize);
            let until = deadline.min(Instant::now() + q.timeout.get());
            admitted._route = Some(Self::wait(&gate, priority, until, route, metrics).await.map_err(|s| (s, "route"))?);
        }
        if global.max_concurrency > 0 {
            let gate = {
                let mut g = self.global.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let gate = g.get_or_insert_with(|| Gate::new(global.max_concurrency, global.max_queue)).clone();
                gate.configure(global.max_concurrency, global.max_queue);
                gate
            };
            let until = deadline.min(Instant::now() + global.timeout.get());
            admitted._global =
                Some(Self::wait(&gate, priority, until, "*", metrics).await.map_err(|s| (s, "gateway"))?);
        }
        Ok(admitted)
    }

    async fn wait(
        gate: &Arc<Gate>,
        priority: u32,
        until: Instant,
        label: &str,
        metrics: &switchyard_telemetry::Metrics,
    ) -> Result<Permit, Shed> {
        let started = Instant::now();
        metrics.queue_depth.set(&[label], gate.waiting() as i64);
        let got = gate.acquire(priority, until).await;
        metrics.queue_depth.set(&[label], gate.waiting() as i64);
        metrics.queue_wait.observe(&[label], started.elapsed().as_secs_f64());
        got
    }
}

/// How long a shed client should wait before trying again.
pub const SHED_RETRY_AFTER: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn slots_then_a_bounded_queue_then_shedding() {
        let gate = Gate::new(1, 1);
        let soon = Instant::now() + Duration::from_millis(50);
        let first = gate.acquire(0, soon).await.unwrap();
        // The second waits; a third finds the queue full.
        let g = gate.clone();
        let second = tokio::spawn(async move { g.acquire(0, Instant::now() + Duration::from_secs(5)).await.is_ok() });
        tokio::task::yield_now().await;
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.acquire(0, soon).await.err(), Some(Shed::QueueFull));
        drop(first);
        assert!(second.await.unwrap());
        // A waiter whose time runs out is shed and leaves the list.
        let held = gate.acquire(0, soon).await.unwrap();
        let late = gate.acquire(0, Instant::now() + Duration::from_millis(20)).await;
        assert_eq!(late.err(), Some(Shed::Timeout));
        assert_eq!(gate.waiting(), 0);
        drop(held);
    }

    #[tokio::test]
    async fn higher_priority_goes_first() {
        let gate = Gate::new(1, 10);
        let held = gate.acquire(0, Instant::now() + Duration::from_secs(1)).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [("low", 10u32), ("high", 100), ("mid", 50)] {
            let (g, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let p = g.acquire(priority, Instant::now() + Duration::from_secs(5)).await.unwrap();
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(p);
            }));
            while gate.waiting() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["high", "mid", "low"]);
    }
}
