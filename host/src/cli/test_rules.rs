//! `tocsin test rules`: promtool-compatible rule unit tests.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use regex::Regex;
use tocsin_engine::rules::{TestFileReport, UnitTestOptions, run_test_file};

use super::FsFiles;

pub struct Args {
    pub files: Vec<String>,
    pub run: Vec<String>,
    pub ignore_unknown_fields: bool,
    pub junit: Option<String>,
}

/// Runs every file, prints promtool's report, and exits 0 (all passed) or 1.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let run = if args.run.is_empty() {
        None
    } else {
        let joined = args.run.join("|");
        Some(Regex::new(&joined).with_context(|| format!("invalid --run pattern {joined:?}"))?)
    };
    let opts = UnitTestOptions { run, ignore_unknown_fields: args.ignore_unknown_fields };
    let files = FsFiles::default();
    let mut reports = Vec::new();
    let mut failed = false;
    for f in &args.files {
        println!("Unit Testing:  {f}");
        let report = run_test_file(f, &files, &opts);
        for w in &report.warnings {
            eprintln!("  WARNING: {w}");
        }
        if report.passed() {
            println!("  SUCCESS");
        } else {
            failed = true;
            eprintln!("  FAILED:");
            for e in report.all_failures() {
                eprintln!("{e}");
                println!();
            }
        }
        println!();
        reports.push(report);
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit_xml(&reports))
            .with_context(|| format!("writing JUnit XML to {path}"))?;
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML with one suite per file and one case per test group.
fn junit_xml(reports: &[TestFileReport]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for r in reports {
        let failures = r.groups.iter().filter(|g| !g.failures.is_empty()).count();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
            xml_escape(&r.file),
            r.groups.len(),
            failures,
            r.errors.len()
        );
        for e in &r.errors {
            let _ = writeln!(x, "    <error message=\"{}\"></error>", xml_escape(e));
        }
        for g in &r.groups {
            let _ = write!(x, "    <testcase name=\"{}\">", xml_escape(&g.name));
            for f in &g.failures {
                let _ = write!(x, "\n      <failure>{}</failure>", xml_escape(f));
            }
            if !g.failures.is_empty() {
                x.push_str("\n    ");
            }
            x.push_str("</testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}
