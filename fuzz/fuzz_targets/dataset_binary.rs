//! Fuzz target `dataset_binary`: the property is `ipow::fuzz::dataset_binary` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::dataset_binary(data) {
        panic!("dataset_binary: {finding}");
    }
});
