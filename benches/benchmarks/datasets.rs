//! Market generation against the bare signing limit: `Market::batch` (draws, encoding, three
//! Ed25519 signatures per contract, readings) beside a bare loop of three `ring` signatures on
//! every contract's three signing messages, on every core, in the same group. (Dataset loading
//! against `cat` is measured by perf/run-datasets.sh, on a file larger than a bench iteration.)

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use ipow::crypto::KeyPair;
use ipow::domain::Address;
use ipow::workload::{Market, WorkloadParams};
use rayon::prelude::*;

use super::{all_cores, pool};

fn contracts() -> u64 {
    if std::env::args().any(|a| a == "--bench") {
        16_384
    } else {
        256
    }
}

pub fn bench(c: &mut Criterion) {
    let n = contracts();
    let threads = all_cores();
    let params = WorkloadParams {
        invalid_ppm: 0,
        ..WorkloadParams::for_participants(9, 10_000, n as usize)
    };
    let p = pool(threads);
    let market = p.install(|| Market::new(params.clone(), None));
    // The bare limit: the same three messages per contract, signed by three ring keys.
    let reference = p.install(|| market.batch(0..n));
    let messages: Vec<[Vec<u8>; 3]> = reference
        .transactions
        .iter()
        .map(|t| ipow::contract::Signer::ALL.map(|s| t.contract.signing_message(s)))
        .collect();
    let keys: Vec<KeyPair> = (0..3).map(|i| KeyPair::derive(9, Address(i))).collect();
    let mut g = c.benchmark_group("generate_signed_contracts");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function(format!("ring_bare_3_signatures/{threads}t"), |b| {
        b.iter(|| {
            p.install(|| {
                messages
                    .par_iter()
                    .map(|m| {
                        let s = [
                            keys[0].sign(&m[0]),
                            keys[1].sign(&m[1]),
                            keys[2].sign(&m[2]),
                        ];
                        s[0][0] ^ s[1][0] ^ s[2][0]
                    })
                    .reduce(|| 0u8, |a, b| a ^ b)
            })
        })
    });
    g.bench_function(format!("ipow_market_batch/{threads}t"), |b| {
        b.iter(|| p.install(|| black_box(market.batch(0..n))))
    });
    g.finish();
    let again = p.install(|| market.batch(0..n));
    assert_eq!(again.transactions, reference.transactions);
}
