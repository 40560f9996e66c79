//! OTLP requests kept in their protobuf encoding: a validating walk over the wire format and the
//! [`Encoded`] form that carries the checked bytes through a pipeline undecoded.
//!
//! Why: in the common pipeline (receive → batch → export over OTLP) nothing looks inside a span,
//! yet decoding into `ExportTraceServiceRequest` and encoding it again allocates every string and
//! was most of the collector's CPU. The walk here checks everything prost's decoder checks (wire
//! types of known fields, varints, lengths, UTF-8 of string fields, skipping of unknown fields and
//! groups, the recursion limit of 100) without allocating, and counts the items on the way. So a
//! request is accepted or refused exactly as a full decode would do it (the `wire_validate` fuzz
//! target and the tests below compare the two), and a pipeline stage that does need the structure
//! decodes the already-checked bytes on demand.
//!
//! Concatenated encodings of a message are one valid encoding of the merged message (protobuf
//! appends repeated fields), which makes batching encoded requests a matter of keeping a list of
//! byte chunks. No well-kept crate does schema-driven validation without decoding (prost-reflect
//! decodes into dynamic messages, which allocates as much as prost), hence the tables below.

use bytes::Bytes;

use crate::config::id::Signal;

/// How a known field is encoded.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Not in the schema: skipped like any unknown field.
    Unknown,
    /// int32, int64, uint32, uint64, bool, enum (wire type 0).
    Varint,
    /// fixed32 (wire type 5).
    Fixed32,
    /// fixed64, sfixed64, double (wire type 1).
    Fixed64,
    /// string: length-delimited, must be UTF-8.
    Str,
    /// bytes: length-delimited, anything.
    Bytes,
    /// A nested message.
    Message(&'static Schema),
    /// repeated fixed64 or double: one value (wire type 1) or a packed run (wire type 2) whose
    /// length is a multiple of 8.
    Repeated64,
    /// repeated uint64: one varint (wire type 0) or a packed run of whole varints (wire type 2).
    RepeatedVarint,
}

/// One message type: its fields indexed by field number, which field's occurrences are the
/// items upstream counts (spans, log records, metric data points), and which message fields form
/// a oneof whose items count (a metric's data: a later field of another variant replaces the
/// earlier one on decode, taking its data points with it).
#[derive(Debug)]
struct Schema {
    fields: &'static [Kind],
    items: u32,
    oneof: &'static [u32],
}

impl Schema {
    fn field(&self, tag: u32) -> Kind {
        self.fields.get(tag as usize).copied().unwrap_or(Kind::Unknown)
    }
}

use Kind::{
    Bytes as B, Fixed32 as F32, Fixed64 as F64, Message as M, Repeated64 as R64, RepeatedVarint as RV, Str as S,
    Unknown as U, Varint as V,
};

// The tables mirror opentelemetry-proto's generated prost types (common, resource, trace, logs,
// metrics and the collector requests); index = field number.
static ANY_VALUE: Schema =
    Schema { fields: &[U, S, V, V, F64, M(&ARRAY_VALUE), M(&KEY_VALUE_LIST), B, V], items: 0, oneof: &[] };
static ARRAY_VALUE: Schema = Schema { fields: &[U, M(&ANY_VALUE)], items: 0, oneof: &[] };
static KEY_VALUE_LIST: Schema = Schema { fields: &[U, M(&KEY_VALUE)], items: 0, oneof: &[] };
static KEY_VALUE: Schema = Schema { fields: &[U, S, M(&ANY_VALUE), V], items: 0, oneof: &[] };
static SCOPE: Schema = Schema { fields: &[U, S, S, M(&KEY_VALUE), V], items: 0, oneof: &[] };
static ENTITY_REF: Schema = Schema { fields: &[U, S, S, S, S], items: 0, oneof: &[] };
static RESOURCE: Schema = Schema { fields: &[U, M(&KEY_VALUE), V, M(&ENTITY_REF)], items: 0, oneof: &[] };

static EVENT: Schema = Schema { fields: &[U, F64, S, M(&KEY_VALUE), V], items: 0, oneof: &[] };
static LINK: Schema = Schema { fields: &[U, B, B, S, M(&KEY_VALUE), V, F32], items: 0, oneof: &[] };
static STATUS: Schema = Schema { fields: &[U, U, S, V], items: 0, oneof: &[] };
static SPAN: Schema = Schema {
    fields: &[
        U,
        B,             // 1 trace_id
        B,             // 2 span_id
        S,             // 3 trace_state
        B,             // 4 parent_span_id
        S,             // 5 name
        V,             // 6 kind
        F64,           // 7 start_time_unix_nano
        F64,           // 8 end_time_unix_nano
        M(&KEY_VALUE), // 9 attributes
        V,             // 10 dropped_attributes_count
        M(&EVENT),     // 11 events
        V,             // 12 dropped_events_count
        M(&LINK),      // 13 links
        V,             // 14 dropped_links_count
        M(&STATUS),    // 15 status
        F32,           // 16 flags
    ],
    items: 0,
    oneof: &[],
};
static SCOPE_SPANS: Schema = Schema { fields: &[U, M(&SCOPE), M(&SPAN), S], items: 2, oneof: &[] };
static RESOURCE_SPANS: Schema = Schema { fields: &[U, M(&RESOURCE), M(&SCOPE_SPANS), S], items: 0, oneof: &[] };
static TRACES_REQUEST: Schema = Schema { fields: &[U, M(&RESOURCE_SPANS)], items: 0, oneof: &[] };

static LOG_RECORD: Schema = Schema {
    fields: &[
        U,
        F64,           // 1 time_unix_nano
        V,             // 2 severity_number
        S,             // 3 severity_text
        U,             // 4 (reserved)
        M(&ANY_VALUE), // 5 body
        M(&KEY_VALUE), // 6 attributes
        V,             // 7 dropped_attributes_count
        F32,           // 8 flags
        B,             // 9 trace_id
        B,             // 10 span_id
        F64,           // 11 observed_time_unix_nano
        S,             // 12 event_name
    ],
    items: 0,
    oneof: &[],
};
static SCOPE_LOGS: Schema = Schema { fields: &[U, M(&SCOPE), M(&LOG_RECORD), S], items: 2, oneof: &[] };
static RESOURCE_LOGS: Schema = Schema { fields: &[U, M(&RESOURCE), M(&SCOPE_LOGS), S], items: 0, oneof: &[] };
static LOGS_REQUEST: Schema = Schema { fields: &[U, M(&RESOURCE_LOGS)], items: 0, oneof: &[] };

static EXEMPLAR: Schema = Schema {
    fields: &[
        U,
        U,             // 1 (reserved)
        F64,           // 2 time_unix_nano
        F64,           // 3 as_double
        B,             // 4 span_id
        B,             // 5 trace_id
        F64,           // 6 as_int (sfixed64)
        M(&KEY_VALUE), // 7 filtered_attributes
    ],
    items: 0,
    oneof: &[],
};
static NUMBER_POINT: Schema = Schema {
    fields: &[
        U,
        U,             // 1 (reserved)
        F64,           // 2 start_time_unix_nano
        F64,           // 3 time_unix_nano
        F64,           // 4 as_double
        M(&EXEMPLAR),  // 5 exemplars
        F64,           // 6 as_int (sfixed64)
        M(&KEY_VALUE), // 7 attributes
        V,             // 8 flags
    ],
    items: 0,
    oneof: &[],
};
static HISTOGRAM_POINT: Schema = Schema {
    fields: &[
        U,
        U,             // 1 (reserved)
        F64,           // 2 start_time_unix_nano
        F64,           // 3 time_unix_nano
        F64,           // 4 count
        F64,           // 5 sum
        R64,           // 6 bucket_counts
        R64,           // 7 explicit_bounds
        M(&EXEMPLAR),  // 8 exemplars
        M(&KEY_VALUE), // 9 attributes
        V,             // 10 flags
        F64,           // 11 min
        F64,           // 12 max
    ],
    items: 0,
    oneof: &[],
};
static BUCKETS: Schema = Schema { fields: &[U, V, RV], items: 0, oneof: &[] };
static EXP_HISTOGRAM_POINT: Schema = Schema {
    fields: &[
        U,
        M(&KEY_VALUE), // 1 attributes
        F64,           // 2 start_time_unix_nano
        F64,           // 3 time_unix_nano
        F64,           // 4 count
        F64,           // 5 sum
        V,             // 6 scale (sint32)
        F64,           // 7 zero_count
        M(&BUCKETS),   // 8 positive
        M(&BUCKETS),   // 9 negative
        V,             // 10 flags
        M(&EXEMPLAR),  // 11 exemplars
        F64,           // 12 min
        F64,           // 13 max
        F64,           // 14 zero_threshold
    ],
    items: 0,
    oneof: &[],
};
static QUANTILE: Schema = Schema { fields: &[U, F64, F64], items: 0, oneof: &[] };
static SUMMARY_POINT: Schema = Schema {
    fields: &[
        U,
        U,             // 1 (reserved)
        F64,           // 2 start_time_unix_nano
        F64,           // 3 time_unix_nano
        F64,           // 4 count
        F64,           // 5 sum
        M(&QUANTILE),  // 6 quantile_values
        M(&KEY_VALUE), // 7 attributes
        V,             // 8 flags
    ],
    items: 0,
    oneof: &[],
};
// The five metric data types: data points (field 1) are the items; the rest is the temporality
// (2) and, for sums, monotonicity (3).
static GAUGE: Schema = Schema { fields: &[U, M(&NUMBER_POINT)], items: 1, oneof: &[] };
static SUM: Schema = Schema { fields: &[U, M(&NUMBER_POINT), V, V], items: 1, oneof: &[] };
static HISTOGRAM: Schema = Schema { fields: &[U, M(&HISTOGRAM_POINT), V], items: 1, oneof: &[] };
static EXP_HISTOGRAM: Schema = Schema { fields: &[U, M(&EXP_HISTOGRAM_POINT), V], items: 1, oneof: &[] };
static SUMMARY: Schema = Schema { fields: &[U, M(&SUMMARY_POINT)], items: 1, oneof: &[] };
static METRIC: Schema = Schema {
    fields: &[
        U,
        S,                 // 1 name
        S,                 // 2 description
        S,                 // 3 unit
        U,                 // 4 (reserved)
        M(&GAUGE),         // 5 gauge
        U,                 // 6 (reserved)
        M(&SUM),           // 7 sum
        U,                 // 8 (reserved)
        M(&HISTOGRAM),     // 9 histogram
        M(&EXP_HISTOGRAM), // 10 exponential_histogram
        M(&SUMMARY),       // 11 summary
        M(&KEY_VALUE),     // 12 metadata
    ],
    items: 0,
    oneof: &[5, 7, 9, 10, 11],
};
static SCOPE_METRICS: Schema = Schema { fields: &[U, M(&SCOPE), M(&METRIC), S], items: 0, oneof: &[] };
static RESOURCE_METRICS: Schema = Schema { fields: &[U, M(&RESOURCE), M(&SCOPE_METRICS), S], items: 0, oneof: &[] };
static METRICS_REQUEST: Schema = Schema { fields: &[U, M(&RESOURCE_METRICS)], items: 0, oneof: &[] };

/// prost's nesting limit for decoding.
const RECURSION_LIMIT: u32 = 100;

/// Why bytes are not a valid encoding of the request (the same cases prost's decoder refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends inside a field.
    #[error("buffer underflow at byte {0}")]
    Truncated(usize),
    /// A varint is longer than 10 bytes or overflows 64 bits.
    #[error("invalid varint at byte {0}")]
    BadVarint(usize),
    /// A field key is out of range, has field number 0, or wire type 6 or 7.
    #[error("invalid field key at byte {0}")]
    BadKey(usize),
    /// A known field arrives with another wire type than its schema's.
    #[error("field {tag} has wire type {got}, expected {expected} (at byte {at})")]
    WrongWireType {
        /// The field number.
        tag: u32,
        /// The wire type found.
        got: u8,
        /// The wire type the schema says.
        expected: u8,
        /// Offset of the field's key.
        at: usize,
    },
    /// A string field is not UTF-8.
    #[error("string field {tag} is not valid UTF-8 (at byte {at})")]
    BadUtf8 {
        /// The field number.
        tag: u32,
        /// Offset of the string.
        at: usize,
    },
    /// Messages (or groups) are nested deeper than 100 levels.
    #[error("recursion limit reached at byte {0}")]
    TooDeep(usize),
    /// A group's end does not match its start.
    #[error("unexpected end-group tag at byte {0}")]
    BadGroup(usize),
}

/// A cursor over one message's bytes. `base` is where they start in the whole request, so errors
/// name offsets into what the client sent.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn at(&self) -> usize {
        self.base + self.pos
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        // Keys and most lengths are one byte.
        match self.buf.get(self.pos) {
            Some(&byte) if byte < 0x80 => {
                self.pos += 1;
                Ok(u64::from(byte))
            }
            _ => self.varint_slow(),
        }
    }

    #[cold]
    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let start = self.at();
        let mut value = 0u64;
        for (i, &byte) in self.buf[self.pos..].iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                // The tenth byte may only carry the 64th bit.
                if i == 9 && byte > 1 {
                    return Err(WireError::BadVarint(start));
                }
                self.pos += i + 1;
                return Ok(value);
            }
        }
        Err(WireError::BadVarint(start))
    }

    /// Advances over `len` bytes and returns them.
    #[inline]
    fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        let rest = &self.buf[self.pos..];
        if len > rest.len() as u64 {
            return Err(WireError::Truncated(self.at()));
        }
        self.pos += len as usize;
        Ok(&rest[..len as usize])
    }

    /// A length-delimited field's contents.
    #[inline]
    fn delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        self.take(len)
    }

    /// Reads a field key: (field number, wire type).
    #[inline]
    fn key(&mut self) -> Result<(u32, u8), WireError> {
        let at = self.at();
        let key = self.varint()?;
        let wire_type = (key & 7) as u8;
        if key > u64::from(u32::MAX) || wire_type > 5 || key >> 3 == 0 {
            return Err(WireError::BadKey(at));
        }
        Ok(((key >> 3) as u32, wire_type))
    }
}

/// Walks one message's fields, counting items into `items`. `budget` is prost's remaining
/// recursion allowance for this message's fields.
fn walk(r: &mut Reader<'_>, schema: &Schema, budget: u32, items: &mut usize) -> Result<(), WireError> {
    // The oneof variant seen last and the items it holds so far (see `Schema::oneof`).
    let mut variant: Option<(u32, usize)> = None;
    while r.pos < r.buf.len() {
        let at = r.at();
        let (tag, wire_type) = r.key()?;
        let wrong = |expected| WireError::WrongWireType { tag, got: wire_type, expected, at };
        match (schema.field(tag), wire_type) {
            (Kind::Unknown, _) => skip(r, tag, wire_type, budget)?,
            (Kind::Varint, 0) => {
                r.varint()?;
            }
            (Kind::Fixed64, 1) => {
                r.take(8)?;
            }
            (Kind::Fixed32, 5) => {
                r.take(4)?;
            }
            (Kind::Bytes, 2) => {
                r.delimited()?;
            }
            (Kind::Str, 2) => {
                let start = r.at();
                let text = r.delimited()?;
                // Attribute keys and values are nearly always ASCII, which is much cheaper to check.
                if !text.is_ascii() && std::str::from_utf8(text).is_err() {
                    return Err(WireError::BadUtf8 { tag, at: start });
                }
            }
            (Kind::Message(inner), 2) => {
                if budget == 0 {
                    return Err(WireError::TooDeep(at));
                }
                let len = r.varint()?;
                let base = r.at();
                let mut sub = Reader { buf: r.take(len)?, pos: 0, base };
                if std::ptr::eq(inner, &KEY_VALUE) && budget >= 2 && is_plain_key_value(sub.buf) {
                    // Most of a request's messages are attributes: see `is_plain_key_value`.
                } else if schema.oneof.contains(&tag) {
                    let mut inner_items = 0;
                    walk(&mut sub, inner, budget - 1, &mut inner_items)?;
                    // The same variant again is merged into it; another one replaces it.
                    let before = variant.filter(|(t, _)| *t == tag).map_or(0, |(_, n)| n);
                    variant = Some((tag, before + inner_items));
                } else {
                    walk(&mut sub, inner, budget - 1, items)?;
                }
                if tag == schema.items {
                    *items += 1;
                }
            }
            (Kind::Repeated64, 1) => {
                r.take(8)?;
            }
            (Kind::Repeated64, 2) => {
                let start = r.at();
                if r.delimited()?.len() % 8 != 0 {
                    // prost reads whole values past the run's end, then finds the length exceeded.
                    return Err(WireError::Truncated(start));
                }
            }
            (Kind::RepeatedVarint, 0) => {
                r.varint()?;
            }
            (Kind::RepeatedVarint, 2) => {
                let len = r.varint()?;
                let base = r.at();
                let mut run = Reader { buf: r.take(len)?, pos: 0, base };
                while run.pos < run.buf.len() {
                    // A varint running past the run's end is refused by prost as well.
                    run.varint().map_err(|_| WireError::BadVarint(run.at()))?;
                }
            }
            (Kind::Varint, _) => return Err(wrong(0)),
            (Kind::Fixed64, _) => return Err(wrong(1)),
            (Kind::Fixed32, _) => return Err(wrong(5)),
            (Kind::Bytes | Kind::Str | Kind::Message(_), _) => return Err(wrong(2)),
            (Kind::Repeated64, _) => return Err(wrong(1)),
            (Kind::RepeatedVarint, _) => return Err(wrong(0)),
        }
    }
    *items += variant.map_or(0, |(_, n)| n);
    Ok(())
}

/// Whether `b` is an attribute in its usual shape, valid by what [`walk`] checks: `key` (field 1,
/// a UTF-8 string under 128 bytes) then `value` (field 2, an `AnyValue` under 128 bytes holding
/// nothing or one string, bool, int or double). It decides in one straight pass what the general
/// walk would find going through two schemas; anything else (another field order, a longer field,
/// a nested value, an error) answers `false` and gets the general walk, which also names the error.
/// The caller guarantees the nesting budget for the `AnyValue`.
#[inline]
fn is_plain_key_value(b: &[u8]) -> bool {
    let is_utf8 = |s: &[u8]| s.is_ascii() || std::str::from_utf8(s).is_ok();
    let [0x0a, key_len, rest @ ..] = b else { return false };
    let key_len = usize::from(*key_len);
    if key_len >= 0x80 || rest.len() < key_len {
        return false;
    }
    let (key, rest) = rest.split_at(key_len);
    let [0x12, value_len, value @ ..] = rest else { return false };
    if *value_len >= 0x80 || usize::from(*value_len) != value.len() || !is_utf8(key) {
        return false;
    }
    match value {
        [] => true,
        [0x0a, len, text @ ..] => *len < 0x80 && usize::from(*len) == text.len() && is_utf8(text),
        [0x10 | 0x18, varint @ ..] => is_one_varint(varint),
        [0x21, fixed @ ..] => fixed.len() == 8,
        _ => false,
    }
}

/// Whether `b` is exactly one varint that [`Reader::varint`] accepts.
#[inline]
fn is_one_varint(b: &[u8]) -> bool {
    match b.split_last() {
        Some((&last, init)) => {
            last < 0x80 && init.len() < 10 && init.iter().all(|&byte| byte >= 0x80) && (init.len() < 9 || last <= 1)
        }
        None => false,
    }
}

/// Skips an unknown field the way prost does, groups included.
fn skip(r: &mut Reader<'_>, tag: u32, wire_type: u8, budget: u32) -> Result<(), WireError> {
    let at = r.at();
    if budget == 0 {
        return Err(WireError::TooDeep(at));
    }
    match wire_type {
        0 => {
            r.varint()?;
        }
        1 => {
            r.take(8)?;
        }
        2 => {
            r.delimited()?;
        }
        3 => loop {
            let (inner_tag, inner_type) = r.key()?;
            if inner_type == 4 {
                if inner_tag != tag {
                    return Err(WireError::BadGroup(at));
                }
                break;
            }
            skip(r, inner_tag, inner_type, budget - 1)?;
        },
        4 => return Err(WireError::BadGroup(at)),
        _ => {
            r.take(4)?;
        }
    }
    Ok(())
}

fn request_schema(signal: Signal) -> Option<&'static Schema> {
    match signal {
        Signal::Traces => Some(&TRACES_REQUEST),
        Signal::Logs => Some(&LOGS_REQUEST),
        Signal::Metrics => Some(&METRICS_REQUEST),
    }
}

/// Whether `signal` can travel encoded.
pub fn supports(signal: Signal) -> bool {
    request_schema(signal).is_some()
}

/// Checks that `buf` is a valid `Export{Trace,Metrics,Logs}ServiceRequest` encoding and returns
/// its item count (spans, data points, log records). `None` when the signal has no wire schema
/// (decode it instead).
pub fn validate(signal: Signal, buf: &[u8]) -> Option<Result<usize, WireError>> {
    let schema = request_schema(signal)?;
    let mut items = 0;
    let mut r = Reader { buf, pos: 0, base: 0 };
    Some(walk(&mut r, schema, RECURSION_LIMIT, &mut items).map(|()| items))
}

/// Validated protobuf encodings of requests of one signal, in order. Each chunk is a whole,
/// checked request; together they encode the merged request.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    signal: Signal,
    chunks: Vec<Chunk>,
    items: usize,
}

/// One validated request and its item count.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Chunk {
    pub(super) bytes: Bytes,
    pub(super) items: usize,
}

impl Encoded {
    /// Validates `bytes` as a request of `signal`. `None` when the signal has no wire schema.
    pub fn new(signal: Signal, bytes: Bytes) -> Option<Result<Self, WireError>> {
        Some(validate(signal, &bytes)?.map(|items| Self { signal, chunks: vec![Chunk { bytes, items }], items }))
    }

    /// Wraps a chunk already known to be valid (encoded by prost, or split from a valid one).
    pub(super) fn from_trusted(signal: Signal, bytes: Bytes, items: usize) -> Self {
        Self { signal, chunks: vec![Chunk { bytes, items }], items }
    }

    /// The signal.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Items across all chunks.
    pub fn item_count(&self) -> usize {
        self.items
    }

    /// The chunks' bytes, in order: written one after another they are the merged request.
    pub fn chunks(&self) -> impl ExactSizeIterator<Item = &Bytes> {
        self.chunks.iter().map(|c| &c.bytes)
    }

    /// Total encoded size in bytes.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes.len()).sum()
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends another encoding of the same signal.
    pub fn append(&mut self, other: Encoded) {
        debug_assert_eq!(self.signal, other.signal, "pipelines are typed by signal");
        self.items += other.items;
        self.chunks.extend(other.chunks);
    }

    /// Replaces every chunk by `f(chunk)`, which must keep its items (it may change them, not
    /// add or remove any); `None` as soon as `f` gives up on a chunk.
    pub(super) fn try_map_chunks(&self, mut f: impl FnMut(&Bytes) -> Option<Bytes>) -> Option<Encoded> {
        let chunks = self
            .chunks
            .iter()
            .map(|c| Some(Chunk { bytes: f(&c.bytes)?, items: c.items }))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { signal: self.signal, chunks, items: self.items })
    }

    /// The chunks themselves, for splitting (see `Data::split_off_front`).
    pub(super) fn into_chunks(self) -> Vec<Chunk> {
        self.chunks
    }

    /// Rebuilds from chunks (their counts are trusted).
    pub(super) fn from_chunks(signal: Signal, chunks: Vec<Chunk>) -> Self {
        let items = chunks.iter().map(|c| c.items).sum();
        Self { signal, chunks, items }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
    use prost::Message as _;

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }

    /// A request touching every kind of field of the trace schema.
    fn traces() -> ExportTraceServiceRequest {
        let attrs = vec![
            kv("s", Value::StringValue("ü".into())),
            kv("b", Value::BoolValue(true)),
            kv("i", Value::IntValue(-3)),
            kv("d", Value::DoubleValue(1.5)),
            kv("bytes", Value::BytesValue(vec![0xff, 0])),
            kv("arr", Value::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(Value::IntValue(1)) }] })),
        ];
        let spans = (0..3)
            .map(|i| Span {
                trace_id: vec![i; 16],
                span_id: vec![i; 8],
                name: format!("span {i}"),
                kind: 2,
                flags: 257,
                start_time_unix_nano: 1,
                end_time_unix_nano: 2,
                attributes: attrs.clone(),
                events: vec![span::Event { name: "e".into(), time_unix_nano: 3, ..Default::default() }],
                links: vec![span::Link { trace_id: vec![9; 16], flags: 1, ..Default::default() }],
                status: Some(opentelemetry_proto::tonic::trace::v1::Status { message: "m".into(), code: 2 }),
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![kv("service.name", Value::StringValue("svc".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, schema_url: "u".into(), ..Default::default() }; 2],
                schema_url: "r".into(),
            }],
        }
    }

    /// A request touching every kind of field of the metrics schema: all five data types, every
    /// point field, packed repeated fields and exemplars. 9 data points.
    pub(crate) fn metrics() -> ExportMetricsServiceRequest {
        use opentelemetry_proto::tonic::metrics::v1::{
            Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
            Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar,
            exponential_histogram_data_point::Buckets, metric::Data as D, number_data_point,
            summary_data_point::ValueAtQuantile,
        };
        let attrs = vec![kv("s", Value::StringValue("ü".into())), kv("i", Value::IntValue(-3))];
        let exemplars = vec![
            Exemplar {
                filtered_attributes: attrs.clone(),
                time_unix_nano: 5,
                span_id: vec![1; 8],
                trace_id: vec![2; 16],
                value: Some(exemplar::Value::AsInt(-7)),
            },
            Exemplar { value: Some(exemplar::Value::AsDouble(0.5)), ..Default::default() },
        ];
        let number = |v| NumberDataPoint {
            attributes: attrs.clone(),
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            exemplars: exemplars.clone(),
            flags: 1,
            value: Some(v),
        };
        let metric = |name: &str, data| Metric {
            name: name.into(),
            description: "d".into(),
            unit: "By".into(),
            metadata: attrs.clone(),
            data: Some(data),
        };
        let metrics = vec![
            metric(
                "g",
                D::Gauge(Gauge {
                    data_points: vec![
                        number(number_data_point::Value::AsDouble(1.5)),
                        number(number_data_point::Value::AsInt(-2)),
                    ],
                }),
            ),
            metric(
                "s",
                D::Sum(Sum {
                    data_points: vec![number(number_data_point::Value::AsInt(3))],
                    aggregation_temporality: 2,
                    is_monotonic: true,
                }),
            ),
            metric(
                "h",
                D::Histogram(Histogram {
                    data_points: vec![
                        HistogramDataPoint {
                            attributes: attrs.clone(),
                            count: 3,
                            sum: Some(1.5),
                            bucket_counts: vec![1, 2, 0],
                            explicit_bounds: vec![0.5, 1.0],
                            exemplars: exemplars.clone(),
                            flags: 1,
                            min: Some(0.1),
                            max: Some(9.0),
                            ..Default::default()
                        };
                        2
                    ],
                    aggregation_temporality: 1,
                }),
            ),
            metric(
                "e",
                D::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![
                        ExponentialHistogramDataPoint {
                            attributes: attrs.clone(),
                            count: 4,
                            sum: Some(2.0),
                            scale: -3,
                            zero_count: 1,
                            positive: Some(Buckets { offset: -2, bucket_counts: vec![1, 300, 0] }),
                            negative: Some(Buckets { offset: 5, bucket_counts: vec![u64::MAX] }),
                            exemplars: exemplars.clone(),
                            zero_threshold: 0.001,
                            min: Some(0.0),
                            ..Default::default()
                        };
                        2
                    ],
                    aggregation_temporality: 2,
                }),
            ),
            metric(
                "q",
                D::Summary(Summary {
                    data_points: vec![
                        SummaryDataPoint {
                            attributes: attrs.clone(),
                            count: 2,
                            sum: 3.0,
                            quantile_values: vec![ValueAtQuantile { quantile: 0.5, value: 1.0 }],
                            ..Default::default()
                        };
                        2
                    ],
                }),
            ),
        ];
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![kv("service.name", Value::StringValue("svc".into()))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics { metrics, schema_url: "u".into(), ..Default::default() }],
                schema_url: "r".into(),
            }],
        }
    }

    /// What prost says about the same bytes: the item count, or that they don't decode.
    fn prost_count(signal: Signal, b: &[u8]) -> Option<usize> {
        match signal {
            Signal::Traces => ExportTraceServiceRequest::decode(b)
                .ok()
                .map(|r| r.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|s| s.spans.len()).sum()),
            Signal::Logs => ExportLogsServiceRequest::decode(b)
                .ok()
                .map(|r| r.resource_logs.iter().flat_map(|rl| &rl.scope_logs).map(|s| s.log_records.len()).sum()),
            Signal::Metrics => {
                ExportMetricsServiceRequest::decode(b).ok().map(|r| crate::pdata::Payload::Metrics(r).item_count())
            }
        }
    }

    fn agrees(signal: Signal, b: &[u8]) {
        let ours = validate(signal, b).expect("schema").ok();
        assert_eq!(ours, prost_count(signal, b), "validate and prost disagree on {b:02x?}");
    }

    #[test]
    fn counts_items_of_valid_requests() {
        let b = traces().encode_to_vec();
        assert_eq!(validate(Signal::Traces, &b), Some(Ok(6)));
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        LogRecord {
                            body: Some(AnyValue { value: Some(Value::StringValue("x".into())) }),
                            ..Default::default()
                        };
                        4
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(validate(Signal::Logs, &logs.encode_to_vec()), Some(Ok(4)));
        assert_eq!(validate(Signal::Metrics, &metrics().encode_to_vec()), Some(Ok(9)));
    }

    #[test]
    fn a_metrics_data_field_of_another_type_replaces_the_points_like_prost() {
        // Metric { gauge (2 points), sum (1 point), gauge (1 point) }: prost keeps the last gauge
        // only; two gauges in a row are merged.
        let p = |n: usize| {
            let mut g = Vec::new();
            for _ in 0..n {
                g.extend([0x0a, 0x00]); // an empty data point
            }
            g
        };
        let field = |tag: u8, body: &[u8]| {
            let mut f = vec![(tag << 3) | 2, body.len() as u8];
            f.extend_from_slice(body);
            f
        };
        for shape in [
            vec![field(5, &p(2)), field(7, &p(1)), field(5, &p(1))],
            vec![field(5, &p(2)), field(5, &p(3))],
            vec![field(9, &p(2)), field(10, &p(1))],
            vec![field(11, &p(4))],
        ] {
            let metric = shape.concat();
            let scope = field(2, &metric);
            let resource = field(2, &scope);
            let req = field(1, &resource);
            agrees(Signal::Metrics, &req);
        }
    }

    #[test]
    fn packed_and_unpacked_repeated_fields_agree_with_prost() {
        // HistogramDataPoint.bucket_counts (6, fixed64) and Buckets.bucket_counts (2, uint64), packed
        // with good and bad lengths, and unpacked.
        let wrap = |tag: u8, body: Vec<u8>| {
            let mut f = vec![(tag << 3) | 2, body.len() as u8];
            f.extend(body);
            f
        };
        let histogram_point = |point: Vec<u8>| {
            wrap(1, wrap(2, wrap(2, wrap(9, wrap(1, point))))) // request → rm → sm → metric.histogram → point
        };
        let exp_point = |buckets: Vec<u8>| wrap(1, wrap(2, wrap(2, wrap(10, wrap(1, wrap(8, buckets))))));
        for point in [
            [vec![0x32, 16], vec![1; 16]].concat(),
            [vec![0x32, 12], vec![1; 12]].concat(),
            [vec![0x31], vec![1; 8]].concat(),
            [vec![0x31], vec![1; 7]].concat(),
            [vec![0x3a, 0], vec![]].concat(),
            vec![0x30, 1],
        ] {
            agrees(Signal::Metrics, &histogram_point(point));
        }
        for buckets in [
            vec![0x12, 3, 1, 0x80, 1],
            vec![0x12, 2, 1, 0x80],
            vec![0x12, 3, 0x80, 0x80, 0x80],
            vec![0x10, 0x80, 0x01],
            vec![0x15, 1, 2, 3, 4],
            vec![0x08, 0xff, 0x01],
        ] {
            agrees(Signal::Metrics, &exp_point(buckets));
        }
    }

    #[test]
    fn concatenation_is_the_merged_request() {
        let a = traces().encode_to_vec();
        let mut both = a.clone();
        both.extend_from_slice(&a);
        assert_eq!(validate(Signal::Traces, &both), Some(Ok(12)));
        let merged = ExportTraceServiceRequest::decode(both.as_slice()).unwrap();
        assert_eq!(merged.resource_spans.len(), 2);
    }

    #[test]
    fn refuses_what_prost_refuses() {
        refuses_what_prost_refuses_in(Signal::Traces, &traces().encode_to_vec());
        refuses_what_prost_refuses_in(Signal::Metrics, &metrics().encode_to_vec());
    }

    fn refuses_what_prost_refuses_in(signal: Signal, good: &[u8]) {
        // Every truncation, and every single-byte corruption at a few values, must get the same
        // verdict from both (this covers wrong wire types, bad lengths, bad UTF-8, bad keys).
        for cut in 0..good.len() {
            agrees(signal, &good[..cut]);
        }
        for i in 0..good.len() {
            for v in [0x00, 0x01, 0x07, 0x08, 0x7f, 0x80, 0xc3, 0xff] {
                let mut b = good.to_vec();
                b[i] = v;
                for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
                    agrees(signal, &b);
                }
            }
        }
    }

    #[test]
    fn unknown_fields_and_groups_are_skipped_like_prost() {
        // field 99 varint, field 98 fixed32, field 97 group holding a varint, then a valid request.
        let mut b = vec![0x98, 0x06, 0x01, 0x95, 0x06, 1, 2, 3, 4, 0x8b, 0x06, 0x08, 0x05, 0x8c, 0x06];
        b.extend(traces().encode_to_vec());
        agrees(Signal::Traces, &b);
        assert_eq!(validate(Signal::Traces, &b), Some(Ok(6)));
        // A group closed with the wrong field number, and a lone end-group.
        agrees(Signal::Traces, &[0x8b, 0x06, 0x94, 0x06]);
        agrees(Signal::Traces, &[0x8c, 0x06]);
        // Overlong and overflowing varints.
        agrees(Signal::Traces, &[0x98, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        agrees(Signal::Traces, &[0x98, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        agrees(Signal::Traces, &[0x98, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
    }

    /// The attribute fast path only ever accepts what the general walk accepts, and takes the
    /// usual shapes: every shape below, every truncation of it and every one-byte change of it.
    #[test]
    fn the_plain_attribute_shortcut_accepts_only_what_the_walk_accepts() {
        let general = |b: &[u8]| walk(&mut Reader { buf: b, pos: 0, base: 0 }, &KEY_VALUE, 10, &mut 0).is_ok();
        let shapes: Vec<Vec<u8>> = [
            kv("http.route", Value::StringValue("/api/reviews/{id}".into())),
            kv("größe", Value::StringValue("ünïcode ✓".into())),
            kv("k", Value::StringValue(String::new())),
            kv("http.response.status_code", Value::IntValue(200)),
            kv("negative", Value::IntValue(-1)),
            kv("max", Value::IntValue(i64::MAX)),
            kv("flag", Value::BoolValue(true)),
            kv("ratio", Value::DoubleValue(0.25)),
            KeyValue { key: "empty".into(), value: Some(AnyValue { value: None }), ..Default::default() },
        ]
        .iter()
        .map(|a| a.encode_to_vec())
        .collect();
        for shape in &shapes {
            assert!(is_plain_key_value(shape), "takes the shortcut: {shape:02x?}");
            for end in 0..shape.len() {
                let cut = &shape[..end];
                assert!(!is_plain_key_value(cut) || general(cut), "truncated: {cut:02x?}");
            }
            for at in 0..shape.len() {
                for byte in 0..=255u8 {
                    let mut changed = shape.clone();
                    changed[at] = byte;
                    assert!(!is_plain_key_value(&changed) || general(&changed), "changed: {changed:02x?}");
                }
            }
        }
        // Not the usual shape: the general walk decides.
        let long_key = kv(&"k".repeat(200), Value::IntValue(1)).encode_to_vec();
        let nested = kv("list", Value::ArrayValue(ArrayValue { values: vec![] })).encode_to_vec();
        assert!(!is_plain_key_value(&long_key) && general(&long_key));
        assert!(!is_plain_key_value(&nested) && general(&nested));
        // An empty key is left out of the encoding by proto3.
        let no_key = kv("", Value::StringValue("v".into())).encode_to_vec();
        assert!(!is_plain_key_value(&no_key) && general(&no_key));
    }

    #[test]
    fn nesting_limit_matches_prost() {
        // AnyValue → ArrayValue → AnyValue → ... inside one span attribute, around prost's limit.
        for depth in [40, 45, 46, 47, 48, 60] {
            let mut v = AnyValue { value: Some(Value::IntValue(1)) };
            for _ in 0..depth {
                v = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![v] })) };
            }
            let mut req = traces();
            req.resource_spans[0].scope_spans[0].spans[0].attributes =
                vec![KeyValue { key: "deep".into(), value: Some(v), ..Default::default() }];
            agrees(Signal::Traces, &req.encode_to_vec());
        }
    }
}
