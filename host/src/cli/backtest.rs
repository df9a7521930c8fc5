//! `tocsin backtest`: rule files over a data file, printing the alert
//! timeline and the notifications Alertmanager would have received. The
//! evaluation is the engine's `rules::backtest`, the same call the browser
//! playground makes.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tocsin_engine::duration::{format_rfc3339, parse_duration};
use tocsin_engine::labels::Labels;
use tocsin_engine::promql::Engine;
use tocsin_engine::rules::backtest::{
    BacktestOptions, BacktestResult, backtest, evaluation_count, head_options, to_json, value_text,
};
use tocsin_engine::rules::group::DEFAULT_RESEND_DELAY_MS;
use tocsin_engine::rules::unittest::parse_time;
use tocsin_engine::storage::Head;

pub struct Args {
    pub rules: Vec<String>,
    pub data: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub step: Option<String>,
    pub json: bool,
    pub external_labels: Vec<String>,
}

/// Refuse runs that would take hours rather than let them look hung.
const MAX_EVALUATIONS: u64 = 10_000_000;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let head = Head::new(head_options());
    load_data(&args.data, &head)?;
    let stats = head.stats();
    let (Some(data_min), Some(data_max)) = (stats.min_time, stats.max_time) else {
        bail!("{}: no samples found in the data file", args.data);
    };
    let from = match &args.from {
        Some(s) => parse_time(s).map_err(anyhow::Error::msg).context("--from")?,
        None => data_min,
    };
    let to = match &args.to {
        Some(s) => parse_time(s).map_err(anyhow::Error::msg).context("--to")?,
        None => data_max,
    };
    let step_ms = match &args.step {
        Some(s) => {
            let d = parse_duration(s).map_err(anyhow::Error::msg).context("--step")?;
            if d <= 0 {
                bail!("--step must be greater than zero");
            }
            Some(d)
        }
        None => None,
    };
    let mut ext = Vec::new();
    for kv in &args.external_labels {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--external-label {kv:?}: expected NAME=VALUE"))?;
        ext.push((k.to_owned(), v.to_owned()));
    }

    let mut files = Vec::new();
    for f in &args.rules {
        files
            .push((f.clone(), std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?));
    }
    let mut groups = match crate::backtest::parse_groups(&files, 60_000) {
        Ok(groups) => groups,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let opts = BacktestOptions {
        from_ms: from,
        to_ms: to,
        step_ms,
        external_labels: Labels::from_pairs(&ext),
        external_url: String::new(),
        resend_delay_ms: DEFAULT_RESEND_DELAY_MS,
        capture_alert_values: false,
    };
    crate::backtest::check(&groups, &opts, MAX_EVALUATIONS).map_err(anyhow::Error::msg)?;
    let total = evaluation_count(&groups, &opts);
    let show_progress = std::io::stderr().is_terminal() && total >= 2000;
    let mut last_pct = 0;
    let runtime = super::OfflineRuntime::default();
    let result = backtest(
        &mut groups,
        &head,
        &Engine::default(),
        &opts,
        Some(&runtime),
        &mut |done, total| {
            if show_progress {
                let pct = done * 100 / total.max(1);
                if pct >= last_pct + 5 {
                    last_pct = pct;
                    eprint!("\rbacktest: {pct:3}% ({done}/{total} evaluations)");
                    if done == total {
                        eprintln!();
                    }
                }
            }
            std::ops::ControlFlow::Continue(())
        },
    );
    if args.json {
        // The engine writes compact JSON (the playground's format too);
        // people reading a terminal get it indented.
        let doc: serde_json::Value =
            serde_json::from_str(&to_json(&result)).context("re-reading the engine's JSON")?;
        println!("{}", serde_json::to_string_pretty(&doc).context("encoding JSON")?);
    } else {
        print!("{}", to_table(&result));
    }
    Ok(ExitCode::SUCCESS)
}

fn load_data(path: &str, head: &Head) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    tocsin_engine::rules::backtest::load_data(head, path, &bytes).map_err(anyhow::Error::msg)
}

fn labels_text(l: &Labels) -> String {
    l.to_string()
}

fn to_table(r: &BacktestResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Alert timeline ({} evaluations):", r.evaluations);
    if r.transitions.is_empty() {
        out.push_str("  (no alert changed state)\n");
    } else {
        let _ =
            writeln!(out, "  {:<24} {:<9} {:<10} {:<12} ALERT", "TIME", "STATE", "FROM", "VALUE");
        for t in &r.transitions {
            let _ = writeln!(
                out,
                "  {:<24} {:<9} {:<10} {:<12} {}",
                format_rfc3339(t.t),
                t.to.as_str(),
                t.from.map_or("-", |s| s.as_str()),
                value_text(t.value),
                labels_text(&t.labels)
            );
        }
    }
    let _ = writeln!(out, "\nNotifications to Alertmanager ({}):", r.notifications.len());
    if r.notifications.is_empty() {
        out.push_str("  (none)\n");
    }
    for n in &r.notifications {
        for a in &n.alerts {
            let _ = writeln!(
                out,
                "  {:<24} {:<8} startsAt={} endsAt={} {}",
                format_rfc3339(n.t),
                if a.resolved { "resolved" } else { "firing" },
                format_rfc3339(a.starts_at),
                format_rfc3339(a.ends_at),
                labels_text(&a.labels)
            );
        }
    }
    if !r.errors.is_empty() {
        let _ = writeln!(out, "\nRule errors ({}):", r.errors.len());
        for e in &r.errors {
            let _ =
                writeln!(out, "  {:<24} {}/{}: {}", format_rfc3339(e.t), e.group, e.rule, e.error);
        }
    }
    out
}
