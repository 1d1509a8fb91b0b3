//! switchyard-bench: a closed-loop HTTP load generator for OpenAI-compatible
//! chat endpoints, behind `switchyard bench` and `bench/run.sh`.
//!
//! `--concurrency` workers each hold one HTTP/1.1 keep-alive connection and
//! keep exactly one request in flight: send, read the whole response (for
//! streams, scanning SSE frames for the first content), record, repeat. Each
//! worker records into its own sample vectors, merged once at the end, so the
//! hot path takes no lock. Requests started during `--warmup` are not recorded.
//!
//! | module   | holds |
//! | -------- | ----- |
//! | `cli`    | [`cli::BenchArgs`], [`cli::run`], argument validation |
//! | `worker` | one worker's connection and request loop |
//! | `sse`    | the SSE chunk counter / first-content detector |
//! | `stats`  | per-worker samples, their merge, percentile math |
//! | `report` | [`Report`]: JSON and table output |

pub mod cli;
mod report;
mod sse;
mod stats;
mod worker;

pub use report::Report;
pub use stats::Percentiles;
