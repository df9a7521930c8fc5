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
//!      '10'   + 7 bits      |dod| < 2^6    scrape jitter of a few ms
//!      '110'  + 14 bits     |dod| < 2^13
//!      '1110' + 24 bits     |dod| < 2^23   gaps of up to ~2.3 h
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

/// Builds one chunk sample by sample. The buffer is a valid chunk after every
/// append, so a reader can decode the open chunk without copying it.
#[derive(Debug)]
pub struct ChunkAppender {
    buf: Vec<u8>,
    /// Unused low bits of the last byte of `buf`.
    free_bits: u8,
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
        ChunkAppender {
            buf: Vec::new(),
            free_bits: 0,
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

    /// The encoded chunk (empty when no sample was appended).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
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
                self.reserve(HEADER_LEN + 10 + 8);
                self.buf.extend_from_slice(&[0, 0]);
                self.write_varint(zigzag(t));
                self.write_bits(v, 64);
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
        self.buf[..HEADER_LEN].copy_from_slice(&self.count.to_be_bytes());
    }

    fn write_dod(&mut self, dod: i64) {
        match dod {
            0 => self.write_bits(0, 1),
            d if fits_signed(d, 7) => {
                self.write_bits(0b10, 2);
                self.write_bits(d as u64, 7);
            }
            d if fits_signed(d, 14) => {
                self.write_bits(0b110, 3);
                self.write_bits(d as u64, 14);
            }
            d if fits_signed(d, 24) => {
                self.write_bits(0b1110, 4);
                self.write_bits(d as u64, 24);
            }
            d => {
                self.write_bits(0b1111, 4);
                self.write_bits(d as u64, 64);
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
                self.write_bits(0b10, 2);
                self.write_bits(x >> self.trailing, window);
                return;
            }
        }
        self.write_bits(0b11, 2);
        self.write_bits(u64::from(leading), 5);
        // A 6-bit field cannot hold 64; 0 stands for it since 0 never occurs.
        self.write_bits(u64::from(len & 63), 6);
        self.write_bits(x >> trailing, len);
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

    /// Writes the low `n` bits of `value`, most significant first.
    fn write_bits(&mut self, value: u64, mut n: u32) {
        while n > 0 {
            if self.free_bits == 0 {
                self.reserve(1);
                self.buf.push(0);
                self.free_bits = 8;
            }
            let take = n.min(u32::from(self.free_bits));
            n -= take;
            let bits = ((value >> n) & ((1 << take) - 1)) as u8;
            self.free_bits -= take as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= bits << self.free_bits;
            }
        }
    }

    /// Grows the buffer in steps of about a quarter: doubling would leave up
    /// to half of every open chunk unused, and 100k open chunks add up.
    fn reserve(&mut self, additional: usize) {
        let len = self.buf.len();
        if self.buf.capacity() - len < additional {
            self.buf.reserve_exact(additional.max(16).max(len / 4));
        }
    }
}

fn fits_signed(x: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&x)
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

/// Sign-extends the low `bits` bits of `x`.
fn sign_extend(x: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((x << shift) as i64) >> shift
}

/// Reads bits most significant first.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Buffered bits, aligned to the top.
    acc: u64,
    bits: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0, acc: 0, bits: 0 }
    }

    fn refill(&mut self) {
        while self.bits <= 56 {
            let Some(&b) = self.data.get(self.pos) else { break };
            self.acc |= u64::from(b) << (56 - self.bits);
            self.bits += 8;
            self.pos += 1;
        }
    }

    /// `n` bits (at most 64), or `None` at the end of the data.
    fn read(&mut self, n: u32) -> Option<u64> {
        if n > 56 {
            let high = self.read(n - 32)?;
            let low = self.read(32)?;
            return Some(high << 32 | low);
        }
        if n == 0 {
            return Some(0);
        }
        if self.bits < n {
            self.refill();
            if self.bits < n {
                return None;
            }
        }
        let v = self.acc >> (64 - n);
        self.acc <<= n;
        self.bits -= n;
        Some(v)
    }

    fn read_bit(&mut self) -> Option<bool> {
        self.read(1).map(|b| b == 1)
    }

    /// Counts leading one bits, stopping after `max`.
    fn read_ones(&mut self, max: u32) -> Option<u32> {
        let mut n = 0;
        while n < max && self.read_bit()? {
            n += 1;
        }
        Some(n)
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

    fn decode_next(&mut self) -> Result<Sample, ChunkError> {
        let truncated = self.truncated();
        match self.decoded {
            0 => {
                self.t = unzigzag(self.read_varint()?);
                self.v = self.r.read(64).ok_or_else(truncated)?;
            }
            1 => {
                self.t_delta = self.read_varint()? as i64;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_xor()?;
            }
            _ => {
                let dod = match self.r.read_ones(4).ok_or_else(truncated)? {
                    0 => 0,
                    1 => sign_extend(self.r.read(7).ok_or_else(truncated)?, 7),
                    2 => sign_extend(self.r.read(14).ok_or_else(truncated)?, 14),
                    3 => sign_extend(self.r.read(24).ok_or_else(truncated)?, 24),
                    _ => self.r.read(64).ok_or_else(truncated)? as i64,
                };
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_xor()?;
            }
        }
        self.decoded += 1;
        Ok(Sample { t: self.t, v: f64::from_bits(self.v) })
    }

    /// Builds the error for running out of bits at the current sample.
    fn truncated(&self) -> impl Fn() -> ChunkError + Copy + use<> {
        let (count, decoded) = (self.count, self.decoded);
        move || ChunkError::Truncated { count, decoded }
    }

    fn read_xor(&mut self) -> Result<(), ChunkError> {
        let truncated = self.truncated();
        if !self.r.read_bit().ok_or_else(truncated)? {
            return Ok(());
        }
        if self.r.read_bit().ok_or_else(truncated)? {
            let leading = self.r.read(5).ok_or_else(truncated)? as u32;
            let len = match self.r.read(6).ok_or_else(truncated)? as u32 {
                0 => 64,
                n => n,
            };
            if leading + len > 64 {
                return Err(ChunkError::BadWindow { leading, len });
            }
            self.leading = leading as u8;
            self.trailing = (64 - leading - len) as u8;
        } else if self.leading == NO_WINDOW {
            return Err(ChunkError::NoWindow);
        }
        let len = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.r.read(len).ok_or_else(truncated)?;
        self.v ^= bits << self.trailing;
        Ok(())
    }

    fn read_varint(&mut self) -> Result<u64, ChunkError> {
        let truncated = self.truncated();
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.r.read(8).ok_or_else(truncated)?;
            // The tenth byte may only carry the single top bit.
            if shift == 63 && byte > 1 {
                return Err(ChunkError::VarintOverflow);
            }
            x |= (byte & 0x7f) << shift;
            if byte < 0x80 {
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
        let r = self.decode_next();
        self.failed = r.is_err();
        Some(r)
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
    let it = ChunkIter::new(chunk);
    out.reserve(usize::from(it.sample_count()));
    for s in it {
        let s = s?;
        if s.t > maxt {
            break;
        }
        if s.t >= mint {
            out.push(s);
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
        let a = ChunkAppender::new();
        assert!(a.bytes().is_empty());
        assert_eq!(a.last(), None);
        assert!(decode(a.bytes()).is_err());
        assert_eq!(decode(&[0, 0]), Ok(vec![]));
    }

    #[test]
    fn regular_scrapes_cost_about_one_bit_per_timestamp() {
        let samples: Vec<_> =
            (0..120).map(|i| (1_700_000_000_000 + i * 15_000, 1.0f64.to_bits())).collect();
        let a = encode(&samples);
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
        let a = encode(&samples);
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
        let a = encode(&samples);
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
        let a = encode(&samples);
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
            let a = encode(&samples);
            if samples.is_empty() {
                prop_assert!(a.bytes().is_empty());
            } else {
                prop_assert_eq!(decode(a.bytes()).unwrap(), samples);
            }
        }

        #[test]
        fn realistic_samples_round_trip(samples in realistic()) {
            let a = encode(&samples);
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
            let a = encode(&samples);
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
