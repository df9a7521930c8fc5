//! `tocsin check rules`: validate rule files as `promtool check rules` does.

use std::process::ExitCode;

use tocsin_engine::rules::{ParseOptions, parse_rule_file};

/// Checks each file; prints a summary or every error with file:line:col.
/// Exit 1 when any file has errors.
pub fn rules(files: &[String], ignore_unknown_fields: bool) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Checking {f}");
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("  FAILED:\n{f}: {e}\n");
                failed = true;
                continue;
            }
        };
        match parse_rule_file(f, &text, ParseOptions { ignore_unknown_fields }) {
            Ok(rf) => {
                let n: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {n} rules found\n");
            }
            Err(errs) => {
                failed = true;
                eprintln!("  FAILED:");
                for e in errs {
                    eprintln!("{e}");
                }
                eprintln!();
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
