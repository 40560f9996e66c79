//! Fuzz target: the persistent queue's record decoder, on whatever a crash or a damaged disk
//! can leave in a segment. `scan` must never panic, must account for a contiguous valid prefix
//! of whole records, and each of them must decode on its own; the ack pointer decoder must
//! never panic; and encoding then scanning any payload must give it back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_collector::config::id::Signal;
use telemetry_collector::exporter::persistent_queue::record;

fuzz_target!(|data: &[u8]| {
    let s = record::scan(data);
    assert!(s.valid_end <= data.len());
    let mut at = 0;
    for r in &s.records {
        assert_eq!(r.start, at, "records are contiguous from the start");
        assert_eq!(record::decode_one(&data[r.clone()]), Ok(r.len()));
        let _ = record::payload(&data[r.clone()]);
        at = r.end;
    }
    assert_eq!(at, s.valid_end);
    assert_eq!(s.damage.is_none(), s.valid_end == data.len());
    let _ = record::decode_ack(data);

    // Round trip: any bytes as a protobuf body, appended after a torn copy of itself.
    let signal = [Signal::Traces, Signal::Metrics, Signal::Logs][data.len() % 3];
    let rec = record::encode(signal, data.len() as u32, &[data]);
    let mut seg = rec.clone();
    seg.extend_from_slice(&rec[..rec.len() / 2]);
    let s = record::scan(&seg);
    assert_eq!(s.records, vec![0..rec.len()]);
    assert_eq!(record::payload(&seg[0..rec.len()]), Some((signal, data.len() as u32, data)));
});
