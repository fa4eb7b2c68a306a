//! Contract signature verification (3 Ed25519 signatures per contract) against a bare loop of
//! `ring` verifications over the very same (message, signature, key) triples: ipow's rule
//! (crypto::verify) singly and in batches of 64, 256 and 1024, its contract path at B = 32 on
//! valid contracts, on ipow's own mix (5% planted invalid, 2 of the 5 kinds break a signature)
//! and with 5% of contracts carrying a bad signature; peer ed25519-dalek 3's `verify_batch`
//! (cofactorless: a bench peer only, never a verdict).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::base::amount::{Energy, Price};
use ipow::base::domain::{Address, BusinessCategory, DeliveryTime};
use ipow::contract::{Contract, SignedContract, verify_signatures_batched};
use ipow::crypto::keys::{KeyPair, KeyRegistry, PublicKey};
use ipow::crypto::verify::{BatchStats, Item, VerifyingKey, prepare, verify_batch, verify_one};
use rayon::prelude::*;

use super::{all_cores, pool, ring_verify_all, signature_triples};

/// 4096 contracts: 12 batches of 1024 signatures, even on 2 threads.
const CONTRACTS: usize = 4 * 1024;
const PARTICIPANTS: u32 = 64;
const KEY_SEED: u64 = 42;
/// Signatures per ed25519-dalek batch.
const BATCH: usize = 1024;

struct Fixture {
    contracts: Vec<SignedContract>,
    registry: KeyRegistry,
    /// (message, signature, public key) of every signature, in contract order.
    triples: Vec<(Vec<u8>, [u8; 64], [u8; 32])>,
}

fn fixture() -> Fixture {
    let keys: Vec<KeyPair> = (0..PARTICIPANTS)
        .map(|a| KeyPair::derive(KEY_SEED, Address(a)))
        .collect();
    let mut registry = KeyRegistry::new();
    for (a, k) in keys.iter().enumerate() {
        registry
            .register(Address(a as u32), *k.public_key().as_bytes())
            .unwrap();
    }
    let contracts: Vec<SignedContract> = (0..CONTRACTS as u64)
        .into_par_iter()
        .map(|i| {
            let (s, p, t) = ((i % 20) as u32, 20 + (i % 40) as u32, 60 + (i % 4) as u32);
            Contract {
                category: BusinessCategory::DirectPurchase,
                seller: Address(s),
                purchaser: Address(p),
                transmission: Address(t),
                price: Price::from_raw(170_900 + i as i64),
                energy: Energy::from_raw(10_980 + i as i64),
                transmission_rate: Price::parse("1.5").unwrap(),
                damages_rate: Price::parse("15").unwrap(),
                delivery_time: DeliveryTime(1080),
                seller_seq: i,
                purchaser_seq: i,
                transmission_seq: i,
                aux: None,
            }
            .sign(&keys[s as usize], &keys[p as usize], &keys[t as usize])
        })
        .collect();
    let triples = signature_triples(&contracts, &registry);
    Fixture {
        contracts,
        registry,
        triples,
    }
}

pub fn bench(c: &mut Criterion) {
    let f = fixture();
    let cores = all_cores();
    let mut g = c.benchmark_group("verify_contract_signatures");
    g.sample_size(10);
    g.throughput(Throughput::Elements(f.triples.len() as u64));

    let dalek_keys: Vec<ed25519_dalek::VerifyingKey> = f
        .triples
        .iter()
        .map(|t| ed25519_dalek::VerifyingKey::from_bytes(&t.2).unwrap())
        .collect();
    let dalek_sigs: Vec<ed25519_dalek::Signature> = f
        .triples
        .iter()
        .map(|t| ed25519_dalek::Signature::from_bytes(&t.1))
        .collect();
    let messages: Vec<&[u8]> = f.triples.iter().map(|t| t.0.as_slice()).collect();

    for threads in [1, cores] {
        let p = pool(threads);
        let t = format!("{threads}t");
        g.bench_function(BenchmarkId::new("ring_bare_loop", &t), |b| {
            b.iter(|| p.install(|| ring_verify_all(black_box(&f.triples))))
        });
        g.bench_function(BenchmarkId::new("ipow_contract_path", &t), |b| {
            b.iter(|| {
                p.install(|| {
                    black_box(&f.contracts)
                        .par_iter()
                        .with_min_len(32)
                        .filter(|c| c.verify_signatures(&f.registry).is_ok())
                        .count()
                })
            })
        });
        g.bench_function(BenchmarkId::new("dalek_batch_1024", &t), |b| {
            b.iter(|| {
                p.install(|| {
                    messages
                        .par_chunks(BATCH)
                        .zip(dalek_sigs.par_chunks(BATCH))
                        .zip(dalek_keys.par_chunks(BATCH))
                        .filter(|((m, s), k)| ed25519_dalek::verify_batch(m, s, k).is_ok())
                        .count()
                })
            })
        });
    }
    g.finish();
    rule(c, &f);

    // Answers: every signature verifies on every path, and a bad one is caught by each.
    assert!(
        f.contracts
            .par_iter()
            .all(|c| c.verify_signatures(&f.registry).is_ok())
    );
    assert!(f.triples.iter().all(|(m, s, k)| {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, k)
            .verify(m, s)
            .is_ok()
    }));
    assert!(ed25519_dalek::verify_batch(&messages, &dalek_sigs, &dalek_keys).is_ok());
    let mut bad = dalek_sigs.clone();
    bad[7] = ed25519_dalek::Signature::from_bytes(&[1; 64]);
    assert!(ed25519_dalek::verify_batch(&messages, &bad, &dalek_keys).is_err());
    let mut tampered = f.contracts[0].clone();
    tampered.contract.energy = Energy::from_raw(1);
    assert!(tampered.verify_signatures(&f.registry).is_err());
}

/// How many of `triples` (under `keys`) one batch verifies.
fn verified_in_one_batch(
    triples: &[(Vec<u8>, [u8; 64], [u8; 32])],
    keys: &[VerifyingKey],
) -> usize {
    let items: Vec<Option<Item<'_>>> = triples
        .iter()
        .zip(keys)
        .map(|(t, k)| prepare(k, &[&t.0], &t.1))
        .collect();
    let mut verdicts = vec![false; items.len()];
    verify_batch(&items, &mut verdicts, &mut BatchStats::default());
    verdicts.iter().filter(|&&v| v).count()
}

/// `n` signatures, each under a key of its own.
fn distinct_key_triples(n: usize) -> Vec<(Vec<u8>, [u8; 64], [u8; 32])> {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let kp = KeyPair::derive(7, Address(i as u32));
            let msg = format!("distinct {i}").into_bytes();
            (msg.clone(), kp.sign(&msg), *kp.public_key().as_bytes())
        })
        .collect()
}

/// Contracts with a bad signature at every `every`-th contract (a tampered amount, or a
/// signature over another message when `forge`), starting at `first`.
fn spoil(contracts: &[SignedContract], first: usize, every: usize) -> Vec<SignedContract> {
    let mut out = contracts.to_vec();
    for (i, c) in out.iter_mut().enumerate().skip(first).step_by(every) {
        if i % 2 == 0 {
            c.contract.energy = Energy::from_raw(c.contract.energy.raw() + 1);
        } else {
            c.signatures[1][5] ^= 1;
        }
    }
    out
}

/// The rule: ring's bare loop, the single check, batches of 64/256/1024, the contract path at
/// B = 32 (valid, ipow's mix, 5% bad), side by side.
fn rule(c: &mut Criterion, f: &Fixture) {
    let cores = all_cores();
    let one = pool(1);
    let all = pool(cores);
    let keys: Vec<VerifyingKey> = f
        .triples
        .iter()
        .map(|t| VerifyingKey::new(&PublicKey::admit(t.2).unwrap()))
        .collect();
    let check = |size: usize| {
        f.triples
            .par_chunks(size)
            .zip(keys.par_chunks(size))
            .map(|(ts, ks)| verified_in_one_batch(ts, ks))
            .sum::<usize>()
    };
    let contracts_path = |contracts: &[SignedContract]| {
        let refs: Vec<&SignedContract> = contracts.iter().collect();
        refs.par_chunks(256)
            .map(|piece| {
                let mut stats = BatchStats::default();
                verify_signatures_batched(piece, &f.registry, 32, &mut stats)
                    .iter()
                    .filter(|r| r.is_ok())
                    .count()
            })
            .sum::<usize>()
    };
    // ipow's own mix: 5% planted invalid, of which forged and tampered (2 of 5 kinds) break a
    // signature: 2% of contracts. And 5% of contracts with a bad signature.
    let mix = spoil(&f.contracts, 3, 50);
    let bad5 = spoil(&f.contracts, 1, 20);
    let mut g = c.benchmark_group("signature_rule");
    g.sample_size(10);
    g.throughput(Throughput::Elements(f.triples.len() as u64));
    for (p, t) in [(&one, "1t".to_string()), (&all, format!("{cores}t"))] {
        g.bench_function(BenchmarkId::new("ring_bare_loop", &t), |b| {
            b.iter(|| p.install(|| ring_verify_all(black_box(&f.triples))))
        });
        g.bench_function(BenchmarkId::new("batch_1024", &t), |b| {
            b.iter(|| p.install(|| check(1024)))
        });
    }
    g.bench_function(BenchmarkId::new("single", "1t"), |b| {
        b.iter(|| {
            f.triples
                .iter()
                .zip(&keys)
                .filter(|(t, k)| verify_one(k, &[&t.0], &t.1))
                .count()
        })
    });
    for size in [64, 256] {
        g.bench_function(BenchmarkId::new(format!("batch_{size}"), "1t"), |b| {
            b.iter(|| one.install(|| check(size)))
        });
    }
    // The fixture's 64 participants repeat keys in every batch (the equation merges their
    // terms); here every signature has a key of its own, the batch's worst case.
    let distinct = distinct_key_triples(f.triples.len());
    let distinct_keys: Vec<VerifyingKey> = distinct
        .iter()
        .map(|t| VerifyingKey::new(&PublicKey::admit(t.2).unwrap()))
        .collect();
    let check_distinct = |size: usize| {
        distinct
            .chunks(size)
            .zip(distinct_keys.chunks(size))
            .map(|(ts, ks)| verified_in_one_batch(ts, ks))
            .sum::<usize>()
    };
    for size in [64, 1024] {
        g.bench_function(
            BenchmarkId::new(format!("batch_{size}_distinct_keys"), "1t"),
            |b| b.iter(|| check_distinct(size)),
        );
    }
    assert_eq!(check_distinct(1024), distinct.len());
    for (name, set) in [
        ("contracts_b32_valid", &f.contracts),
        ("contracts_b32_ipow_mix", &mix),
        ("contracts_b32_5pct_bad", &bad5),
    ] {
        g.bench_function(BenchmarkId::new(name, "1t"), |b| {
            b.iter(|| one.install(|| contracts_path(black_box(set))))
        });
    }
    g.finish();

    // Answers: every path agrees with the single check.
    let n = f.triples.len();
    assert!(ipow::crypto::verify::backend().avx512_compiled_in);
    for size in [64, 256, 1024] {
        assert_eq!(one.install(|| check(size)), n);
    }
    assert_eq!(contracts_path(&f.contracts), f.contracts.len());
    for set in [&mix, &bad5] {
        let single = set
            .iter()
            .filter(|c| c.verify_signatures(&f.registry).is_ok())
            .count();
        assert_eq!(contracts_path(set), single);
        assert!(single < f.contracts.len());
    }
    assert_eq!(
        f.contracts.len() - contracts_path(&bad5),
        f.contracts.len() / 20 + 1
    );
}
