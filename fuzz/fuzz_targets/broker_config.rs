//! Arbitrary text as `server.properties`, and its lines as `--set` overrides: loading must give
//! a config or a `ConfigError`, never a panic (the broker loads this before it can log).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_meta::config::BrokerConfig;

fuzz_target!(|data: &[u8]| {
    // The broker reads the file as UTF-8 and refuses anything else before parsing, so only
    // text reaches the parser; lossy conversion keeps every input useful instead of
    // discarding the many mutations that break UTF-8.
    let text = String::from_utf8_lossy(data);
    if let Err(e) = BrokerConfig::load(Some(&text), &[]) {
        drop(e.to_string());
    }
    let overrides: Vec<String> = text.lines().map(str::to_owned).collect();
    if let Err(e) = BrokerConfig::load(None, &overrides) {
        drop(e.to_string());
    }
});
