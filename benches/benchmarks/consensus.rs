//! Consensus: the PoW nonce search against the single-compression rate of sha2's `compress256`
//! on every core, and IPOW's decided transactions per second at quorum q against the bare rate at
//! which this machine verifies the same contracts' signatures with ring, divided by q.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::consensus::ipow::{Behaviour, Ipow, IpowParams};
use ipow::consensus::pow::search;
use ipow::consensus::{Consensus, Outcome, PeriodInput};
use ipow::sha_lanes::SHA256_IV;
use ipow::validate::{Checks, NoCongestionStage};
use ipow::workload::{Workload, WorkloadParams};
use rayon::prelude::*;
use sha2::block_api::compress256;

use super::{all_cores, pool, ring_verify_all, signature_triples};

/// Nonces per PoW measurement: about 40 ms of work on 2 cores.
const NONCES: u64 = 1 << 22;
/// Transactions per IPOW period measured.
const TXS: usize = 2048;

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
    let header = [7u8; ipow::block::HEADER_LEN];
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

    // IPOW: one period of TXS valid transactions, all cores.
    let workload = all.install(|| {
        Workload::generate(WorkloadParams {
            invalid_ppm: 0,
            ..WorkloadParams::scaled_paper(3, TXS)
        })
    });
    let checks = Checks {
        rules: &workload.rules,
        congestion: &NoCongestionStage,
    };
    let triples = signature_triples(&workload.transactions, &workload.rules.registry);
    let pending: Vec<u32> = (0..TXS as u32).collect();
    let input = PeriodInput {
        period: 0,
        height: 0,
        prev_hash: [0; 32],
        pending: &pending,
        workload: &workload,
        checks: &checks,
    };
    let mut g = c.benchmark_group("ipow_period");
    g.sample_size(10);
    g.throughput(Throughput::Elements(triples.len() as u64));
    g.bench_function(
        BenchmarkId::new("ring_bare_verify", format!("{cores}t")),
        |b| b.iter(|| all.install(|| ring_verify_all(black_box(&triples)))),
    );
    g.throughput(Throughput::Elements(TXS as u64));
    for quorum in [1u32, 3, 5] {
        let params = IpowParams {
            validators: 64,
            quorum,
            extra_max: 4,
            byzantine_fraction: 0.0,
            behaviour: Behaviour::Liar,
            seed: 9,
        };
        g.bench_function(
            BenchmarkId::new(format!("ipow_decided_q{quorum}"), format!("{cores}t")),
            |b| {
                b.iter(|| {
                    let mut ipow = Ipow::new(params.clone());
                    all.install(|| ipow.run_period(&input)).decisions.len()
                })
            },
        );
        let mut ipow = Ipow::new(params);
        let out = all.install(|| ipow.run_period(&input));
        assert!(
            out.decisions.iter().all(|d| d.outcome == Outcome::Accepted),
            "q {quorum}"
        );
        assert_eq!(out.work.validations, TXS as u64 * u64::from(quorum));
    }
    g.finish();
}
