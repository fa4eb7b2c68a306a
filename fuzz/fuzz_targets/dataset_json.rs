//! Fuzz target `dataset_json`: the property is `ipow::fuzz::dataset_json` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::dataset_json(data) {
        panic!("dataset_json: {finding}");
    }
});
