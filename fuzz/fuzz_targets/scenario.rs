//! Fuzz target `scenario`: the property is `ipow::fuzz::scenario` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::scenario(data) {
        panic!("scenario: {finding}");
    }
});
