//! Fuzz target `contract`: the property is `ipow::fuzz::contract` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::contract(data) {
        panic!("contract: {finding}");
    }
});
