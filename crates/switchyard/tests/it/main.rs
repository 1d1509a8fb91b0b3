//! Integration tests: the real `switchyard` binary against its embedded
//! simulator, over loopback, through the testkit harness. One test binary
//! for the whole suite (build time on two cores).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

mod access;
mod admin_cli;
mod alerts;
mod analytics;
mod budget;
mod chat;
mod cli;
mod cost;
mod durability;
mod errors;
mod faults;
mod lifecycle;
mod replicas;
mod resilience;
mod routing;
mod streaming;
mod translate;

use std::path::Path;
use switchyard_testkit::{base_config, Harness};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchyard"))
}

/// A gateway with the default test config.
pub fn start() -> Harness {
    Harness::start(bin(), &base_config("", "", ""))
}

/// The body of a minimal chat request.
pub fn chat_body(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]})
}

/// The same as a stream, with `stream_options.include_usage` when given.
pub fn stream_body(model: &str, include_usage: Option<bool>) -> serde_json::Value {
    let mut b = chat_body(model);
    b["stream"] = serde_json::json!(true);
    if let Some(u) = include_usage {
        b["stream_options"] = serde_json::json!({"include_usage": u});
    }
    b
}
