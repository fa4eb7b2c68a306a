//! IPOW: decided transactions per second of one period at quorum q against the bare rate at
//! which this machine verifies the same contracts' signatures with ring (divide it by q for the
//! limit at quorum q).

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::consensus::ipow::{Ipow, IpowParams};
use ipow::consensus::{Consensus, Outcome, PeriodInput};
use ipow::market::rules::{Workload, WorkloadParams};
use ipow::validate::{Checks, NoCongestionStage};
use std::hint::black_box;

use super::{all_cores, pool, ring_verify_all, signature_triples};

/// Transactions per IPOW period measured.
const TXS: usize = 2048;

pub fn bench(c: &mut Criterion) {
    let cores = all_cores();
    let all = pool(cores);

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
        let params = IpowParams::honest(64, quorum, 4, 9);
        g.bench_function(
            BenchmarkId::new(format!("ipow_decided_q{quorum}"), format!("{cores}t")),
            |b| {
                b.iter(|| {
                    let mut ipow = Ipow::new(params.clone());
                    all.install(|| ipow.run_period(&input))
                        .map_or(0, |o| o.decisions.len())
                })
            },
        );
        let mut ipow = Ipow::new(params);
        let out = all
            .install(|| ipow.run_period(&input))
            .expect("the in-process pool never fails");
        assert!(
            out.decisions.iter().all(|d| d.outcome == Outcome::Accepted),
            "q {quorum}"
        );
        assert_eq!(out.work.validations, TXS as u64 * u64::from(quorum));
    }
    g.finish();
}
