//! Merkle root of 2^20 leaves against the SHA-256 compression limit of this machine, and
//! against `rs_merkle` as a peer.
//!
//! Work is counted in SHA-256 compressions: a leaf over a 32-byte id is one, an interior node
//! two, so a tree of n leaves costs n + 2(n - 1). The limit is `compress256` streaming 64-byte
//! blocks with nothing else to do, on one thread and on every core.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::crypto::merkle::{MerkleTree, reference_root, root_32};
use ipow::crypto::sha_lanes::{LANES, SHA256_IV, compress_lanes};
use rayon::prelude::*;
use sha2::{Digest, Sha256, block_api::compress256};

use super::{all_cores, pool};

const LEAVES: usize = 1 << 20;
/// Blocks per `compress256` call in the limit loop: long enough that the per-call cost vanishes.
const LIMIT_BLOCKS_PER_CALL: usize = 1024;

fn compressions(leaves: usize) -> u64 {
    (leaves + 2 * (leaves - 1)) as u64
}

/// Compresses `calls` x `LIMIT_BLOCKS_PER_CALL` blocks; returns the state so nothing is elided.
fn compress_limit(blocks: &[[u8; 64]], calls: usize) -> [u32; 8] {
    let mut state = [
        0x6a09e667u32,
        0xbb67ae85,
        0x3c6ef372,
        0xa54ff53a,
        0x510e527f,
        0x9b05688c,
        0x1f83d9ab,
        0x5be0cd19,
    ];
    for _ in 0..calls {
        compress256(&mut state, black_box(blocks));
    }
    state
}

pub fn bench(c: &mut Criterion) {
    let leaves: Vec<[u8; 32]> = (0..LEAVES as u64)
        .map(|i| Sha256::digest(i.to_le_bytes()).into())
        .collect();
    let expected_root = reference_root(&leaves);
    let work = compressions(LEAVES);
    let cores = all_cores();
    let blocks = vec![[0x5au8; 64]; LIMIT_BLOCKS_PER_CALL];
    let calls_per_thread = (work as usize).div_ceil(LIMIT_BLOCKS_PER_CALL);

    let mut g = c.benchmark_group("merkle_root_2^20");
    g.sample_size(10);
    g.throughput(Throughput::Elements(work));

    // The limit: the same number of compressions, streamed, on 1 thread and on every core.
    g.bench_function(BenchmarkId::new("compress256_limit", "1t"), |b| {
        b.iter(|| compress_limit(&blocks, calls_per_thread))
    });
    let all = pool(cores);
    g.bench_function(
        BenchmarkId::new("compress256_limit", format!("{cores}t")),
        |b| {
            b.iter(|| {
                all.install(|| {
                    (0..cores)
                        .into_par_iter()
                        .map(|_| compress_limit(&blocks, calls_per_thread.div_ceil(cores)))
                        .collect::<Vec<_>>()
                })
            })
        },
    );
    assert_ne!(compress_limit(&blocks, 1), [0; 8]);

    // The multi-buffer limit: LANES independent 2-block messages per call, nothing else.
    let lane_blocks = [[0x5au8; 64]; 2];
    let lane_calls = (work as usize).div_ceil(2 * LANES);
    let lanes_limit = |calls: usize| {
        let mut states = [SHA256_IV; LANES];
        for _ in 0..calls {
            compress_lanes(&mut states, &[black_box(&lane_blocks[..]); LANES]);
        }
        states
    };
    g.bench_function(BenchmarkId::new("sha_lanes_limit", "1t"), |b| {
        b.iter(|| lanes_limit(lane_calls))
    });
    g.bench_function(
        BenchmarkId::new("sha_lanes_limit", format!("{cores}t")),
        |b| {
            b.iter(|| {
                all.install(|| {
                    (0..cores)
                        .into_par_iter()
                        .map(|_| lanes_limit(lane_calls.div_ceil(cores)))
                        .collect::<Vec<_>>()
                })
            })
        },
    );
    assert_ne!(lanes_limit(1)[0], SHA256_IV);

    for threads in [1, cores] {
        let p = pool(threads);
        g.bench_function(BenchmarkId::new("ipow_tree", format!("{threads}t")), |b| {
            b.iter(|| p.install(|| MerkleTree::from_leaves_32(black_box(&leaves)).root()))
        });
        assert_eq!(
            p.install(|| MerkleTree::from_leaves_32(&leaves).root()),
            expected_root
        );
        g.bench_function(BenchmarkId::new("ipow_root", format!("{threads}t")), |b| {
            b.iter(|| p.install(|| root_32(black_box(&leaves))))
        });
        assert_eq!(p.install(|| root_32(&leaves)), expected_root);
    }

    // rs_merkle hashes leaves itself (no 0x00/0x01 prefixes, so its root differs by design); give
    // it the same leaf hashing work: one compression per 32-byte leaf, two per 64-byte node.
    let single = pool(1);
    g.bench_function(BenchmarkId::new("rs_merkle", "1t"), |b| {
        b.iter(|| {
            single.install(|| {
                let hashed: Vec<[u8; 32]> = black_box(&leaves)
                    .iter()
                    .map(|l| Sha256::digest(l).into())
                    .collect();
                rs_merkle::MerkleTree::<rs_merkle::algorithms::Sha256>::from_leaves(&hashed).root()
            })
        })
    });
    let rs_root = rs_merkle::MerkleTree::<rs_merkle::algorithms::Sha256>::from_leaves(
        &leaves
            .iter()
            .map(|l| Sha256::digest(l).into())
            .collect::<Vec<[u8; 32]>>(),
    )
    .root();
    assert!(rs_root.is_some());
    g.finish();
}
