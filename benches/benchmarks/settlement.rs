//! Settlement: ten million contracts among 100,000 accounts on every core, against a bare
//! sequential loop over a `Vec<i64>` applying the very same transfers, with two peers: a
//! `Vec<AtomicI64>` and dashmap (two guards taken one after the other, never together).
//!
//! Under `cargo bench` the sizes are the issue's; in test mode (`cargo test --benches`) they are
//! small, so CI stays fast and the answer checks still run.

use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use ipow::base::amount::{Energy, Money, Price};
use ipow::base::domain::{Address, BusinessCategory, DeliveryTime};
use ipow::base::rng::Rng;
use ipow::contract::Contract;
use ipow::ledger::{
    IndexedTransfer, Ledger, Reading, SettlementParams, TransferBatch, contract_transfers,
};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{all_cores, pool};

fn full_size() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Contract `i` among `accounts` (the last 100 are transmission companies; 10 hot accounts are
/// in one contract of five) with its readings: a pure function of `i`.
fn contract(i: u64, accounts: u32) -> (Contract, Reading) {
    let mut r = Rng::stream(5, &[i]);
    let traders = u64::from(accounts - 100);
    let party = |r: &mut Rng| {
        Address(if r.below(5) == 0 {
            r.below(10)
        } else {
            r.below(traders)
        } as u32)
    };
    let (seller, purchaser) = (party(&mut r), party(&mut r));
    let c = Contract {
        category: BusinessCategory::CommonSupply,
        seller,
        purchaser,
        transmission: Address(accounts - 100 + r.below(100) as u32),
        price: Price::from_raw(r.between(170_000, 240_000)),
        energy: Energy::from_raw(r.between(100, 40_000)),
        transmission_rate: Price::from_raw(1_5000),
        damages_rate: Price::from_raw(15_0000),
        delivery_time: DeliveryTime(1080),
        seller_seq: i,
        purchaser_seq: i,
        transmission_seq: i,
        aux: None,
    };
    let reading = match r.below(20) {
        0 => Reading {
            delivered: Energy::from_raw(c.energy.raw() / 2),
            received: Energy::from_raw(c.energy.raw() / 2),
            carried: true,
        },
        1 => Reading {
            delivered: c.energy,
            received: c.energy,
            carried: false,
        },
        _ => Reading::full(&c),
    };
    (c, reading)
}

/// One generation chunk: ids, transfers, and the transfer count of each contract.
type ChunkPart = (Vec<[u8; 32]>, Vec<IndexedTransfer>, Vec<usize>);

/// The period in flat form; account index = address (accounts are created in address order).
fn batch(contracts: usize, accounts: u32) -> TransferBatch {
    let params = SettlementParams::default();
    const CHUNK: usize = 1 << 14;
    let parts: Vec<ChunkPart> = (0..contracts.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let (mut ids, mut transfers, mut counts) = (Vec::new(), Vec::new(), Vec::new());
            for i in (chunk * CHUNK) as u64..((chunk + 1) * CHUNK).min(contracts) as u64 {
                let (c, reading) = contract(i, accounts);
                ids.push(Sha256::digest(i.to_le_bytes()).into());
                let t = contract_transfers(&c, &reading, &params).unwrap();
                counts.push(t.len());
                transfers.extend(t.iter().map(|t| IndexedTransfer {
                    from: t.from.0,
                    to: t.to.0,
                    amount: t.amount.raw(),
                }));
            }
            (ids, transfers, counts)
        })
        .collect();
    let mut b = TransferBatch::default();
    b.offsets.push(0);
    for (ids, transfers, counts) in parts {
        b.ids
            .extend(ids.into_iter().map(ipow::contract::ContractId));
        b.transfers.extend(transfers);
        for n in counts {
            b.offsets.push(b.offsets.last().unwrap() + n);
        }
    }
    b
}

pub fn bench(c: &mut Criterion) {
    let (contracts, accounts) = if full_size() {
        (10_000_000, 100_000)
    } else {
        (100_000, 10_000)
    };
    let cores = all_cores();
    let all = pool(cores);
    let b = all.install(|| batch(contracts, accounts));
    let opening = 1_000_000_000i64;
    let ledger = Ledger::new(
        &(0..accounts)
            .map(|a| (Address(a), Money::from_raw(opening)))
            .collect::<Vec<_>>(),
    );
    let mut g = c.benchmark_group("settle_10M");
    g.sample_size(10);
    g.throughput(Throughput::Elements(b.transfers.len() as u64));

    let bare = |transfers: &[IndexedTransfer]| {
        let mut balances = vec![opening; accounts as usize];
        for t in transfers {
            balances[t.from as usize] -= t.amount;
            balances[t.to as usize] += t.amount;
        }
        balances
    };
    g.bench_function(BenchmarkId::new("bare_vec_i64_sequential", "1t"), |bench| {
        bench.iter(|| bare(black_box(&b.transfers)))
    });
    g.bench_function(
        BenchmarkId::new("atomic_vec_i64", format!("{cores}t")),
        |bench| {
            bench.iter(|| {
                let balances: Vec<AtomicI64> =
                    (0..accounts).map(|_| AtomicI64::new(opening)).collect();
                all.install(|| {
                    b.transfers.par_iter().with_min_len(4096).for_each(|t| {
                        balances[t.from as usize].fetch_sub(t.amount, Ordering::Relaxed);
                        balances[t.to as usize].fetch_add(t.amount, Ordering::Relaxed);
                    })
                });
                balances
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("dashmap_guards_one_at_a_time", format!("{cores}t")),
        |bench| {
            bench.iter(|| {
                let map: dashmap::DashMap<u32, i64> = (0..accounts).map(|a| (a, opening)).collect();
                all.install(|| {
                    b.transfers.par_iter().with_min_len(4096).for_each(|t| {
                        // Never two guards at once: no lock-order deadlock is possible.
                        if let Some(mut from) = map.get_mut(&t.from) {
                            *from -= t.amount;
                        }
                        if let Some(mut to) = map.get_mut(&t.to) {
                            *to += t.amount;
                        }
                    })
                });
                map
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("ipow_ledger_settle_batch", format!("{cores}t")),
        |bench| {
            bench.iter_batched(
                || ledger.clone(),
                |mut l| {
                    all.install(|| l.settle_batch(0, black_box(&b))).unwrap();
                    l
                },
                BatchSize::PerIteration,
            )
        },
    );
    g.finish();

    // Answers: the ledger equals the bare loop to the cent, conserves money, fails nothing here.
    let expected = bare(&b.transfers);
    let mut l = ledger.clone();
    let result = all.install(|| l.settle_batch(0, &b)).unwrap();
    assert!(result.failed.is_empty());
    assert_eq!(result.applied_count(), contracts);
    assert_eq!(l.total(), ledger.total());
    for a in 0..accounts {
        assert_eq!(
            l.balance(Address(a)).unwrap().raw(),
            expected[a as usize],
            "account {a}"
        );
    }
    assert!(
        l.settle_batch(1, &b).is_err(),
        "every contract settles at most once"
    );
}
