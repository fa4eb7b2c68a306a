//! One whole period end to end on a real grid (case57): the supervision node's congestion
//! context (DC flows of the scheme, curtailment), validation, tally, Merkle root and sealing, by
//! `Pipeline::run` with one period of TXS transactions, for IPOW at q=3 and PoW at 8 bits; beside
//! the bare limit of one ring verification of every signature of the period on every core (each
//! transaction is validated at least once, so that rate bounds any variant: IPOW at q=3 can reach
//! at most a third of it).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::consensus::ipow::IpowParams;
use ipow::consensus::pow::PowParams;
use ipow::grid::placement::GridMarket;
use ipow::grid::{DcModel, Grid};
use ipow::market::generator::Market;
use ipow::market::rules::WorkloadParams;
use ipow::pipeline::{Load, Pipeline, RunConfig, RunReport, VariantConfig};

use super::{all_cores, pool, ring_verify_all, signature_triples};

/// Transactions in the period.
const TXS: usize = 2048;

pub fn bench(c: &mut Criterion) {
    let cores = all_cores();
    let all = pool(cores);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("datasets/grids/pglib_opf_case57_ieee.m");
    // No planted faults: every signature verifies, so the bare loop does the same work as an
    // honest validator's signature stage; congestion still curtails some.
    let params = WorkloadParams {
        invalid_ppm: 0,
        ..WorkloadParams::for_participants(57, 300, TXS)
    };
    let grid = GridMarket::place(
        DcModel::new(Grid::load(&path).unwrap()).unwrap(),
        params.sellers,
        params.purchasers,
    )
    .unwrap();
    let workload = all.install(|| Market::new(params, Some(&grid)).batch(0..TXS as u64));
    let triples = signature_triples(&workload.transactions, &workload.rules.registry);
    let variants = [
        (
            "ipow_q3",
            VariantConfig::Ipow(IpowParams::honest(64, 3, 4, 57)),
        ),
        ("pow_8_bits", VariantConfig::Pow(PowParams::new(8).unwrap())),
    ];
    let mut g = c.benchmark_group("end_to_end_period_case57");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TXS as u64));
    g.bench_function(
        BenchmarkId::new("ring_bare_verify_once", format!("{cores}t")),
        |b| b.iter(|| all.install(|| ring_verify_all(black_box(&triples)))),
    );
    for (name, variant) in &variants {
        let config = RunConfig {
            variant: variant.clone(),
            period_txs: TXS,
            load: Load::ClosedLoop,
        };
        g.bench_function(BenchmarkId::new(*name, format!("{cores}t")), |b| {
            b.iter(|| all.install(|| run(&config, &workload, &grid)))
        });
        // One period, everything decided, honest validators make no wrong decision.
        let r = all.install(|| run(&config, &workload, &grid));
        assert_eq!(r.blocks.len(), 1, "{name}");
        assert_eq!(r.accepted + r.rejected, TXS as u64, "{name}");
        assert_eq!((r.wrong_accepts, r.wrong_rejects), (0, 0), "{name}");
        assert!(r.accepted > 0, "{name}");
    }
    g.finish();
    assert_eq!(all.install(|| ring_verify_all(&triples)), triples.len());
}

fn run(
    config: &RunConfig,
    workload: &ipow::market::rules::Workload,
    grid: &GridMarket,
) -> RunReport {
    Pipeline::new(config, workload)
        .grid(Some(grid))
        .run(&mut |_, _| {})
        .unwrap()
}
