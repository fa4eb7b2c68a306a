//! Contract signature verification (3 Ed25519 signatures per contract) against a bare loop of
//! `ring` verifications over the very same (message, signature, key) triples, and against
//! ed25519-dalek 3's batch verification (AVX-512 IFMA backend where the CPU has it).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::base::amount::{Energy, Price};
use ipow::base::domain::{Address, BusinessCategory, DeliveryTime};
use ipow::contract::{Contract, SignedContract};
use ipow::crypto::keys::{KeyPair, KeyRegistry};
use rayon::prelude::*;

use super::{all_cores, pool, ring_verify_all, signature_triples};

const CONTRACTS: usize = 3 * 1024;
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
