//! Durability for the in-memory head: a write-ahead log plus checkpoints, so
//! that a crash loses no acknowledged sample and a restart restores the head.
//!
//! Layout of a data directory:
//!
//! ```text
//! DIR/lock                   held (flock) by the running process, holds its pid
//! DIR/wal/00000012           segments: records appended since the checkpoint
//! DIR/wal/checkpoint.00000011  every series and its samples as of segment 11
//! DIR/state/NAME             small files replaced atomically (alert state, module state)
//! ```
//!
//! The head reports every accepted change through [`AppendLog`]; the log
//! only buffers it in memory. [`Wal::sync`] writes the buffer to the open
//! segment and fsyncs: a sample is durable, and may be acknowledged, once a
//! `sync` that started after its append has returned. Syncs group-commit:
//! callers arriving while an fsync runs wait for it, and the first of them
//! then writes everything buffered meanwhile in one more fsync, which the
//! rest find already done. The buffer grows until the next sync, so the
//! server syncs on a timer (about every second) besides before it
//! acknowledges a write request.
//!
//! [`Wal::checkpoint`] bounds replay time and disk use: it cuts the log
//! (closes the segment, opens the next), then writes every series with its
//! samples to a new checkpoint file, then deletes the segments and the
//! checkpoint it replaces. Appends carry on throughout; whatever lands after
//! the cut is in the new segments, possibly in the checkpoint too, and replay
//! skips those duplicates quietly.
//!
//! Record format: see [`record`]. After Prometheus's `tsdb/wlog` and
//! checkpoints, with one difference worth its cost: a checkpoint keeps
//! samples (compressed as chunks), not only series, because tocsin has no
//! blocks on disk; the checkpoint is the whole persisted history.

// Serve wiring (`--data-dir`) lands next; until then some items are unused.
#![allow(dead_code)]

mod record;
mod replay;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tocsin_engine::labels::Labels;
use tocsin_engine::sample::Sample;
use tocsin_engine::storage::chunk::ChunkAppender;
use tocsin_engine::storage::{AppendLog, Head, SeriesId, StorageError};

use record::{CHECKPOINT_MAGIC, RecordBuf, SEGMENT_MAGIC};
use replay::Replayer;

/// Tuning of a [`Wal`].
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// A segment is closed and the next one started once it reaches this
    /// size (checked after each sync, so segments overshoot by one buffer).
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_bytes: 128 << 20 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("data directory {} is in use by {}", dir.display(), holder(*pid))]
    Locked { dir: PathBuf, pid: Option<u32> },
    #[error("invalid state name {0:?}: use 1 to 255 of [a-zA-Z0-9_.-], not starting with '.'")]
    InvalidStateName(String),
    #[error("the head already has an append log")]
    AlreadyInstalled,
    #[error("the head must be empty when its log is opened (it has {0} series)")]
    HeadNotEmpty(u64),
    /// After a failed write or fsync nothing buffered can be trusted to reach
    /// the disk (a later fsync may report success for lost pages), so the
    /// log refuses further acknowledgements; restart to recover.
    #[error("the write-ahead log failed earlier and accepts no more writes: {0}")]
    Failed(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn holder(pid: Option<u32>) -> String {
    pid.map_or_else(|| "another process".into(), |pid| format!("process {pid}"))
}

trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, WalError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, WalError> {
        self.map_err(|source| WalError::Io { path: path.to_owned(), source })
    }
}

/// Where replay stopped on damaged data, not at a torn tail.
#[derive(Clone, Debug, PartialEq)]
pub struct Corruption {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
}

/// What [`Wal::open`] restored.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub checkpoint: Option<PathBuf>,
    /// Segments replayed after the checkpoint.
    pub segments: usize,
    pub series: usize,
    /// Samples appended to the head.
    pub samples: u64,
    /// Segment samples the checkpoint already held because they were
    /// appended while it was being written: expected, not errors.
    pub samples_in_checkpoint: u64,
    /// Samples the head refused: zero unless the files were tampered with.
    pub samples_rejected: u64,
    /// Samples whose series record was lost to corruption.
    pub samples_unknown_series: u64,
    /// Bytes cut from the log: a torn tail (writes no sync covered when the
    /// process died) and anything after a corruption.
    pub bytes_dropped: u64,
    /// Damage in the middle of the log. Replay kept everything before it;
    /// the damaged bytes were moved aside to `*.corrupt` files.
    pub corruption: Option<Corruption>,
    pub duration: Duration,
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "restored {} series and {} samples from {} and {} segment(s) in {:.2?}",
            self.series,
            self.samples,
            self.checkpoint.as_deref().map_or("no checkpoint".into(), |p| p.display().to_string()),
            self.segments,
            self.duration
        )?;
        if self.bytes_dropped > 0 {
            write!(f, "; dropped {} bytes of torn or damaged log", self.bytes_dropped)?;
        }
        if let Some(c) = &self.corruption {
            write!(f, "; CORRUPTION in {} at byte {}: {}", c.file.display(), c.offset, c.reason)?;
        }
        Ok(())
    }
}

/// What [`Wal::checkpoint`] wrote.
#[derive(Clone, Debug)]
pub struct CheckpointReport {
    pub path: PathBuf,
    pub series: usize,
    pub samples: u64,
    pub bytes: u64,
    /// Segments (and older checkpoints) deleted because this one covers them.
    pub files_removed: usize,
    pub duration: Duration,
}

/// Records logged but not yet handed to a sync.
struct Pending {
    records: RecordBuf,
    /// Log position of the first byte of `records`: bytes taken so far.
    taken: u64,
}

/// The open segment. Holding its lock is the right to write and fsync.
struct Segment {
    file: File,
    index: u64,
    size: u64,
    /// The buffer of the previous sync, reused for the next.
    spare: Vec<u8>,
}

/// The write-ahead log of one data directory. See the module documentation.
pub struct Wal {
    wal_dir: PathBuf,
    state_dir: PathBuf,
    opts: WalOptions,
    pending: Mutex<Pending>,
    segment: Mutex<Segment>,
    /// Log position up to which everything is on disk.
    durable: AtomicU64,
    failed: OnceLock<String>,
    checkpointing: Mutex<()>,
    state_writes: AtomicU64,
    /// Holds the directory lock for the life of the log.
    _lock: File,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn segment_path(wal_dir: &Path, index: u64) -> PathBuf {
    wal_dir.join(format!("{index:08}"))
}

fn checkpoint_path(wal_dir: &Path, index: u64) -> PathBuf {
    wal_dir.join(format!("checkpoint.{index:08}"))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Removes temporary files an interrupted checkpoint or state write left.
fn remove_temporaries(dir: &Path) -> Result<(), WalError> {
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}

/// Segment and checkpoint indexes in the WAL directory, ascending.
fn list_wal_dir(wal_dir: &Path) -> Result<(Vec<u64>, Vec<u64>), WalError> {
    let (mut segments, mut checkpoints) = (Vec::new(), Vec::new());
    for entry in fs::read_dir(wal_dir).at(wal_dir)? {
        let entry = entry.at(wal_dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let index = |s: &str| s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok())?;
        if let Some(i) = index(name) {
            segments.push(i);
        } else if let Some(i) = name.strip_prefix("checkpoint.").and_then(index) {
            checkpoints.push(i);
        }
    }
    segments.sort_unstable();
    checkpoints.sort_unstable();
    Ok((segments, checkpoints))
}

/// Takes the directory lock, or names the process that holds it. The lock
/// is an `flock`, which the kernel drops when its holder dies however it
/// dies, so a crash never leaves a stale lock behind.
fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).and_then(|_| writeln!(file, "{}", std::process::id())).at(&path)?;
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Err(WalError::Locked { dir: dir.to_owned(), pid: text.trim().parse().ok() })
        }
        Err(TryLockError::Error(e)) => Err(e).at(&path),
    }
}

/// Renames `path` to `path.corrupt` so a later open ignores it but a human
/// can still inspect it.
fn move_aside(path: &Path) -> Result<(), WalError> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".corrupt");
    fs::rename(path, &aside).at(path)
}

impl Wal {
    /// Restores `head` (which must be empty) from the data directory `dir`,
    /// creating it if needed, and installs the log as the head's
    /// [`AppendLog`]. Call it before anything appends to the head.
    ///
    /// A torn tail (a record cut short or failing its checksum at the very
    /// end of the newest segment: writes no sync covered) is truncated.
    /// Damage anywhere else stops replay there: what precedes it is kept,
    /// the rest is moved aside to `*.corrupt` files and reported in
    /// [`ReplayReport::corruption`].
    pub fn open(
        dir: &Path,
        head: &Head,
        opts: WalOptions,
    ) -> Result<(Arc<Wal>, ReplayReport), WalError> {
        let started = Instant::now();
        let series = head.stats().series;
        if series != 0 {
            return Err(WalError::HeadNotEmpty(series));
        }
        let (wal_dir, state_dir) = (dir.join("wal"), dir.join("state"));
        for d in [dir, &wal_dir, &state_dir] {
            fs::create_dir_all(d).at(d)?;
        }
        let lock_file = lock_dir(dir)?;
        remove_temporaries(&wal_dir)?;
        remove_temporaries(&state_dir)?;
        let (segments, checkpoints) = list_wal_dir(&wal_dir)?;

        let mut report = ReplayReport::default();
        let mut replayer = Replayer::new(head);
        let covered = checkpoints.last().copied();
        if let Some(cut) = covered {
            let path = checkpoint_path(&wal_dir, cut);
            let outcome = replayer.file(&path, CHECKPOINT_MAGIC, &mut report)?;
            // Checkpoints are renamed into place complete, so any bad record
            // is damage; keep the file for inspection, the next checkpoint
            // replaces it.
            if let Some(bad) = outcome.bad {
                report.bytes_dropped += outcome.len - bad.offset as u64;
                report.corruption = Some(Corruption {
                    file: path.clone(),
                    offset: bad.offset as u64,
                    reason: bad.reason,
                });
            }
            report.checkpoint = Some(path);
        }
        for &i in checkpoints.iter().filter(|&&i| Some(i) != covered) {
            let path = checkpoint_path(&wal_dir, i);
            fs::remove_file(&path).at(&path)?;
        }
        let mut next = covered.map_or(1, |c| c + 1);
        // Damage in the checkpoint does not stop the segments: they hold the
        // newest data, and any series they lack a record for is reported.
        let mut damaged = false;
        let newest = segments.last().copied();
        for &i in &segments {
            let path = segment_path(&wal_dir, i);
            if covered.is_some_and(|c| i <= c) {
                fs::remove_file(&path).at(&path)?;
                continue;
            }
            if damaged {
                report.bytes_dropped += fs::metadata(&path).at(&path)?.len();
                move_aside(&path)?;
                continue;
            }
            if i != next {
                report.corruption = Some(Corruption {
                    file: segment_path(&wal_dir, next),
                    offset: 0,
                    reason: format!("segment missing (found {i} next)"),
                });
                damaged = true;
                report.bytes_dropped += fs::metadata(&path).at(&path)?.len();
                move_aside(&path)?;
                continue;
            }
            let outcome = replayer.file(&path, SEGMENT_MAGIC, &mut report)?;
            report.segments += 1;
            next = i + 1;
            let Some(bad) = outcome.bad else { continue };
            let offset = bad.offset as u64;
            report.bytes_dropped += outcome.len - offset;
            if !(bad.at_end && Some(i) == newest) {
                let mut tail = path.as_os_str().to_owned();
                tail.push(format!(".at-{offset}.corrupt"));
                let bytes = fs::read(&path).at(&path)?;
                fs::write(&tail, &bytes[bad.offset..]).at(Path::new(&tail))?;
                report.corruption =
                    Some(Corruption { file: path.clone(), offset, reason: bad.reason });
                damaged = true;
            }
            if offset == 0 {
                // Not even the magic made it: the segment never held data.
                fs::remove_file(&path).at(&path)?;
                report.segments -= 1;
                next = i;
            } else {
                let f = OpenOptions::new().write(true).open(&path).at(&path)?;
                f.set_len(offset).and_then(|_| f.sync_all()).at(&path)?;
            }
        }
        if let Some(c) = &report.corruption {
            tracing::error!(file = %c.file.display(), offset = c.offset, reason = %c.reason,
                "write-ahead log is damaged; replay kept everything before the damage");
        }

        let segment = Self::create_segment(&wal_dir, next)?;
        let wal = Arc::new(Wal {
            wal_dir,
            state_dir,
            opts,
            pending: Mutex::new(Pending { records: RecordBuf::default(), taken: 0 }),
            segment: Mutex::new(segment),
            durable: AtomicU64::new(0),
            failed: OnceLock::new(),
            checkpointing: Mutex::new(()),
            state_writes: AtomicU64::new(0),
            _lock: lock_file,
        });
        // The head numbered its series afresh; restate them under the new ids
        // so the records this process writes never refer to an id that only
        // an older segment defines (possibly as another series).
        let restored = replayer.series();
        report.series = restored.len();
        {
            let mut p = lock(&wal.pending);
            for (id, labels) in &restored {
                p.records.series(*id, labels);
            }
        }
        wal.sync()?;
        head.set_append_log(wal.clone()).map_err(|_| WalError::AlreadyInstalled)?;
        report.duration = started.elapsed();
        Ok((wal, report))
    }

    fn create_segment(wal_dir: &Path, index: u64) -> Result<Segment, WalError> {
        let path = segment_path(wal_dir, index);
        let mut file = OpenOptions::new().write(true).create_new(true).open(&path).at(&path)?;
        file.write_all(SEGMENT_MAGIC).at(&path)?;
        // The new name must be durable before anything written into the file
        // is acknowledged.
        sync_dir(wal_dir)?;
        Ok(Segment { file, index, size: SEGMENT_MAGIC.len() as u64, spare: Vec::new() })
    }

    fn check_failed(&self) -> Result<(), WalError> {
        self.failed.get().map_or(Ok(()), |e| Err(WalError::Failed(e.clone())))
    }

    /// Makes every change logged before the call durable: writes the buffer
    /// to the open segment and fsyncs it. Blocks for the fsync (a few ms);
    /// from async code call it through `tokio::task::spawn_blocking`.
    /// Concurrent callers share fsyncs (group commit).
    pub fn sync(&self) -> Result<(), WalError> {
        let target = {
            let mut p = lock(&self.pending);
            p.records.close_samples();
            p.taken + p.records.len() as u64
        };
        if self.durable.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let mut seg = lock(&self.segment);
        // Whoever held the segment before us may have written our records.
        if self.durable.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        self.flush(&mut seg)
    }

    /// Writes and fsyncs everything pending; the caller holds the segment.
    fn flush(&self, seg: &mut Segment) -> Result<(), WalError> {
        self.check_failed()?;
        let (buf, end) = {
            let mut p = lock(&self.pending);
            let buf = p.records.take(std::mem::take(&mut seg.spare));
            p.taken += buf.len() as u64;
            (buf, p.taken)
        };
        if !buf.is_empty() {
            let written = seg.file.write_all(&buf).and_then(|_| seg.file.sync_data());
            if let Err(e) = written {
                let path = segment_path(&self.wal_dir, seg.index);
                let msg = format!("{}: {e}", path.display());
                tracing::error!("write-ahead log write failed: {msg}");
                let _ = self.failed.set(msg);
                return Err(WalError::Io { path, source: e });
            }
            seg.size += buf.len() as u64;
        }
        seg.spare = buf;
        self.durable.store(end, Ordering::Release);
        if seg.size >= self.opts.segment_bytes {
            self.rotate(seg)?;
        }
        Ok(())
    }

    fn rotate(&self, seg: &mut Segment) -> Result<(), WalError> {
        let next = Self::create_segment(&self.wal_dir, seg.index + 1).inspect_err(|e| {
            let _ = self.failed.set(e.to_string());
        })?;
        *seg = Segment { spare: std::mem::take(&mut seg.spare), ..next };
        Ok(())
    }

    /// Writes a checkpoint of every series in `head` with its samples at or
    /// after `min_time` (older ones are dropped: retention), then deletes the
    /// segments and checkpoint it covers. Appends and syncs continue
    /// meanwhile. Blocking, seconds for a large head: run it on a blocking
    /// thread. One runs at a time; concurrent calls wait.
    pub fn checkpoint(&self, head: &Head, min_time: i64) -> Result<CheckpointReport, WalError> {
        let started = Instant::now();
        let _one = lock(&self.checkpointing);
        // Cut first, snapshot second: every record before the cut is then in
        // the head when the snapshot reads it (records are logged under the
        // head's locks, after the change), and every record after the cut
        // stays in the segments replay reads after the checkpoint.
        let cut = {
            let mut seg = lock(&self.segment);
            self.flush(&mut seg)?;
            let cut = seg.index;
            self.rotate(&mut seg)?;
            cut
        };
        let path = checkpoint_path(&self.wal_dir, cut);
        let tmp = self.wal_dir.join(format!("checkpoint.{cut:08}.tmp"));
        let written = self.write_checkpoint(head, min_time, &tmp);
        let (series, samples, bytes) = match written {
            Ok(counts) => counts,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        fs::rename(&tmp, &path).at(&path)?;
        sync_dir(&self.wal_dir)?;

        let mut files_removed = 0;
        let (segments, checkpoints) = list_wal_dir(&self.wal_dir)?;
        let old = segments.iter().filter(|&&i| i <= cut).map(|&i| segment_path(&self.wal_dir, i));
        let older = checkpoints.iter().filter(|&&i| i < cut);
        for p in old.chain(older.map(|&i| checkpoint_path(&self.wal_dir, i))) {
            fs::remove_file(&p).at(&p)?;
            files_removed += 1;
        }
        Ok(CheckpointReport {
            path,
            series,
            samples,
            bytes,
            files_removed,
            duration: started.elapsed(),
        })
    }

    fn write_checkpoint(
        &self,
        head: &Head,
        min_time: i64,
        tmp: &Path,
    ) -> Result<(usize, u64, u64), WalError> {
        /// Samples per chunk record: large enough to compress well, small
        /// enough to keep records (and replay's buffer) small.
        const CHUNK_SAMPLES: usize = 1024;
        const WRITE_AT: usize = 1 << 20;
        let mut file = File::create(tmp).at(tmp)?;
        file.write_all(CHECKPOINT_MAGIC).at(tmp)?;
        let (mut series, mut samples, mut bytes) = (0, 0u64, CHECKPOINT_MAGIC.len() as u64);
        let mut records = RecordBuf::default();
        let mut spare = Vec::new();
        head.for_each_series(min_time, |id, labels: &Labels, data: &[Sample]| {
            records.series(id, labels);
            for part in data.chunks(CHUNK_SAMPLES) {
                let mut chunk = ChunkAppender::with_capacity(part.len() * 2 + 16);
                for s in part {
                    chunk.append(s.t, s.v);
                }
                records.chunk(id, chunk.bytes());
            }
            series += 1;
            samples += data.len() as u64;
            if records.len() >= WRITE_AT {
                spare = records.take(std::mem::take(&mut spare));
                file.write_all(&spare).at(tmp)?;
                bytes += spare.len() as u64;
            }
            Ok::<_, WalError>(())
        })?;
        let rest = records.take(Vec::new());
        file.write_all(&rest).and_then(|_| file.sync_all()).at(tmp)?;
        bytes += rest.len() as u64;
        Ok((series, samples, bytes))
    }

    fn state_path(&self, name: &str) -> Result<PathBuf, WalError> {
        let valid = !name.is_empty()
            && name.len() <= 255
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return Err(WalError::InvalidStateName(name.into()));
        }
        Ok(self.state_dir.join(name))
    }

    /// Replaces the state file `name` with `bytes` atomically: a crash leaves
    /// either the old contents or the new, never a mix. Blocking (fsyncs).
    pub fn write_state(&self, name: &str, bytes: &[u8]) -> Result<(), WalError> {
        let path = self.state_path(name)?;
        // Unique per write, so concurrent writers of one name do not collide;
        // the leading dot keeps it out of the valid names.
        let n = self.state_writes.fetch_add(1, Ordering::Relaxed);
        let tmp = self.state_dir.join(format!(".{name}.{n}.tmp"));
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|_| fs::rename(&tmp, &path)) {
            let _ = fs::remove_file(&tmp);
            return Err(e).at(&path);
        }
        sync_dir(&self.state_dir)
    }

    /// The contents of state file `name`, or `None` if it was never written.
    pub fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>, WalError> {
        let path = self.state_path(name)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }
}

impl AppendLog for Wal {
    fn series_created(&self, id: SeriesId, labels: &Labels) {
        if self.failed.get().is_none() {
            lock(&self.pending).records.series(id, labels);
        }
    }

    fn samples_appended(&self, id: SeriesId, samples: &[Sample]) {
        if self.failed.get().is_none() {
            let mut p = lock(&self.pending);
            for s in samples {
                p.records.sample(id, s);
            }
        }
    }
}

impl Drop for Wal {
    /// A clean shutdown loses nothing even if the last sync was missed.
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!("final write-ahead log sync failed: {e}");
        }
    }
}
