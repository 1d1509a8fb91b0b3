//! Fault injection, shared by every data-plane endpoint. Checked in this
//! order, after the request was parsed and recorded:
//!
//! | order | knob | effect |
//! | --- | --- | --- |
//! | 1 | `fail_next` | `error_status`, counted down |
//! | 2 | `rate_limit_next` | 429 + `retry-after`, counted down |
//! | 3 | `rate_limit_rate` | 429 with that probability |
//! | 4 | `error_rate` | `error_status` with that probability |
//! | 5 | `hang` | no answer until the client leaves (or the sim shuts down: 503) |
//!
//! Errors are answered at once: `latency_ms` and `ttft_ms` apply to answers only.

use axum::response::Response;
use http::StatusCode;

use crate::knobs::Slot;
use crate::wire;
use crate::Sim;

/// The error to answer with and its status, or `None` to answer normally.
pub(crate) async fn inject(sim: &Sim, slot: &Slot, seq: u64, model: &str) -> Option<(Response, u16)> {
    let k = &slot.knobs;
    // Knobs set through the Rust API are not validated: never "fail" with a 2xx.
    let status = if (400..=599).contains(&k.error_status) { k.error_status } else { 500 };
    let error = || {
        if status == 429 {
            (wire::rate_limited(seq, model, k.retry_after_s), 429)
        } else {
            (wire::injected_error(status, seq, model), status)
        }
    };
    let limited = || (wire::rate_limited(seq, model, k.retry_after_s), 429);
    if slot.take_fail() {
        return Some(error());
    }
    if slot.take_rate_limit() {
        return Some(limited());
    }
    if k.rate_limit_rate > 0.0 && fastrand::f64() < k.rate_limit_rate {
        return Some(limited());
    }
    if k.error_rate > 0.0 && fastrand::f64() < k.error_rate {
        return Some(error());
    }
    if k.hang {
        // Normally the client leaves first and this future is dropped with
        // the handler (recorded `Cancelled`); shutdown must not wait forever.
        sim.until_shutdown().await;
        let resp = wire::injected_error(503, seq, model);
        return Some((resp, StatusCode::SERVICE_UNAVAILABLE.as_u16()));
    }
    None
}
