//! Fuzz target `store_log`: the property is `ipow::fuzz::store_log` (see src/fuzz.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::store_log(data) {
        panic!("store_log: {finding}");
    }
});
