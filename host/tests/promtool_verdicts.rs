//! `tocsin test rules` gives the verdict promtool gives on Prometheus's own
//! promtool test files (`../shared/promtool-tests`, verdicts in its README).
//!
//! Ratchet: cases listed in `promtool_verdicts_known_failures.txt` may still
//! give the wrong verdict; any other wrong verdict fails the test. A listed
//! case that now passes is reported so the list can shrink.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (file, flags, expected exit code), from the suite's README.
const CASES: &[(&str, &[&str], i32)] = &[
    ("unittest.yml", &[], 0),
    ("long-period.yml", &[], 0),
    ("no-test-group-interval.yml", &[], 0),
    ("start-time-test.yml", &[], 0),
    ("at-modifier-test.yml", &[], 0),
    ("negative-offset-test.yml", &[], 0),
    ("bad-input-series.yml", &[], 1),
    ("bad-promql.yml", &[], 1),
    ("bad-rules-syntax-test.yml", &[], 1),
    ("bad-rules-error-test.yml", &[], 1),
    ("failing.yml", &[], 1),
    ("rules_run.yml", &[], 1),
    ("rules_run.yml", &["--run", "correct", "--run", "wrong"], 1),
    ("rules_run.yml", &["--run", "correct"], 0),
    ("rules_run.yml", &["--run", "wrong"], 1),
    ("rules_run_extrafields.yml", &["--ignore-unknown-fields"], 0),
    ("rules_run_no_fuzzy.yml", &[], 1),
    ("rules_run_fuzzy.yml", &["--run", "correct"], 0),
    ("rules_run_fuzzy.yml", &["--run", "wrong"], 1),
];

fn suite_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for ancestor in manifest.ancestors() {
        let d = ancestor.join("shared/promtool-tests");
        if d.is_dir() {
            return d;
        }
    }
    panic!("shared/promtool-tests not found above {}", manifest.display());
}

fn case_name(file: &str, flags: &[&str]) -> String {
    if flags.is_empty() { file.to_owned() } else { format!("{file} {}", flags.join(" ")) }
}

#[test]
fn promtool_suite_verdicts() {
    let dir = suite_dir();
    let known_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool_verdicts_known_failures.txt");
    let known_text = std::fs::read_to_string(&known_path).unwrap_or_default();
    let known: Vec<&str> = known_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut regressions = Vec::new();
    let mut fixed = Vec::new();
    for (file, flags, want) in CASES {
        let out = Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .current_dir(&dir)
            .args(["test", "rules"])
            .args(*flags)
            .arg(file)
            .output()
            .expect("run tocsin");
        let got = out.status.code().unwrap_or(-1);
        let name = case_name(file, flags);
        let is_known = known.contains(&name.as_str());
        if got != *want && !is_known {
            regressions.push(format!(
                "{name}: exit {got}, want {want}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if got == *want && is_known {
            fixed.push(name);
        }
    }
    if !fixed.is_empty() {
        eprintln!("now passing, remove from {}: {fixed:?}", known_path.display());
    }
    assert!(regressions.is_empty(), "wrong verdicts:\n{}", regressions.join("\n"));
}

#[test]
fn failures_are_reported_like_promtool() {
    let out = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .current_dir(suite_dir())
        .args(["test", "rules", "failing.yml"])
        .output()
        .expect("run tocsin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("  FAILED:"), "{stderr}");
    assert!(
        stderr.contains(
            "    expr: \"test\", time: 0s,\n        exp: {__name__=\"test\"} 1E+00\n        got: {__name__=\"test\"} 0E+00"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("    name: Failing alert test,\n    alertname: InstanceDown, time: 5m, \n        exp:[], \n        got:["), "{stderr}");
}

#[test]
fn junit_output_is_written() {
    let dir = std::env::temp_dir().join(format!("tocsin-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("out.xml");
    let status = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .current_dir(suite_dir())
        .args(["test", "rules", "--junit"])
        .arg(&junit)
        .arg("rules_run.yml")
        .output()
        .expect("run tocsin")
        .status;
    assert_eq!(status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"rules_run.yml\" tests=\"2\" failures=\"1\""), "{xml}");
    assert!(xml.contains("<testcase name=\"correct test\"></testcase>"), "{xml}");
    assert!(xml.contains("<failure>"), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}
