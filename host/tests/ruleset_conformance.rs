//! The real-world rule sets in `tests/conformance/rulesets/` (promtool-format
//! unit tests written to pass in promtool too): every file must pass in
//! `tocsin test rules`. When promtool is installed, each is also run through
//! it and the verdicts must agree.

use std::path::Path;
use std::process::Command;

#[test]
fn every_ruleset_passes_and_agrees_with_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/rulesets");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("rulesets directory")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".test.yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "expected the rule-set suite, found {files:?}");
    let promtool =
        Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    let mut failures = Vec::new();
    for f in &files {
        let out = Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .current_dir(&dir)
            .args(["test", "rules", f])
            .output()
            .expect("run tocsin");
        if !out.status.success() {
            failures.push(format!("{f}: tocsin failed:\n{}", String::from_utf8_lossy(&out.stderr)));
        }
        if promtool {
            let p = Command::new("promtool")
                .current_dir(&dir)
                .args(["test", "rules", f])
                .output()
                .expect("run promtool");
            if p.status.success() != out.status.success() {
                failures.push(format!(
                    "{f}: promtool exit {:?}, tocsin exit {:?}",
                    p.status.code(),
                    out.status.code()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
