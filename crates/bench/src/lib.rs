//! switchyard-bench: an HTTP load generator for OpenAI- and
//! Anthropic-compatible chat endpoints, behind `switchyard bench` and
//! `bench/run.sh`. User guide: `docs/bench.md`.
//!
//! Two ways to load the target:
//! - **closed loop** (`--concurrency N`, the default): N workers each hold
//!   one HTTP/1.1 keep-alive connection and keep exactly one request in
//!   flight: send, read the whole response, record, repeat. Latency is from
//!   the actual send.
//! - **open loop** (`--rate R`): requests are due on a fixed or Poisson
//!   schedule and each is sent on its own task when due, over a shared
//!   keep-alive pool, whatever earlier requests do. Latency is from the due
//!   time, so queueing is not hidden by coordinated omission.
//!
//! Every request is recorded, when it ends, into one set of HDR histograms
//! behind a mutex (one short lock per request). Requests started (due)
//! during `--warmup` are not recorded.
//!
//! | module     | holds |
//! | ---------- | ----- |
//! | `cli`      | [`cli::BenchArgs`], [`cli::run`], argument validation |
//! | `api`      | [`Api`]: OpenAI or Anthropic, the generated body |
//! | `prompt`   | [`PromptTokens`]: prompt-length distributions, word prompts |
//! | `request`  | one request for either loop: build, read, classify |
//! | `worker`   | one closed-loop worker's connection and request loop |
//! | `schedule` | open-loop due times, fixed or Poisson |
//! | `open`     | the open loop: scheduler, in-flight bound, pooled client |
//! | `sse`      | the SSE scanner: chunks, content events, end, errors, usage |
//! | `stats`    | error kinds, the HDR histograms, percentiles |
//! | `progress` | the progress line on stderr |
//! | `report`   | [`Report`]: table, Markdown and JSON output |
//! | `plan`     | capacity planning from a run or from JSON reports |

mod api;
pub mod cli;
mod open;
pub mod plan;
mod progress;
mod prompt;
mod report;
mod request;
mod schedule;
mod sse;
mod stats;
mod worker;

pub use api::Api;
pub use prompt::PromptTokens;
pub use report::{Mode, Report, TokenSource};
pub use schedule::Arrival;
pub use stats::Percentiles;
