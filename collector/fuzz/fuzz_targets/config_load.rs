//! Fuzz target: the config loader (YAML parse, env expansion, typed sections, validation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_collector::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Config::from_yaml_str(text, &|name| (name == "X").then(|| "1".to_owned()));
});
