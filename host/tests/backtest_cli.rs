//! `tocsin backtest` on the README's example prints the alert's life cycle.

use std::path::Path;
use std::process::Command;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/examples")
}

#[test]
fn readme_example_timeline() {
    let out = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .current_dir(examples())
        .args(["backtest", "--rules", "rules.yml", "--data", "data.yml", "--output", "json"])
        .output()
        .expect("run tocsin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let steps: Vec<(String, String)> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["time"].as_str().unwrap().to_owned(), t["to"].as_str().unwrap().to_owned()))
        .collect();
    let want = [
        ("1970-01-01T00:22:00Z", "pending"),
        ("1970-01-01T00:27:00Z", "firing"),
        ("1970-01-01T00:45:00Z", "resolved"),
    ];
    assert_eq!(steps, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let notes = v["notifications"].as_array().unwrap();
    assert_eq!(notes[0]["alerts"][0]["status"], "firing");
    assert_eq!(notes[0]["alerts"][0]["endsAt"], "1970-01-01T00:31:00Z");
    let last = &notes[notes.len() - 1]["alerts"][0];
    assert_eq!(last["status"], "resolved");
    assert_eq!(last["endsAt"], "1970-01-01T00:45:00Z");
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = std::env::temp_dir().join(format!("tocsin-bt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yml"),
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 'rate(x[5m]'\n",
    )
    .unwrap();
    std::fs::write(dir.join("data.prom"), "x{a=\"1\"} 1 1000\nx{a=\"1\" 2 2000\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tocsin")).current_dir(&dir).args(args).output().unwrap()
    };
    let out = run(&["backtest", "--rules", "bad.yml", "--data", "../no-such-file"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-file"));
    std::fs::write(dir.join("ok.prom"), "x 1 1000\n").unwrap();
    let out = run(&["backtest", "--rules", "bad.yml", "--data", "ok.prom"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("bad.yml:5:11: group \"g\", rule 1, \"A\": could not parse expression"),
        "{err}"
    );
    let out = run(&["backtest", "--rules", "../bad.yml", "--data", "data.prom"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data.prom:2:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn state_and_notification_tests_pass_and_fail_when_they_should() {
    let run = |file: &str| {
        Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .current_dir(examples())
            .args(["test", "rules", "--run", "states", file])
            .output()
            .expect("run tocsin")
    };
    let out = run("rules.test.yml");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // The same file with one expectation changed must fail and say why.
    let text = std::fs::read_to_string(examples().join("rules.test.yml")).unwrap();
    let broken = text.replacen("state: pending", "state: firing", 1);
    assert_ne!(text, broken);
    let path = examples().join(format!("broken-{}.test.yml", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let out = run(path.file_name().unwrap().to_str().unwrap());
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("alert_state_test: alertname: HighErrorRate, time: 24m"), "{err}");
    assert!(err.contains("got:\n            pending {alertname=\"HighErrorRate\""), "{err}");
}
