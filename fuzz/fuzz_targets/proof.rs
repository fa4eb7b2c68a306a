//! Fuzz target `proof`: the property is `ipow::fuzz::proof` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::proof(data) {
        panic!("proof: {finding}");
    }
});
