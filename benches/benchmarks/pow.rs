//! PoW: the nonce search against the single-compression rate of sha2's `compress256` on every
//! core (one compression per try is the physical limit of a miner).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::consensus::pow::search;
use ipow::crypto::sha_lanes::SHA256_IV;
use rayon::prelude::*;
use sha2::block_api::compress256;

use super::{all_cores, pool};

/// Nonces per PoW measurement: about 40 ms of work on 2 cores.
const NONCES: u64 = 1 << 22;

pub fn bench(c: &mut Criterion) {
    let cores = all_cores();
    let all = pool(cores);

    // PoW: one compression per try is the limit; compress256 called once per block, as a miner
    // without lanes would, on every core.
    let mut g = c.benchmark_group("pow_nonce_search");
    g.sample_size(10);
    g.throughput(Throughput::Elements(NONCES));
    let block = [[0x5au8; 64]];
    g.bench_function(
        BenchmarkId::new("compress256_one_block_limit", format!("{cores}t")),
        |b| {
            b.iter(|| {
                all.install(|| {
                    (0..cores)
                        .into_par_iter()
                        .map(|_| {
                            let mut state = SHA256_IV;
                            for _ in 0..NONCES / cores as u64 {
                                compress256(&mut state, black_box(&block));
                            }
                            state
                        })
                        .collect::<Vec<_>>()
                })
            })
        },
    );
    let header = [7u8; ipow::contract::block::HEADER_LEN];
    g.bench_function(
        BenchmarkId::new("ipow_pow_search", format!("{cores}t")),
        |b| b.iter(|| all.install(|| search(black_box(&header), 64, NONCES))),
    );
    let result = all.install(|| search(&header, 64, NONCES));
    assert_eq!(
        result.nonce,
        u64::MAX,
        "no nonce has 64 leading zero bits here"
    );
    assert!(result.hashes >= NONCES);
    let found = all.install(|| search(&header, 8, NONCES));
    assert!(found.nonce < NONCES);
    g.finish();
}
