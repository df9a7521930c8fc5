//! The wire primitives: header, little-endian scalars, length-prefixed bytes and
//! 8-aligned columns. Offsets for alignment are relative to the message start,
//! which both sides place at an 8-aligned address.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::{FORMAT_VERSION, MAGIC};

/// Why bytes are not a valid message. Untrusted input ends here, never in a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends before the field at this offset.
    Truncated {
        offset: usize,
    },
    BadMagic,
    UnsupportedVersion(u16),
    WrongKind {
        expected: u8,
        found: u8,
    },
    /// A header flag, option tag or reply tag outside the defined values.
    BadTag {
        offset: usize,
        tag: u8,
    },
    InvalidUtf8 {
        offset: usize,
    },
    /// Padding before a column must be zero, so every message has one encoding.
    NonZeroPadding {
        offset: usize,
    },
    TrailingBytes {
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset } => write!(f, "message truncated at byte {offset}"),
            Self::BadMagic => f.write_str("not a tocsin ABI message (bad magic)"),
            Self::UnsupportedVersion(v) => {
                write!(f, "ABI message version {v}, expected {FORMAT_VERSION}")
            }
            Self::WrongKind { expected, found } => {
                write!(f, "expected message kind {expected}, found {found}")
            }
            Self::BadTag { offset, tag } => write!(f, "invalid tag {tag} at byte {offset}"),
            Self::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 in string at byte {offset}"),
            Self::NonZeroPadding { offset } => write!(f, "non-zero padding at byte {offset}"),
            Self::TrailingBytes { offset } => write!(f, "trailing bytes from byte {offset}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// A message of the ABI: encoded with its header, decoded strictly (the whole
/// input, exactly one encoding per value).
pub trait Message: Sized {
    /// The header's kind byte.
    const KIND: u8;

    #[doc(hidden)]
    fn write_body(&self, w: &mut Writer);
    #[doc(hidden)]
    fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The message as bytes. A single field longer than `u32::MAX` bytes cannot be
    /// represented; its length is saturated so the message fails to decode rather
    /// than silently decoding as something else (hosts cap sizes far below).
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        w.0.extend_from_slice(&MAGIC);
        w.0.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        w.0.extend_from_slice(&[Self::KIND, 0]);
        self.write_body(&mut w);
        w.0
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let kind = r.u8()?;
        if kind != Self::KIND {
            return Err(DecodeError::WrongKind { expected: Self::KIND, found: kind });
        }
        let flags_at = r.pos;
        match r.u8()? {
            0 => {}
            tag => return Err(DecodeError::BadTag { offset: flags_at, tag }),
        }
        let msg = Self::read_body(&mut r)?;
        if r.pos != bytes.len() {
            return Err(DecodeError::TrailingBytes { offset: r.pos });
        }
        Ok(msg)
    }
}

#[doc(hidden)]
pub struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub(crate) fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
        }
    }

    pub(crate) fn align8(&mut self) {
        let pad = self.0.len().next_multiple_of(8) - self.0.len();
        self.0.extend_from_slice(&[0; 8][..pad]);
    }
}

#[doc(hidden)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let out = self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.get(..n))
            .ok_or(DecodeError::Truncated { offset: self.pos })?;
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array()?)))
    }

    /// A count of items each at least `min_size` bytes long, refused when the rest
    /// of the input could not hold them: the guard that keeps a forged count from
    /// reserving gigabytes.
    pub(crate) fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.u32()? as usize;
        let remaining = self.buf.len() - self.pos;
        match n.checked_mul(min_size) {
            Some(need) if need <= remaining => Ok(n),
            _ => Err(DecodeError::Truncated { offset: at }),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1)?;
        self.take(n)
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let offset = self.pos;
        let b = self.bytes()?;
        core::str::from_utf8(b).map(String::from).map_err(|_| DecodeError::InvalidUtf8 { offset })
    }

    pub(crate) fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let offset = self.pos;
        match self.u8()? {
            0 => Ok(None),
            1 => self.bytes().map(Some),
            tag => Err(DecodeError::BadTag { offset, tag }),
        }
    }

    pub(crate) fn align8(&mut self) -> Result<(), DecodeError> {
        let offset = self.pos;
        let pad = offset.next_multiple_of(8) - offset;
        if self.take(pad)?.iter().any(|&b| b != 0) {
            return Err(DecodeError::NonZeroPadding { offset });
        }
        Ok(())
    }

    /// `n` 8-byte little-endian words, decoded with `f`. On little-endian targets
    /// (wasm32 included) this compiles to a copy of an aligned column.
    pub(crate) fn column<T>(
        &mut self,
        n: usize,
        f: fn([u8; 8]) -> T,
    ) -> Result<Vec<T>, DecodeError> {
        let raw =
            self.take(n.checked_mul(8).ok_or(DecodeError::Truncated { offset: self.pos })?)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0; 8];
                w.copy_from_slice(c);
                f(w)
            })
            .collect())
    }
}
