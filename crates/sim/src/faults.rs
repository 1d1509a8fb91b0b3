//! Fault injection, shared by every data-plane endpoint of every wire
//! format. Checked in this order, after the request was parsed and recorded:
//!
//! | order | knob | effect |
//! | --- | --- | --- |
//! | 1 | `fail_next` | `error_status`, counted down |
//! | 2 | `rate_limit_next` | 429 + `retry-after`, counted down |
//! | 3 | `rate_limit_rate` | 429 with that probability |
//! | 4 | `error_rate` | `error_status` with that probability |
//! | 5 | `hang` | no answer until the client leaves (or the sim shuts down: 503) |
//!
//! This module decides *which* fault; each format writes its own error body
//! ([`crate::wire::fault_response`], [`crate::anthropic`], [`crate::gemini`]).
//! Errors are answered at once: `latency_ms` and `ttft_ms` apply to answers only.

use crate::knobs::Slot;
use crate::Sim;

/// A fault to answer with instead of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// An error with this status (400..=599, never 429).
    Error(u16),
    /// A 429 whose `retry-after` is this many seconds.
    RateLimited { retry_after_s: u64 },
}

/// The fault this request gets, or `None` to answer normally.
pub(crate) async fn inject(sim: &Sim, slot: &Slot) -> Option<Fault> {
    let k = &slot.knobs;
    let limited = Fault::RateLimited { retry_after_s: k.retry_after_s };
    // Knobs set through the Rust API are not validated: never "fail" with a 2xx.
    let error = match k.error_status {
        429 => limited,
        s if (400..=599).contains(&s) => Fault::Error(s),
        _ => Fault::Error(500),
    };
    if slot.take_fail() {
        return Some(error);
    }
    if slot.take_rate_limit() {
        return Some(limited);
    }
    if k.rate_limit_rate > 0.0 && fastrand::f64() < k.rate_limit_rate {
        return Some(limited);
    }
    if k.error_rate > 0.0 && fastrand::f64() < k.error_rate {
        return Some(error);
    }
    if k.hang {
        // Normally the client leaves first and this future is dropped with
        // the handler (recorded `Cancelled`); shutdown must not wait forever.
        sim.until_shutdown().await;
        return Some(Fault::Error(503));
    }
    None
}
