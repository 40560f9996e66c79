//! The on-disk format of the persistent sending queue, as pure functions (no I/O), so every
//! rule about what a crash can leave behind is unit-tested and fuzzed.
//!
//! A segment file is a sequence of records: `len: u32 LE | crc32(payload): u32 LE | payload`.
//! A payload is `signal: u8 | items: u32 LE | OTLP protobuf request`. The item count travels in
//! the payload so a restarted queue can bound itself by items without decoding anything.
//!
//! A crash can cut the last write short (a *torn tail*): [`scan`] stops at the first record
//! whose header or payload runs past the end, or whose checksum does not match, and reports
//! where the valid prefix ends; the queue truncates the file there. Nothing before that point
//! was acknowledged as anything other than what it is (records are appended in order).
//!
//! The acknowledgement pointer (`ack` file) is `position: u64 LE | crc32(position): u32 LE`:
//! a torn or missing pointer reads as "none", and the queue then resumes from its oldest
//! segment — more duplicates, never a loss.

use std::ops::Range;

use crate::config::id::Signal;

/// Bytes before each payload: length and checksum.
pub const HEADER_LEN: usize = 8;
/// Bytes before the protobuf in a payload: signal and item count.
pub const PAYLOAD_PREFIX_LEN: usize = 5;
/// Largest payload a record may claim. A length above it can only be damage (a receiver never
/// accepts a request this large), and trusting it would make a reader allocate gigabytes.
pub const MAX_PAYLOAD_LEN: usize = 256 << 20;
/// Size of the `ack` file.
pub const ACK_LEN: usize = 12;

/// Why [`scan`] stopped before the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The last record is incomplete: a write cut short by a crash.
    TornTail,
    /// A complete record whose checksum does not match, or whose length is impossible.
    Corrupt,
}

/// The result of reading a segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Whole records in order: the byte range of each record (header included).
    pub records: Vec<Range<usize>>,
    /// Where the valid prefix ends (the end of the last whole record).
    pub valid_end: usize,
    /// Why scanning stopped early, if it did.
    pub damage: Option<Damage>,
}

/// Encodes one record (header and payload) for `signal` with `items` items and the protobuf
/// request `chunks` written one after another (concatenated protobuf messages of one type
/// decode as their merge, which is how batches of encoded requests travel already).
pub fn encode(signal: Signal, items: u32, chunks: &[&[u8]]) -> Vec<u8> {
    let body: usize = chunks.iter().map(|c| c.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + PAYLOAD_PREFIX_LEN + body);
    out.extend_from_slice(&[0; HEADER_LEN]);
    out.push(signal_byte(signal));
    out.extend_from_slice(&items.to_le_bytes());
    for c in chunks {
        out.extend_from_slice(c);
    }
    let payload_len = (out.len() - HEADER_LEN) as u32;
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[..4].copy_from_slice(&payload_len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Reads the record at the start of `buf`: its total length, or why it cannot be read.
pub fn decode_one(buf: &[u8]) -> Result<usize, Damage> {
    let Some(header) = buf.get(..HEADER_LEN) else { return Err(Damage::TornTail) };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(PAYLOAD_PREFIX_LEN..=MAX_PAYLOAD_LEN).contains(&len) {
        return Err(Damage::Corrupt);
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else { return Err(Damage::TornTail) };
    if crc32fast::hash(payload) != crc {
        return Err(Damage::Corrupt);
    }
    Ok(HEADER_LEN + len)
}

/// Splits a segment's bytes into whole records, stopping at the first damaged one.
pub fn scan(buf: &[u8]) -> Scanned {
    let mut records = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match decode_one(&buf[at..]) {
            Ok(n) => {
                records.push(at..at + n);
                at += n;
            }
            Err(d) => return Scanned { records, valid_end: at, damage: Some(d) },
        }
    }
    Scanned { records, valid_end: at, damage: None }
}

/// The parts of a whole record (as [`decode_one`] accepted it): signal, items, protobuf.
/// `None` if the payload names no signal (a record written by something else).
pub fn payload(record: &[u8]) -> Option<(Signal, u32, &[u8])> {
    let p = record.get(HEADER_LEN..)?;
    let signal = match p.first()? {
        1 => Signal::Traces,
        2 => Signal::Metrics,
        3 => Signal::Logs,
        _ => return None,
    };
    let items = u32::from_le_bytes(p.get(1..5)?.try_into().ok()?);
    Some((signal, items, &p[PAYLOAD_PREFIX_LEN..]))
}

fn signal_byte(s: Signal) -> u8 {
    match s {
        Signal::Traces => 1,
        Signal::Metrics => 2,
        Signal::Logs => 3,
    }
}

/// Encodes the acknowledgement pointer.
pub fn encode_ack(position: u64) -> [u8; ACK_LEN] {
    let mut out = [0; ACK_LEN];
    out[..8].copy_from_slice(&position.to_le_bytes());
    let crc = crc32fast::hash(&position.to_le_bytes());
    out[8..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes the acknowledgement pointer; `None` when missing, torn or damaged.
pub fn decode_ack(buf: &[u8]) -> Option<u64> {
    let pos: [u8; 8] = buf.get(..8)?.try_into().ok()?;
    let crc: [u8; 4] = buf.get(8..ACK_LEN)?.try_into().ok()?;
    (crc32fast::hash(&pos) == u32::from_le_bytes(crc)).then_some(u64::from_le_bytes(pos))
}

/// Segment file name for a segment starting at logical `position`: zero-padded so names sort
/// in queue order.
pub fn segment_name(position: u64) -> String {
    format!("{position:020}.seg")
}

/// The start position a segment file name encodes; `None` for any other file.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Where reading resumes after a restart, given the segments found (`start..end` in logical
/// positions, in order) and the acknowledgement pointer. A pointer outside the segments (lost,
/// damaged, or from before the segments were removed by hand) resumes at the oldest data:
/// duplicates are acceptable, losses are not.
pub fn resume_position(segments: &[Range<u64>], ack: Option<u64>) -> u64 {
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else { return ack.unwrap_or(0) };
    match ack {
        Some(a) if a >= first.start && a <= last.end && segments.iter().any(|s| s.contains(&a) || s.end == a) => a,
        _ => first.start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(items: u32, body: &[u8]) -> Vec<u8> {
        encode(Signal::Traces, items, &[body])
    }

    #[test]
    fn records_round_trip() {
        let mut buf = rec(3, b"abc");
        buf.extend(encode(Signal::Logs, 1, &[b"x", b"yz"]));
        let s = scan(&buf);
        assert_eq!(s.damage, None);
        assert_eq!(s.valid_end, buf.len());
        assert_eq!(s.records.len(), 2);
        assert_eq!(payload(&buf[s.records[0].clone()]), Some((Signal::Traces, 3, &b"abc"[..])));
        assert_eq!(payload(&buf[s.records[1].clone()]), Some((Signal::Logs, 1, &b"xyz"[..])));
    }

    #[test]
    fn an_empty_segment_has_no_records_and_no_damage() {
        assert_eq!(scan(&[]), Scanned { records: vec![], valid_end: 0, damage: None });
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail_that_keeps_the_records_before_it() {
        let first = rec(1, b"first");
        let second = rec(2, b"second record");
        let mut buf = first.clone();
        buf.extend(&second);
        for cut in first.len() + 1..buf.len() {
            let s = scan(&buf[..cut]);
            assert_eq!(s.records, vec![0..first.len()], "cut at {cut}");
            assert_eq!(s.valid_end, first.len());
            assert_eq!(s.damage, Some(Damage::TornTail), "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_is_a_crc_mismatch() {
        let mut buf = rec(1, b"payload");
        let good = buf.len();
        buf.extend(rec(1, b"payload"));
        let last = buf.len() - 1;
        buf[last] ^= 0x40;
        let s = scan(&buf);
        assert_eq!((s.records.len(), s.valid_end, s.damage), (1, good, Some(Damage::Corrupt)));
    }

    #[test]
    fn an_impossible_length_is_corrupt_not_an_allocation() {
        let mut buf = rec(1, b"x");
        buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_one(&buf), Err(Damage::Corrupt));
        // A length shorter than the payload prefix cannot be one of ours either.
        buf[..4].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(decode_one(&buf), Err(Damage::Corrupt));
    }

    #[test]
    fn the_ack_pointer_round_trips_and_a_torn_one_reads_as_none() {
        let a = encode_ack(123_456);
        assert_eq!(decode_ack(&a), Some(123_456));
        assert_eq!(decode_ack(&a[..ACK_LEN - 1]), None);
        assert_eq!(decode_ack(&[]), None);
        let mut bad = a;
        bad[0] ^= 1;
        assert_eq!(decode_ack(&bad), None);
    }

    #[test]
    fn segment_names_sort_in_queue_order_and_parse_back() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("ack"), None);
        assert_eq!(parse_segment_name("00000000000000000042.seg.tmp"), None);
        assert_eq!(parse_segment_name("-0000000000000000042.seg"), None);
    }

    #[test]
    fn resume_positions() {
        let segs = [100..200, 200..260];
        assert_eq!(resume_position(&segs, Some(150)), 150, "inside a segment");
        assert_eq!(resume_position(&segs, Some(260)), 260, "everything acknowledged");
        assert_eq!(resume_position(&segs, None), 100, "no pointer: from the oldest data");
        assert_eq!(resume_position(&segs, Some(50)), 100, "pointer before the data");
        assert_eq!(resume_position(&segs, Some(999)), 100, "pointer past the data");
        assert_eq!(resume_position(&[], Some(7)), 7, "empty directory keeps the position");
        assert_eq!(resume_position(&[], None), 0, "fresh directory");
        assert_eq!(resume_position(&[0..10, 20..30], Some(15)), 0, "pointer in a gap");
    }
}
