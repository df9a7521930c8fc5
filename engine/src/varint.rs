//! LEB128 varints and zigzag signed integers: the one copy the chunk
//! encoding and the host's write-ahead log share.

/// Appends `x` as a LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Reads a LEB128 varint at `*pos`, advancing it. `None` for a truncated or
/// over-long (more than 64 bits) encoding: input may be untrusted.
pub fn get_uvarint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        x |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(x);
        }
    }
    None
}

/// Maps signed to unsigned so small magnitudes stay small varints.
pub fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

pub fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_and_refuses_bad_encodings() {
        for x in [0, 1, 127, 128, 300, u64::MAX / 3, u64::MAX] {
            let mut v = Vec::new();
            put_uvarint(&mut v, x);
            let mut pos = 0;
            assert_eq!(get_uvarint(&v, &mut pos), Some(x));
            assert_eq!(pos, v.len());
            assert_eq!(get_uvarint(&v[..v.len() - 1], &mut 0), None);
        }
        assert_eq!(get_uvarint(&[0xff; 10], &mut 0), None);
        for x in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(x)), x);
        }
    }
}
