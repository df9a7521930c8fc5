//! The samples of one series: full chunks packed back to back in a single
//! buffer, plus the open chunk being appended to.
//!
//! One buffer per series instead of one allocation per chunk saves a pointer,
//! a length and an allocator header per chunk; at ~120 samples per chunk that
//! is worth a tenth of a byte per sample. Full chunks are immutable, so the
//! only costs are a copy when a chunk fills up and a shift when retention
//! drops the oldest ones, both rare.

use super::chunk::{self, ChunkAppender, ChunkError};
use crate::sample::Sample;

/// Bytes of an index entry: the chunk's newest timestamp (`i64`) and its
/// length in bytes (`u32`), little-endian.
const ENTRY_LEN: usize = 12;

/// Sealed chunks sit back to back, followed by an index of one fixed-size
/// entry per chunk, oldest first. Reads find their first chunk by scanning
/// the index, which is contiguous, instead of hopping from chunk to chunk: a
/// day of a series is ~50 chunks, and following their headers costs a cache
/// miss each. Lengths rather than offsets, so no size of buffer overflows an
/// entry; a chunk's at most 65,535 samples fit in far less than 4 GiB. The
/// entry is 12 bytes against the ~8 a varint header per chunk would take.
#[derive(Clone, Default)]
pub(super) struct SeriesChunks {
    sealed: Sealed,
    open: ChunkAppender,
}

/// The sealed chunks and their index, apart from the open chunk so that a
/// read can walk them while it brings the open chunk's header up to date.
#[derive(Clone, Default)]
struct Sealed {
    buf: Vec<u8>,
    count: u32,
}

/// One chunk, sealed or open, and where it is.
struct Chunk<'a> {
    maxt: i64,
    bytes: &'a [u8],
    /// Its place among the sealed chunks; the open chunk's is the sealed
    /// count, which it keeps once sealed.
    index: usize,
    /// Its offset in the sealed buffer; for the open chunk, where it will go.
    offset: usize,
}

fn decode_entry(e: &[u8; ENTRY_LEN]) -> (i64, usize) {
    let [t0, t1, t2, t3, t4, t5, t6, t7, l0, l1, l2, l3] = *e;
    let maxt = i64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]);
    (maxt, u32::from_le_bytes([l0, l1, l2, l3]) as usize)
}

/// Chunks of one series kept decoded, for reads whose windows slide over the
/// same chunks again and again (a backtest evaluates a rule every minute over
/// a few minutes of 30-minute chunks): without them every read decodes its
/// first chunk from the chunk's start, four times the samples it returns,
/// looks the chunk up in the index, and decodes the start of the next chunk
/// whenever the window reaches into it. So the first two chunks of a read
/// are kept: the one its window starts in and the next.
#[derive(Default)]
pub(super) struct DecodedChunks {
    slots: [DecodedChunk; 2],
}

impl DecodedChunks {
    /// Where a read from `mint` starts, if in a chunk held.
    fn locate(
        &self,
        mint: i64,
        entries: &[[u8; ENTRY_LEN]],
        open_maxt: Option<i64>,
    ) -> Option<(usize, usize)> {
        self.slots.iter().find_map(|d| d.locate(mint, entries, open_maxt))
    }

    /// Copies the samples of `c` in `[mint, maxt]` to `out`, decoding `c`
    /// first unless held. `other` is the slot the read took its previous
    /// chunk from, which must stay; it is updated to the slot used.
    fn read(
        &mut self,
        c: &Chunk<'_>,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
        other: &mut Option<usize>,
    ) -> Result<(), ChunkError> {
        let i = match self.slots.iter().position(|d| d.maxt == Some(c.maxt)) {
            Some(i) => i,
            None => {
                // Windows move forward in time: the older chunk goes.
                let i = match *other {
                    Some(o) => 1 - o,
                    None => usize::from(self.slots[1].maxt < self.slots[0].maxt),
                };
                self.slots[i].fill(c)?;
                i
            }
        };
        *other = Some(i);
        self.slots[i].copy(c, mint, maxt, out);
        Ok(())
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.slots.iter().map(|d| d.samples.capacity() * size_of::<Sample>()).sum()
    }
}

/// One decoded chunk, known by its newest timestamp. Within a series that
/// names one content for good: appends only add newer samples (an open chunk
/// that grows gets a new name), and retention refuses appends at or before
/// what it dropped, so no name comes back with other samples. Its place is
/// checked against the index before use: retention drops chunks from the
/// front, which moves every other chunk to another place.
#[derive(Default)]
struct DecodedChunk {
    /// The newest timestamp, `None` when nothing is held.
    maxt: Option<i64>,
    first_t: i64,
    index: usize,
    offset: usize,
    samples: Vec<Sample>,
}

impl DecodedChunk {
    /// Where a read from `mint` starts when it is in this chunk: the chunks
    /// before it all end before `first_t`.
    fn locate(
        &self,
        mint: i64,
        entries: &[[u8; ENTRY_LEN]],
        open_maxt: Option<i64>,
    ) -> Option<(usize, usize)> {
        let maxt = self.maxt.filter(|&m| self.first_t <= mint && mint <= m)?;
        let there = match entries.get(self.index) {
            Some(e) => decode_entry(e).0,
            None if self.index == entries.len() => open_maxt?,
            None => return None,
        };
        (there == maxt).then_some((self.index, self.offset))
    }

    fn fill(&mut self, c: &Chunk<'_>) -> Result<(), ChunkError> {
        self.maxt = None;
        self.samples.clear();
        chunk::decode_range(c.bytes, i64::MIN, i64::MAX, &mut self.samples)?;
        if let Some(first) = self.samples.first() {
            self.first_t = first.t;
            self.maxt = Some(c.maxt);
        }
        Ok(())
    }

    fn copy(&mut self, c: &Chunk<'_>, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        // Found through the index after retention moved it, perhaps.
        (self.index, self.offset) = (c.index, c.offset);
        let from = first_at_or_after(&self.samples, (self.first_t, c.maxt), mint);
        let len = self.samples[from..].iter().take_while(|s| s.t <= maxt).count();
        out.extend_from_slice(&self.samples[from..from + len]);
    }
}

/// Index of the first of `samples` (in time order, from `span.0` to
/// `span.1`) at or after `t`. Guesses by interpolation and gallops from the
/// guess: scrapes are regular, so the guess is mostly right and the search
/// touches little besides the samples about to be copied, where a binary
/// search would miss the cache at each of its ~7 steps.
fn first_at_or_after(samples: &[Sample], span: (i64, i64), t: i64) -> usize {
    let n = samples.len();
    let (first, last) = span;
    if n == 0 || t <= first {
        return 0;
    }
    if t > last {
        return n;
    }
    // first < t <= last: the span is positive. Floats because the product
    // may not fit in 64 bits; the guess only has to be close.
    let fraction = t.abs_diff(first) as f64 / last.abs_diff(first) as f64;
    let guess = ((fraction * (n - 1) as f64) as usize).min(n - 1);
    let before = |i: usize| samples[i].t < t;
    // The answer is in `lo..=hi`; the probes stay in `lo..hi`.
    let (mut lo, mut hi, mut step) = (0, n, 1);
    if before(guess) {
        lo = guess + 1;
        while lo < hi {
            let probe = lo + (step - 1).min(hi - lo - 1);
            if !before(probe) {
                hi = probe;
                break;
            }
            lo = probe + 1;
            step *= 2;
        }
    } else {
        hi = guess;
        while lo < hi {
            let probe = hi - step.min(hi - lo);
            if before(probe) {
                lo = probe + 1;
                break;
            }
            hi = probe;
            step *= 2;
        }
    }
    lo + samples[lo..hi].partition_point(|s| s.t < t)
}

impl SeriesChunks {
    pub fn is_empty(&self) -> bool {
        self.sealed.buf.is_empty() && self.open.is_empty()
    }

    /// Timestamp and value bits of the newest sample.
    pub fn last(&self) -> Option<(i64, u64)> {
        self.open.last()
    }

    /// Chunks held, the open one included.
    pub fn chunk_count(&self) -> usize {
        self.sealed.count as usize + usize::from(!self.open.is_empty())
    }

    /// Heap bytes held, unused capacity included.
    pub fn heap_size(&self) -> usize {
        self.sealed.buf.capacity() + self.open.heap_size()
    }

    /// Oldest and newest timestamps held, or `None` when empty. Unreadable
    /// data widens the range rather than hiding the series: a read will then
    /// report the error.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (maxt, _) = self.open.last()?;
        let first = match self.sealed.chunks_from(0, 0).and_then(|mut c| c.next().transpose()) {
            Ok(Some(c)) => chunk::first_time(c.bytes).ok(),
            Err(_) => None,
            Ok(None) => self.open.first_time(),
        };
        Some((first.unwrap_or(i64::MIN), maxt))
    }

    /// Whether samples may lie in `[mint, maxt]`. Decides from the newest
    /// timestamp alone when it can: queries mostly end at or after it.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        match self.open.last() {
            None => false,
            Some((last, _)) if last < mint => false,
            Some((last, _)) if last <= maxt => true,
            Some(_) => self.starts_by(maxt),
        }
    }

    /// Whether the oldest sample is at or before `t`. The oldest chunk's
    /// newest timestamp settles it without decoding when `t` is past it,
    /// which is the usual case of a query over a long-lived series.
    fn starts_by(&self, t: i64) -> bool {
        if let Ok((_, [oldest, ..])) = self.sealed.layout()
            && decode_entry(oldest).0 <= t
        {
            return true;
        }
        self.time_range().is_some_and(|(first, _)| first <= t)
    }

    /// The address of the open chunk's last byte (0 before any sample), for
    /// prefetching only.
    pub fn tail_address(&self) -> usize {
        self.open.tail_address()
    }

    /// Appends a sample whose timestamp the caller has checked is newer than
    /// [`Self::last`]. Returns whether it started a new chunk.
    pub fn push(&mut self, t: i64, v: f64, chunk_samples: usize) -> bool {
        let new_chunk = if self.open.is_empty() {
            true
        } else if self.open.len() >= chunk_samples || self.open.is_full() {
            self.seal();
            true
        } else {
            false
        };
        self.open.append(t, v);
        new_chunk
    }

    fn seal(&mut self) {
        let Some((maxt, _)) = self.open.last() else { return };
        let data_len = self.sealed.data_len();
        let bytes = self.open.bytes();
        // Exact growth: this buffer only grows once per chunk and is never
        // shared, so doubling would only waste memory.
        self.sealed.buf.reserve_exact(bytes.len() + ENTRY_LEN);
        // The chunk goes in front of the index, which moves up; the index is
        // a few hundred bytes at most.
        self.sealed.buf.extend_from_slice(bytes);
        self.sealed.buf[data_len..].rotate_right(bytes.len());
        self.sealed.buf.extend_from_slice(&maxt.to_le_bytes());
        self.sealed.buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.sealed.count += 1;
        // The next chunk of a series is about as large as the last one: room
        // for that plus a little spares the ~10 reallocations of growing from
        // empty, at the cost of a few unused bytes per series.
        let expected = bytes.len() + bytes.len() / 16;
        self.open = ChunkAppender::with_capacity(expected);
    }

    /// Drops every chunk whose samples are all older than `mint`; a chunk
    /// holding samples on both sides stays whole. Returns the chunks dropped.
    pub fn truncate_before(&mut self, mint: i64) -> usize {
        let mut cut = 0usize;
        let mut dropped = 0;
        if let Ok((data, entries)) = self.sealed.layout() {
            for e in entries {
                let (maxt, len) = decode_entry(e);
                // A length past the data is corruption: keep it for reads to report.
                match cut.checked_add(len).filter(|&c| c <= data.len()) {
                    Some(c) if maxt < mint => {
                        cut = c;
                        dropped += 1;
                    }
                    _ => break,
                }
            }
        }
        if dropped > 0 {
            let index = self.sealed.data_len();
            self.sealed.buf.drain(index..index + dropped * ENTRY_LEN);
            self.sealed.buf.drain(..cut);
            self.sealed.buf.shrink_to_fit();
            self.sealed.count -= dropped as u32;
        }
        if self.sealed.buf.is_empty() && self.open.last().is_some_and(|(t, _)| t < mint) {
            self.open = ChunkAppender::new();
            dropped += 1;
        }
        dropped
    }

    /// Appends the samples with `mint <= t <= maxt` to `out`, oldest first.
    /// With `cache`, the first two chunks read come from it, or are decoded
    /// into it whole for the next reads.
    pub fn read(
        &mut self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
        mut cache: Option<&mut DecodedChunks>,
    ) -> Result<(), ChunkError> {
        let (data, entries) = self.sealed.layout()?;
        let open_maxt = self.open.last().map(|(t, _)| t);
        let (first, offset) =
            match cache.as_deref().and_then(|c| c.locate(mint, entries, open_maxt)) {
                Some(at) => at,
                None => Self::find(data.len(), entries, mint)?,
            };
        let open = open_maxt.map(|t| {
            Ok(Chunk {
                maxt: t,
                bytes: self.open.bytes(),
                index: entries.len(),
                offset: data.len(),
            })
        });
        let mut slot = None;
        for (k, c) in self.sealed.chunks_from(first, offset)?.chain(open).enumerate() {
            let c = c?;
            match cache.as_deref_mut() {
                Some(cache) if k < 2 => cache.read(&c, mint, maxt, out, &mut slot)?,
                _ => chunk::decode_range(c.bytes, mint, maxt, out)?,
            }
            if c.maxt >= maxt {
                break;
            }
        }
        Ok(())
    }

    /// Index and offset of the first chunk holding samples at or after
    /// `mint`, the open chunk being the one past the sealed ones. Searches
    /// from the newest back: queries mostly want recent samples.
    fn find(
        data_len: usize,
        entries: &[[u8; ENTRY_LEN]],
        mint: i64,
    ) -> Result<(usize, usize), ChunkError> {
        let mut first = entries.len();
        let mut offset = data_len;
        for e in entries.iter().rev() {
            let (chunk_maxt, len) = decode_entry(e);
            if chunk_maxt < mint {
                break;
            }
            first -= 1;
            offset = offset.checked_sub(len).ok_or(ChunkError::Framing)?;
        }
        Ok((first, offset))
    }
}

impl Sealed {
    /// Bytes of sealed chunks, before the index.
    fn data_len(&self) -> usize {
        self.buf.len().saturating_sub(self.count as usize * ENTRY_LEN)
    }

    /// The sealed chunk bytes and the index entries.
    fn layout(&self) -> Result<(&[u8], &[[u8; ENTRY_LEN]]), ChunkError> {
        let index_len = self.count as usize * ENTRY_LEN;
        let split = self.buf.len().checked_sub(index_len).ok_or(ChunkError::Framing)?;
        let (data, index) = self.buf.split_at(split);
        let (entries, _) = index.as_chunks::<ENTRY_LEN>();
        Ok((data, entries))
    }

    /// The sealed chunks from the `first`th on, which starts at `offset`.
    fn chunks_from(
        &self,
        first: usize,
        mut offset: usize,
    ) -> Result<impl Iterator<Item = Result<Chunk<'_>, ChunkError>>, ChunkError> {
        let (data, entries) = self.layout()?;
        let mut entries = entries.get(first..).unwrap_or_default().iter();
        let mut index = first;
        Ok(std::iter::from_fn(move || {
            let (maxt, len) = decode_entry(entries.next()?);
            let bytes = offset.checked_add(len).and_then(|end| data.get(offset..end));
            match bytes {
                Some(bytes) => {
                    let c = Chunk { maxt, bytes, index, offset };
                    offset += len;
                    index += 1;
                    Some(Ok(c))
                }
                None => {
                    // Stop after reporting: nothing past a bad entry is trustworthy.
                    entries = Default::default();
                    Some(Err(ChunkError::Framing))
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: i64, chunk_samples: usize) -> SeriesChunks {
        let mut s = SeriesChunks::default();
        for i in 0..n {
            s.push(i * 10, i as f64, chunk_samples);
        }
        s
    }

    fn read(s: &mut SeriesChunks, mint: i64, maxt: i64) -> Vec<i64> {
        let mut out = Vec::new();
        s.read(mint, maxt, &mut out, None).unwrap();
        out.iter().map(|s| s.t).collect()
    }

    #[test]
    fn cuts_chunks_and_reads_across_them() {
        let mut s = filled(25, 10);
        assert_eq!(s.chunk_count(), 3);
        assert_eq!(s.time_range(), Some((0, 240)));
        assert_eq!(s.last(), Some((240, 24f64.to_bits())));
        assert_eq!(read(&mut s, 0, 1000).len(), 25);
        assert_eq!(read(&mut s, 85, 125), vec![90, 100, 110, 120]);
        assert_eq!(read(&mut s, 95, 95), Vec::<i64>::new());
        assert_eq!(read(&mut s, 240, 240), vec![240]);
        assert!(s.overlaps(240, 240) && s.overlaps(-5, 0) && s.overlaps(95, 95));
        assert!(!s.overlaps(241, 300) && !s.overlaps(-10, -1));
    }

    #[test]
    fn truncation_drops_only_whole_chunks() {
        // The first chunk is [0, 90]: it stays until all of it is older.
        let mut s = filled(25, 10);
        assert_eq!(s.truncate_before(90), 0);
        assert_eq!(s.chunk_count(), 3);
        assert_eq!(s.truncate_before(91), 1);
        assert_eq!(s.chunk_count(), 2);
        assert_eq!(s.time_range(), Some((100, 240)));
        assert_eq!(s.truncate_before(1000), 2);
        assert!(s.is_empty());
        assert_eq!(s.time_range(), None);
        assert_eq!(s.heap_size(), 0);
    }

    #[test]
    fn cached_reads_match_uncached_ones() {
        let mut s = filled(25, 10);
        let mut cache = DecodedChunks::default();
        // Windows sliding forward over three chunks (the last one open),
        // then jumps back and forth.
        let sliding = (-40..260).step_by(5).map(|t| (t - 30, t));
        let jumps = [(85, 125), (95, 135), (95, 95), (0, 1000), (235, 240), (-5, 3), (5, 245)];
        for (mint, maxt) in sliding.chain(jumps) {
            let mut got = Vec::new();
            s.read(mint, maxt, &mut got, Some(&mut cache)).unwrap();
            let got: Vec<i64> = got.iter().map(|s| s.t).collect();
            assert_eq!(got, read(&mut s, mint, maxt), "[{mint}, {maxt}]");
        }
    }

    proptest::proptest! {
        #[test]
        fn interpolation_search_is_a_lower_bound(
            gaps in proptest::collection::vec(1i64..50, 0..200),
            t in -10i64..5000,
        ) {
            let mut at = 0;
            let samples: Vec<Sample> = gaps
                .iter()
                .map(|g| {
                    at += g;
                    Sample { t: at, v: 0.0 }
                })
                .collect();
            let span = (samples.first().map_or(0, |s| s.t), samples.last().map_or(0, |s| s.t));
            proptest::prop_assert_eq!(
                first_at_or_after(&samples, span, t),
                samples.partition_point(|s| s.t < t)
            );
            // A span that does not match the samples gives a wrong answer,
            // never a panic.
            let _ = first_at_or_after(&samples, (span.0 + gaps.len() as i64, span.1 - 7), t);
        }
    }

    #[test]
    fn corrupt_framing_is_an_error() {
        let mut s = filled(25, 10);
        s.sealed.buf.truncate(5);
        let mut out = Vec::new();
        assert_eq!(s.read(0, 1000, &mut out, None), Err(ChunkError::Framing));
        assert_eq!(s.time_range().map(|r| r.0), Some(i64::MIN));
    }
}
