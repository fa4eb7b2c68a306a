//! Fuzz target `signature_rule`: the property is `ipow::fuzz::signature_rule_against` (see
//! src/fuzz.rs), with ed25519-zebra's ZIP 215 equation as the oracle (the stable replay in
//! tests/fuzz.rs uses the plain equation instead).
#![no_main]

fn zebra(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(key) = ed25519_zebra::VerificationKey::try_from(*key) else {
        return false;
    };
    key.verify(&ed25519_zebra::Signature::from_bytes(sig), msg).is_ok()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = ipow::fuzz::signature_rule_against(data, &zebra) {
        panic!("signature_rule: {finding}");
    }
});
