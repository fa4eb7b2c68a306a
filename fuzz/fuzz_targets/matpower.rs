//! Fuzz target `matpower`: the property is `ipow::fuzz::matpower` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::matpower(data) {
        panic!("matpower: {finding}");
    }
});
