//! Shared helpers for tocsin's end-to-end tests (real processes on 127.0.0.1).
//!
//! Every process a test starts is owned by a [`Proc`], which kills it by pid
//! when dropped (also when the test panics), and every wait is bounded.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `tocsin` binary of this build: `cargo test --workspace` builds it next
/// to the test binaries (`target/<profile>/tocsin`).
pub fn tocsin_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("tocsin");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build -p tocsin-host`; `cargo test --workspace` does)",
        bin.display()
    );
    bin
}

/// A fresh directory under the system temp dir, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tocsin-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (by its pid) when dropped. Its output goes to a
/// log file, shown by [`Proc::log`] when a test needs to explain a failure.
pub struct Proc {
    child: Option<Child>,
    log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = File::create(&log).expect("create log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { child: Some(child), log, name: name.to_owned() }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit.
    pub fn terminate(&mut self, within: Duration) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let begin = Instant::now();
        while begin.elapsed() < within {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Panics with the log if the process already exited.
    pub fn assert_running(&mut self) {
        if let Some(c) = &mut self.child
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!("{} exited with {status}:\n{}", self.name, self.log());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let begin = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(begin.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `tocsin serve` on 127.0.0.1:`port` with `config` (the embedded
/// default when `None`), its data in `dir/data`, its output in
/// `dir/tocsin-<tag>.log`.
pub fn start_tocsin(dir: &Path, config: Option<&Path>, port: u16, tag: &str) -> Proc {
    let mut cmd = Command::new(tocsin_bin());
    cmd.arg("serve").arg("--listen").arg(format!("127.0.0.1:{port}"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("--data-dir").arg(dir.join("data"));
    Proc::spawn("tocsin", &mut cmd, dir.join(format!("tocsin-{tag}.log")))
}

/// Waits until `tocsin serve` on `port` answers `GET /-/ready` with 200,
/// failing if the process exits first. Blocking, for tests without tokio.
pub fn wait_ready_blocking(p: &mut Proc, port: u16) {
    use std::io::{Read, Write};
    let ready = || {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 12];
        s.read(&mut buf).is_ok_and(|n| n == 12 && buf.ends_with(b" 200"))
    };
    wait_for("tocsin to be ready", Duration::from_secs(30), || {
        p.assert_running();
        ready().then_some(())
    });
}

/// Runs `tests/browser/<script>` with node (the playground's Chromium
/// driver, installed by `tests/run.sh`); its output explains failures.
pub fn browser_script(script: &str, args: &[&str]) -> std::process::Output {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run tests/run.sh, or `npm ci` in {}",
        dir.display()
    );
    Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("running node (is Debian's nodejs installed?): {e}"))
}

/// The playground's size budget (issue 6): the engine bundle as served.
pub const BUNDLE_BUDGET_BYTES: usize = 2 << 20;
pub const BUNDLE_BUDGET_GZIP_BYTES: usize = 700 << 10;

/// The playground's static files, written by `tocsin playground export` into
/// `dir/static`; returns that directory.
pub fn export_playground(dir: &Path) -> PathBuf {
    let out = dir.join("static");
    let status = Command::new(tocsin_bin())
        .args(["playground", "export"])
        .arg(&out)
        .status()
        .expect("tocsin playground export");
    assert!(status.success(), "tocsin playground export failed");
    out
}

/// The size of `bytes` gzipped, as the host serves them.
#[cfg(not(target_arch = "wasm32"))]
pub fn gzip_len(bytes: &[u8]) -> usize {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip").len()
}

/// Starts the real Prometheus on 127.0.0.1:`port` with its remote-write
/// receiver on, its data in `dir/prom-data`.
pub fn start_prometheus(dir: &Path, config: &Path, port: u16) -> Proc {
    Proc::spawn(
        "prometheus",
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver"),
        dir.join("prometheus.log"),
    )
}

#[cfg(not(target_arch = "wasm32"))]
/// Waits (at most a minute) until `base/-/ready` answers 200, failing with
/// the process's log if it exits first.
pub async fn wait_ready(client: &reqwest::Client, base: &str, p: &mut Proc) {
    let begin = Instant::now();
    loop {
        p.assert_running();
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(begin.elapsed() < Duration::from_secs(60), "{} not ready:\n{}", p.name, p.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `tocsin serve` with `config` on a free port, ready: the process and its
/// base URL.
#[cfg(not(target_arch = "wasm32"))]
pub async fn start_tocsin_ready(
    client: &reqwest::Client,
    dir: &Path,
    config: Option<&Path>,
    tag: &str,
) -> (Proc, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut p = start_tocsin(dir, config, port, tag);
    wait_ready(client, &base, &mut p).await;
    (p, base)
}

/// `POST /api/v1/import/prometheus` of exposition text; asserts it was taken.
#[cfg(not(target_arch = "wasm32"))]
pub async fn import_prometheus(client: &reqwest::Client, base: &str, body: String) {
    let r = client
        .post(format!("{base}/api/v1/import/prometheus"))
        .body(body)
        .send()
        .await
        .expect("import");
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().await.unwrap_or_default());
}

pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Starts the real Alertmanager on `port`, routing every alert to
/// `webhook_url` without group waits, resolved notifications on.
pub fn start_alertmanager(dir: &Path, port: u16, webhook_url: &str) -> Proc {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  \
             group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
             webhook_configs:\n      - url: '{webhook_url}'\n        send_resolved: true\n"
        ),
    )
    .expect("write Alertmanager config");
    Proc::spawn(
        "alertmanager",
        Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            // An empty address turns clustering (and its gossip port) off.
            .arg("--cluster.listen-address="),
        dir.join(format!("alertmanager-{port}.log")),
    )
}

/// Builds the SDK's example rules for wasm32 (the `wasm-rule` profile, as
/// users build modules) and returns the directory holding the `.wasm` files.
pub fn build_example_rules() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--profile", "wasm-rule", "--target", "wasm32-unknown-unknown"])
        .args(["-p", "tocsin-rules-sdk", "--examples"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the example rules for wasm32 failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("wasm32-unknown-unknown/wasm-rule/examples")
}
