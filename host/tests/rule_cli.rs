//! `tocsin rule new` + `tocsin rule build`: the scaffold's own test passes
//! natively, and it builds to a valid module of at most 100 KiB.

use std::path::Path;
use std::process::Command;

#[test]
fn scaffold_tests_and_builds_a_small_valid_module() {
    let root = std::env::temp_dir().join(format!("tocsin-rule-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("low-up");
    let bin = env!("CARGO_BIN_EXE_tocsin");
    // One target directory for every run, so only the first one compiles the SDK.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rule-scaffold");
    let out =
        Command::new(bin).args(["rule", "new", "low-up", "--dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again =
        Command::new(bin).args(["rule", "new", "low-up", "--dir"]).arg(&dir).output().unwrap();
    assert!(!again.status.success(), "refuses to overwrite");

    let test = Command::new(env!("CARGO"))
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .args(["test", "--quiet"])
        .output()
        .unwrap();
    assert!(test.status.success(), "{}", String::from_utf8_lossy(&test.stderr));

    let build = Command::new(bin)
        .args(["rule", "build"])
        .arg(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&build.stdout);
    assert!(build.status.success(), "{stdout}{}", String::from_utf8_lossy(&build.stderr));
    assert!(stdout.contains("a valid tocsin rule module"), "{stdout}");
    let wasm = std::fs::read(target.join("wasm32-unknown-unknown/release/low_up.wasm")).unwrap();
    assert!(wasm.len() <= 100 * 1024, "{} bytes", wasm.len());
    let _ = std::fs::remove_dir_all(&root);
}
