//! `tocsin`: the tocsin service and command-line tool. This file only turns
//! flags into calls; everything else is the `tocsin_host` library.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tocsin_host::{api, cli, server};

/// mimalloc rather than glibc's malloc: the head holds a small buffer per
/// series that grows sample by sample, and mimalloc's per-size pages keep
/// those together and reuse freed memory without going back to the kernel.
/// Measured here: scrape ingest (`cargo bench -p tocsin-engine --bench
/// exposition`, which uses it too) 10-30 % faster with far fewer page
/// faults; remote-write ingest (`serve_vs_prometheus`) 25-45 % faster, for
/// 2-4 % more resident memory per series (695-709 against 679 bytes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the service (the default when no command is given): scrape targets,
    /// accept remote write and imports, evaluate rules, send alerts to
    /// Alertmanager and serve Prometheus's HTTP API.
    Serve(ServeArgs),
    /// Unit-test rules (a drop-in for `promtool test rules`).
    #[command(subcommand)]
    Test(TestCommand),
    /// Validate rule files or a configuration file.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Evaluate rule files over a data file and print the alert timeline: every
    /// state change (pending, firing, resolved) and every notification
    /// Alertmanager would have received.
    Backtest(BacktestArgs),
    /// The browser playground as static files, for hosting without tocsin
    /// (`tocsin serve` already serves it at `/`).
    #[command(subcommand)]
    Playground(PlaygroundCommand),
    /// Write rules in Rust: scaffold a rule crate, build it to a checked .wasm.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Manage the rule modules of a running `tocsin serve`.
    #[command(subcommand)]
    Module(ModuleCommand),
}

#[derive(Args)]
struct RemoteArgs {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:9099", global = true)]
    url: String,
    /// Bearer token for write endpoints (or set TOCSIN_TOKEN).
    #[arg(long, global = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum PlaygroundCommand {
    /// Write the page, its scripts and the engine bundle into DIR. Serve DIR
    /// with any static web server (browsers refuse module workers from
    /// file:// URLs).
    Export {
        /// Directory to write into (created if missing).
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum ModuleCommand {
    /// Upload a .wasm module under NAME (replacing a module of that name).
    /// The service checks it and answers with every problem it finds.
    Upload {
        file: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List the uploaded modules.
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Delete a module (rules using it then fail with an error saying so).
    Delete {
        name: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Subcommand)]
enum RuleCommand {
    /// Create a rule crate NAME (in ./NAME, or --dir) with an example rule
    /// and a native test.
    New {
        name: String,
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Build the rule crate in DIR (default: .) for wasm32-unknown-unknown
    /// and check the module as an upload would.
    Build {
        #[arg(default_value = ".")]
        dir: std::path::PathBuf,
    },
}

#[derive(Args, Default)]
struct ServeArgs {
    /// Configuration file: any prometheus.yml works, plus tocsin's own keys
    /// (auth, limits, storage, modules). Without it, an embedded default
    /// scrapes tocsin itself and evaluates example rules.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Address to listen on. Loopback by default: to expose tocsin, set an
    /// auth bearer_token in the config and listen on 0.0.0.0:PORT.
    #[arg(long, value_name = "ADDR", default_value = server::DEFAULT_LISTEN)]
    listen: Option<std::net::SocketAddr>,
    /// Where samples (write-ahead log and checkpoints) and state are kept.
    #[arg(long, value_name = "DIR", default_value = "data")]
    data_dir: Option<std::path::PathBuf>,
    /// The URL users reach tocsin at, for alert links (generatorURL).
    /// Default: http://LISTEN.
    #[arg(long, value_name = "URL")]
    external_url: Option<String>,
}

#[derive(Args)]
struct BacktestArgs {
    /// Rule file(s) in Prometheus's format. May be given several times.
    #[arg(long, required = true, value_name = "FILE")]
    rules: Vec<String>,
    /// Data: exposition text with timestamps (`metric{l="v"} 1 1700000000000`,
    /// ms), or YAML with promtool's `interval` and `input_series` (a promtool
    /// test file works: its first test group is used).
    #[arg(long, value_name = "FILE")]
    data: String,
    /// Start: RFC 3339 or Unix seconds. Default: the first sample's time.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End (inclusive): RFC 3339 or Unix seconds. Default: the last sample's time.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Evaluate every group at this step (e.g. 30s). Default: each group's own
    /// interval (1m when it sets none).
    #[arg(long, value_name = "DURATION")]
    step: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// An external label NAME=VALUE added to notifications, as in
    /// prometheus.yml's global.external_labels. May be repeated.
    #[arg(long = "external-label", value_name = "NAME=VALUE")]
    external_labels: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Json,
}

#[derive(Subcommand)]
enum TestCommand {
    /// Run rule unit-test files in promtool's format. Exit code 0 when every
    /// test passes, 1 when any fails.
    Rules(TestRulesArgs),
}

#[derive(Args)]
struct TestRulesArgs {
    /// Unit-test files (YAML with rule_files, input_series, alert_rule_test,
    /// promql_expr_test).
    #[arg(required = true)]
    files: Vec<String>,
    /// Only run test groups whose name matches this regular expression. May be
    /// given several times.
    #[arg(long, value_name = "REGEX")]
    run: Vec<String>,
    /// Ignore unknown fields in the rule files (for rule files that carry extra
    /// metadata). The test files themselves stay strict.
    #[arg(long)]
    ignore_unknown_fields: bool,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<String>,
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Check rule files for errors: YAML, unknown fields, PromQL, templates,
    /// names, durations. Every error is reported with file:line:column.
    Rules {
        #[arg(required = true)]
        files: Vec<String>,
        /// Ignore unknown fields in the rule files.
        #[arg(long)]
        ignore_unknown_fields: bool,
    },
    /// Check configuration files (a superset of prometheus.yml) and the rule
    /// files they name. Keys Prometheus knows but tocsin ignores are warnings;
    /// anything else unknown is an error.
    Config {
        #[arg(required = true)]
        files: Vec<String>,
    },
}

fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOCSIN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = server::ServeOptions {
        config: a.config,
        listen: a.listen.unwrap_or_else(|| server::DEFAULT_LISTEN.parse().expect("valid default")),
        data_dir: a.data_dir.unwrap_or_else(|| "data".into()),
        external_url: a.external_url,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(server::run(opts))?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(a) => serve(a),
        Command::Test(TestCommand::Rules(a)) => cli::test_rules::run(cli::test_rules::Args {
            files: a.files,
            run: a.run,
            ignore_unknown_fields: a.ignore_unknown_fields,
            junit: a.junit,
        }),
        Command::Backtest(a) => cli::backtest::run(cli::backtest::Args {
            rules: a.rules,
            data: a.data,
            from: a.from,
            to: a.to,
            step: a.step,
            json: matches!(a.output, OutputFormat::Json),
            external_labels: a.external_labels,
        }),
        Command::Playground(PlaygroundCommand::Export { dir }) => {
            anyhow::Context::with_context(api::playground::export(&dir), || {
                format!("writing the playground to {}", dir.display())
            })
            .map(|files| {
                println!("wrote {} files to {}", files.len(), dir.display());
                ExitCode::SUCCESS
            })
        }
        Command::Check(CheckCommand::Rules { files, ignore_unknown_fields }) => {
            Ok(cli::check::rules(&files, ignore_unknown_fields))
        }
        Command::Check(CheckCommand::Config { files }) => Ok(cli::check::config(&files)),
        Command::Rule(RuleCommand::New { name, dir }) => cli::rule::new(&name, dir.as_deref()),
        Command::Rule(RuleCommand::Build { dir }) => cli::rule::build(&dir),
        Command::Module(cmd) => {
            let remote = |r: RemoteArgs| cli::module::Remote { url: r.url, token: r.token };
            match cmd {
                ModuleCommand::Upload { file, name, description, remote: r } => {
                    cli::module::upload(&remote(r), &file, &name, &description)
                }
                ModuleCommand::List { remote: r } => cli::module::list(&remote(r)),
                ModuleCommand::Delete { name, remote: r } => cli::module::delete(&remote(r), &name),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
