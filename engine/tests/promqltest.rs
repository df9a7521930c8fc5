//! Conformance runner for Prometheus's own PromQL test scripts
//! (`../shared/promqltest/*.test`, format in its FORMAT.md).
//!
//! `cargo test -p tocsin-engine --test promqltest [-- -v] [FILE-FILTER...]`
//!
//! Prints one line per file with passed/failed/skipped counts, every skip
//! reason with its count, the separate step-invariance counts, and totals.
//! The run fails when a case fails that `promqltest/known_failures.txt` does
//! not list; listed cases that now pass are reported for removal.
//!
//! Environment: `TOCSIN_PROMQLTEST_VERBOSE=1` (same as `-v`: print every
//! failure with expected and actual results), `TOCSIN_PROMQLTEST_UPDATE=1`
//! (rewrite the known-failures list), `TOCSIN_PROMQLTEST_DIR` (scripts
//! directory), `TOCSIN_PROMQLTEST_TIMEOUT_SECS` (per query, default 10),
//! `TOCSIN_PROMQLTEST_STEP_INVARIANCE=0` (skip the step-invariance check).
//!
//! This is a `harness = false` target: the runner's own unit tests run first,
//! on every run, so a broken comparison cannot turn the report green.

#[path = "promqltest/compare.rs"]
mod compare;
#[path = "promqltest/query_ast.rs"]
mod query_ast;
#[path = "promqltest/ratchet.rs"]
mod ratchet;
#[path = "promqltest/run.rs"]
mod run;
#[path = "promqltest/sandbox.rs"]
mod sandbox;
#[path = "promqltest/script.rs"]
mod script;
#[path = "promqltest/selftest.rs"]
mod selftest;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tocsin_engine::promql::{Engine, EngineOptions};

use ratchet::CaseId;
use run::{CaseReport, Invariance, Runner, SkipReason, Status};

struct Options {
    verbose: bool,
    update: bool,
    /// Run only files whose name contains one of these (libtest-style filters).
    filters: Vec<String>,
    /// Skip files whose name contains one of these (`--skip`).
    skips: Vec<String>,
    timeout: Duration,
    step_invariance: bool,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn options() -> Result<Option<Options>, String> {
    let mut o = Options {
        verbose: env_flag("TOCSIN_PROMQLTEST_VERBOSE"),
        update: env_flag("TOCSIN_PROMQLTEST_UPDATE"),
        filters: Vec::new(),
        skips: Vec::new(),
        timeout: Duration::from_secs(10),
        step_invariance: std::env::var("TOCSIN_PROMQLTEST_STEP_INVARIANCE")
            .map_or(true, |v| v != "0"),
    };
    if let Ok(v) = std::env::var("TOCSIN_PROMQLTEST_TIMEOUT_SECS") {
        let secs: f64 = v
            .parse()
            .map_err(|_| format!("TOCSIN_PROMQLTEST_TIMEOUT_SECS={v:?} is not a number"))?;
        o.timeout = Duration::try_from_secs_f64(secs)
            .map_err(|e| format!("TOCSIN_PROMQLTEST_TIMEOUT_SECS: {e}"))?;
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-v" | "--verbose" => o.verbose = true,
            // `cargo test -- --list` asks test binaries what they contain.
            "--list" => {
                println!("promqltest: conformance run over Prometheus's PromQL test scripts");
                return Ok(None);
            }
            "--skip" => o.skips.extend(args.next()),
            // libtest flags that `cargo test -- …` hands every target: ignored,
            // with their values.
            "--test-threads" | "--color" | "--format" | "--logfile" | "--shuffle-seed" | "-Z" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => o.filters.push(a.to_owned()),
        }
    }
    Ok(Some(o))
}

/// `../../shared/promqltest` from the crate, as in the main checkout; from a
/// git worktree elsewhere, the nearest ancestor's `shared/promqltest`.
fn scripts_dir() -> Result<PathBuf, String> {
    if let Ok(d) = std::env::var("TOCSIN_PROMQLTEST_DIR") {
        let d = PathBuf::from(d);
        return if d.is_dir() {
            Ok(d)
        } else {
            Err(format!("TOCSIN_PROMQLTEST_DIR={} is not a directory", d.display()))
        };
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let primary = manifest.join("../../shared/promqltest");
    if primary.is_dir() {
        return Ok(primary);
    }
    for ancestor in manifest.ancestors() {
        let d = ancestor.join("shared/promqltest");
        if d.is_dir() {
            return Ok(d);
        }
    }
    Err(format!(
        "PromQL test scripts not found: expected {} (or shared/promqltest in a parent directory of {}); set TOCSIN_PROMQLTEST_DIR to use another directory",
        primary.display(),
        manifest.display()
    ))
}

fn known_failures_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promqltest/known_failures.txt")
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: BTreeMap<SkipReason, usize>,
    inv_passed: usize,
    inv_failed: usize,
}

impl Counts {
    fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }

    fn add(&mut self, other: &Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.inv_passed += other.inv_passed;
        self.inv_failed += other.inv_failed;
        for (r, n) in &other.skipped {
            *self.skipped.entry(r.clone()).or_default() += n;
        }
    }
}

fn main() -> ExitCode {
    let code = real_main();
    // Exit explicitly: an engine thread that never returned must not keep
    // the process alive.
    std::process::exit(i32::from(code != ExitCode::SUCCESS));
}

fn real_main() -> ExitCode {
    let opts = match options() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("promqltest: {e}");
            return ExitCode::FAILURE;
        }
    };
    sandbox::install_panic_hook();
    let started = Instant::now();

    let self_failures = selftest::run();
    if !self_failures.is_empty() {
        eprintln!(
            "promqltest: the runner's own checks failed, so its report could not be trusted:"
        );
        for (name, why) in &self_failures {
            eprintln!("  {name}: {why}");
        }
        return ExitCode::FAILURE;
    }
    println!("runner self-checks: {} passed", selftest::COUNT);

    let dir = match scripts_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("promqltest: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "test"))
            .filter(|p| {
                let name =
                    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                (opts.filters.is_empty() || opts.filters.iter().any(|f| name.contains(f.as_str())))
                    && !opts.skips.iter().any(|f| name.contains(f.as_str()))
            })
            .collect(),
        Err(e) => {
            eprintln!("promqltest: cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    files.sort();
    if files.is_empty() {
        // Like libtest: a filter meant for other targets selects nothing here.
        println!("promqltest: no .test files in {} match the filters", dir.display());
        return ExitCode::SUCCESS;
    }
    println!("scripts: {}", dir.display());

    // The options of Prometheus's own test engine: 5m lookback, 1m default
    // subquery step, delayed name removal on.
    let engine = Engine::new(EngineOptions {
        lookback_delta_ms: 5 * 60 * 1000,
        default_subquery_step_ms: 60 * 1000,
        delayed_name_removal: true,
        ..EngineOptions::default()
    });
    let mut runner = Runner::new(Arc::new(engine), opts.timeout);
    runner.step_invariance = opts.step_invariance;
    let mut totals = Counts::default();
    let mut broken_files = Vec::new();
    let mut ran_files = BTreeSet::new();
    let mut failing: BTreeMap<CaseId, String> = BTreeMap::new();
    let mut passing: BTreeSet<CaseId> = BTreeSet::new();

    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                println!("{name}: cannot read: {e}");
                broken_files.push(name);
                continue;
            }
        };
        let script = match script::parse(&text) {
            Ok(s) => s,
            Err(e) => {
                // Prometheus fails a file that does not parse; so do we, loudly.
                println!("{name}: PARSE ERROR {e}");
                broken_files.push(name);
                continue;
            }
        };
        let reports = runner.run_script(&script, run::experimental_feature(&name));
        ran_files.insert(name.clone());
        let counts = tally(&name, &reports, &mut failing, &mut passing);
        print_file(&name, &counts);
        if opts.verbose {
            print_failures(&name, &reports);
        }
        totals.add(&counts);
    }

    println!();

    let list_path = known_failures_path();
    let list = match ratchet::read(&list_path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("promqltest: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = broken_files.is_empty();
    if !broken_files.is_empty() {
        println!(
            "FAILED: {} file(s) could not be run: {}",
            broken_files.len(),
            broken_files.join(", ")
        );
    }
    if opts.update {
        let new_list = ratchet::updated(&list, &ran_files, &failing);
        if let Err(e) = std::fs::write(&list_path, ratchet::render(&new_list)) {
            eprintln!("promqltest: cannot write {}: {e}", list_path.display());
            return ExitCode::FAILURE;
        }
        println!("updated {} ({} known failures)", list_path.display(), new_list.len());
    } else {
        let failing_ids: BTreeSet<CaseId> = failing.keys().cloned().collect();
        let v = ratchet::judge(&list, &ran_files, &failing_ids, &passing);
        println!(
            "known failures: {} still failing, {} fixed, {} new",
            v.still_failing,
            v.fixed.len(),
            v.regressions.len()
        );
        for id in &v.fixed {
            println!("  fixed, remove from known_failures.txt: {id}");
        }
        for id in &v.stale {
            println!("  listed but not failing in this run (skipped or absent), remove: {id}");
        }
        if !v.regressions.is_empty() {
            ok = false;
            println!(
                "FAILED: {} case(s) fail that known_failures.txt does not list:",
                v.regressions.len()
            );
            for id in &v.regressions {
                println!("  {id}  # {}", failing.get(id).map_or("", String::as_str));
            }
            println!(
                "(run with -v for details; TOCSIN_PROMQLTEST_UPDATE=1 accepts the current state)"
            );
        }
    }
    println!("finished in {:.1}s", started.elapsed().as_secs_f64());
    if totals.inv_passed + totals.inv_failed > 0 {
        println!("step invariance: {} passed, {} failed", totals.inv_passed, totals.inv_failed);
    }
    // The totals come last, so that `tail -1` is the headline.
    println!(
        "{} passed, {} failed, {} skipped",
        totals.passed,
        totals.failed,
        totals.skipped_total()
    );
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn tally(
    file: &str,
    reports: &[CaseReport],
    failing: &mut BTreeMap<CaseId, String>,
    passing: &mut BTreeSet<CaseId>,
) -> Counts {
    let mut c = Counts::default();
    for r in reports {
        let id = CaseId { file: file.to_owned(), line: r.line, step_invariance: false };
        match &r.status {
            Status::Pass => {
                c.passed += 1;
                passing.insert(id.clone());
            }
            Status::Fail(_) => {
                c.failed += 1;
                failing.insert(id.clone(), r.expr.clone());
            }
            Status::Skip(reason) => *c.skipped.entry(reason.clone()).or_default() += 1,
        }
        let inv = CaseId { step_invariance: true, ..id };
        match &r.invariance {
            Invariance::NotApplicable => {}
            Invariance::Pass => {
                c.inv_passed += 1;
                passing.insert(inv);
            }
            Invariance::Fail(_) => {
                c.inv_failed += 1;
                failing.insert(inv, r.expr.clone());
            }
        }
    }
    c
}

fn print_file(name: &str, c: &Counts) {
    println!("{name}: {} passed, {} failed, {} skipped", c.passed, c.failed, c.skipped_total());
    let mut reasons: Vec<(&SkipReason, &usize)> = c.skipped.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (reason, n) in reasons {
        println!("    {n} skipped: {reason}");
    }
    if c.inv_passed + c.inv_failed > 0 {
        println!("    step invariance: {} passed, {} failed", c.inv_passed, c.inv_failed);
    }
}

fn print_failures(file: &str, reports: &[CaseReport]) {
    for r in reports {
        let main = match &r.status {
            Status::Fail(why) => Some(why),
            _ => None,
        };
        let inv = match &r.invariance {
            Invariance::Fail(why) => Some(why),
            _ => None,
        };
        if main.is_none() && inv.is_none() {
            continue;
        }
        println!("  {file}:{}: {}", r.line, r.expr);
        if let Some(why) = main {
            println!("      failure: {why}");
            if r.expected_text.is_empty() {
                println!("      expected: (no result lines)");
            } else {
                println!("      expected:");
                for l in &r.expected_text {
                    println!("          {l}");
                }
            }
            if let Some(got) = &r.got {
                println!("      got:");
                for l in got.lines() {
                    println!("          {l}");
                }
            }
        }
        if let Some(why) = inv {
            println!("      step invariance failure: {why}");
        }
    }
}
