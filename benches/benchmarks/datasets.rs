//! Market generation against the bare signing limit: `Market::batch` (draws, encoding, three
//! Ed25519 signatures per contract, readings) beside a bare loop of three `ring` signatures on
//! every contract's three signing messages, on every core, in the same group.
//!
//! Key admission: the 10,000 member keys of that market admitted as one list
//! (`crypto::admit_all`: bytes, then the curve equation for the whole list) beside each key
//! admitted alone (`PublicKey::admit`: one point decompression per key), both on every core.
//!
//! Dataset I/O: writing (`Writer`: encode, chunk checksums, file SHA-256, fsync, rename) and
//! reading (`Reader`: chunk and header checksums, decode, key admission) the same market, beside
//! the bare limit of reading the file's bytes (`std::fs::read`, what `cat` does from the page
//! cache). The large-file loading figure against `cat` is perf/run-datasets.sh.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::base::domain::Address;
use ipow::crypto::keys::{KeyPair, PublicKey, admit_all};
use ipow::market::dataset;
use ipow::market::generator::Market;
use ipow::market::rules::WorkloadParams;
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

    let encodings: Vec<[u8; 32]> = market.members.iter().map(|m| m.public_key).collect();
    let one_by_one = || -> Vec<PublicKey> {
        encodings
            .par_iter()
            .with_min_len(64)
            .map(|&k| PublicKey::admit(k).unwrap())
            .collect()
    };
    let mut g = c.benchmark_group("key_admission");
    g.sample_size(20);
    g.throughput(Throughput::Elements(encodings.len() as u64));
    g.bench_function(format!("each_key_alone/{threads}t"), |b| {
        b.iter(|| p.install(|| black_box(one_by_one())))
    });
    g.bench_function(format!("ipow_admit_all/{threads}t"), |b| {
        b.iter(|| p.install(|| black_box(admit_all(&encodings).unwrap())))
    });
    g.finish();
    assert_eq!(
        p.install(|| admit_all(&encodings)).unwrap(),
        p.install(one_by_one)
    );
    assert!(encodings.len() >= ipow::crypto::keys::BATCH_FROM);

    let dir = std::env::temp_dir().join(format!("ipow-bench-dataset-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("market.ipowm");
    let header = dataset::header_for(&params, None, &market.rules, market.members.len() as u64);
    let write = || {
        let mut w = dataset::Writer::create(&path, header.clone(), &market.members).unwrap();
        w.write(&reference).unwrap();
        w.finish().unwrap()
    };
    let read = || {
        let mut r = dataset::Reader::open(&path).unwrap();
        let mut out = Vec::new();
        while let Some(b) = r.next_batch(1 << 16).unwrap() {
            out.extend(b.transactions);
        }
        out
    };
    let digest = write();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let mut g = c.benchmark_group("dataset_io");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function(
        BenchmarkId::new("bare_fs_read_bytes", format!("{threads}t")),
        |b| b.iter(|| black_box(std::fs::read(&path).unwrap()).len()),
    );
    g.bench_function(
        BenchmarkId::new("ipow_reader_all", format!("{threads}t")),
        |b| b.iter(|| black_box(read()).len()),
    );
    g.bench_function(
        BenchmarkId::new("ipow_writer_all", format!("{threads}t")),
        |b| b.iter(|| black_box(write())),
    );
    g.finish();
    assert_eq!(write(), digest, "the same market writes the same bytes");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes);
    assert_eq!(
        read(),
        reference.transactions,
        "what was written reads back"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
