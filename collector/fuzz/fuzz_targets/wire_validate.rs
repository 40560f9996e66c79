//! Fuzz target: the wire-format validator must agree with prost on every input — accept exactly
//! what decodes, with the same item count — since accepted requests travel undecoded.
//! The first byte picks the signal; the rest is the request body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_collector::config::id::Signal;
use telemetry_collector::pdata::{Payload, wire};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let signal = [Signal::Traces, Signal::Logs, Signal::Metrics][usize::from(sel % 3)];
    let ours = wire::validate(signal, body).expect("every signal has a wire schema").ok();
    let prost = Payload::decode_protobuf(signal, body).ok().map(|p| p.item_count());
    assert_eq!(ours, prost, "validator and prost disagree");
});
