//! The durable store's cost, side by side: a whole IPOW run (q=3) over TXS transactions with
//! and without `--store` (every sealed period written as one write and fsynced, its index entry
//! fsynced, its master and consortium blocks signed), and an audit of that store as the supervisor beside the in-memory checks it must
//! at least keep up with (every record's signatures and every slave root, from memory).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::chain::audit::{AuditOptions, audit};
use ipow::chain::sign::BlockSigner;
use ipow::chain::store::{StoreWriter, StoredMarket};
use ipow::consensus::ipow::IpowParams;
use ipow::crypto::secret::NodeSecret;
use ipow::market::generator::Market;
use ipow::market::rules::WorkloadParams;
use ipow::pipeline::{Load, Pipeline, RunConfig, VariantConfig, genesis};

use super::{all_cores, pool};

/// Transactions in the run.
const TXS: usize = 4096;
/// Transactions per period (four periods, four synced writes).
const PERIOD: usize = 1024;

pub fn bench(c: &mut Criterion) {
    let cores = all_cores();
    let all = pool(cores);
    let params = WorkloadParams {
        invalid_ppm: 0,
        ..WorkloadParams::for_participants(7, 400, TXS)
    };
    let market = all.install(|| Market::new(params, None));
    let workload = all.install(|| market.batch(0..TXS as u64));
    let secret = NodeSecret::from_bytes([7; 32]);
    let config = RunConfig {
        variant: VariantConfig::Ipow(IpowParams::honest(64, 3, 4, 7)).with_secret(&secret),
        period_txs: PERIOD,
        load: Load::ClosedLoop,
    };
    let (genesis, _) = genesis(
        market.members.iter().map(Into::into).collect(),
        StoredMarket::new(market.rules.slot_minutes, None).unwrap(),
        &config.variant,
        &secret,
    )
    .unwrap();
    let root = std::env::temp_dir().join(format!("ipow-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let mut n = 0u64;
    let stored_run = |dir: &std::path::Path| {
        let mut w = StoreWriter::create(dir, &genesis, BlockSigner::new(&secret)).unwrap();
        let r = all.install(|| {
            Pipeline::new(&config, &workload)
                .record(&mut w)
                .run(&mut |_, _| {})
                .unwrap()
        });
        assert_eq!(w.periods(), r.blocks.len() as u64);
        r
    };
    let mut g = c.benchmark_group("store_run");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TXS as u64));
    g.bench_function(
        BenchmarkId::new("run_without_store", format!("{cores}t")),
        |b| {
            b.iter(|| {
                all.install(|| black_box(Pipeline::new(&config, &workload).run(&mut |_, _| {})))
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("run_with_store", format!("{cores}t")),
        |b| {
            b.iter(|| {
                n += 1;
                let dir = root.join(format!("run-{n}"));
                let r = stored_run(&dir);
                let _ = std::fs::remove_dir_all(&dir);
                black_box(r)
            })
        },
    );
    g.finish();

    // One store to audit; its contracts, decoded, for the in-memory checks.
    let dir = root.join("audited");
    let r = stored_run(&dir);
    assert_eq!(r.accepted, TXS as u64);
    let supervisor = AuditOptions::supervisor().with_secret(secret.clone());
    let check = all.install(|| audit(&dir, supervisor.clone()).unwrap());
    assert!(check.clean, "{:#?}", check.findings);
    assert_eq!(check.tag_check, ipow::chain::audit::TagCheck::Checked);
    assert_eq!(check.contracts_committed, TXS as u64);
    let registry = &workload.rules.registry;
    // The stored bytes, already in memory (encoded outside the timed loop).
    let encoded: Vec<Vec<u8>> = workload.transactions.iter().map(|c| c.encode()).collect();
    let mut g = c.benchmark_group("store_audit");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TXS as u64));
    g.bench_function(
        BenchmarkId::new("in_memory_checks", format!("{cores}t")),
        |b| {
            use rayon::prelude::*;
            b.iter(|| {
                all.install(|| {
                    // The audit's signature work: batches of 256 signatures (85 contracts).
                    let refs: Vec<&ipow::contract::SignedContract> =
                        workload.transactions.iter().collect();
                    let ok: usize = refs
                        .par_chunks(85)
                        .map(|piece| {
                            let mut stats = ipow::crypto::verify::BatchStats::default();
                            ipow::contract::verify_signatures_batched(
                                piece, registry, 256, &mut stats,
                            )
                            .iter()
                            .filter(|r| r.is_ok())
                            .count()
                        })
                        .sum();
                    // Each contract sits in three slave blocks: its record digest three times.
                    let digests: Vec<[u8; 32]> = encoded
                        .par_iter()
                        .flat_map_iter(|b| {
                            let d = ipow::chain::record_digest(b);
                            [d, d, d]
                        })
                        .collect();
                    black_box((ok, ipow::crypto::merkle::root_32(&digests)))
                })
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("audit_supervisor", format!("{cores}t")),
        |b| b.iter(|| all.install(|| black_box(audit(&dir, supervisor.clone()).unwrap()))),
    );
    g.finish();
    let _ = std::fs::remove_dir_all(&root);
}
