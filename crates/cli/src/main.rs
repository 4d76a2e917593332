//! `g2w`: registers people for GoTo Webinar events and takes the OAuth pain out of it.
//!
//! Exit codes: 0 ok, 1 error, 2 usage (from clap).

mod cmd;
mod signal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Registers people for GoTo Webinar events, with OAuth that looks after itself.
#[derive(Debug, Parser)]
#[command(name = "g2w", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the built-in GoTo emulator (OAuth server and Webinar v2 API) on its own.
    Emulator(cmd::emulator::Args),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("G2W_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Emulator(args) => cmd::emulator::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
