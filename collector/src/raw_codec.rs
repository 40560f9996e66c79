//! A tonic codec for gRPC bodies that are already protobuf bytes. The OTLP receiver takes request
//! bodies as bytes (validated, not decoded: see `pdata::wire`), and the OTLP exporter writes
//! requests from their encoded chunks, so neither side decodes or deep-clones a request for
//! tonic's typed stubs.

use bytes::{Buf, BufMut, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Chunks out (written one after another), bytes in.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// Encoder half of [`RawCodec`].
#[derive(Debug)]
pub struct RawEncoder;

/// Decoder half of [`RawCodec`].
#[derive(Debug)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<Bytes>;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<Bytes>;
    type Error = Status;
    fn encode(&mut self, chunks: Vec<Bytes>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // One allocation for the whole batch: growing by doubling would copy a multi-MiB
        // batch several times over.
        buf.reserve(chunks.iter().map(Bytes::len).sum());
        for chunk in chunks {
            buf.put(chunk);
        }
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // tonic's buffer is a BytesMut, so this splits it off without copying.
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}
