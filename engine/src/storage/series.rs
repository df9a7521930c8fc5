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
use crate::varint::{get_uvarint, put_uvarint_into, unzigzag, zigzag};

/// Sealed chunks are framed as `uvarint(len) varint(zigzag maxt) chunk`, so
/// retention and reads can skip a chunk by its newest timestamp without
/// decoding it.
#[derive(Default)]
pub(super) struct SeriesChunks {
    sealed: Vec<u8>,
    sealed_count: u32,
    open: ChunkAppender,
}

/// One framed sealed chunk.
struct Sealed<'a> {
    maxt: i64,
    chunk: &'a [u8],
    /// Offset just past this chunk in the sealed buffer.
    end: usize,
}

impl SeriesChunks {
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.open.is_empty()
    }

    /// Timestamp and value bits of the newest sample.
    pub fn last(&self) -> Option<(i64, u64)> {
        self.open.last()
    }

    /// Chunks held, the open one included.
    pub fn chunk_count(&self) -> usize {
        self.sealed_count as usize + usize::from(!self.open.is_empty())
    }

    /// Heap bytes held, unused capacity included.
    pub fn heap_size(&self) -> usize {
        self.sealed.capacity() + self.open.heap_size()
    }

    /// Oldest and newest timestamps held, or `None` when empty. Unreadable
    /// data widens the range rather than hiding the series: a read will then
    /// report the error.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (maxt, _) = self.open.last()?;
        let first_chunk = match self.sealed_chunks().next() {
            Some(Ok(c)) => c.chunk,
            Some(Err(_)) => return Some((i64::MIN, maxt)),
            None => self.open.bytes(),
        };
        Some((chunk::first_time(first_chunk).unwrap_or(i64::MIN), maxt))
    }

    /// Whether samples may lie in `[mint, maxt]`. Decides from the newest
    /// timestamp alone when it can: queries mostly end at or after it.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        match self.open.last() {
            None => false,
            Some((last, _)) if last < mint => false,
            Some((last, _)) if last <= maxt => true,
            Some(_) => self.time_range().is_some_and(|(first, _)| first <= maxt),
        }
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
        let bytes = self.open.bytes();
        let mut frame = [0u8; 20];
        let mut n = put_uvarint_into(&mut frame, bytes.len() as u64);
        n += put_uvarint_into(&mut frame[n..], zigzag(maxt));
        // Exact growth: this buffer only grows once per chunk and is never
        // shared, so doubling would only waste memory.
        self.sealed.reserve_exact(n + bytes.len());
        self.sealed.extend_from_slice(&frame[..n]);
        self.sealed.extend_from_slice(bytes);
        self.sealed_count += 1;
        // The next chunk of a series is about as large as the last one: room
        // for that plus a little spares the ~10 reallocations of growing from
        // empty, at the cost of a few unused bytes per series.
        let expected = bytes.len() + bytes.len() / 16;
        self.open = ChunkAppender::with_capacity(expected);
    }

    /// Drops every chunk whose samples are all older than `mint`; a chunk
    /// holding samples on both sides stays whole. Returns the chunks dropped.
    pub fn truncate_before(&mut self, mint: i64) -> usize {
        let mut cut = 0;
        let mut dropped = 0;
        for c in self.sealed_chunks() {
            match c {
                Ok(c) if c.maxt < mint => {
                    cut = c.end;
                    dropped += 1;
                }
                _ => break,
            }
        }
        if cut > 0 {
            self.sealed.drain(..cut);
            self.sealed.shrink_to_fit();
            self.sealed_count -= dropped as u32;
        }
        if self.sealed.is_empty() && self.open.last().is_some_and(|(t, _)| t < mint) {
            self.open = ChunkAppender::new();
            dropped += 1;
        }
        dropped
    }

    /// Appends the samples with `mint <= t <= maxt` to `out`, oldest first.
    pub fn read(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<(), ChunkError> {
        for c in self.sealed_chunks() {
            let c = c?;
            if c.maxt < mint {
                continue;
            }
            chunk::decode_range(c.chunk, mint, maxt, out)?;
            if c.maxt >= maxt {
                return Ok(());
            }
        }
        if !self.open.is_empty() {
            chunk::decode_range(self.open.bytes(), mint, maxt, out)?;
        }
        Ok(())
    }

    fn sealed_chunks(&self) -> impl Iterator<Item = Result<Sealed<'_>, ChunkError>> {
        let buf = &self.sealed[..];
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= buf.len() {
                return None;
            }
            let frame = (|| {
                let len = usize::try_from(get_uvarint(buf, &mut pos)?).ok()?;
                let maxt = unzigzag(get_uvarint(buf, &mut pos)?);
                let end = pos.checked_add(len).filter(|&e| e <= buf.len())?;
                let chunk = &buf[pos..end];
                Some(Sealed { maxt, chunk, end })
            })();
            match frame {
                Some(c) => {
                    pos = c.end;
                    Some(Ok(c))
                }
                None => {
                    // Stop after reporting: nothing past a bad frame is trustworthy.
                    pos = buf.len();
                    Some(Err(ChunkError::Framing))
                }
            }
        })
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

    fn read(s: &SeriesChunks, mint: i64, maxt: i64) -> Vec<i64> {
        let mut out = Vec::new();
        s.read(mint, maxt, &mut out).unwrap();
        out.iter().map(|s| s.t).collect()
    }

    #[test]
    fn cuts_chunks_and_reads_across_them() {
        let s = filled(25, 10);
        assert_eq!(s.chunk_count(), 3);
        assert_eq!(s.time_range(), Some((0, 240)));
        assert_eq!(s.last(), Some((240, 24f64.to_bits())));
        assert_eq!(read(&s, 0, 1000).len(), 25);
        assert_eq!(read(&s, 85, 125), vec![90, 100, 110, 120]);
        assert_eq!(read(&s, 95, 95), Vec::<i64>::new());
        assert_eq!(read(&s, 240, 240), vec![240]);
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
    fn corrupt_framing_is_an_error() {
        let mut s = filled(25, 10);
        s.sealed.truncate(5);
        let mut out = Vec::new();
        assert_eq!(s.read(0, 1000, &mut out), Err(ChunkError::Framing));
        assert_eq!(s.time_range().map(|r| r.0), Some(i64::MIN));
    }
}
