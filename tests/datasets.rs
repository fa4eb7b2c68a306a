use std::path::{Path, PathBuf};

use ipow::dataset::{self, Dataset, DatasetError, Reader, Writer};
use ipow::workload::{Market, WorkloadParams};

use crate::markets::{grid_market, params};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ipow-ds-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Generates a market in several batches and streams it to `path`, as `ipow generate` does.
fn generate(path: &Path, p: &WorkloadParams, grid: Option<&ipow::congestion::GridMarket>) {
    let market = Market::new(p.clone(), grid);
    let header = dataset::header_for(
        p,
        Some("case57"),
        &market.rules,
        market.members.len() as u64,
    );
    let mut w = Writer::create(path, header, &market.members).unwrap();
    let n = p.contracts as u64;
    let mut at = 0;
    while at < n {
        let end = (at + 3000).min(n);
        w.write(&market.batch(at..end)).unwrap();
        at = end;
    }
    w.finish().unwrap();
}

fn small(seed: u64, contracts: usize) -> WorkloadParams {
    params(seed, contracts)
}

#[test]
fn the_same_seed_gives_byte_identical_datasets_on_1_2_and_7_threads() {
    let d = dir("threads");
    let p = small(4, 9000);
    let g = grid_market("pglib_opf_case57_ieee.m", &p);
    let bytes = |threads: usize| {
        let path = d.join(format!("t{threads}.ipowm"));
        pool(threads).install(|| generate(&path, &p, Some(&g)));
        std::fs::read(path).unwrap()
    };
    let one = bytes(1);
    assert_eq!(one, bytes(2));
    assert_eq!(one, bytes(7));
    // Several chunks, the last one partial.
    assert!(one.len() > 2 * 4096 * 250);
}

#[test]
fn binary_to_json_to_binary_keeps_every_byte_and_every_field() {
    let d = dir("roundtrip");
    let p = small(6, 5000);
    let g = grid_market("pglib_opf_case57_ieee.m", &p);
    let bin = d.join("a.ipowm");
    generate(&bin, &p, Some(&g));
    let a: Dataset = dataset::read_any(&bin).unwrap();
    let json = d.join("a.json");
    dataset::write_any(&json, &a).unwrap();
    let b = dataset::read_any(&json).unwrap();
    let bin2 = d.join("b.ipowm");
    dataset::write_any(&bin2, &b).unwrap();
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(&bin2).unwrap());
    assert_eq!(a.header, b.header);
    assert_eq!(a.members, b.members);
    assert_eq!(a.workload.transactions, b.workload.transactions);
    assert_eq!(a.workload.truth, b.workload.truth);
    assert_eq!(a.workload.readings, b.workload.readings);
    // What was read is what was generated.
    let direct = Market::new(p.clone(), Some(&g)).batch(0..5000);
    assert_eq!(direct.transactions, a.workload.transactions);
    assert_eq!(direct.truth, a.workload.truth);
    assert_eq!(direct.readings, a.workload.readings);
}

fn read_all(path: &Path) -> Result<u64, DatasetError> {
    let mut r = Reader::open(path)?;
    let mut n = 0;
    while let Some(w) = r.next_batch(10_000)? {
        n += w.transactions.len() as u64;
    }
    Ok(n)
}

fn with_bytes(d: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn truncated_flipped_foreign_and_oversized_files_are_typed_errors_naming_offset_and_field() {
    let d = dir("bad");
    let p = WorkloadParams {
        invalid_ppm: 0,
        ..WorkloadParams::for_participants(2, 60, 5000)
    };
    let good = d.join("good.ipowm");
    generate(&good, &p, None);
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(read_all(&good).unwrap(), 5000);
    let err = |name: &str, b: &[u8]| read_all(&with_bytes(&d, name, b)).unwrap_err();

    // Every truncation point is an error, never a panic and never a short success.
    let step = (bytes.len() / 97).max(1);
    for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
        let e = err("cut.ipowm", &bytes[..cut]);
        assert!(
            e.file.ends_with("cut.ipowm") && e.at.starts_with("offset"),
            "{e}"
        );
    }
    // A flipped bit anywhere is caught (by a digest, or by a field check before it).
    for at in (0..bytes.len()).step_by(step) {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        let e = err("flip.ipowm", &b);
        assert!(e.at.starts_with("offset"), "flip at {at}: {e}");
    }
    // A flip in the last chunk's body names its digest.
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 200] ^= 1;
    assert_eq!(err("body.ipowm", &b).field, "chunk.digest");
    // Foreign bytes, a wrong version.
    assert_eq!(
        err("foreign.ipowm", b"PK\x03\x04 a zip file, not a dataset").field,
        "magic"
    );
    let mut b = bytes.clone();
    b[8] = 9;
    let e = err("version.ipowm", &b);
    assert_eq!(
        (e.field.as_str(), e.at.as_str()),
        ("format", "offset 8"),
        "{e}"
    );
    // Declared lengths far beyond the file: refused before allocating (u64::MAX members would
    // be 900 exabytes).
    let mut b = bytes.clone();
    b[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = err("members.ipowm", &b);
    assert!(e.field == "members" || e.field == "header_digest", "{e}");
    let mut b = bytes.clone();
    b[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(err("params.ipowm", &b).field, "params_len");
    // An extra byte after the trailer.
    let mut b = bytes.clone();
    b.push(0);
    assert_eq!(err("extra.ipowm", &b).field, "trailer");
    // An empty file.
    assert_eq!(err("empty.ipowm", b"").field, "magic");
}

#[test]
fn a_bad_json_dataset_names_the_record_and_field() {
    let d = dir("json");
    let p = WorkloadParams::for_participants(3, 40, 20);
    let w = Market::new(p.clone(), None);
    let ds = Dataset {
        header: dataset::header_for(&p, None, &w.rules, w.members.len() as u64),
        members: w.members.clone(),
        workload: w.batch(0..20),
    };
    let text = dataset::to_json(&ds);
    let e = dataset::from_json(
        "m.json",
        &text.replacen("\"energy\": \"", "\"energy\": \"-", 1),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(e.at.starts_with("line"), "{e}");
    let e = dataset::from_json(
        "m.json",
        &text.replacen("\"carried\": true", "\"carried\": 3", 1),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(e.to_string().contains("m.json"), "{e}");
    let sig = &hex::encode(ds.workload.transactions[2].signatures[1]);
    let e = dataset::from_json("m.json", &text.replacen(sig.as_str(), "abc", 1))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        (e.at.as_str(), e.field.as_str()),
        ("contracts[2]", "signatures[1]")
    );
    let _ = with_bytes(&d, "ok.json", text.as_bytes());
}
