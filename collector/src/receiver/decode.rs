//! Pure decoding of OTLP/HTTP request bodies: content type, gzip with a decompressed-size cap,
//! protobuf (validated and kept encoded where the signal allows, see `pdata::wire`) or JSON.
//! Every failure maps to the HTTP status the receiver must answer.

use std::io::Read as _;

use bytes::Bytes;
use flate2::read::GzDecoder;

use crate::config::id::Signal;
use crate::pdata::{Data, Payload};

/// Body encodings the receiver understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

/// Why a request body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Content-Type is neither protobuf nor JSON (HTTP 415).
    #[error("unsupported content type {0:?}; use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    /// Content-Encoding other than gzip/identity (HTTP 415).
    #[error("unsupported content encoding {0:?}; use gzip or none")]
    UnsupportedContentEncoding(String),
    /// Body (compressed or after decompression) exceeds `max_request_body_size` (HTTP 413).
    #[error("request body too large: limit is {0} bytes")]
    TooLarge(u64),
    /// gzip stream is corrupt (HTTP 400).
    #[error("invalid gzip body: {0}")]
    BadGzip(String),
    /// Protobuf could not be decoded (HTTP 400).
    #[error("invalid protobuf body: {0}")]
    BadProtobuf(String),
    /// JSON could not be decoded (HTTP 400).
    #[error("invalid JSON body: {0}")]
    BadJson(String),
}

impl DecodeError {
    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            DecodeError::UnsupportedContentType(_) | DecodeError::UnsupportedContentEncoding(_) => 415,
            DecodeError::TooLarge(_) => 413,
            DecodeError::BadGzip(_) | DecodeError::BadProtobuf(_) | DecodeError::BadJson(_) => 400,
        }
    }
}

/// Parses the Content-Type header (parameters like `; charset=utf-8` are ignored).
pub fn encoding_of(content_type: Option<&str>) -> Result<Encoding, DecodeError> {
    let ct = content_type.unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(DecodeError::UnsupportedContentType(ct.to_owned())),
    }
}

/// Decompresses (if needed) with a hard cap so a gzip bomb cannot exhaust memory.
pub fn decompress<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    max: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, DecodeError> {
    if body.len() as u64 > max {
        return Err(DecodeError::TooLarge(max));
    }
    match content_encoding.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => Ok(std::borrow::Cow::Borrowed(body)),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max as usize));
            // Read one byte past the limit to detect overflow without buffering the whole bomb.
            let mut limited = GzDecoder::new(body).take(max + 1);
            limited.read_to_end(&mut out).map_err(|e| DecodeError::BadGzip(e.to_string()))?;
            if out.len() as u64 > max {
                return Err(DecodeError::TooLarge(max));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        Some(other) => Err(DecodeError::UnsupportedContentEncoding(other.to_owned())),
    }
}

/// Decodes a full request for `signal`.
pub fn decode(
    signal: Signal,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: Bytes,
    max: u64,
) -> Result<(Data, Encoding), DecodeError> {
    let enc = encoding_of(content_type)?;
    let raw = match decompress(&body, content_encoding, max)? {
        std::borrow::Cow::Borrowed(_) => body.clone(),
        std::borrow::Cow::Owned(inflated) => Bytes::from(inflated),
    };
    let data = match enc {
        Encoding::Protobuf => Data::from_protobuf(signal, raw).map_err(DecodeError::BadProtobuf)?,
        Encoding::Json => {
            let bad = |e: serde_json::Error| DecodeError::BadJson(e.to_string());
            Data::Decoded(match signal {
                Signal::Traces => Payload::Traces(serde_json::from_slice(&raw).map_err(bad)?),
                Signal::Metrics => Payload::Metrics(serde_json::from_slice(&raw).map_err(bad)?),
                Signal::Logs => Payload::Logs(serde_json::from_slice(&raw).map_err(bad)?),
            })
        }
    };
    Ok((data, enc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    use std::io::Write as _;

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn b(x: &[u8]) -> Bytes {
        Bytes::copy_from_slice(x)
    }

    fn sample() -> ExportTraceServiceRequest {
        serde_json::from_str(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000"}]}]}]}"#).unwrap()
    }

    #[test]
    fn decodes_protobuf_json_and_gzip() {
        let req = sample();
        let pb = req.encode_to_vec();
        let (p, e) = decode(Signal::Traces, Some("application/x-protobuf"), None, b(&pb), 1 << 20).unwrap();
        assert_eq!(e, Encoding::Protobuf);
        assert!(matches!(p, Data::Encoded(_)), "protobuf traces stay encoded");
        assert_eq!(p.decode().unwrap(), Payload::Traces(req.clone()));
        let (p, _) =
            decode(Signal::Traces, Some("application/x-protobuf"), Some("gzip"), b(&gzip(&pb)), 1 << 20).unwrap();
        assert_eq!(p.decode().unwrap(), Payload::Traces(req.clone()));
        let js = serde_json::to_vec(&req).unwrap();
        let (p, e) = decode(Signal::Traces, Some("application/json; charset=utf-8"), None, b(&js), 1 << 20).unwrap();
        assert_eq!(e, Encoding::Json);
        assert_eq!(p, Data::Decoded(Payload::Traces(req)));
    }

    #[test]
    fn json_trace_ids_are_hex() {
        let req = sample();
        assert_eq!(req.resource_spans[0].scope_spans[0].spans[0].trace_id.len(), 16);
    }

    #[test]
    fn errors_map_to_statuses() {
        let pb = sample().encode_to_vec();
        assert_eq!(decode(Signal::Traces, Some("text/plain"), None, b(&pb), 1 << 20).unwrap_err().http_status(), 415);
        assert_eq!(
            decode(Signal::Traces, Some("application/x-protobuf"), None, b(&pb[..pb.len() - 3]), 1 << 20)
                .unwrap_err()
                .http_status(),
            400
        );
        assert_eq!(
            decode(Signal::Traces, Some("application/json"), None, b(b"{not json"), 1 << 20).unwrap_err().http_status(),
            400
        );
        assert_eq!(
            decode(Signal::Traces, Some("application/x-protobuf"), None, b(&pb), 10).unwrap_err().http_status(),
            413
        );
        assert_eq!(
            decode(Signal::Traces, Some("application/x-protobuf"), Some("br"), b(&pb), 1 << 20)
                .unwrap_err()
                .http_status(),
            415
        );
        assert_eq!(
            decode(Signal::Traces, Some("application/x-protobuf"), Some("gzip"), b(b"nope"), 1 << 20)
                .unwrap_err()
                .http_status(),
            400
        );
    }

    #[test]
    fn gzip_bomb_is_capped() {
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 1 << 20);
        assert_eq!(
            decode(Signal::Traces, Some("application/x-protobuf"), Some("gzip"), b(&bomb), 4 << 20).unwrap_err(),
            DecodeError::TooLarge(4 << 20)
        );
    }
}
