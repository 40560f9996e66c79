//! [`Data`]: what flows between pipeline stages — decoded requests, or validated encodings that
//! stay undecoded until a stage needs to look inside.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

use super::Payload;
use super::wire::{Chunk, Encoded, WireError};
use crate::config::id::Signal;

/// Encoded data that prost could not decode although it passed the receipt check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// A unit of telemetry in a pipeline.
///
/// Receivers hand over protobuf requests as [`Data::Encoded`] (checked, counted, not decoded);
/// processors that read or change items call [`Data::decode`]; OTLP exporters send encoded data
/// as it is. Stages that only count, queue, batch or forward never pay for decoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Decoded requests.
    Decoded(Payload),
    /// Validated protobuf encodings.
    Encoded(Encoded),
}

impl From<Payload> for Data {
    fn from(p: Payload) -> Self {
        Data::Decoded(p)
    }
}

impl From<Encoded> for Data {
    fn from(e: Encoded) -> Self {
        Data::Encoded(e)
    }
}

impl Data {
    /// Takes a protobuf request body: validated and kept encoded when the signal has a wire
    /// schema, decoded otherwise. Errors describe why the body is not a valid request.
    pub fn from_protobuf(signal: Signal, body: Bytes) -> Result<Data, String> {
        match Encoded::new(signal, body.clone()) {
            Some(res) => res.map(Data::Encoded).map_err(|e: WireError| e.to_string()),
            None => Payload::decode_protobuf(signal, &body).map(Data::Decoded).map_err(|e| e.to_string()),
        }
    }

    /// No items of `signal`.
    pub fn empty(signal: Signal) -> Self {
        Data::Decoded(Payload::empty(signal))
    }

    /// Which signal this is.
    pub fn signal(&self) -> Signal {
        match self {
            Data::Decoded(p) => p.signal(),
            Data::Encoded(e) => e.signal(),
        }
    }

    /// Item count as upstream counts it (spans, data points, log records).
    pub fn item_count(&self) -> usize {
        match self {
            Data::Decoded(p) => p.item_count(),
            Data::Encoded(e) => e.item_count(),
        }
    }

    /// The decoded form. Encoded data was validated on receipt, so this fails only if that check
    /// and prost ever disagreed; a pipeline treats the error as permanent (retrying cannot help).
    pub fn decode(self) -> Result<Payload, DecodeError> {
        match self {
            Data::Decoded(p) => Ok(p),
            Data::Encoded(e) => {
                let signal = e.signal();
                let mut out = Payload::empty(signal);
                for chunk in e.chunks() {
                    let part = Payload::decode_protobuf(signal, chunk)
                        .map_err(|err| DecodeError(format!("cannot decode {}: {err}", signal.as_str())))?;
                    out.append(part);
                }
                Ok(out)
            }
        }
    }

    /// The protobuf encoding as chunks to write one after another (no copy when encoded).
    pub fn to_protobuf(&self) -> Vec<Bytes> {
        match self {
            Data::Decoded(p) => vec![p.encode_to_bytes()],
            Data::Encoded(e) => e.chunks().cloned().collect(),
        }
    }

    /// Appends `other` (same signal). If either side is encoded, the result is encoded: every
    /// consumer of a batch is an exporter, and encoding is the cheap direction.
    pub fn append(&mut self, other: Data) {
        if other.item_count() == 0 {
            return;
        }
        let current = std::mem::replace(self, Data::empty(other.signal()));
        *self = match (current, other) {
            (Data::Decoded(mut a), Data::Decoded(b)) => {
                a.append(b);
                Data::Decoded(a)
            }
            (a, b) if a.item_count() == 0 => b,
            (a, b) => {
                let mut a = a.into_encoded();
                a.append(b.into_encoded());
                Data::Encoded(a)
            }
        };
    }

    fn into_encoded(self) -> Encoded {
        match self {
            Data::Encoded(e) => e,
            Data::Decoded(p) => {
                let items = p.item_count();
                Encoded::from_trusted(p.signal(), p.encode_to_bytes(), items)
            }
        }
    }

    /// Splits off the first `n` items (at least one) into a new value, leaving the rest. Encoded
    /// data is split between chunks; only a chunk that straddles `n` is decoded, split and
    /// encoded again.
    pub fn split_off_front(&mut self, n: usize) -> Data {
        match self {
            Data::Decoded(p) => Data::Decoded(p.split_off_front(n)),
            Data::Encoded(e) => {
                let signal = e.signal();
                let chunks = std::mem::replace(e, Encoded::from_chunks(signal, Vec::new())).into_chunks();
                let mut head = Vec::new();
                let mut rest = Vec::new();
                let mut want = n;
                for chunk in chunks {
                    if want == 0 {
                        rest.push(chunk);
                    } else if chunk.items <= want {
                        want -= chunk.items;
                        head.push(chunk);
                    } else {
                        let (front, back) = split_chunk(signal, chunk, want);
                        want = 0;
                        head.extend(front);
                        rest.extend(back);
                    }
                }
                *e = Encoded::from_chunks(signal, rest);
                Data::Encoded(Encoded::from_chunks(signal, head))
            }
        }
    }
}

/// Splits one chunk after `n` items by decoding it; a chunk that somehow fails to decode is kept
/// whole in front rather than lost.
fn split_chunk(signal: Signal, chunk: Chunk, n: usize) -> (Option<Chunk>, Option<Chunk>) {
    let Ok(mut tail) = Payload::decode_protobuf(signal, &chunk.bytes) else { return (Some(chunk), None) };
    let head = tail.split_off_front(n);
    let to_chunk = |p: &Payload| Chunk { bytes: p.encode_to_bytes(), items: p.item_count() };
    (Some(to_chunk(&head)), (tail.item_count() > 0).then(|| to_chunk(&tail)))
}

impl Payload {
    /// Decodes a protobuf request of `signal`.
    pub fn decode_protobuf(signal: Signal, b: &[u8]) -> Result<Payload, prost::DecodeError> {
        Ok(match signal {
            Signal::Traces => Payload::Traces(ExportTraceServiceRequest::decode(b)?),
            Signal::Metrics => Payload::Metrics(ExportMetricsServiceRequest::decode(b)?),
            Signal::Logs => Payload::Logs(ExportLogsServiceRequest::decode(b)?),
        })
    }

    /// Encodes as a protobuf request.
    pub fn encode_to_bytes(&self) -> Bytes {
        Bytes::from(match self {
            Payload::Traces(r) => r.encode_to_vec(),
            Payload::Metrics(r) => r.encode_to_vec(),
            Payload::Logs(r) => r.encode_to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::tests::traces;

    fn names(d: Data) -> Vec<String> {
        crate::pdata::tests::names(&d.decode().unwrap())
    }

    fn encoded(resources: usize, scopes: usize, spans: usize) -> Data {
        Data::from_protobuf(Signal::Traces, traces(resources, scopes, spans).encode_to_bytes()).unwrap()
    }

    #[test]
    fn protobuf_requests_of_every_signal_stay_encoded() {
        assert!(matches!(encoded(1, 1, 3), Data::Encoded(_)));
        let metrics = Payload::empty(Signal::Metrics).encode_to_bytes();
        assert!(matches!(Data::from_protobuf(Signal::Metrics, metrics).unwrap(), Data::Encoded(_)));
        assert!(Data::from_protobuf(Signal::Traces, Bytes::from_static(&[0x0a, 0x05])).is_err());
        assert!(Data::from_protobuf(Signal::Metrics, Bytes::from_static(&[0x0a, 0x05])).is_err());
    }

    #[test]
    fn encoded_metrics_split_at_metric_granularity_and_keep_every_point() {
        let req = crate::pdata::wire::tests::metrics();
        let one = Payload::Metrics(req.clone()).encode_to_bytes();
        let mut d = Data::empty(Signal::Metrics);
        for _ in 0..3 {
            d.append(Data::from_protobuf(Signal::Metrics, one.clone()).unwrap());
        }
        assert_eq!(d.item_count(), 27);
        let mut points = 0;
        let mut merged = Payload::empty(Signal::Metrics);
        while d.item_count() > 0 {
            let head = d.split_off_front(4);
            assert!(matches!(head, Data::Encoded(_)));
            points += head.item_count();
            merged.append(head.decode().unwrap());
        }
        assert_eq!(points, 27);
        assert_eq!(merged.item_count(), 27);
        let Payload::Metrics(m) = merged else { panic!("metrics") };
        let names: Vec<&str> = m
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["g", "s", "h", "e", "q"].repeat(3));
    }

    #[test]
    fn appending_mixed_forms_keeps_order_and_count() {
        let mut d = Data::empty(Signal::Traces);
        d.append(encoded(1, 1, 2));
        d.append(Data::Decoded(traces(1, 1, 3)));
        d.append(encoded(2, 1, 1));
        assert!(matches!(d, Data::Encoded(_)));
        assert_eq!(d.item_count(), 7);
        let mut want = names(encoded(1, 1, 2));
        want.extend(names(Data::Decoded(traces(1, 1, 3))));
        want.extend(names(encoded(2, 1, 1)));
        assert_eq!(names(d), want);
    }

    #[test]
    fn encoded_split_preserves_order_and_count() {
        let mut d = Data::empty(Signal::Traces);
        for _ in 0..3 {
            d.append(encoded(2, 2, 5));
        }
        let all = names(d.clone());
        let mut got = Vec::new();
        while d.item_count() > 0 {
            let head = d.split_off_front(7);
            assert!(head.item_count() <= 7 && head.item_count() > 0, "{}", head.item_count());
            assert!(matches!(head, Data::Encoded(_)));
            got.extend(names(head));
        }
        assert_eq!(got, all);
    }
}
