use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use tocsin_engine::sample::{STALE_NAN, is_stale_nan};
use tocsin_engine::storage::{Queryable, SeriesHandle};

use super::*;

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nonce = RandomState::new().hash_one(name);
        let dir = std::env::temp_dir()
            .join(format!("tocsin-wal-{name}-{}-{nonce:x}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &Path) -> (Head, Arc<Wal>, ReplayReport) {
    open_with(dir, WalOptions::default())
}

fn open_with(dir: &Path, opts: WalOptions) -> (Head, Arc<Wal>, ReplayReport) {
    let head = Head::default();
    // The crash test forks children from this process; between fork and
    // exec a child holds copies of every open descriptor, our lock file's
    // included, so reopening a directory right after closing it can find
    // the lock briefly held. Retry that case a little.
    let mut tries = 0;
    let (wal, report) = loop {
        match Wal::open(dir, &head, opts.clone()) {
            Err(WalError::Locked { .. }) if tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other.unwrap_or_else(|e| panic!("opening {}: {e}", dir.display())),
        }
    };
    (head, wal, report)
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())])
}

/// Every series with its samples as `(t, value bits)`, by label text.
fn contents(head: &Head) -> BTreeMap<String, Vec<(i64, u64)>> {
    let mut out = BTreeMap::new();
    head.for_each_series(i64::MIN, |_, labels, samples| {
        let samples = samples.iter().map(|s| (s.t, s.v.to_bits())).collect();
        out.insert(labels.to_string(), samples);
        Ok::<_, StorageError>(())
    })
    .unwrap();
    out
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let (segments, _) = list_wal_dir(&dir.join("wal")).unwrap();
    segments.into_iter().map(|i| segment_path(&dir.join("wal"), i)).collect()
}

/// Appends `rounds` of one sample per series through every append path.
fn fill(head: &Head, series: usize, rounds: std::ops::Range<i64>) {
    let handles: Vec<SeriesHandle> = (0..series).map(|i| head.get_or_create(&labels(i))).collect();
    for t in rounds {
        for (i, h) in handles.iter().enumerate() {
            let v = t as f64 * 10.0 + i as f64;
            match i % 3 {
                0 => head.append(h, t * 1000, v).unwrap(),
                1 => assert_eq!(head.append_many(h, &[Sample::new(t * 1000, v)]).appended, 1),
                _ => head.append_labels(&labels(i), t * 1000, v).unwrap(),
            }
        }
    }
}

#[test]
fn reopen_restores_exactly_what_was_synced() {
    let dir = TempDir::new("roundtrip");
    let (head, wal, report) = open(&dir.0);
    assert_eq!((report.series, report.samples, report.checkpoint), (0, 0, None));
    fill(&head, 50, 0..20);
    let odd = head.get_or_create(&Labels::from_pairs(&[("__name__", "odd")]));
    head.append(&odd, 1, f64::NAN).unwrap();
    head.append(&odd, 2, STALE_NAN).unwrap();
    head.append(&odd, 3, -0.0).unwrap();
    head.get_or_create(&Labels::from_pairs(&[("__name__", "no_samples")]));
    wal.sync().unwrap();
    let want = contents(&head);
    drop((head, wal));

    let (head, _wal, report) = open(&dir.0);
    assert_eq!(contents(&head), want);
    assert_eq!((report.series, report.samples), (52, 50 * 20 + 3));
    assert_eq!((report.bytes_dropped, report.samples_rejected), (0, 0));
    assert!(report.corruption.is_none());
    let got = contents(&head)[r#"{__name__="odd"}"#].clone();
    assert!(f64::from_bits(got[0].1).is_nan() && !is_stale_nan(f64::from_bits(got[0].1)));
    assert!(is_stale_nan(f64::from_bits(got[1].1)));
    assert_eq!(got[2].1, (-0.0f64).to_bits());
}

#[test]
fn restarts_chain_and_ids_are_restated() {
    // Each run numbers series afresh, densely, so after retention removed a
    // series every later one gets a new id: records of the new run must not
    // be read against the checkpoint's ids.
    let dir = TempDir::new("chain");
    let mut want = BTreeMap::new();
    for run in 0..4 {
        let (head, wal, _) = open(&dir.0);
        assert_eq!(contents(&head), want, "run {run}");
        if run % 2 == 0 {
            let doomed = Labels::from_pairs(&[("__name__", "a_doomed"), ("run", &run.to_string())]);
            head.append_labels(&doomed, -1, 1.0).unwrap();
            fill(&head, 10, run * 5..run * 5 + 3);
            head.truncate_before(0);
            wal.checkpoint(&head, 0).unwrap();
        }
        // In odd runs these land after records written under other ids.
        fill(&head, 10, run * 5 + 3..run * 5 + 5);
        wal.sync().unwrap();
        want = contents(&head);
    }
    let (head, _, report) = open(&dir.0);
    assert_eq!(contents(&head), want);
    assert_eq!(report.samples_rejected + report.samples_unknown_series, 0);
}

#[test]
fn unsynced_data_is_kept_on_a_clean_drop() {
    let dir = TempDir::new("drop");
    let (head, wal, _) = open(&dir.0);
    fill(&head, 3, 0..3);
    let want = contents(&head);
    drop((head, wal));
    assert_eq!(contents(&open(&dir.0).0), want);
}

#[test]
fn a_torn_tail_is_truncated() {
    let dir = TempDir::new("torn");
    let (head, wal, _) = open(&dir.0);
    fill(&head, 10, 0..5);
    wal.sync().unwrap();
    let want = contents(&head);
    fill(&head, 10, 5..6);
    wal.sync().unwrap();
    drop((head, wal));

    // Cut the last record (the last round) short, as a crash mid-write would.
    let last = segment_files(&dir.0).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    let f = OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);

    let (head, wal, report) = open(&dir.0);
    assert_eq!(contents(&head), want);
    assert!(report.corruption.is_none(), "{report}");
    // Header, kind, base time (2 bytes), then id, time delta and value per series.
    let round_bytes = 8 + 1 + 2 + 10 * (1 + 1 + 8);
    assert_eq!(report.bytes_dropped, round_bytes - 7, "{report}");
    // The repaired log takes new data and reopens cleanly.
    fill(&head, 10, 5..7);
    wal.sync().unwrap();
    let want = contents(&head);
    drop((head, wal));
    let (head, _, report) = open(&dir.0);
    assert_eq!(contents(&head), want);
    assert_eq!(report.bytes_dropped, 0);
}

#[test]
fn a_crc_mismatch_at_the_end_is_a_torn_tail() {
    let dir = TempDir::new("torn-crc");
    let (head, wal, _) = open(&dir.0);
    fill(&head, 4, 0..3);
    wal.sync().unwrap();
    let want = contents(&head);
    fill(&head, 4, 3..4);
    drop((head, wal));
    let last = segment_files(&dir.0).pop().unwrap();
    let mut bytes = fs::read(&last).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    fs::write(&last, bytes).unwrap();

    let (head, _, report) = open(&dir.0);
    assert_eq!(contents(&head), want);
    assert!(report.corruption.is_none() && report.bytes_dropped > 0, "{report}");
}

#[test]
fn corruption_in_the_middle_keeps_what_precedes_it() {
    let dir = TempDir::new("corrupt");
    // Small segments: every sync below starts a new one.
    let opts = WalOptions { segment_bytes: 64 };
    let (head, wal, _) = open_with(&dir.0, opts.clone());
    let mut states = Vec::new();
    for round in 0..6 {
        fill(&head, 5, round..round + 1);
        wal.sync().unwrap();
        states.push(contents(&head));
    }
    drop((head, wal));
    let segments = segment_files(&dir.0);
    // One segment per round, then the empty one the last sync opened.
    assert_eq!(segments.len(), 7, "{segments:?}");
    let lost: u64 = segments[3..].iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    let damaged = &segments[3];
    let mut bytes = fs::read(damaged).unwrap();
    bytes[20] ^= 0x40;
    fs::write(damaged, &bytes).unwrap();

    let (head, wal, report) = open_with(&dir.0, opts.clone());
    let c = report.corruption.clone().expect("corruption reported");
    assert_eq!((&c.file, c.offset), (damaged, 8), "{report}");
    assert!(c.reason.contains("checksum"), "{}", c.reason);
    assert!(report.to_string().contains("CORRUPTION"));
    // Segments 1..=3 held rounds 0..=2; round 3 was in the damaged one.
    assert_eq!(contents(&head), states[2]);
    let aside: Vec<_> = fs::read_dir(dir.0.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".corrupt"))
        .collect();
    assert_eq!(aside.len(), 4, "{aside:?}"); // the damaged tail and three later segments
    assert_eq!(report.bytes_dropped, lost - 8);

    // Replay from the repaired log is clean, and new data survives.
    fill(&head, 5, 10..11);
    wal.sync().unwrap();
    let want = contents(&head);
    drop((head, wal));
    let (head, _, report) = open_with(&dir.0, opts);
    assert!(report.corruption.is_none(), "{report}");
    assert_eq!(contents(&head), want);
}

#[test]
fn checkpoint_then_more_appends_then_reopen() {
    let dir = TempDir::new("checkpoint");
    let (head, wal, _) = open_with(&dir.0, WalOptions { segment_bytes: 1024 });
    for round in 0..50 {
        fill(&head, 20, round..round + 1);
        wal.sync().unwrap();
    }
    assert!(segment_files(&dir.0).len() > 3);
    let ck = wal.checkpoint(&head, i64::MIN).unwrap();
    assert_eq!((ck.series, ck.samples), (20, 20 * 50));
    assert!(ck.files_removed > 3 && ck.bytes < 20 * 50 * 4, "{ck:?}");
    assert_eq!(segment_files(&dir.0).len(), 1, "only the segment after the cut");
    fill(&head, 25, 50..60);
    wal.sync().unwrap();
    let want = contents(&head);
    drop((head, wal));

    let (head, wal, report) = open(&dir.0);
    assert_eq!(contents(&head), want);
    assert_eq!(report.checkpoint.as_ref(), Some(&ck.path));
    assert_eq!((report.series, report.samples), (25, 20 * 60 + 5 * 10));
    assert_eq!(report.samples_rejected + report.samples_unknown_series, 0);
    // A second checkpoint replaces the first.
    let ck2 = wal.checkpoint(&head, i64::MIN).unwrap();
    assert!(!ck.path.exists() && ck2.path.exists());
    drop((head, wal));
    assert_eq!(contents(&open(&dir.0).0), want);
}

#[test]
fn checkpoint_drops_samples_before_min_time() {
    let dir = TempDir::new("retention");
    let (head, wal, _) = open(&dir.0);
    fill(&head, 3, 0..10);
    let gone = head.get_or_create(&Labels::from_pairs(&[("old", "only")]));
    head.append(&gone, 1000, 1.0).unwrap();
    let ck = wal.checkpoint(&head, 5000).unwrap();
    assert_eq!((ck.series, ck.samples), (4, 3 * 5));
    drop((head, wal));

    let (head, _, _) = open(&dir.0);
    let got = contents(&head);
    assert!(got.values().flatten().all(|&(t, _)| t >= 5000));
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 15);
}

#[test]
fn appends_during_checkpoints_are_not_lost() {
    let dir = TempDir::new("concurrent");
    let (head, wal, _) = open_with(&dir.0, WalOptions { segment_bytes: 32 << 10 });
    // Checkpoints stop while the writers are still going, so the newest one
    // has raced appends and no later checkpoint can paper over a loss.
    let checkpoints = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                wal.checkpoint(&head, i64::MIN).unwrap();
                checkpoints.fetch_add(1, Ordering::Relaxed);
            }
        });
        let syncer = s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                wal.sync().unwrap();
            }
        });
        for w in 0..3 {
            let (head, wal, checkpoints, done) = (&head, &wal, &checkpoints, &done);
            s.spawn(move || {
                for t in 0..300 {
                    if t == 150 {
                        while checkpoints.load(Ordering::Relaxed) < 3 {
                            std::thread::yield_now();
                        }
                    }
                    if t == 200 {
                        done.store(true, Ordering::Relaxed);
                    }
                    // New series keep appearing while checkpoints run.
                    for i in 0..(10 + t / 10) {
                        let l = Labels::from_pairs(
                            &[("w", w), ("i", i)].map(|(n, v)| (n, v.to_string())),
                        );
                        head.append_labels(&l, t as i64, (t * i) as f64).unwrap();
                    }
                    if t % 50 == 0 {
                        wal.sync().unwrap();
                    }
                }
            });
        }
        syncer.join().unwrap();
    });
    wal.sync().unwrap();
    let want = contents(&head);
    drop((head, wal));

    let (head, _, report) = open(&dir.0);
    assert_eq!(contents(&head), want);
    assert!(report.checkpoint.is_some());
    assert_eq!(report.samples_rejected + report.samples_unknown_series, 0, "{report:?}");
}

#[test]
fn concurrent_syncs_share_fsyncs() {
    let dir = TempDir::new("group");
    let (head, wal, _) = open(&dir.0);
    std::thread::scope(|s| {
        for w in 0..4 {
            let (head, wal) = (&head, &wal);
            s.spawn(move || {
                let h = head.get_or_create(&Labels::from_pairs(&[("w", &w.to_string())]));
                for t in 0..200 {
                    head.append(&h, t, 1.0).unwrap();
                    wal.sync().unwrap();
                }
            });
        }
    });
    let want = contents(&head);
    drop((head, wal));
    assert_eq!(contents(&open(&dir.0).0), want);
}

#[test]
fn state_files_round_trip() {
    let dir = TempDir::new("state");
    let (_head, wal, _) = open(&dir.0);
    assert_eq!(wal.read_state("alerts.json").unwrap(), None);
    wal.write_state("alerts.json", b"first").unwrap();
    wal.write_state("alerts.json", b"second").unwrap();
    wal.write_state("module-f1_v2", &[0, 255, 7]).unwrap();
    assert_eq!(wal.read_state("alerts.json").unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(wal.read_state("module-f1_v2").unwrap(), Some(vec![0, 255, 7]));
    let long = "x".repeat(256);
    for bad in ["", ".", "..", ".hidden", "a/b", "../x", "é", &long] {
        assert!(matches!(wal.read_state(bad), Err(WalError::InvalidStateName(_))), "{bad:?}");
        assert!(wal.write_state(bad, b"").is_err(), "{bad:?}");
    }
    let names: Vec<_> = fs::read_dir(dir.0.join("state")).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(names.len(), 2, "no temporary files left");
}

#[test]
fn a_second_process_is_locked_out_by_pid() {
    let dir = TempDir::new("lock");
    let (head, wal, _) = open(&dir.0);
    let err = Wal::open(&dir.0, &Head::default(), WalOptions::default()).err().unwrap();
    assert!(
        matches!(err, WalError::Locked { pid: Some(p), .. } if p == std::process::id()),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("in use by process {}", std::process::id())));
    drop((head, wal));
    open(&dir.0);
}

#[test]
fn open_refuses_a_non_empty_head() {
    let dir = TempDir::new("nonempty");
    let head = Head::default();
    head.get_or_create(&labels(0));
    let err = Wal::open(&dir.0, &head, WalOptions::default()).err().unwrap();
    assert!(matches!(err, WalError::HeadNotEmpty(1)), "{err}");
}

/// Series and rounds of the crash test's writer.
const CRASH_SERIES: usize = 200;
const CRASH_DIR_ENV: &str = "TOCSIN_WAL_CRASH_DIR";

fn crash_value(series: usize, round: i64) -> f64 {
    if series == 0 && round % 7 == 3 { STALE_NAN } else { round as f64 * 1.5 + series as f64 }
}

/// The child of `a_kill_loses_no_acknowledged_sample`: does nothing unless
/// that test started it. Appends rounds (one sample per series) from two
/// threads, syncs, and prints `synced N` once round N is durable; another
/// thread checkpoints and another syncs all the while, so the kill can land
/// anywhere, inside a checkpoint included.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else { return };
    let (head, wal, _) = open_with(Path::new(&dir), WalOptions { segment_bytes: 256 << 10 });
    let handles: Vec<_> = (0..CRASH_SERIES).map(|i| head.get_or_create(&labels(i))).collect();
    // Resume after the rounds every series has; resends of partial rounds
    // are exact duplicates, which the head accepts silently.
    let start = handles
        .iter()
        .map(|h| {
            let mut out = Vec::new();
            head.samples(h.id(), i64::MIN, i64::MAX, &mut out).unwrap();
            out.last().map_or(0, |s| s.t / 1000 + 1)
        })
        .min()
        .unwrap_or(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Both pause, or they would flush every acknowledged round at once
        // and hide a sync that acknowledges too early.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                wal.checkpoint(&head, i64::MIN).unwrap();
                std::thread::sleep(Duration::from_millis(7));
            }
        });
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                wal.sync().unwrap();
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        for round in start..start + 100_000 {
            std::thread::scope(|s| {
                for (p, part) in handles.chunks(CRASH_SERIES / 2).enumerate() {
                    let (head, first) = (&head, p * (CRASH_SERIES / 2));
                    s.spawn(move || {
                        for (k, h) in part.iter().enumerate() {
                            let i = first + k;
                            head.append(h, round * 1000, crash_value(i, round)).unwrap();
                        }
                    });
                }
            });
            wal.sync().unwrap();
            println!("synced {round}");
            // The kill most likely lands here, right after an acknowledgement.
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
    });
}

#[test]
fn a_kill_loses_no_acknowledged_sample() {
    if std::env::var_os(CRASH_DIR_ENV).is_some() {
        return;
    }
    let dir = TempDir::new("crash");
    let exe = std::env::current_exe().unwrap();
    let mut acked: Option<i64> = None;
    for kill in 0..4 {
        let mut child = Command::new(&exe)
            .args(["wal::tests::crash_writer_child", "--exact", "--nocapture"])
            .env(CRASH_DIR_ENV, &dir.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wanted = 2 + RandomState::new().hash_one(kill) % 40;
        let mut seen = 0;
        for line in lines {
            let line = line.unwrap();
            let Some(round) = line.strip_prefix("synced ") else { continue };
            acked = Some(round.parse().unwrap());
            seen += 1;
            if seen == wanted {
                break;
            }
        }
        assert_eq!(seen, wanted, "the writer stopped early");
        child.kill().unwrap();
        child.wait().unwrap();

        let (head, wal, report) = open(&dir.0);
        assert!(report.corruption.is_none(), "{report}");
        assert_eq!(report.samples_rejected + report.samples_unknown_series, 0, "{report:?}");
        let acked = acked.unwrap();
        for i in 0..CRASH_SERIES {
            let h = head.lookup(&labels(i)).unwrap_or_else(|| panic!("series {i} lost"));
            let mut got = Vec::new();
            head.samples(h.id(), i64::MIN, i64::MAX, &mut got).unwrap();
            assert!(got.len() as i64 > acked, "series {i}: {} samples, acked {acked}", got.len());
            for (round, s) in got.iter().enumerate() {
                let want = Sample::new(round as i64 * 1000, crash_value(i, round as i64));
                assert!(s.bit_eq(&want), "series {i} round {round}: {s:?}");
            }
        }
        drop((head, wal));
    }
}

/// Numbers for the report: `cargo test -p tocsin-host --release --bin tocsin
/// wal::tests::measure -- --ignored --nocapture`. TOCSIN_WAL_MEASURE_DIR
/// picks the disk (default: the system temp dir).
#[test]
#[ignore]
fn measure() {
    const SERIES: usize = 100_000;
    const ROUNDS: i64 = 480; // 2 h at 15 s
    let base = std::env::var_os("TOCSIN_WAL_MEASURE_DIR").map(PathBuf::from);
    let dir = match base {
        Some(b) => TempDir(b.join(format!("tocsin-wal-measure-{}", std::process::id()))),
        None => TempDir::new("measure"),
    };

    let (head, wal, _) = open(&dir.0);
    let h = head.get_or_create(&labels(0));
    let mut lat = Vec::new();
    for t in 0..500 {
        head.append(&h, t, t as f64).unwrap();
        let start = Instant::now();
        wal.sync().unwrap();
        lat.push(start.elapsed());
    }
    lat.sort();
    println!("sync of one sample: p50 {:?} p90 {:?} p99 {:?}", lat[250], lat[450], lat[495]);

    let series_labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            let job = ["api", "node", "db", "cache"][i % 4];
            Labels::from_pairs(&[
                ("__name__", format!("metric_{}", i % 500)),
                ("instance", format!("10.{}.{}.{}:9100", i >> 16, i >> 8 & 255, i & 255)),
                ("job", job.to_string()),
            ])
        })
        .collect();
    // Counters and gauges, as scrapes deliver them.
    let rounds = |head: &Head, mut after_round: Box<dyn FnMut() + '_>| -> Duration {
        let handles: Vec<_> = series_labels.iter().map(|l| head.get_or_create(l)).collect();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut values = vec![0.0; SERIES];
        let mut appending = Duration::ZERO;
        for round in 0..ROUNDS {
            let t = 1_700_000_000_000 + round * 15_000;
            let start = Instant::now();
            for (i, h) in handles.iter().enumerate() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                values[i] = if i % 2 == 0 {
                    values[i] + (rng % 100) as f64
                } else {
                    (rng % 1000) as f64 / 8.0
                };
                head.append(h, t, values[i]).unwrap();
            }
            appending += start.elapsed();
            after_round();
        }
        appending
    };
    let n = SERIES as f64 * ROUNDS as f64;
    let no_log = rounds(&Head::default(), Box::new(|| {}));
    println!(
        "append 100k series x {ROUNDS}, no log: {:.2} M samples/s",
        n / no_log.as_secs_f64() / 1e6
    );

    let start = Instant::now();
    let with_log = rounds(&head, Box::new(|| wal.sync().unwrap()));
    let total = start.elapsed();
    let wal_bytes: u64 = segment_files(&dir.0).iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    println!(
        "append 100k series x {ROUNDS}, WAL + sync per round: {:.2} M samples/s overall, {:.2} M/s appending alone; {:.1} bytes/sample in segments ({} MiB)",
        n / total.as_secs_f64() / 1e6,
        n / with_log.as_secs_f64() / 1e6,
        wal_bytes as f64 / n,
        wal_bytes >> 20
    );
    drop((head, wal));

    let (head, wal, report) = open(&dir.0);
    println!("replay from segments only: {report}");
    let ck = wal.checkpoint(&head, i64::MIN).unwrap();
    println!(
        "checkpoint: {} series, {} samples, {:.1} MiB ({:.2} bytes/sample) in {:.2?}",
        ck.series,
        ck.samples,
        ck.bytes as f64 / (1 << 20) as f64,
        ck.bytes as f64 / ck.samples as f64,
        ck.duration
    );
    drop((head, wal));
    let (_, _, report) = open(&dir.0);
    println!("replay from the checkpoint: {report}");
}
