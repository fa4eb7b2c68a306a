//! Fuzz target `wire`: the property is `ipow::fuzz::wire` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::wire(data) {
        panic!("wire: {finding}");
    }
});
