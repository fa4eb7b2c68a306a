//! Fuzz target `paper_market`: the property is `ipow::fuzz::paper_market` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::paper_market(data) {
        panic!("paper_market: {finding}");
    }
});
