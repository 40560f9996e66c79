//! Fuzz target: the encoded form of the `metricstransform` processor (metric renames, `add_label`,
//! `update_label`; `pdata::edit::metrics`), alone or fused with a `resource` processor, must give
//! exactly what decode → process → encode gives, on any metrics request the receiver accepts.
//!
//! Input: byte 0 picks the match type, the names, whether a second transform and a `resource`
//! processor take part; byte 1 the number of label operations; then two bytes per operation
//! (kind × label, new label × value); the rest is the request body. Names, labels and values come
//! from small sets so that transforms meet the request's metrics and attributes.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use telemetry_collector::collector_config::processor::metricstransform::MetricsTransformConfig;
use telemetry_collector::collector_config::processor::resource::ResourceProcessorConfig;
use telemetry_collector::config::id::Signal;
use telemetry_collector::pdata::{Data, Payload};
use telemetry_collector::pipeline::Processor;
use telemetry_collector::processor::fused::fuse;
use telemetry_collector::processor::{metricstransform::MetricsTransform, resource::ResourceProcessor};

const NAMES: [&str; 5] = ["a", "b", "", "m.x", "cpu"];
const PATTERNS: [&str; 5] = ["^a", "(.*)", "m\\.(?P<t>\\w+)", "^$", "x|b"];
const NEW_NAMES: [&str; 5] = ["''", "b", "'${1}.x'", "'$t'", "renamed"];
const LABELS: [&str; 5] = ["k", "state", "", "a", "cpu_state"];
const VALUES: [&str; 4] = ["v", "idle", "''", "x"];

fn operation(op: u8, arg: u8) -> String {
    let label = LABELS[usize::from(op >> 1) % LABELS.len()];
    let other = LABELS[usize::from(arg >> 2) % LABELS.len()];
    let value = VALUES[usize::from(arg) % VALUES.len()];
    if op & 1 == 0 {
        format!("{{action: add_label, new_label: '{label}', new_value: {value}}}")
    } else {
        let new_value = VALUES[usize::from(op >> 4) % VALUES.len()];
        format!(
            "{{action: update_label, label: '{label}', new_label: '{other}', value_actions: [{{value: {value}, new_value: {new_value}}}]}}"
        )
    }
}

fn transform(sel: u8, which: usize, ops: &[String]) -> String {
    let regexp = sel & 1 == 1;
    let pick = usize::from(sel >> 1) + which;
    let include = if regexp { PATTERNS[pick % PATTERNS.len()] } else { NAMES[pick % NAMES.len()] };
    let new_name = NEW_NAMES[(pick + 2) % NEW_NAMES.len()];
    format!(
        "- include: '{include}'\n  match_type: {}\n  action: update\n  new_name: {new_name}\n  operations: [{}]\n",
        if regexp { "regexp" } else { "strict" },
        ops.join(", ")
    )
}

fuzz_target!(|data: &[u8]| {
    let [sel, count, rest @ ..] = data else { return };
    let n = usize::from(count % 6);
    let Some((ops, body)) = rest.split_at_checked(2 * n) else { return };
    let ops: Vec<String> = ops.chunks(2).map(|p| operation(p[0], p[1])).collect();
    let (first, second) = ops.split_at(ops.len() / 2);
    let mut yaml = transform(*sel, 0, first);
    if sel & 0x40 != 0 {
        yaml.push_str(&transform(*sel, 1, second));
    } else {
        yaml = transform(*sel, 0, &ops);
    }
    let cfg: MetricsTransformConfig = serde_yaml::from_str(&format!("transforms:\n{yaml}")).expect("valid YAML");
    let mt: Arc<dyn Processor> = Arc::new(MetricsTransform::new(&cfg).expect("compiles"));
    let mut chain = vec![mt];
    if sel & 0x80 != 0 {
        let cfg: ResourceProcessorConfig = serde_yaml::from_str(
            "attributes: [{key: deployment.environment, value: prod, action: upsert}, {key: k, value: v, action: insert}]",
        )
        .expect("valid YAML");
        chain.insert(0, Arc::new(ResourceProcessor::new(&cfg).expect("compiles")));
    }
    let body = Bytes::copy_from_slice(body);
    let Ok(received) = Data::from_protobuf(Signal::Metrics, body.clone()) else { return };
    let decoded = Payload::decode_protobuf(Signal::Metrics, &body).expect("accepted on receipt, so it decodes");
    let fused = fuse(chain.clone());
    let via_wire = fused.iter().try_fold(received, |d, p| p.process(d)).expect("processing never fails");
    let via_structs = chain.iter().try_fold(Data::Decoded(decoded), |d, p| p.process(d)).expect("never fails");
    assert_eq!(via_wire.decode().expect("decodes"), via_structs.decode().expect("decodes"), "paths disagree");
});
