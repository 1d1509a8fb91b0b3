//! `switchyard sim`: command-line arguments and the run loop.

use std::path::{Path, PathBuf};

use crate::{serve, Sim, SimConfig};

/// Arguments of `switchyard sim`.
#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: String,
    /// Knobs file (`SimConfig`): JSON if it ends in `.json`, YAML otherwise.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Default knobs: stream delay before the first chunk, ms.
    #[arg(long)]
    pub ttft_ms: Option<u64>,
    /// Default knobs: stream pacing (0 = as fast as possible).
    #[arg(long)]
    pub tokens_per_sec: Option<f64>,
    /// Default knobs: words per answer.
    #[arg(long)]
    pub answer_tokens: Option<u32>,
    /// Default knobs: non-stream delay before the answer, ms.
    #[arg(long)]
    pub latency_ms: Option<u64>,
}

impl SimArgs {
    /// The config file (if any) with the flag overrides applied, validated.
    pub fn config(&self) -> Result<SimConfig, String> {
        let mut config = match &self.config {
            Some(path) => load(path)?,
            None => SimConfig::default(),
        };
        let d = &mut config.default;
        if let Some(v) = self.ttft_ms {
            d.ttft_ms = v;
        }
        if let Some(v) = self.tokens_per_sec {
            d.tokens_per_sec = v;
        }
        if let Some(v) = self.answer_tokens {
            d.answer_tokens = v;
        }
        if let Some(v) = self.latency_ms {
            d.latency_ms = v;
        }
        config.validate().map_err(|e| match &self.config {
            Some(path) => format!("{}: {e}", path.display()),
            None => e,
        })?;
        Ok(config)
    }
}

/// Reads a `SimConfig` file: JSON if it ends in `.json`, YAML otherwise.
pub fn load(path: &Path) -> Result<SimConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> Result<SimConfig, String> {
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let parsed = if is_json {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}

/// Prints `switchyard-sim: listening on http://ADDR` and serves on
/// `listener` (bound by the caller to `args.listen`) until ctrl-c or SIGTERM.
pub async fn run(args: SimArgs, listener: tokio::net::TcpListener) -> Result<(), String> {
    let config = args.config()?;
    let addr = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    println!("switchyard-sim: listening on http://{addr}");
    serve(listener, Sim::new(config), stop_signal()).await.map_err(|e| format!("serving on {addr}: {e}"))
}

async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_configs_parse_and_flags_override() {
        let yaml = "default:\n  answer_tokens: 4\nmodels:\n  gpt-4o-mini:\n    ttft_ms: 50\n    fail_next: 2\n";
        let c = parse(Path::new("sim.yaml"), yaml).unwrap();
        assert_eq!(c.default.answer_tokens, 4);
        assert_eq!(c.models["gpt-4o-mini"].fail_next, 2);
        let json = r#"{"models":{"m":{"usage":false}}}"#;
        let c = parse(Path::new("sim.JSON"), json).unwrap();
        assert!(!c.models["m"].usage);
        let err = parse(Path::new("x.yaml"), "defaults: {}").unwrap_err();
        assert!(err.starts_with("x.yaml: "), "{err}");

        let args = SimArgs {
            listen: "127.0.0.1:0".into(),
            config: None,
            ttft_ms: Some(7),
            tokens_per_sec: Some(-1.0),
            answer_tokens: None,
            latency_ms: None,
        };
        assert!(args.config().unwrap_err().contains("default.tokens_per_sec"));
        let args = SimArgs { tokens_per_sec: Some(20.0), ..args };
        let c = args.config().unwrap();
        assert_eq!((c.default.ttft_ms, c.default.tokens_per_sec), (7, 20.0));
    }
}
