use std::path::{Path, PathBuf};

use ipow::market::dataset::{self, Dataset, DatasetError, Reader, Writer};
use ipow::market::generator::Market;
use ipow::market::rules::WorkloadParams;

use crate::markets::{grid_market, params};

fn dir(tag: &str) -> PathBuf {
    crate::util::scratch(&format!("ds-{tag}"))
}

use crate::util::pool;

/// Generates a market in several batches and streams it to `path`, as `ipow generate` does.
fn generate(path: &Path, p: &WorkloadParams, grid: Option<&ipow::grid::placement::GridMarket>) {
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
    assert!(one.len() > 2 * dataset::CHUNK_RECORDS as usize * 250);
}

/// One bus numbering in every file: the JSON form writes a participant's bus as the grid
/// file's MATPOWER number (case300's are not its indices + 1), lists the grid's numbers so it
/// reads back alone, refuses to guess them, and still reads format 1's indices.
#[test]
fn the_json_form_writes_matpower_bus_numbers_and_still_reads_format_1() {
    let d = dir("busnumbers");
    let p = small(8, 300);
    let g = grid_market("pglib_opf_case300_ieee.m", &p);
    let bin = d.join("a.ipowm");
    generate(&bin, &p, Some(&g));
    let mut a = dataset::read_any(&bin).unwrap();
    let e = dataset::to_json("a.json", &a).unwrap_err();
    assert!(e.at.starts_with("members[") && e.field == "bus", "{e}");
    let grid = g.model().grid();
    a.number_buses(grid).unwrap();
    let text = dataset::to_json("a.json", &a).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "ipow-market/2");
    let mut renumbered = 0;
    for (m, j) in a.members.iter().zip(doc["members"].as_array().unwrap()) {
        match m.bus {
            Some(i) => {
                let number = grid.buses[i as usize].number;
                assert_eq!(j["bus"], number);
                renumbered += usize::from(number != i + 1);
            }
            None => assert!(j["bus"].is_null()),
        }
    }
    assert!(
        renumbered > 0,
        "no participant on a bus whose number is not its index + 1"
    );
    assert_eq!(
        dataset::from_json("a.json", &text).unwrap().members,
        a.members
    );
    // Format 1: the same members by index, no table.
    let mut v1 = doc.clone();
    v1["format"] = "ipow-market/1".into();
    v1.as_object_mut().unwrap().remove("bus_numbers");
    for (m, j) in a.members.iter().zip(v1["members"].as_array_mut().unwrap()) {
        j["bus"] = m.bus.into();
    }
    let old = dataset::from_json("old.json", &v1.to_string()).unwrap();
    assert_eq!(old.members, a.members);
    assert!(old.bus_numbers.is_empty());
    // A bus outside the table, and a table listing a bus twice, are named.
    let k = a.members.iter().position(|m| m.bus.is_some()).unwrap();
    let mut bad = doc.clone();
    bad["members"][k]["bus"] = 999_999.into();
    let e = dataset::from_json("bad.json", &bad.to_string()).unwrap_err();
    assert_eq!(
        (e.at.as_str(), e.field.as_str()),
        (format!("members[{k}]").as_str(), "bus"),
        "{e}"
    );
    let mut twice = doc.clone();
    twice["bus_numbers"][1] = twice["bus_numbers"][0].clone();
    let e = dataset::from_json("twice.json", &twice.to_string()).unwrap_err();
    assert_eq!(e.field, "bus_numbers", "{e}");
    // A grid too small for the members is refused.
    let small_grid = crate::grids::load("pglib_opf_case14_ieee.m");
    assert!(a.number_buses(&small_grid).is_err());
}

#[test]
fn binary_to_json_to_binary_keeps_every_byte_and_every_field() {
    let d = dir("roundtrip");
    let p = small(6, 5000);
    let g = grid_market("pglib_opf_case57_ieee.m", &p);
    let bin = d.join("a.ipowm");
    generate(&bin, &p, Some(&g));
    let mut a: Dataset = dataset::read_any(&bin).unwrap();
    // The binary form carries no bus numbers; JSON takes them from the grid.
    a.number_buses(g.model().grid()).unwrap();
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
    // A flipped bit anywhere is caught (by a checksum, or by a field check before it).
    for at in (0..bytes.len()).step_by(step) {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        let e = err("flip.ipowm", &b);
        assert!(e.at.starts_with("offset"), "flip at {at}: {e}");
    }
    // A flip in the last chunk's body names its checksum.
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 200] ^= 1;
    assert_eq!(err("body.ipowm", &b).field, "chunk.checksum");
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
    assert!(e.field == "members" || e.field == "header_checksum", "{e}");
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
        bus_numbers: Vec::new(),
    };
    let text = dataset::to_json("m.json", &ds).unwrap();
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

/// A binary dataset's chunks as (offset, records, body_len), walked from the layout in
/// `src/market/dataset/mod.rs`, and where each chunk's records start.
fn chunks(bytes: &[u8], members: usize) -> Vec<(usize, usize, usize, Vec<usize>)> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let params_len = u32_at(40);
    let mut at = 44 + params_len + 8 + members * dataset::MEMBER_LEN + 8;
    let mut out = Vec::new();
    while &bytes[at..at + 8] != b"IPOWEND\0" {
        let (records, body_len) = (u32_at(at), u32_at(at + 4));
        let mut starts = Vec::new();
        let mut r = at + 8;
        for _ in 0..records {
            starts.push(r);
            r += 2 + usize::from(u16::from_le_bytes([bytes[r], bytes[r + 1]])) + 18;
        }
        assert_eq!(r, at + 8 + body_len);
        out.push((at, records, body_len, starts));
        at += 8 + body_len + 8;
    }
    out
}

/// Rewrites every chunk checksum and the trailer's file checksum, as a writer would have.
fn reseal(bytes: &mut [u8], members: usize) {
    let chunks = chunks(bytes, members);
    let params_len = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    let head_end = 44 + params_len;
    let members_end = head_end + 8 + members * dataset::MEMBER_LEN;
    let mut sums = Vec::new();
    sums.extend_from_slice(&bytes[head_end..head_end + 8]);
    sums.extend_from_slice(&bytes[members_end..members_end + 8]);
    for &(at, _, body_len, _) in &chunks {
        let end = at + 8 + body_len;
        let sum = dataset::checksum(&bytes[at..end]).to_le_bytes();
        bytes[end..end + 8].copy_from_slice(&sum);
        sums.extend_from_slice(&sum);
    }
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(&dataset::checksum(&sums).to_le_bytes());
}

#[test]
fn a_record_that_fails_to_decode_is_named_by_its_chunk_position_and_offset_first_in_file_order() {
    let d = dir("decode");
    let p = WorkloadParams {
        invalid_ppm: 0,
        ..WorkloadParams::for_participants(8, 60, 7000)
    };
    let good = d.join("good.ipowm");
    generate(&good, &p, None);
    let members = Reader::open(&good).unwrap().members().len();
    let bytes = std::fs::read(&good).unwrap();
    let layout = chunks(&bytes, members);
    assert!(layout.len() >= 4, "several chunks");
    // Resealed without damage, the file still reads: the walk and the reseal are right.
    let mut same = bytes.clone();
    reseal(&mut same, members);
    assert_eq!(same, bytes);
    // Two bad categories (byte 1 of a signed contract): record 500 of chunk 3 and record 0
    // of chunk 1. The error names the earlier one in the file, whichever thread met it first.
    let mut b = bytes.clone();
    let late = layout[3].3[500] + 2;
    let early = layout[1].3[0] + 2;
    b[late + 1] = 9;
    b[early + 1] = 9;
    reseal(&mut b, members);
    for threads in [1, 2, 7] {
        let e = pool(threads)
            .install(|| read_all(&with_bytes(&d, "category.ipowm", &b)))
            .unwrap_err();
        assert_eq!(
            (e.at.as_str(), e.field.as_str()),
            (
                format!("offset {early}").as_str(),
                "record 0 of chunk: signed"
            ),
            "{threads} threads: {e}"
        );
        assert!(e.message.contains("category"), "{e}");
    }
}

/// A chunk written twice (chunk 1's bytes in chunk 2's place, every checksum and the trailer
/// resealed) passed every checksum and counted its contracts twice as valid; it is refused,
/// naming both chunks, through the reader and `ipow dataset verify`.
#[test]
fn a_chunk_written_twice_with_its_trailer_resealed_is_refused() {
    let d = dir("twice");
    let p = WorkloadParams {
        invalid_ppm: 0,
        ..WorkloadParams::for_participants(9, 60, 7000)
    };
    let good = d.join("good.ipowm");
    generate(&good, &p, None);
    let members = Reader::open(&good).unwrap().members().len();
    let mut b = std::fs::read(&good).unwrap();
    let layout = chunks(&b, members);
    let (first, second) = (&layout[1], &layout[2]);
    assert_eq!(first.1, second.1, "two chunks of as many records");
    let copy = b[first.0..first.0 + 8 + first.2 + 8].to_vec();
    b.splice(second.0..second.0 + 8 + second.2 + 8, copy);
    reseal(&mut b, members);
    let path = with_bytes(&d, "twice.ipowm", &b);
    let e = read_all(&path).unwrap_err();
    assert_eq!(e.field, "chunk");
    assert_eq!(e.at, format!("offset {}", second.0));
    assert!(
        e.message
            .contains(&format!("the same bytes as the chunk at byte {}", first.0)),
        "{e}"
    );
    crate::util::check_error(
        &["dataset", "verify", "--dataset", path.to_str().unwrap()],
        &["twice.ipowm", "chunk", "stored twice"],
    );
}

#[test]
fn a_batch_read_into_reused_vectors_equals_a_fresh_batch() {
    let d = dir("into");
    let p = small(10, 9000);
    let path = d.join("m.ipowm");
    generate(&path, &p, None);
    let mut fresh = Reader::open(&path).unwrap();
    let mut reused = Reader::open(&path).unwrap();
    let mut into = reused.empty_batch();
    let (mut batches, mut total) = (0, 0);
    while let Some(w) = fresh.next_batch(3000).unwrap() {
        assert!(reused.next_batch_into(3000, &mut into).unwrap());
        assert_eq!(w.transactions, into.transactions);
        assert_eq!(w.truth, into.truth);
        assert_eq!(w.readings, into.readings);
        batches += 1;
        total += w.transactions.len();
    }
    assert!(!reused.next_batch_into(3000, &mut into).unwrap());
    assert!(into.transactions.is_empty() && into.truth.is_empty());
    assert!(batches >= 3);
    assert_eq!(total, 9000);
}

/// A bad member key is named by its member record and field when the file is opened, the first
/// in member order, in a market large enough that its keys are admitted as one list (above
/// `crypto::BATCH_FROM`): off the curve, small order, or not canonically encoded.
#[test]
fn a_bad_member_key_is_named_at_open_in_a_large_market() {
    let d = dir("keys");
    let p = WorkloadParams {
        invalid_ppm: 0,
        ..WorkloadParams::for_participants(3, 400, 50)
    };
    let market = Market::new(p.clone(), None);
    let members = market.members.len();
    assert!(
        members >= ipow::crypto::keys::BATCH_FROM,
        "{members} members"
    );
    let write = |name: &str, list: &[ipow::market::generator::Member]| {
        let path = d.join(name);
        let header = dataset::header_for(&p, None, &market.rules, list.len() as u64);
        let mut w = Writer::create(&path, header, list).unwrap();
        w.write(&market.batch(0..50)).unwrap();
        w.finish().unwrap();
        path
    };
    assert!(Reader::open(&write("good.ipowm", &market.members)).is_ok());
    let off_curve = (0..=255u8)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b[1] = 1;
            b
        })
        .find(|b| {
            curve25519_dalek::edwards::CompressedEdwardsY(*b)
                .decompress()
                .is_none()
        })
        .unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut y_is_p = [0xffu8; 32];
    y_is_p[0] = 0xed;
    y_is_p[31] = 0x7f;
    for (bad, says) in [
        (off_curve, "not a point on the Ed25519 curve"),
        (identity, "small order"),
        (y_is_p, "not canonically encoded"),
    ] {
        for (first, second) in [
            (members - 1, None),
            (7, Some(members - 20)),
            (250, Some(251)),
        ] {
            let mut list = market.members.clone();
            list[first].public_key = bad;
            if let Some(s) = second {
                list[s].public_key = off_curve;
            }
            let e = Reader::open(&write("bad.ipowm", &list)).unwrap_err();
            assert_eq!(e.at, format!("members[{first}]"), "{e}");
            assert_eq!(e.field, "public_key", "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }
}

/// The tally counts each truth under the code the file gives it: equal to counting by name.
#[test]
fn the_tally_counts_every_truth_under_its_name() {
    let p = WorkloadParams {
        invalid_ppm: 300_000,
        ..WorkloadParams::for_participants(6, 100, 7000)
    };
    let w = Market::new(p.clone(), None).batch(0..3000);
    let mut counts = [0u64; dataset::TRUTHS];
    dataset::tally(&w.truth, &mut counts);
    dataset::tally(&w.truth[..10], &mut counts);
    let mut by_name = std::collections::BTreeMap::new();
    for &t in w.truth.iter().chain(&w.truth[..10]) {
        *by_name.entry(dataset::truth_name(t)).or_insert(0u64) += 1;
    }
    let named: std::collections::BTreeMap<_, _> = counts
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(i, &n)| (dataset::truth_name(dataset::truth_at(i).unwrap()), n))
        .collect();
    assert_eq!(named, by_name);
    assert!(named.len() >= 5, "{named:?}");
    assert_eq!(dataset::truth_at(dataset::TRUTHS), None);
    // The reader's own count, made while it decodes each chunk, equals the tally of what it
    // returned, after every batch (several chunks, the last one partial).
    let d = dir("tally");
    let path = d.join("m.ipowm");
    generate(&path, &p, None);
    let mut r = Reader::open(&path).unwrap();
    let mut expected = [0u64; dataset::TRUTHS];
    assert_eq!(r.truths_read(), &expected);
    while let Some(batch) = r.next_batch(2500).unwrap() {
        dataset::tally(&batch.truth, &mut expected);
        assert_eq!(r.truths_read(), &expected);
    }
    assert_eq!(expected.iter().sum::<u64>(), p.contracts as u64);
}
