//! Fuzz target `readings`: the property is `ipow::fuzz::readings` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::readings(data) {
        panic!("readings: {finding}");
    }
});
