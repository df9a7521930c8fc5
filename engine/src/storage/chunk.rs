//! Compressed sample chunks: delta-of-delta timestamps and Gorilla XOR floats,
//! the scheme of Facebook's Gorilla paper that Prometheus's XOR chunks use.
//!
//! Layout of a chunk (bits are written most significant first):
//!
//! ```text
//! count    u16 big-endian      samples in the chunk
//! sample 0 varint(zigzag t0)   64 raw bits of v0
//! sample 1 uvarint(t1 - t0)    xor(v1)
//! sample n dod(tn)             xor(vn)
//!
//! dod  '0'                  delta unchanged
//!      '10'   + 7 bits      -64 ..= 63 ms          scrape jitter
//!      '110'  + 14 bits     -8192 ..= 8191 ms
//!      '1110' + 24 bits     about +-2.3 h          missed scrapes, restarts
//!      '1111' + 64 bits     anything else
//! xor  '0'                  value bits unchanged
//!      '10' + meaningful    xor fits the previous leading/trailing-zero window
//!      '11' + 5 bits leading zeros + 6 bits length (0 means 64) + meaningful
//! ```
//!
//! Prometheus's buckets are 14/17/20 bits; ours give scrape jitter a 9-bit
//! code instead of 16, because jittered timestamps are common and cost the
//! most bits after the value. All timestamp arithmetic wraps, so every i64
//! sequence (even a decreasing one) round-trips, and every f64 is stored as
//! its bit pattern, so NaN payloads and the staleness marker survive exactly.
//!
//! The decoder never panics, whatever the bytes: chunks will be read back from
//! disk one day, and a torn write must become an error, not a crash.

use crate::sample::Sample;

/// Bytes before the bit stream: the sample count.
const HEADER_LEN: usize = 2;

/// The most samples a chunk can hold, bounded by its `u16` count.
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// `leading` value meaning "no XOR window yet", so the first non-zero XOR
/// always writes a full window.
const NO_WINDOW: u8 = u8::MAX;

/// Why bytes could not be decoded as a chunk.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk ends before its {count} samples (decoded {decoded})")]
    Truncated { count: u16, decoded: u16 },
    #[error("chunk varint overflows 64 bits")]
    VarintOverflow,
    #[error("chunk reuses an XOR window before defining one")]
    NoWindow,
    #[error("chunk XOR window of {leading} leading and {len} meaningful bits exceeds 64")]
    BadWindow { leading: u32, len: u32 },
    #[error("chunk list framing is corrupt")]
    Framing,
}

/// Bytes reserved by a series' first append.
const FIRST_CHUNK_BYTES: usize = 64;

/// Builds one chunk sample by sample. Appends leave the header's count
/// stale: once a chunk outgrows a cache line, its header and its tail sit in
/// different lines, and storing the count on every append cost a second
/// cache miss per sample when a scrape walks thousands of series. Readers
/// get a valid chunk from [`ChunkAppender::bytes`], which writes the count
/// first, and decode it in place, without copying.
#[derive(Clone, Debug)]
pub struct ChunkAppender {
    buf: Vec<u8>,
    /// Unused low bits of the last byte of `buf`.
    free_bits: u8,
    /// A copy of the last byte of `buf`. Appends only ever store into the
    /// buffer, never load from it: across a scrape's thousands of series a
    /// load of the buffer's tail is a cache miss the CPU must wait for,
    /// while a store is not.
    last_byte: u8,
    leading: u8,
    trailing: u8,
    count: u16,
    t: i64,
    t_delta: i64,
    v: u64,
}

impl Default for ChunkAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkAppender {
    /// An empty chunk; allocates nothing until the first append.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty chunk with room for `bytes` of encoded samples, for a series
    /// whose previous chunk shows how large the next one will be.
    pub fn with_capacity(bytes: usize) -> Self {
        ChunkAppender {
            buf: Vec::with_capacity(bytes),
            free_bits: 0,
            last_byte: 0,
            leading: NO_WINDOW,
            trailing: 0,
            count: 0,
            t: 0,
            t_delta: 0,
            v: 0,
        }
    }

    /// Samples appended so far.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether another sample fits under the `u16` count.
    pub fn is_full(&self) -> bool {
        self.len() >= MAX_SAMPLES
    }

    /// The encoded chunk (empty when no sample was appended), its header
    /// brought up to date.
    pub fn bytes(&mut self) -> &[u8] {
        if let Some(header) = self.buf.first_chunk_mut::<HEADER_LEN>() {
            *header = self.count.to_be_bytes();
        }
        &self.buf
    }

    /// Timestamp of the first sample, read without the header.
    pub fn first_time(&self) -> Option<i64> {
        let stream = self.buf.get(HEADER_LEN..)?;
        ChunkIter::from_stream(self.count, stream).next()?.ok().map(|s| s.t)
    }

    /// The address of the last byte (0 before any sample), which the next
    /// append writes to; for prefetching only.
    pub fn tail_address(&self) -> usize {
        (self.buf.as_ptr() as usize).wrapping_add(self.buf.len().saturating_sub(1))
    }

    /// Timestamp and value bits of the newest sample, if any.
    pub fn last(&self) -> Option<(i64, u64)> {
        (self.count > 0).then_some((self.t, self.v))
    }

    /// Heap bytes held, counting unused capacity.
    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends a sample. Any timestamp order encodes; keeping them increasing
    /// is the caller's business.
    ///
    /// # Panics
    /// When the chunk already holds [`MAX_SAMPLES`]; check [`Self::is_full`].
    pub fn append(&mut self, t: i64, v: f64) {
        assert!(!self.is_full(), "chunk holds {MAX_SAMPLES} samples already");
        let v = v.to_bits();
        match self.count {
            0 => {
                // A series' first chunk has no predecessor to size it by
                // (later ones do, see `with_capacity`): 64 bytes hold about
                // 40 samples of a typical series, sparing the small steps
                // of growing from nothing. Prometheus starts its at 128.
                self.reserve(FIRST_CHUNK_BYTES);
                self.buf.extend_from_slice(&[0, 0]);
                self.write_varint(zigzag(t));
                self.write_wide(v, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                self.write_varint(delta as u64);
                self.write_xor(v);
                self.t_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                self.write_dod(delta.wrapping_sub(self.t_delta));
                self.write_xor(v);
                self.t_delta = delta;
            }
        }
        self.t = t;
        self.v = v;
        self.count += 1;
    }

    /// Prefix and payload go out in one write where they fit.
    fn write_dod(&mut self, dod: i64) {
        let d = dod as u64;
        match dod {
            0 => self.write_bits(0, 1),
            _ if fits_signed(dod, 7) => self.write_bits(0b10 << 7 | d & 0x7f, 9),
            _ if fits_signed(dod, 14) => self.write_bits(0b110 << 14 | d & 0x3fff, 17),
            _ if fits_signed(dod, 24) => self.write_bits(0b1110 << 24 | d & 0xff_ffff, 28),
            _ => {
                self.write_bits(0b1111, 4);
                self.write_wide(d, 64);
            }
        }
    }

    fn write_xor(&mut self, v: u64) {
        let x = v ^ self.v;
        if x == 0 {
            self.write_bits(0, 1);
            return;
        }
        // 5 bits hold the leading count; more zeros are written as meaningful.
        let leading = x.leading_zeros().min(31);
        let trailing = x.trailing_zeros();
        let len = 64 - leading - trailing;
        if self.leading != NO_WINDOW
            && leading >= u32::from(self.leading)
            && trailing >= u32::from(self.trailing)
        {
            let window = 64 - u32::from(self.leading) - u32::from(self.trailing);
            // Gorilla always reuses a fitting window; when the old window is
            // much wider than the new value needs, a fresh header is cheaper.
            if window <= len + 11 {
                let bits = x >> self.trailing;
                if window <= 54 {
                    self.write_bits(0b10 << window | bits, window + 2);
                } else {
                    self.write_bits(0b10, 2);
                    self.write_wide(bits, window);
                }
                return;
            }
        }
        // '11', 5 bits of leading zeros, 6 of length (64 does not fit in 6
        // bits and is written as 0, which never occurs otherwise).
        let header = 0b11 << 11 | u64::from(leading) << 6 | u64::from(len & 63);
        let bits = x >> trailing;
        if len <= 43 {
            self.write_bits(header << len | bits, 13 + len);
        } else {
            self.write_bits(header, 13);
            self.write_wide(bits, len);
        }
        self.leading = leading as u8;
        self.trailing = trailing as u8;
    }

    fn write_varint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.write_bits((x as u8 | 0x80).into(), 8);
            x >>= 7;
        }
        self.write_bits(x, 8);
    }

    /// Writes the low `n` bits of `value`, 1 to 64 of them.
    fn write_wide(&mut self, value: u64, n: u32) {
        if n > 56 {
            self.write_bits(value >> 32, n - 32);
            self.write_bits(value, 32);
        } else {
            self.write_bits(value, n);
        }
    }

    /// Writes the low `n` bits of `value` (at most 56), most significant
    /// first: merges them with the used bits of the last byte into one word
    /// and stores its leading bytes.
    #[inline]
    fn write_bits(&mut self, value: u64, n: u32) {
        let value = value & ((1 << n) - 1);
        let free = u32::from(self.free_bits);
        let (head, used) = match free {
            0 => (0, 0),
            _ => {
                self.buf.truncate(self.buf.len().saturating_sub(1));
                (u64::from(self.last_byte) >> free, 8 - free)
            }
        };
        let total = used + n;
        let word = (head << n | value) << (64 - total);
        let bytes = total.div_ceil(8);
        // Store all eight bytes and cut back: a fixed-size copy is one move,
        // a variable-size one a call to memcpy.
        let len = self.buf.len() + bytes as usize;
        self.reserve(8);
        self.buf.extend_from_slice(&word.to_be_bytes());
        self.buf.truncate(len);
        // The last byte stored: byte `bytes - 1` of the word, big-endian.
        self.last_byte = (word >> (64 - 8 * bytes)) as u8;
        self.free_bits = (bytes * 8 - total) as u8;
    }

    /// Grows the buffer in steps of about a quarter: doubling would leave up
    /// to half of every open chunk unused, and 100k open chunks add up.
    fn reserve(&mut self, additional: usize) {
        let len = self.buf.len();
        if self.buf.capacity() - len < additional {
            self.buf.reserve_exact(additional.max(32).max(len / 4));
        }
    }
}

fn fits_signed(x: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&x)
}

pub(super) use crate::varint::{unzigzag, zigzag};

/// Sign-extends the low `bits` bits of `x`.
fn sign_extend(x: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((x << shift) as i64) >> shift
}

/// Reads bits most significant first. Reading past the end yields zeros and
/// sets `overrun`, which the decoder checks once per sample instead of after
/// every field.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Buffered bits, aligned to the top.
    acc: u64,
    bits: u32,
    overrun: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0, acc: 0, bits: 0, overrun: false }
    }

    /// Tops the buffer up to at least 56 bits while data lasts. Loading a
    /// whole word may also bring in the first bits of the next byte; they are
    /// the same bits the next refill ORs in again, so they do no harm.
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.pos..self.pos + 8)
            && let Ok(word) = <[u8; 8]>::try_from(word)
        {
            self.acc |= u64::from_be_bytes(word) >> self.bits;
            let whole = (63 - self.bits) / 8;
            self.pos += whole as usize;
            self.bits += whole * 8;
            return;
        }
        while self.bits <= 56 {
            let Some(&b) = self.data.get(self.pos) else { break };
            self.acc |= u64::from(b) << (56 - self.bits);
            self.bits += 8;
            self.pos += 1;
        }
    }

    /// Makes `n` (at most 56) bits available, or marks the overrun.
    #[inline(always)]
    fn ensure(&mut self, n: u32) {
        if self.bits < n {
            self.refill();
            if self.bits < n {
                self.overrun = true;
                // Pretend the missing bits are zeros so callers stay simple.
                self.bits = n;
            }
        }
    }

    /// The next `n` bits, 1 to 56 of them.
    #[inline(always)]
    fn take(&mut self, n: u32) -> u64 {
        self.ensure(n);
        let v = self.acc >> (64 - n);
        self.acc <<= n;
        self.bits -= n;
        v
    }

    /// The next `n` bits, 1 to 64 of them.
    #[inline(always)]
    fn take_wide(&mut self, n: u32) -> u64 {
        if n <= 56 {
            return self.take(n);
        }
        let high = self.take(n - 32);
        high << 32 | self.take(32)
    }

    /// Counts leading one bits and consumes them with the zero ending them,
    /// stopping after `max` (at most 8) ones: the prefix codes, in one step.
    #[inline(always)]
    fn take_ones(&mut self, max: u32) -> u32 {
        // Not `ensure(max)`: a short prefix may legitimately end the data.
        if self.bits < max {
            self.refill();
        }
        // Bits past the data are zeros, so they can end a prefix but never
        // extend one.
        let ones = (!self.acc).leading_zeros().min(max);
        let len = (ones + 1).min(max);
        if len > self.bits {
            self.overrun = true;
            self.bits = len;
        }
        self.acc <<= len;
        self.bits -= len;
        ones
    }
}

/// Decodes a chunk. Yields each sample, or one error and then nothing.
pub struct ChunkIter<'a> {
    r: BitReader<'a>,
    count: u16,
    decoded: u16,
    failed: bool,
    leading: u8,
    trailing: u8,
    t: i64,
    t_delta: i64,
    v: u64,
}

impl<'a> ChunkIter<'a> {
    pub fn new(chunk: &'a [u8]) -> Self {
        let (count, stream) = match chunk {
            [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
            // Too short for a header: claim one sample so `next` reports it.
            _ => (1, &[][..]),
        };
        Self::from_stream(count, stream)
    }

    /// Decodes `count` samples from the bit stream that follows a header.
    fn from_stream(count: u16, stream: &'a [u8]) -> Self {
        ChunkIter {
            r: BitReader::new(stream),
            count,
            decoded: 0,
            failed: false,
            leading: NO_WINDOW,
            trailing: 0,
            t: 0,
            t_delta: 0,
            v: 0,
        }
    }

    /// Samples the header announces.
    pub fn sample_count(&self) -> u16 {
        self.count
    }

    /// Decodes the next sample into `t` and `v`; the caller checks `count`.
    #[inline(always)]
    fn advance(&mut self) -> Result<(), ChunkError> {
        if self.decoded >= 2 {
            let dod = match self.r.take_ones(4) {
                0 => 0,
                1 => sign_extend(self.r.take(7), 7),
                2 => sign_extend(self.r.take(14), 14),
                3 => sign_extend(self.r.take(24), 24),
                _ => self.r.take_wide(64) as i64,
            };
            self.t_delta = self.t_delta.wrapping_add(dod);
            self.t = self.t.wrapping_add(self.t_delta);
            self.read_xor()?;
        } else if self.decoded == 0 {
            self.t = unzigzag(self.read_varint()?);
            self.v = self.r.take_wide(64);
        } else {
            self.t_delta = self.read_varint()? as i64;
            self.t = self.t.wrapping_add(self.t_delta);
            self.read_xor()?;
        }
        if self.r.overrun {
            return Err(ChunkError::Truncated { count: self.count, decoded: self.decoded });
        }
        self.decoded += 1;
        Ok(())
    }

    fn sample(&self) -> Sample {
        Sample { t: self.t, v: f64::from_bits(self.v) }
    }

    #[inline(always)]
    fn read_xor(&mut self) -> Result<(), ChunkError> {
        match self.r.take_ones(2) {
            0 => return Ok(()),
            1 if self.leading == NO_WINDOW => return Err(ChunkError::NoWindow),
            1 => {}
            _ => {
                // 5 bits of leading zeros, 6 of length, read as one field.
                let header = self.r.take(11) as u32;
                let leading = header >> 6;
                let len = match header & 63 {
                    0 => 64,
                    n => n,
                };
                if leading + len > 64 {
                    return Err(ChunkError::BadWindow { leading, len });
                }
                self.leading = leading as u8;
                self.trailing = (64 - leading - len) as u8;
            }
        }
        let len = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.r.take_wide(len);
        self.v ^= bits << self.trailing;
        Ok(())
    }

    fn read_varint(&mut self) -> Result<u64, ChunkError> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.r.take(8);
            // The tenth byte may only carry the single top bit.
            if shift == 63 && byte > 1 {
                return Err(ChunkError::VarintOverflow);
            }
            x |= (byte & 0x7f) << shift;
            if byte < 0x80 || self.r.overrun {
                return Ok(x);
            }
        }
        Err(ChunkError::VarintOverflow)
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<Sample, ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.decoded >= self.count {
            return None;
        }
        let r = self.advance();
        self.failed = r.is_err();
        Some(r.map(|()| self.sample()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.failed { 0 } else { usize::from(self.count - self.decoded) };
        (0, Some(left))
    }
}

/// Timestamp of a chunk's first sample, read without decoding the rest.
pub fn first_time(chunk: &[u8]) -> Result<i64, ChunkError> {
    ChunkIter::new(chunk)
        .next()
        .unwrap_or(Err(ChunkError::Truncated { count: 0, decoded: 0 }))
        .map(|s| s.t)
}

/// Appends the samples of `chunk` with `mint <= t <= maxt` to `out`. Stops at
/// the first sample past `maxt`, so timestamps must be increasing.
pub fn decode_range(
    chunk: &[u8],
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
) -> Result<(), ChunkError> {
    // Drives the decoder directly: going through `Iterator` costs a fifth of
    // the decoding time in moving `Option<Result<Sample, _>>` around.
    let mut it = ChunkIter::new(chunk);
    out.reserve(usize::from(it.count));
    while it.decoded < it.count {
        it.advance()?;
        if it.t > maxt {
            break;
        }
        if it.t >= mint {
            out.push(it.sample());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{STALE_NAN, STALE_NAN_BITS};
    use proptest::prelude::*;

    fn encode(samples: &[(i64, u64)]) -> ChunkAppender {
        let mut a = ChunkAppender::new();
        for &(t, v) in samples {
            a.append(t, f64::from_bits(v));
        }
        a
    }

    fn decode(bytes: &[u8]) -> Result<Vec<(i64, u64)>, ChunkError> {
        ChunkIter::new(bytes).map(|s| s.map(|s| (s.t, s.v.to_bits()))).collect()
    }

    #[test]
    fn empty_chunk_has_no_bytes_and_decodes_as_an_error() {
        let mut a = ChunkAppender::new();
        assert!(a.bytes().is_empty());
        assert_eq!(a.last(), None);
        assert!(decode(a.bytes()).is_err());
        assert_eq!(decode(&[0, 0]), Ok(vec![]));
    }

    #[test]
    fn reads_between_appends_see_every_sample_so_far() {
        // Appends leave the header stale; every read must still get a chunk
        // whose count matches, also from a copy taken mid-way.
        let mut a = ChunkAppender::new();
        let mut expected = Vec::new();
        for i in 0..300i64 {
            let s = (1_000 + i * 15_000 + i % 3, (i as f64 * 1.5).to_bits());
            a.append(s.0, f64::from_bits(s.1));
            expected.push(s);
            if i % 7 == 0 {
                assert_eq!(decode(a.bytes()).unwrap(), expected);
                let mut copy = a.clone();
                assert_eq!(decode(copy.bytes()).unwrap(), expected);
            }
            assert_eq!(a.first_time(), Some(1_000));
        }
        assert_eq!(decode(a.bytes()).unwrap(), expected);
        assert_eq!(ChunkAppender::new().first_time(), None);
    }

    #[test]
    fn regular_scrapes_cost_about_one_bit_per_timestamp() {
        let samples: Vec<_> =
            (0..120).map(|i| (1_700_000_000_000 + i * 15_000, 1.0f64.to_bits())).collect();
        let mut a = encode(&samples);
        assert_eq!(decode(a.bytes()).unwrap(), samples);
        // Header, t0, v0, delta, then two bits per sample (dod '0', xor '0').
        assert!(a.bytes().len() <= 2 + 6 + 8 + 3 + 2 * 120 / 8 + 1, "{}", a.bytes().len());
    }

    #[test]
    fn special_floats_survive_bit_exactly() {
        let weird_nan = 0x7ff8_dead_beef_0001u64;
        let values = [
            STALE_NAN_BITS,
            f64::NAN.to_bits(),
            weird_nan,
            (-0.0f64).to_bits(),
            0.0f64.to_bits(),
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
            1u64, // smallest subnormal
            STALE_NAN_BITS,
        ];
        let samples: Vec<_> = values.iter().enumerate().map(|(i, &v)| (i as i64, v)).collect();
        let mut a = encode(&samples);
        let back = decode(a.bytes()).unwrap();
        assert_eq!(back, samples);
        assert!(crate::sample::is_stale_nan(f64::from_bits(back[0].1)));
        assert_eq!(a.last(), Some((9, STALE_NAN.to_bits())));
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        let samples = [(i64::MIN, 0), (i64::MAX, 1), (0, 2), (i64::MIN, 3), (-1, 4), (i64::MAX, 5)];
        assert_eq!(decode(encode(&samples).bytes()).unwrap(), samples);
    }

    #[test]
    fn every_dod_bucket_round_trips() {
        let mut t = 0i64;
        let mut delta = 1000i64;
        let mut samples = vec![(t, 0)];
        for dod in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            -8192,
            8192,
            (1 << 23) - 1,
            -(1 << 23),
            1 << 23,
            1 << 40,
        ] {
            delta += dod;
            t += delta;
            samples.push((t, 0));
        }
        assert_eq!(decode(encode(&samples).bytes()).unwrap(), samples);
    }

    #[test]
    fn window_reuse_and_renewal_round_trip() {
        // Alternate narrow and wide XORs so both window paths are taken.
        let vals = [1.0f64, 1.5, 1.25, 1e300, 1e300, 1.0000001, 2.0, -2.0, 3.0, 3.0];
        let samples: Vec<_> =
            vals.iter().enumerate().map(|(i, v)| (i as i64, v.to_bits())).collect();
        assert_eq!(decode(encode(&samples).bytes()).unwrap(), samples);
    }

    #[test]
    fn truncated_chunks_are_errors_not_panics() {
        let samples: Vec<_> =
            (0..50).map(|i| (i * 1000 + i % 7, (i as f64 * 1.1).to_bits())).collect();
        let mut a = encode(&samples);
        for cut in 0..a.bytes().len() {
            let r = decode(&a.bytes()[..cut]);
            assert!(r.is_err(), "cut at {cut} decoded {r:?}");
        }
    }

    #[test]
    fn reused_window_before_any_is_an_error() {
        // count 2, t0 = 0, v0 = 0, delta 1, then xor '10' with no window.
        let mut bytes = vec![0, 2, 0];
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[1, 0b1000_0000]);
        assert_eq!(decode(&bytes), Err(ChunkError::NoWindow));
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let mut bytes = vec![0, 1];
        bytes.extend_from_slice(&[0xff; 11]);
        assert_eq!(decode(&bytes), Err(ChunkError::VarintOverflow));
    }

    #[test]
    fn decode_range_filters_and_stops_early() {
        let samples: Vec<_> = (0..10).map(|i| (i * 10, (i as f64).to_bits())).collect();
        let mut a = encode(&samples);
        let mut out = Vec::new();
        decode_range(a.bytes(), 25, 60, &mut out).unwrap();
        assert_eq!(out.iter().map(|s| s.t).collect::<Vec<_>>(), vec![30, 40, 50, 60]);
        assert_eq!(first_time(a.bytes()), Ok(0));
    }

    fn realistic() -> impl Strategy<Value = Vec<(i64, u64)>> {
        let step = prop_oneof![Just(15_000i64), 14_990i64..15_010, 1i64..100_000_000];
        let value = prop_oneof![
            Just(STALE_NAN_BITS),
            (0u32..1000).prop_map(|x| f64::from(x).to_bits()),
            any::<f64>().prop_map(f64::to_bits),
        ];
        (any::<i64>(), prop::collection::vec((step, value), 0..300)).prop_map(|(t0, steps)| {
            let mut t = t0 / 2;
            steps
                .into_iter()
                .map(|(dt, v)| {
                    t = t.wrapping_add(dt);
                    (t, v)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn arbitrary_samples_round_trip(samples in prop::collection::vec((any::<i64>(), any::<u64>()), 0..300)) {
            let mut a = encode(&samples);
            if samples.is_empty() {
                prop_assert!(a.bytes().is_empty());
            } else {
                prop_assert_eq!(decode(a.bytes()).unwrap(), samples);
            }
        }

        #[test]
        fn realistic_samples_round_trip(samples in realistic()) {
            let mut a = encode(&samples);
            if !samples.is_empty() {
                prop_assert_eq!(decode(a.bytes()).unwrap(), samples.clone());
                prop_assert_eq!(a.last(), samples.last().copied());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let n = ChunkIter::new(&bytes).take(100_000).count();
            prop_assert!(n <= usize::from(u16::MAX));
            let _ = first_time(&bytes);
            let _ = decode_range(&bytes, i64::MIN, i64::MAX, &mut Vec::new());
        }

        #[test]
        fn corrupted_chunks_never_panic(samples in realistic(), flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4)) {
            let mut a = encode(&samples);
            let mut bytes = a.bytes().to_vec();
            if !bytes.is_empty() {
                for (i, bit) in flips {
                    let i = i.index(bytes.len());
                    bytes[i] ^= 1 << bit;
                }
            }
            let _ = decode(&bytes);
        }
    }
}
