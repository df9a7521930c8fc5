//! Loading a checkpoint and the segments after it back into a head.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use tocsin_engine::labels::Labels;
use tocsin_engine::sample::Sample;
use tocsin_engine::storage::chunk;
use tocsin_engine::storage::{Head, SeriesHandle};

use super::record::{self, BadRecord, Record};
use super::{IoContext, ReplayReport, WalError};

struct Replayed {
    handle: SeriesHandle,
    /// Newest time of this series in the checkpoint. Segment samples at or
    /// before it were appended while the checkpoint was being written and
    /// are in it already; skipping them keeps the head's rejection counters
    /// meaningful.
    covered_until: i64,
}

/// Hashes a series id with one multiplication. Replay looks an id up for
/// every sample, and ids are trusted small integers, so SipHash's defence
/// against chosen keys buys nothing; the multiplication spreads sequential
/// ids over the high bits the table's probing uses.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Applies records to a head, mapping the log's series ids (those of the
/// process that wrote them) to the head's series.
pub(super) struct Replayer<'h> {
    head: &'h Head,
    series: HashMap<u64, Replayed, BuildHasherDefault<IdHasher>>,
    scratch: Vec<Sample>,
}

/// How far a file replayed.
pub(super) struct FileOutcome {
    pub len: u64,
    /// The first bad record; everything from its offset on was not applied.
    pub bad: Option<BadRecord>,
}

impl<'h> Replayer<'h> {
    pub fn new(head: &'h Head) -> Self {
        Replayer { head, series: HashMap::default(), scratch: Vec::new() }
    }

    /// The head's series that replay created or found, by head id.
    pub fn series(&self) -> Vec<(u64, Labels)> {
        let mut out: Vec<_> =
            self.series.values().map(|s| (s.handle.id(), s.handle.labels().clone())).collect();
        out.sort_unstable_by_key(|(id, _)| *id);
        out.dedup_by_key(|(id, _)| *id);
        out
    }

    /// Applies every record of the file at `path` until the first bad one.
    pub fn file(
        &mut self,
        path: &Path,
        magic: &[u8; 8],
        report: &mut ReplayReport,
    ) -> Result<FileOutcome, WalError> {
        let data = std::fs::read(path).at(path)?;
        let len = data.len() as u64;
        if data.len() < magic.len() || &data[..magic.len()] != magic {
            let bad = BadRecord {
                offset: 0,
                reason: "not a tocsin log file (bad magic)".into(),
                at_end: data.len() < magic.len() && magic.starts_with(&data),
            };
            return Ok(FileOutcome { len, bad: Some(bad) });
        }
        for r in record::records(&data) {
            match r {
                Ok((offset, record)) => {
                    if !self.apply(record, report) {
                        let reason = "malformed samples in a record whose checksum held".into();
                        return Ok(FileOutcome {
                            len,
                            bad: Some(BadRecord { offset, reason, at_end: false }),
                        });
                    }
                }
                Err(bad) => return Ok(FileOutcome { len, bad: Some(bad) }),
            }
        }
        Ok(FileOutcome { len, bad: None })
    }

    /// Returns false for a samples record that failed to decode part way.
    fn apply(&mut self, record: Record<'_>, report: &mut ReplayReport) -> bool {
        match record {
            Record::Series { id, labels } => {
                if self.series.get(&id).is_some_and(|s| *s.handle.labels() == labels) {
                    return true;
                }
                let handle = self.head.get_or_create(&labels);
                self.series.insert(id, Replayed { handle, covered_until: i64::MIN });
            }
            Record::Samples(tuples) => {
                for tuple in tuples {
                    let Some((id, s)) = tuple else { return false };
                    let Some(series) = self.series.get(&id) else {
                        report.samples_unknown_series += 1;
                        continue;
                    };
                    if s.t <= series.covered_until {
                        report.samples_in_checkpoint += 1;
                    } else if self.head.append(&series.handle, s.t, s.v).is_ok() {
                        report.samples += 1;
                    } else {
                        report.samples_rejected += 1;
                    }
                }
            }
            Record::Chunk { id, chunk } => {
                self.scratch.clear();
                let decoded = chunk::decode_range(chunk, i64::MIN, i64::MAX, &mut self.scratch);
                let Some(series) = self.series.get_mut(&id) else {
                    report.samples_unknown_series += self.scratch.len() as u64;
                    return true;
                };
                if decoded.is_err() {
                    // The CRC held, so the writer produced this: keep what decoded.
                    report.samples_rejected += 1;
                }
                let sum = self.head.append_many(&series.handle, &self.scratch);
                report.samples += sum.appended as u64;
                report.samples_rejected += sum.rejected as u64;
                if let Some(last) = self.scratch.last() {
                    series.covered_until = series.covered_until.max(last.t);
                }
            }
        }
        true
    }
}
