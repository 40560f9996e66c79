//! Fuzz target: the OTLP/HTTP body decoder (content type, gzip with size cap, protobuf, JSON).
//! The first byte picks signal, content type and encoding; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_collector::config::id::Signal;
use telemetry_collector::receiver::decode::decode;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let signal = [Signal::Traces, Signal::Metrics, Signal::Logs][usize::from(sel % 3)];
    let ct = if sel & 4 == 0 { "application/x-protobuf" } else { "application/json" };
    let ce = if sel & 8 == 0 { None } else { Some("gzip") };
    // A small cap so decompression limits are exercised too.
    if let Ok((payload, _)) = decode(signal, Some(ct), ce, bytes::Bytes::copy_from_slice(body), 1 << 20) {
        let _ = payload.item_count();
    }
});
