//! Protobuf wire primitives for the encoded-form editor (and for readers of encoded data such as
//! the `prometheus` exporter): an iterator over one message's fields that hands out each field's
//! raw bytes (so unchanged fields are copied, never re-encoded) and the value of a number field,
//! and writers for keys, length-delimited fields and nested messages whose length is known only
//! after their contents are written.
//!
//! The bytes walked here were validated on receipt (`wire::validate`), so a malformed field means
//! the caller handed in something else; it is reported as [`Unsupported`] and the caller falls
//! back to the decoded path, which reports the real error. Groups (wire types 3 and 4) are valid
//! but never produced by OpenTelemetry SDKs; they are left to the decoded path too.

use std::ops::Range;

/// The encoded path cannot handle this input; the decoded path must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// Wire type of length-delimited fields (strings, bytes, messages).
pub const LEN: u8 = 2;

/// One field of a message.
#[derive(Debug, Clone)]
pub struct Field<'a> {
    /// Field number.
    pub tag: u32,
    /// Wire type.
    pub wire_type: u8,
    /// Where the whole field (key, length, contents) sits in the message.
    pub span: Range<usize>,
    /// The contents of a length-delimited field; empty for other wire types.
    pub payload: &'a [u8],
    /// The value of a varint, fixed64 or fixed32 field (little-endian bits); 0 for
    /// length-delimited fields.
    pub value: u64,
}

/// Iterates over the fields of one message.
#[derive(Debug)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    /// Fields of `buf`, one encoded message.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, Unsupported> {
        match self.buf.get(self.pos) {
            Some(&byte) if byte < 0x80 => {
                self.pos += 1;
                Ok(u64::from(byte))
            }
            _ => {
                let mut value = 0u64;
                for (i, &byte) in self.buf.get(self.pos..).ok_or(Unsupported)?.iter().take(10).enumerate() {
                    value |= u64::from(byte & 0x7f) << (7 * i);
                    if byte < 0x80 {
                        self.pos += i + 1;
                        return Ok(value);
                    }
                }
                Err(Unsupported)
            }
        }
    }

    /// A little-endian fixed-width value of `N` bytes.
    #[inline]
    fn fixed<const N: usize>(&mut self) -> Result<u64, Unsupported> {
        let from = self.pos;
        self.skip(N as u64)?;
        let mut bytes = [0u8; 8];
        bytes[..N].copy_from_slice(&self.buf[from..self.pos]);
        Ok(u64::from_le_bytes(bytes))
    }

    #[inline]
    fn skip(&mut self, len: u64) -> Result<(), Unsupported> {
        if len > (self.buf.len() - self.pos) as u64 {
            return Err(Unsupported);
        }
        self.pos += len as usize;
        Ok(())
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Unsupported>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let field = (|| {
            let key = self.varint()?;
            let (tag, wire_type) = ((key >> 3) as u32, (key & 7) as u8);
            let mut payload: &'a [u8] = &[];
            let mut value = 0;
            match wire_type {
                0 => value = self.varint()?,
                1 => value = self.fixed::<8>()?,
                LEN => {
                    let len = self.varint()?;
                    let from = self.pos;
                    self.skip(len)?;
                    payload = &self.buf[from..self.pos];
                }
                5 => value = self.fixed::<4>()?,
                _ => return Err(Unsupported),
            }
            Ok(Field { tag, wire_type, span: start..self.pos, payload, value })
        })();
        if field.is_err() {
            // Stop after an error: the rest cannot be framed.
            self.pos = self.buf.len();
        }
        Some(field)
    }
}

/// Appends a varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes a varint of `v` takes.
#[inline]
pub fn varint_len(v: u64) -> usize {
    // 1 byte per started 7 bits; 0 takes one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends a length-delimited field: key, length, contents.
#[inline]
pub fn put_len_field(out: &mut Vec<u8>, tag: u32, contents: &[u8]) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(LEN));
    put_varint(out, contents.len() as u64);
    out.extend_from_slice(contents);
}

/// Encoded size of a length-delimited field with `len` bytes of contents.
#[inline]
pub fn len_field_size(tag: u32, len: usize) -> usize {
    varint_len((u64::from(tag) << 3) | u64::from(LEN)) + varint_len(len as u64) + len
}

/// A nested message being written: its contents start at `at`, after `width` bytes reserved for
/// the length.
#[must_use = "close() writes the length"]
#[derive(Debug)]
pub struct Open {
    at: usize,
    width: usize,
}

/// Starts a nested message field `tag`, reserving room for a length like `expected` (the size it
/// had on receipt, which it usually keeps).
#[inline]
pub fn open(out: &mut Vec<u8>, tag: u32, expected: usize) -> Open {
    put_varint(out, (u64::from(tag) << 3) | u64::from(LEN));
    let width = varint_len(expected as u64);
    out.resize(out.len() + width, 0);
    Open { at: out.len(), width }
}

/// Ends a nested message: writes its length, moving the contents when the length needs more or
/// fewer bytes than reserved (rare: only when the message crossed a power of 128).
#[inline]
pub fn close(out: &mut Vec<u8>, open: Open) {
    let len = (out.len() - open.at) as u64;
    let width = varint_len(len);
    let mut tmp = [0u8; 10];
    let mut v = len;
    for slot in tmp.iter_mut().take(width) {
        *slot = (v as u8 & 0x7f) | if v >= 0x80 { 0x80 } else { 0 };
        v >>= 7;
    }
    if width == open.width {
        out[open.at - width..open.at].copy_from_slice(&tmp[..width]);
    } else {
        out.splice(open.at - open.width..open.at, tmp[..width].iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_the_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn close_widens_and_narrows_the_length() {
        for (expected, actual) in [(5, 5), (5, 300), (300, 5), (20_000, 3)] {
            let mut out = vec![0xAA];
            let o = open(&mut out, 2, expected);
            out.extend(std::iter::repeat_n(7u8, actual));
            close(&mut out, o);
            let mut fields = Fields::new(&out[1..]);
            let f = fields.next().unwrap().unwrap();
            assert_eq!((f.tag, f.wire_type, f.payload.len()), (2, LEN, actual));
            assert!(fields.next().is_none());
            assert_eq!(out[0], 0xAA);
        }
    }

    #[test]
    fn truncated_fields_are_unsupported_not_a_panic() {
        let mut f = Fields::new(&[0x0a, 0x05, 1, 2]);
        assert_eq!(f.next().unwrap().unwrap_err(), Unsupported);
        assert!(f.next().is_none());
        assert!(Fields::new(&[0x0b]).next().unwrap().is_err(), "groups are left to the decoded path");
    }
}
