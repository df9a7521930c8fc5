//! `tocsin`: the tocsin service and command-line tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tocsin: an alert-rule and metrics engine. Evaluates Prometheus rule files and
/// rules written in Rust (compiled to WebAssembly) and sends alerts to
/// Alertmanager.
#[derive(Parser)]
#[command(name = "tocsin", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default when no command is given).
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            eprintln!("tocsin serve: the service is not built yet in this version");
            ExitCode::from(2)
        }
    }
}
