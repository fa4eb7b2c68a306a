//! Fuzz target `trades`: the property is `ipow::fuzz::trades` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::trades(data) {
        panic!("trades: {finding}");
    }
});
