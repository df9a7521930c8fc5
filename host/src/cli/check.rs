//! `tocsin check rules` and `tocsin check config`: validate rule files and
//! config files as `promtool check rules` / `promtool check config` do.

use std::path::Path;
use std::process::ExitCode;

use tocsin_engine::rules::{ParseOptions, parse_rule_file};

use crate::config;

/// Checks each file; prints a summary or every error with file:line:col.
/// Exit 1 when any file has errors.
pub fn rules(files: &[String], ignore_unknown_fields: bool) -> ExitCode {
    let opts = ParseOptions { ignore_unknown_fields };
    let failed = files.iter().fold(false, |failed, f| !rule_file(f, opts) | failed);
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Checks one rule file; false when it has errors.
fn rule_file(f: &str, opts: ParseOptions) -> bool {
    println!("Checking {f}");
    let text = match std::fs::read_to_string(f) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("  FAILED:\n{f}: {e}\n");
            return false;
        }
    };
    match parse_rule_file(f, &text, opts) {
        Ok(rf) => {
            let n: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
            println!("  SUCCESS: {n} rules found\n");
            true
        }
        Err(errs) => {
            eprintln!("  FAILED:");
            for e in errs {
                eprintln!("{e}");
            }
            eprintln!();
            false
        }
    }
}

/// Checks config files and the rule files they name. Warnings (keys tocsin
/// accepts but ignores, patterns matching nothing) go to stderr and do not
/// fail the check; errors do.
pub fn config(files: &[String]) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Checking {f}");
        let path = Path::new(f);
        let cfg = match config::load(path) {
            Ok((cfg, warnings)) => {
                for w in warnings {
                    eprintln!("  WARNING: {w}");
                }
                cfg
            }
            Err(errs) => {
                failed = true;
                eprintln!("  FAILED:");
                for e in errs {
                    eprintln!("{e}");
                }
                eprintln!();
                continue;
            }
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut rule_files = Vec::new();
        for pattern in &cfg.rule_files {
            match config::resolve_rule_pattern(pattern, dir) {
                Ok(found) if found.is_empty() => {
                    eprintln!("  WARNING: file {pattern:?} for rule_files does not exist");
                }
                Ok(found) => {
                    for p in found {
                        if !rule_files.contains(&p) {
                            rule_files.push(p);
                        }
                    }
                }
                Err(e) => {
                    failed = true;
                    eprintln!("  FAILED:\n{e}\n");
                }
            }
        }
        println!("  SUCCESS: {} rule files found", rule_files.len());
        println!(" SUCCESS: {f} is valid tocsin config file syntax\n");
        for rf in &rule_files {
            failed |= !rule_file(&rf.display().to_string(), ParseOptions::default());
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
