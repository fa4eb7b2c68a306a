//! Benchmark modules, one per topic.
pub mod datasets;
pub mod grid;
pub mod ipow_period;
pub mod merkle;
pub mod period;
pub mod pow;
pub mod settlement;
pub mod signatures;
pub mod store;

/// A named rayon pool of `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("bench-{threads}t-{i}"))
        .build()
        .unwrap()
}

/// Threads on this machine.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// (message, signature, public key) of each of the contracts' three signatures.
pub fn signature_triples(
    contracts: &[ipow::contract::SignedContract],
    registry: &ipow::crypto::keys::KeyRegistry,
) -> Vec<(Vec<u8>, [u8; 64], [u8; 32])> {
    contracts
        .iter()
        .flat_map(|c| {
            ipow::contract::Signer::ALL.map(|s| {
                let key = *registry
                    .get(c.contract.signer_address(s))
                    .unwrap()
                    .as_bytes();
                (c.contract.signing_message(s), *c.signature(s), key)
            })
        })
        .collect()
}

/// The bare limit: ring verifications of `triples` in parallel on the current pool; returns how
/// many verified.
pub fn ring_verify_all(triples: &[(Vec<u8>, [u8; 64], [u8; 32])]) -> usize {
    use rayon::prelude::*;
    triples
        .par_iter()
        .with_min_len(64)
        .filter(|(m, s, k)| {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, k)
                .verify(m, s)
                .is_ok()
        })
        .count()
}
