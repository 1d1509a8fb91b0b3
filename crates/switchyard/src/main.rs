//! `switchyard`: the one binary. Parses the command line and hands off;
//! the start-up order of `serve` is in [`serve`], reload in [`reload`].

mod admin;
mod listen;
mod reload;
mod serve;

use clap::{Parser, Subcommand};

/// Transparent huge pages off for this process. Where the kernel's THP
/// setting is `always`, the allocator's arenas get 2 MiB pages of which a
/// connection-heavy server touches little: holding 2,000 streams took 147
/// MiB of RSS with them and 90 MiB without, at no measurable CPU cost
/// (docs/adr/0005). Pages faulted in before this call keep theirs.
fn disable_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("switchyard: could not turn transparent huge pages off ({e}); memory use may be higher");
    }
}

/// mimalloc: the gateway allocates many small, short-lived buffers per
/// request; glibc's malloc cost ~20% of CPU in profiles (docs/adr/0005).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "switchyard", version, about = "An enterprise LLM gateway")]
struct Cli {
    /// Log format: `text` or `json` (one JSON object per line).
    #[arg(long, global = true, env = "SWITCHYARD_LOG_FORMAT", default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run simulated OpenAI-compatible upstreams.
    Sim(switchyard_sim::cli::SimArgs),
    /// Load-test an OpenAI- or Anthropic-compatible endpoint, closed or open loop, with a capacity plan.
    Bench(switchyard_bench::cli::BenchArgs),
    // The admin API's commands (tenants, plans, teams, users, keys,
    // audit, whoami) sit at the top level: see `admin`.
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config file and print every problem.
    Validate { file: PathBuf },
}

fn main() -> ExitCode {
    disable_huge_pages();
    let cli = Cli::parse();
    switchyard_telemetry::logging::init(cli.log_format == "json");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchyard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { config } => serve::run(config).await,
            Command::Config { command: ConfigCommand::Validate { file } } => validate(&file),
            Command::Sim(args) => match listen::bind(&args.listen).await {
                Ok(listener) => switchyard_sim::cli::run(args, listener).await,
                Err(e) => Err(e),
            },
            Command::Bench(args) => switchyard_bench::cli::run(args).await.map(|_| ()),
            Command::Admin(command) => admin::run(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // An empty message means the problem was already printed.
            if !message.is_empty() {
                eprintln!("switchyard: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn validate(file: &std::path::Path) -> Result<(), String> {
    // One problem per line, `FILE: PATH: MESSAGE` (docs/config.md).
    let config = switchyard_config::load_file(file).map_err(|e| {
        eprintln!("{e}");
        String::new()
    })?;
    serve::check_simulator(&config).map_err(|e| {
        eprintln!("{}: {e}", file.display());
        String::new()
    })?;
    serve::budget_zone(&config).map_err(|e| {
        eprintln!("{}: {e}", file.display());
        String::new()
    })?;
    println!(
        "ok: {} ({} providers, {} deployments, {} routes)",
        file.display(),
        config.providers.len(),
        config.deployments.len(),
        config.routes.len()
    );
    Ok(())
}
