//! `tocsin check config` on a real prometheus.yml, on a broken config and on
//! a config whose rule file is broken.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prometheus.yml")
}

fn check_config(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["check", "config"])
        .arg(path)
        .output()
        .expect("run tocsin")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tocsin-check-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn accepts_a_real_prometheus_config() {
    let out = check_config(&fixture());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("  SUCCESS: 1 rule files found\n"), "{stdout}");
    assert!(stdout.contains("rules.yml\n  SUCCESS: 2 rules found\n"), "{stdout}");
    assert!(
        stderr.contains(
            "prometheus.yml:80:5: dns_sd_configs is not supported by tocsin and is ignored"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("WARNING: file \"alerts/*.yml\" for rule_files does not exist"));
}

/// The fixture must stay a real Prometheus config: promtool agrees when it is
/// installed (skipped otherwise).
#[test]
fn promtool_accepts_the_fixture() {
    let Ok(out) = Command::new("promtool").args(["check", "config"]).arg(fixture()).output() else {
        eprintln!("promtool not installed; skipped");
        return;
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rejects_a_broken_config_with_positions() {
    let dir = temp_dir("broken");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_intervall: 15s\n").unwrap();
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:2:3: field scrape_intervall not found in global config (did you mean scrape_interval?)",
        cfg.display()
    );
    assert!(stderr.contains("  FAILED:") && stderr.contains(&want), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn checks_the_rule_files_it_names() {
    let dir = temp_dir("rules");
    std::fs::write(dir.join("prometheus.yml"), "rule_files: ['*.rules.yml']\n").unwrap();
    std::fs::write(
        dir.join("bad.rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up(\n",
    )
    .unwrap();
    let out = check_config(&dir.join("prometheus.yml"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("SUCCESS: 1 rule files found"), "{stdout}");
    assert!(stdout.contains(&format!("Checking {}", dir.join("bad.rules.yml").display())));
    assert!(stderr.contains("bad.rules.yml:5:15: "), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
