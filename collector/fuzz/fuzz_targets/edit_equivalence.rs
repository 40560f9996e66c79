//! Fuzz target: the encoded-form edits of the `resource`, `attributes` and `span` processors
//! (`pdata::edit`) must give exactly what decode → process → encode gives, on any request the
//! receiver accepts and any mix of actions.
//!
//! Input: byte 0 picks the signal and the processor; byte 1 the number of actions (or rename
//! keys); then two bytes per action (action × key, value source); the rest is the request body.
//! Keys and values come from small sets so that actions meet the request's attributes (the seeds
//! in `corpus/edit_equivalence` use the same keys).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use telemetry_collector::collector_config::processor::attributes::AttributesProcessorConfig;
use telemetry_collector::collector_config::processor::resource::ResourceProcessorConfig;
use telemetry_collector::collector_config::processor::span::SpanProcessorConfig;
use telemetry_collector::config::id::Signal;
use telemetry_collector::pdata::{Data, Payload};
use telemetry_collector::pipeline::Processor;
use telemetry_collector::processor::{attributes::AttributesProcessor, resource::ResourceProcessor, span::SpanProcessor};

const KEYS: [&str; 5] = ["a", "b", "http.route", "", "k"];
const VALUES: [&str; 5] = ["v", "7", "1.5", "true", "''"];
const SEPARATORS: [&str; 3] = ["' '", "''", "'|'"];

fn action(op: u8, src: u8) -> String {
    let key = KEYS[usize::from(op >> 3) % KEYS.len()];
    let source = match src % 8 {
        0..5 => format!("value: {}", VALUES[usize::from(src % 8)]),
        5 | 6 => format!("from_attribute: '{}'", KEYS[usize::from(src >> 3) % KEYS.len()]),
        _ => "from_attribute: missing".to_owned(),
    };
    match op % 6 {
        0 => format!("{{key: '{key}', {source}, action: insert}}"),
        1 => format!("{{key: '{key}', {source}, action: update}}"),
        2 => format!("{{key: '{key}', {source}, action: upsert}}"),
        3 => format!("{{key: '{key}', action: delete}}"),
        4 => format!("{{key: '{key}', pattern: '^(a|k)', action: delete}}"),
        _ => format!("{{key: '{key}', value: {}, action: upsert}}", VALUES[usize::from(src) % VALUES.len()]),
    }
}

fuzz_target!(|data: &[u8]| {
    let [sel, count, rest @ ..] = data else { return };
    let n = usize::from(count % 6);
    let Some((ops, body)) = rest.split_at_checked(2 * n) else { return };
    let signal = if sel & 1 == 0 { Signal::Traces } else { Signal::Logs };
    let actions: Vec<String> = ops.chunks(2).map(|p| action(p[0], p[1])).collect();
    let processor: Box<dyn Processor> = match (sel >> 1) % 3 {
        0 => {
            let cfg: ResourceProcessorConfig =
                serde_yaml::from_str(&format!("attributes: [{}]", actions.join(", "))).unwrap();
            Box::new(ResourceProcessor::new(&cfg).unwrap())
        }
        1 => {
            let cfg: AttributesProcessorConfig =
                serde_yaml::from_str(&format!("actions: [{}]", actions.join(", "))).unwrap();
            Box::new(AttributesProcessor::new(&cfg).unwrap())
        }
        _ => {
            let keys: Vec<String> = ops.iter().map(|b| format!("'{}'", KEYS[usize::from(*b) % KEYS.len()])).collect();
            let sep = SEPARATORS[usize::from(sel >> 3) % SEPARATORS.len()];
            let cfg: SpanProcessorConfig =
                serde_yaml::from_str(&format!("name: {{from_attributes: [{}], separator: {sep}}}", keys.join(", ")))
                    .unwrap();
            Box::new(SpanProcessor::new(&cfg).unwrap())
        }
    };
    let body = Bytes::copy_from_slice(body);
    let Ok(received) = Data::from_protobuf(signal, body.clone()) else { return };
    let decoded = Payload::decode_protobuf(signal, &body).expect("accepted on receipt, so it decodes");
    let via_wire = processor.process(received).expect("processing never fails").decode().expect("decodes");
    let via_structs = processor.process(Data::Decoded(decoded)).expect("processing never fails").decode().unwrap();
    assert_eq!(via_wire, via_structs, "encoded and decoded paths disagree");
});
