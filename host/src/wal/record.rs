//! The bytes of the log: framed records, shared by segments and checkpoints.
//!
//! ```text
//! file    magic (8 bytes) record*
//! record  u32 LE payload length   u32 LE CRC-32 of the payload   payload
//! payload kind (1 byte) body
//!   series   uvarint id  uvarint n  n x (uvarint len, name, uvarint len, value)
//!   samples  varint base_t  (uvarint id  varint t-base_t  u64 LE value bits)*
//!   chunk    uvarint id  a compressed chunk of the engine's format (rest)
//! ```
//!
//! Every varint is LEB128, signed ones zigzag-encoded. Values are stored as
//! their bit patterns, so NaN payloads and the staleness marker survive
//! exactly. A samples record holds samples of many series (one scrape's worth
//! is one record), which keeps the per-sample cost near 12 bytes.

use tocsin_engine::labels::{Label, Labels};
use tocsin_engine::sample::Sample;
use tocsin_engine::varint::{get_uvarint, put_uvarint, unzigzag, zigzag};

pub const SEGMENT_MAGIC: &[u8; 8] = b"tocsinW1";
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"tocsinC1";
const HEADER_LEN: usize = 8;
/// Larger lengths are corruption; the writer stays far below.
const MAX_PAYLOAD: usize = 16 << 20;
/// A samples record is closed at about this size, so a torn write loses
/// little and replay never holds much in one piece.
const SAMPLES_RECORD_BYTES: usize = 256 << 10;

const KIND_SERIES: u8 = 1;
const KIND_SAMPLES: u8 = 2;
const KIND_CHUNK: u8 = 3;

/// Records being built in memory, ready to be written as they are.
#[derive(Default)]
pub struct RecordBuf {
    buf: Vec<u8>,
    /// Start of the samples record still taking samples, and its base time.
    open_samples: Option<(usize, i64)>,
}

impl RecordBuf {
    /// Bytes of closed records plus the open one.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn series(&mut self, id: u64, labels: &Labels) {
        self.close_samples();
        let start = self.begin(KIND_SERIES);
        put_uvarint(&mut self.buf, id);
        put_uvarint(&mut self.buf, labels.len() as u64);
        for l in labels.iter() {
            put_str(&mut self.buf, &l.name);
            put_str(&mut self.buf, &l.value);
        }
        self.finish(start);
    }

    pub fn chunk(&mut self, id: u64, chunk: &[u8]) {
        self.close_samples();
        let start = self.begin(KIND_CHUNK);
        put_uvarint(&mut self.buf, id);
        self.buf.extend_from_slice(chunk);
        self.finish(start);
    }

    pub fn sample(&mut self, id: u64, s: &Sample) {
        let (start, base_t) = match self.open_samples {
            Some(open) => open,
            None => {
                let start = self.begin(KIND_SAMPLES);
                put_uvarint(&mut self.buf, zigzag(s.t));
                *self.open_samples.insert((start, s.t))
            }
        };
        put_uvarint(&mut self.buf, id);
        put_uvarint(&mut self.buf, zigzag(s.t.wrapping_sub(base_t)));
        self.buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
        if self.buf.len() - start >= SAMPLES_RECORD_BYTES {
            self.close_samples();
        }
    }

    /// Closes any open record and swaps the bytes out for `spare` (cleared),
    /// so buffers are reused rather than reallocated at every sync.
    pub fn take(&mut self, mut spare: Vec<u8>) -> Vec<u8> {
        self.close_samples();
        spare.clear();
        std::mem::replace(&mut self.buf, spare)
    }

    /// Closes the open samples record, if any, so the buffer holds only
    /// whole records.
    pub fn close_samples(&mut self) {
        if let Some((start, _)) = self.open_samples.take() {
            self.finish(start);
        }
    }

    fn begin(&mut self, kind: u8) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER_LEN]);
        self.buf.push(kind);
        start
    }

    fn finish(&mut self, start: usize) {
        let payload = &self.buf[start + HEADER_LEN..];
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[start + 4..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    }
}

/// A decoded record.
pub enum Record<'a> {
    Series { id: u64, labels: Labels },
    Samples(SamplesIter<'a>),
    Chunk { id: u64, chunk: &'a [u8] },
}

/// Why the bytes at an offset are not a record.
#[derive(Debug)]
pub struct BadRecord {
    pub offset: usize,
    pub reason: String,
    /// Whether the damage reaches the end of the data and nothing valid
    /// could follow it: what a write cut short by a crash leaves behind.
    pub at_end: bool,
}

/// Walks the records after the magic of `data`, yielding each with its
/// offset; stops after the first bad one.
pub fn records(data: &[u8]) -> impl Iterator<Item = Result<(usize, Record<'_>), BadRecord>> {
    let mut pos = SEGMENT_MAGIC.len().min(data.len());
    let mut done = false;
    std::iter::from_fn(move || {
        if done || pos >= data.len() {
            return None;
        }
        let item = frame(data, pos).and_then(|(payload, end)| {
            decode(payload).map(|r| (r, end)).ok_or_else(|| BadRecord {
                offset: pos,
                reason: "malformed record body".into(),
                at_end: false,
            })
        });
        match item {
            Ok((record, end)) => {
                let offset = pos;
                pos = end;
                Some(Ok((offset, record)))
            }
            Err(bad) => {
                done = true;
                Some(Err(bad))
            }
        }
    })
}

/// The payload of the record at `pos` and the offset after it.
fn frame(data: &[u8], pos: usize) -> Result<(&[u8], usize), BadRecord> {
    let rest = &data[pos..];
    let zeros = || rest.iter().all(|&b| b == 0);
    let bad = |reason: String, at_end: bool| BadRecord { offset: pos, reason, at_end };
    let Some(header) = rest.get(..HEADER_LEN) else {
        return Err(bad(format!("record header cut short ({} bytes)", rest.len()), true));
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_PAYLOAD {
        return Err(bad(format!("impossible record length {len}"), zeros()));
    }
    let end = pos + HEADER_LEN + len;
    let Some(payload) = data.get(pos + HEADER_LEN..end) else {
        let have = rest.len() - HEADER_LEN;
        return Err(bad(format!("record of {len} bytes cut short at {have}"), true));
    };
    if crc32fast::hash(payload) != crc {
        return Err(bad("record checksum mismatch".into(), end == data.len() || zeros()));
    }
    Ok((payload, end))
}

fn decode(payload: &[u8]) -> Option<Record<'_>> {
    let (&kind, body) = payload.split_first()?;
    let mut pos = 0;
    match kind {
        KIND_SERIES => {
            let id = get_uvarint(body, &mut pos)?;
            let n = get_uvarint(body, &mut pos)?;
            let mut pairs = Vec::with_capacity(n.min(64) as usize);
            for _ in 0..n {
                let name = get_str(body, &mut pos)?;
                let value = get_str(body, &mut pos)?;
                pairs.push(Label::new(name, value));
            }
            (pos == body.len()).then(|| Record::Series { id, labels: Labels::new(pairs) })
        }
        KIND_SAMPLES => {
            let base_t = unzigzag(get_uvarint(body, &mut pos)?);
            Some(Record::Samples(SamplesIter { body, pos, base_t }))
        }
        KIND_CHUNK => {
            let id = get_uvarint(body, &mut pos)?;
            Some(Record::Chunk { id, chunk: &body[pos..] })
        }
        _ => None,
    }
}

/// The `(series id, sample)` pairs of a samples record. The record's CRC
/// held, so a malformed tuple can only come from a writer bug; it ends the
/// iteration with `None` inside `Some`, for the caller to report.
#[derive(Clone)]
pub struct SamplesIter<'a> {
    body: &'a [u8],
    pos: usize,
    base_t: i64,
}

impl Iterator for SamplesIter<'_> {
    type Item = Option<(u64, Sample)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.body.len() {
            return None;
        }
        let tuple = (|| {
            let id = get_uvarint(self.body, &mut self.pos)?;
            let t = self.base_t.wrapping_add(unzigzag(get_uvarint(self.body, &mut self.pos)?));
            let bits = self.body.get(self.pos..self.pos + 8)?;
            self.pos += 8;
            let v = f64::from_bits(u64::from_le_bytes(bits.try_into().ok()?));
            Some((id, Sample::new(t, v)))
        })();
        if tuple.is_none() {
            self.pos = self.body.len();
        }
        Some(tuple)
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn get_str<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    let len = usize::try_from(get_uvarint(buf, pos)?).ok()?;
    let bytes = buf.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    std::str::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_engine::sample::STALE_NAN;

    fn with_magic(buf: &mut RecordBuf) -> Vec<u8> {
        let mut data = SEGMENT_MAGIC.to_vec();
        data.extend(buf.take(Vec::new()));
        data
    }

    #[test]
    fn records_round_trip() {
        let mut buf = RecordBuf::default();
        let labels = Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
        buf.series(7, &labels);
        let samples =
            [Sample::new(-5, 1.5), Sample::new(i64::MAX, STALE_NAN), Sample::new(3, -0.0)];
        for (i, s) in samples.iter().enumerate() {
            buf.sample(i as u64 * 1000, s);
        }
        buf.chunk(9, b"opaque");
        let data = with_magic(&mut buf);
        let got: Vec<_> = records(&data).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 3);
        assert!(matches!(&got[0].1, Record::Series { id: 7, labels: l } if *l == labels));
        let Record::Samples(it) = &got[1].1 else { panic!("samples expected") };
        let tuples: Vec<_> = it.clone().map(Option::unwrap).collect();
        assert_eq!(tuples.len(), 3);
        for (i, (id, s)) in tuples.iter().enumerate() {
            assert!(*id == i as u64 * 1000 && s.bit_eq(&samples[i]));
        }
        assert!(matches!(got[2].1, Record::Chunk { id: 9, chunk: b"opaque" }));
    }

    #[test]
    fn torn_and_corrupt_records_are_told_apart() {
        let mut buf = RecordBuf::default();
        for id in 0..3 {
            buf.series(id, &Labels::from_pairs(&[("i", id.to_string())]));
        }
        let data = with_magic(&mut buf);
        let second = records(&data).nth(1).unwrap().unwrap().0;
        let third = records(&data).nth(2).unwrap().unwrap().0;
        let last_bad = |d: &[u8]| records(d).last().unwrap().map(|_| ()).unwrap_err();

        let bad = last_bad(&data[..data.len() - 3]);
        assert!(bad.at_end && bad.offset == third, "{bad:?}");
        let bad = last_bad(&data[..third + 5]);
        assert!(bad.at_end && bad.offset == third, "{bad:?}");

        let mut flipped = data.clone();
        flipped[second + 12] ^= 1;
        let bad = last_bad(&flipped);
        assert!(!bad.at_end && bad.offset == second, "{bad:?}");
        let mut flipped = data.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(last_bad(&flipped).at_end);

        let mut zeroed = data.clone();
        zeroed[second..].fill(0);
        let bad = last_bad(&zeroed);
        assert!(bad.at_end && bad.offset == second, "{bad:?}");
    }

    #[test]
    fn samples_records_are_split_by_size() {
        let mut buf = RecordBuf::default();
        for i in 0..100_000 {
            buf.sample(i, &Sample::new(i as i64, 1.0));
        }
        let data = with_magic(&mut buf);
        let mut n = 0;
        let mut tuples = 0;
        for r in records(&data) {
            let Record::Samples(it) = r.unwrap().1 else { panic!() };
            n += 1;
            tuples += it.count();
        }
        assert!(n > 1 && tuples == 100_000, "{n} records");
    }
}
