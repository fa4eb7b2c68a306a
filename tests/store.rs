use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ipow::chain::audit::{AuditOptions, AuditReport, Viewer, audit};
use ipow::chain::store::{LogReader, RawRecord, decode_slave, frame, kind, read_index};
use ipow::chain::{ChainId, ContractProof, verify_proof};
use ipow::contract::SignedContract;

use crate::util::ipow;

/// A fresh path under the temporary directory (removed if it exists).
fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("ipow-store-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(secret_path(&dir));
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

/// Where a run without `--secret` writes the store's node secret: `DIR.secret`.
fn secret_path(dir: &Path) -> PathBuf {
    dir.with_file_name(format!(
        "{}.secret",
        dir.file_name().unwrap().to_string_lossy()
    ))
}

/// A node secret file (owner-only) under `dir`'s parent, for runs whose store bytes must repeat.
fn fixed_secret(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = fresh(name).with_extension("key");
    std::fs::write(&path, format!("{}\n", "42".repeat(32))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn run_store(dir: &Path, extra: &[&str]) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["run", "--store", d, "--json"];
    args.extend_from_slice(extra);
    let out = ipow(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn paper_store(dir: &Path) {
    let out = ipow(&["paper", "--store", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The supervisor's audit, with the store's node secret when a run wrote one beside it.
fn supervisor(dir: &Path) -> AuditReport {
    let options = match ipow::crypto::secret::NodeSecret::read(&secret_path(dir)) {
        Ok(secret) => AuditOptions::supervisor().with_secret(secret),
        Err(_) => AuditOptions::supervisor(),
    };
    audit(dir, options).unwrap()
}

fn records(dir: &Path) -> Vec<RawRecord> {
    let mut r = LogReader::open(dir).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push(rec);
    }
    out
}

fn rewrite(dir: &Path, records: &[RawRecord]) {
    let mut bytes = Vec::new();
    for r in records {
        frame(&mut bytes, r.kind, &r.payload).unwrap();
    }
    std::fs::write(dir.join(ipow::chain::store::LOG_FILE), bytes).unwrap();
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join(ipow::chain::store::LOG_FILE)
}

/// The contracts of a slave block record.
fn slave_contracts(r: &RawRecord) -> (ChainId, Vec<SignedContract>) {
    let s = decode_slave(&r.payload).unwrap();
    (
        s.header.chain,
        s.contracts
            .iter()
            .map(|(_, b)| SignedContract::decode(b).unwrap())
            .collect(),
    )
}

/// Re-encodes a slave block record with `contracts` in place of its own (header untouched).
fn with_contracts(r: &RawRecord, contracts: &[SignedContract]) -> RawRecord {
    let s = decode_slave(&r.payload).unwrap();
    let mut p = s.header.encode().to_vec();
    p.extend_from_slice(&(contracts.len() as u32).to_be_bytes());
    for c in contracts {
        let b = c.encode();
        p.extend_from_slice(&(b.len() as u32).to_be_bytes());
        p.extend_from_slice(&b);
    }
    RawRecord {
        payload: p,
        ..r.clone()
    }
}

#[test]
fn a_fresh_store_audits_clean_and_a_participant_sees_only_its_own_contracts() {
    let dir = fresh("fresh");
    run_store(&dir, &["--contracts", "800", "--period-txs", "200"]);
    let sup = supervisor(&dir);
    assert!(sup.clean, "{:#?}", sup.findings);
    assert!(sup.periods >= 4, "{}", sup.periods);
    assert_eq!(sup.master_blocks, 4 * sup.periods);
    assert_eq!(sup.consortium_blocks, sup.periods);
    // Three copies of each committed contract (seller, purchaser, transmission company).
    assert_eq!(sup.contract_copies_checked, 3 * sup.contracts_committed);
    assert_eq!(sup.contracts_signature_checked, sup.contracts_committed);
    assert!(sup.tags_checked >= 3 * sup.contracts_committed);
    assert!(sup.contracts_seen.is_empty());
    // A purchaser's view.
    let recs = records(&dir);
    let (chain, _) = recs
        .iter()
        .filter(|r| r.kind == kind::SLAVE)
        .map(slave_contracts)
        .find(|(c, _)| matches!(c, ChainId::Slave(a) if a.0 >= ipow::base::domain::PURCHASER_BASE))
        .unwrap();
    let ChainId::Slave(address) = chain else {
        unreachable!()
    };
    let mine = audit(
        &dir,
        AuditOptions {
            viewer: Viewer::Participant(address),
            baseline: false,
            head: None,
            genesis: None,
            secret: None,
        },
    )
    .unwrap();
    assert!(mine.clean, "{:#?}", mine.findings);
    assert_eq!(mine.tags_checked, 0, "tags are the supervisor's to check");
    assert!(!mine.contracts_seen.is_empty());
    assert!((mine.contracts_seen.len() as u64) < sup.contracts_committed);
    // Every contract it saw is one it is party to, and it saw all of those.
    let mut party_to = std::collections::BTreeSet::new();
    for r in recs.iter().filter(|r| r.kind == kind::SLAVE) {
        for c in slave_contracts(r).1 {
            if [
                c.contract.seller,
                c.contract.purchaser,
                c.contract.transmission,
            ]
            .contains(&address)
            {
                party_to.insert(c.id().to_string());
            }
        }
    }
    let seen: std::collections::BTreeSet<String> = mine.contracts_seen.iter().cloned().collect();
    assert_eq!(seen, party_to);
    // The CLI agrees and exits 0.
    let out = ipow(&[
        "audit",
        "--store",
        dir.to_str().unwrap(),
        "--as",
        &address.to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_single_byte_change_is_detected_and_located() {
    let dir = fresh("bytes");
    paper_store(&dir);
    assert!(supervisor(&dir).clean);
    let path = log_path(&dir);
    let original = std::fs::read(&path).unwrap();
    let recs = records(&dir);
    // Record spans, and the start of the period each belongs to (the genesis is its own).
    let mut spans = Vec::new();
    let mut period_start = 0u64;
    for r in &recs {
        let end = r.offset + ipow::chain::store::FRAME_BYTES + r.payload.len() as u64;
        if r.kind == kind::CONSENSUS {
            period_start = r.offset;
        }
        let start = if r.kind == kind::GENESIS {
            0
        } else {
            period_start
        };
        spans.push((r.offset, end, start, r.kind));
    }
    let mut tried = 0;
    for &(offset, end, start, k) in &spans {
        for at in offset..end {
            let mut bytes = original.clone();
            bytes[at as usize] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            let report = supervisor(&dir);
            assert!(
                !report.clean,
                "flipping byte {at} of a {} record went unnoticed",
                kind::name(k)
            );
            assert!(
                report
                    .findings
                    .iter()
                    .any(|f| f.offset.is_some_and(|o| o >= start && o < end)),
                "flipping byte {at} of a {} record [{offset}, {end}) is not located: {:#?}",
                kind::name(k),
                report.findings
            );
            tried += 1;
        }
    }
    std::fs::write(&path, &original).unwrap();
    assert_eq!(tried, original.len());
    // The index too.
    let index = dir.join(ipow::chain::store::INDEX_FILE);
    let idx = std::fs::read(&index).unwrap();
    for at in 0..idx.len() {
        let mut bytes = idx.clone();
        bytes[at] ^= 0x80;
        std::fs::write(&index, &bytes).unwrap();
        let report = supervisor(&dir);
        assert!(
            report.findings.iter().any(|f| f.chain == "index"),
            "index byte {at}"
        );
    }
    std::fs::write(&index, &idx).unwrap();
    assert!(supervisor(&dir).clean);
}

#[test]
fn the_papers_f15_tamper_written_into_the_store_is_found_and_named() {
    let dir = fresh("f15");
    paper_store(&dir);
    let market = ipow::market::paper::PaperMarket::embedded().unwrap();
    let f15 = market
        .contracts
        .iter()
        .find(|c| c.name == "f15")
        .unwrap()
        .signed
        .clone();
    let mut recs = records(&dir);
    // The seller's copy (seller 1, 0x20): energy 10.98 -> 12.71, signatures kept, check redone.
    let k = recs
        .iter()
        .position(|r| {
            r.kind == kind::SLAVE && slave_contracts(r).0 == ChainId::Slave(f15.contract.seller)
        })
        .unwrap();
    let (_, mut contracts) = slave_contracts(&recs[k]);
    let pos = contracts.iter().position(|c| c.id() == f15.id()).unwrap();
    contracts[pos].contract.energy = ipow::base::amount::Energy::parse("12.71").unwrap();
    let tampered_id = contracts[pos].id().to_string();
    recs[k] = with_contracts(&recs[k], &contracts);
    rewrite(&dir, &recs);
    let report = supervisor(&dir);
    assert!(!report.clean);
    let named = report
        .findings
        .iter()
        .find(|f| f.field.as_deref() == Some("energy"))
        .unwrap_or_else(|| panic!("{:#?}", report.findings));
    assert_eq!(named.chain, "slave chain 0x20");
    assert_eq!(named.contract.as_deref(), Some(tampered_id.as_str()));
    assert_eq!(named.position, Some(pos));
    assert_eq!(named.offset, Some(recs[k].offset));
    assert!(
        named.message.contains("energy: 10.980 -> 12.710"),
        "{}",
        named.message
    );
    assert!(named.message.contains(&f15.id().to_string()[..16]));
    // Its signatures fail, and the slave root no longer matches, with the path of changed nodes
    // from the leaf to the root (Figure 6).
    assert!(report.findings.iter().any(|f| {
        f.field.as_deref() == Some("signatures")
            && f.contract.as_deref() == Some(tampered_id.as_str())
    }));
    let root = report
        .findings
        .iter()
        .find(|f| f.field.as_deref() == Some("root") && f.chain == "slave chain 0x20")
        .unwrap();
    assert!(!root.path.is_empty());
    assert_eq!(root.path[0].level, 0);
    assert_eq!(root.path[0].index, pos);
    let top = root.path.last().unwrap();
    assert_eq!(top.leaves.0, 0);
    assert_eq!(top.leaves.1, contracts.len());
    // The CLI exits non-zero and names it.
    let out = ipow(&["audit", "--store", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("field energy"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
}

#[test]
fn reordering_dropping_or_duplicating_a_contract_is_detected() {
    let dir = fresh("order");
    run_store(&dir, &["--contracts", "300", "--period-txs", "300"]);
    assert!(supervisor(&dir).clean);
    // One period, counted in the singular.
    let out = ipow(&["audit", "--store", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(": 1 complete period; head"), "{text}");
    assert!(
        text.contains("4 master blocks, 1 consortium block\n"),
        "{text}"
    );
    let original = records(&dir);
    // A transmission company's block: many contracts.
    let k = original
        .iter()
        .position(|r| r.kind == kind::SLAVE && slave_contracts(r).1.len() >= 3)
        .unwrap();
    let (chain, contracts) = slave_contracts(&original[k]);
    let chain = chain.to_string();
    let id = |c: &SignedContract| c.id().to_string();
    let cases: Vec<(&str, Vec<SignedContract>, String)> = vec![
        (
            "reordered",
            {
                let mut v = contracts.clone();
                v.swap(0, 1);
                v
            },
            id(&contracts[1]),
        ),
        (
            "dropped",
            {
                let mut v = contracts.clone();
                v.remove(1);
                v
            },
            id(&contracts[1]),
        ),
        (
            "duplicated",
            {
                let mut v = contracts.clone();
                v.insert(2, contracts[1].clone());
                v
            },
            id(&contracts[1]),
        ),
    ];
    for (what, list, contract) in cases {
        let mut recs = original.clone();
        recs[k] = with_contracts(&recs[k], &list);
        rewrite(&dir, &recs);
        let report = supervisor(&dir);
        assert!(
            report.findings.iter().any(|f| f.chain == chain
                && f.message.starts_with(what)
                && f.contract.as_deref() == Some(contract.as_str())),
            "{what}: {:#?}",
            report.findings
        );
    }
}

#[test]
fn proofs_verify_and_fail_for_another_contract_another_head_or_a_flipped_bit() {
    let dir = fresh("proofs");
    run_store(&dir, &["--contracts", "400", "--period-txs", "100"]);
    let report = supervisor(&dir);
    assert!(report.clean);
    let head = report.head.clone().unwrap();
    let recs = records(&dir);
    let slaves: Vec<(ChainId, Vec<SignedContract>)> = recs
        .iter()
        .filter(|r| r.kind == kind::SLAVE)
        .map(slave_contracts)
        .collect();
    // A contract from the first period, proved through its seller's and its purchaser's chains.
    let c = slaves[0].1[0].clone();
    let proof_of = |party: Option<String>| -> ContractProof {
        let id = c.id().to_string();
        let mut args = vec!["prove", "--store", dir.to_str().unwrap(), "--contract", &id];
        let p;
        if let Some(party) = party {
            p = party;
            args.extend(["--party", p.as_str()]);
        }
        crate::util::ipow_json(&args)
    };
    let proof = proof_of(None);
    let head_hash: [u8; 32] = hex::decode(&head).unwrap().try_into().unwrap();
    let proven = verify_proof(&proof, &head_hash).unwrap();
    assert_eq!(proven.contract, c.id().to_string());
    assert_eq!(proven.period, 0);
    assert!(proven.depth >= 3);
    let via_purchaser = proof_of(Some(c.contract.purchaser.to_string()));
    verify_proof(&via_purchaser, &head_hash).unwrap();
    assert_ne!(via_purchaser.slave, proof.slave);
    // The CLI checks it against the head alone.
    let file = dir.join("proof.json");
    std::fs::write(&file, serde_json::to_string(&proof).unwrap()).unwrap();
    let cli_verifies = |head: &str| {
        ipow(&[
            "verify-proof",
            "--proof",
            file.to_str().unwrap(),
            "--head",
            head,
        ])
        .status
        .success()
    };
    assert!(cli_verifies(&head));
    // Another contract (another of the same seller's block, or of any block).
    let other = slaves
        .iter()
        .flat_map(|(_, v)| v.iter())
        .find(|o| o.id() != c.id())
        .unwrap();
    let swapped = ContractProof {
        contract: hex::encode(other.encode()),
        ..proof.clone()
    };
    assert!(verify_proof(&swapped, &head_hash).is_err());
    // Another head: an earlier consortium block's hash, or any other hash.
    let index = read_index(&dir).unwrap();
    assert!(verify_proof(&proof, &index[1].hash).is_err());
    let mut flipped_head = head_hash;
    flipped_head[31] ^= 1;
    assert!(verify_proof(&proof, &flipped_head).is_err());
    assert!(!cli_verifies(&hex::encode(flipped_head)));
    // A flipped bit anywhere in the proof's hex: contract, each header, each path hash, later.
    let text = serde_json::to_value(&proof).unwrap();
    let mut fields: Vec<Vec<String>> = vec![vec!["contract".into()]];
    for level in ["slave", "master", "consortium"] {
        fields.push(vec![level.into(), "header".into()]);
        let n = text[level]["path"].as_array().unwrap().len();
        for i in 0..n {
            fields.push(vec![level.into(), "path".into(), i.to_string()]);
        }
    }
    for i in 0..text["later"].as_array().unwrap().len() {
        fields.push(vec!["later".into(), i.to_string()]);
    }
    let mut flips = 0;
    for f in fields {
        let v = text.clone();
        let mut slot = &v;
        for key in &f {
            slot = match key.parse::<usize>() {
                Ok(i) => &slot[i],
                Err(_) => &slot[key.as_str()],
            };
        }
        let bytes = hex::decode(slot.as_str().unwrap()).unwrap();
        for bit in [0usize, bytes.len() * 8 / 2, bytes.len() * 8 - 1] {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let mut w = v.clone();
            let mut s = &mut w;
            for key in &f {
                s = match key.parse::<usize>() {
                    Ok(i) => &mut s[i],
                    Err(_) => &mut s[key.as_str()],
                };
            }
            *s = serde_json::Value::String(hex::encode(&b));
            let p: ContractProof = serde_json::from_value(w).unwrap();
            assert!(verify_proof(&p, &head_hash).is_err(), "{f:?} bit {bit}");
            flips += 1;
        }
    }
    assert!(flips > 20);
    // A leaf index moved.
    let mut moved = proof.clone();
    moved.slave.leaf_index += 1;
    assert!(verify_proof(&moved, &head_hash).is_err());
}

#[test]
fn a_torn_tail_is_ignored_and_a_cut_into_a_committed_period_is_damage() {
    let dir = fresh("torn");
    run_store(&dir, &["--contracts", "300", "--period-txs", "100"]);
    let clean = supervisor(&dir);
    assert!(clean.clean);
    let path = log_path(&dir);
    let original = std::fs::read(&path).unwrap();
    let recs = records(&dir);
    // Half of the next period's first record appended: a crash during a write.
    let consensus = recs.iter().find(|r| r.kind == kind::CONSENSUS).unwrap();
    let mut framed = Vec::new();
    frame(&mut framed, kind::CONSENSUS, &consensus.payload).unwrap();
    let mut torn = original.clone();
    torn.extend_from_slice(&framed[..framed.len() / 2]);
    std::fs::write(&path, &torn).unwrap();
    let r = supervisor(&dir);
    assert!(r.clean, "{:#?}", r.findings);
    assert_eq!(r.periods, clean.periods);
    assert_eq!(r.torn_tail_bytes, (framed.len() / 2) as u64);
    // Whole records of an uncommitted period: still a torn tail.
    let mut whole = original.clone();
    whole.extend_from_slice(&framed);
    std::fs::write(&path, &whole).unwrap();
    let r = supervisor(&dir);
    assert!(r.clean);
    assert_eq!(r.torn_tail_bytes, framed.len() as u64);
    // Cutting into the last committed period loses what the index says was committed.
    std::fs::write(&path, &original[..original.len() - 20]).unwrap();
    let r = supervisor(&dir);
    assert!(!r.clean);
    assert_eq!(r.periods, clean.periods - 1);
    // A record overwritten with another's bytes (same length): the second slave block with the
    // first's payload.
    let slaves: Vec<&RawRecord> = recs.iter().filter(|r| r.kind == kind::SLAVE).collect();
    let (a, b) = slaves
        .iter()
        .enumerate()
        .flat_map(|(i, x)| slaves[i + 1..].iter().map(move |y| (*x, *y)))
        .find(|(x, y)| x.payload.len() == y.payload.len())
        .unwrap();
    let mut swapped = recs.clone();
    let at = swapped.iter().position(|r| r.offset == b.offset).unwrap();
    swapped[at].payload = a.payload.clone();
    rewrite(&dir, &swapped);
    let r = supervisor(&dir);
    assert!(!r.clean);
    assert!(r.findings.iter().any(|f| f.offset == Some(b.offset)));
    // A zeroed region.
    let mut zeroed = original.clone();
    let mid = original.len() / 2;
    zeroed[mid..mid + 64].fill(0);
    std::fs::write(&path, &zeroed).unwrap();
    assert!(!supervisor(&dir).clean);
}

#[test]
fn killed_runs_always_reopen_to_a_consistent_prefix_that_audits_clean() {
    use std::io::{BufRead, BufReader};
    // One node secret for every run: the same secret gives the same store bytes.
    let secret = fixed_secret("kill-secret");
    let args = |dir: &Path| -> Vec<String> {
        [
            "run",
            "--consensus",
            "pow",
            "--difficulty",
            "4",
            "--contracts",
            "1500",
            "--period-txs",
            "30",
            "--threads",
            "2",
            "--store",
            dir.to_str().unwrap(),
            "--secret",
            secret.to_str().unwrap(),
            "--announce-commits",
            "--json",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    // The reference: the whole run, timed.
    let reference = fresh("kill-reference");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(args(&reference))
        .output()
        .unwrap();
    let full = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = read_index(&reference).unwrap();
    assert!(expected.len() >= 40, "{}", expected.len());
    let mut landed_mid_run = 0;
    for k in 0..50u32 {
        let dir = fresh(&format!("kill-{k}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_ipow"))
            .args(args(&dir))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<(u64, String)>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("committed ") {
                    let mut parts = rest.split(' ');
                    let p: u64 = parts.next().unwrap().parse().unwrap();
                    let _ = tx.send((p, parts.next().unwrap().to_owned()));
                }
            }
        });
        // Kill points: the first few during start-up (timed from the reference run), the rest
        // after a chosen number of announced periods plus 0 to 1.6 ms, so that they land
        // during the following period's work and its writes.
        let mut announced = Vec::new();
        let delay = if k < 5 {
            let d = full.mul_f64(f64::from(k) / 40.0);
            std::thread::sleep(d);
            d
        } else {
            let target = (k as usize * 7) % (expected.len() - 1) + 1;
            while announced.len() < target {
                match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                    Ok(a) => announced.push(a),
                    Err(_) => break,
                }
            }
            let d = std::time::Duration::from_micros(u64::from(k % 9) * 200);
            std::thread::sleep(d);
            d
        };
        let _ = child.kill();
        let _ = child.wait();
        reader.join().unwrap();
        announced.extend(rx.try_iter());
        if !dir.exists() {
            assert!(announced.is_empty(), "kill {k}: announced without a store");
            continue;
        }
        let report = supervisor(&dir);
        assert!(
            report.clean,
            "kill {k} at {delay:?}: {:#?}",
            report.findings
        );
        // Never a lost committed period: everything announced is there...
        let periods = report.periods as usize;
        assert!(
            periods >= announced.len(),
            "kill {k}: lost a committed period"
        );
        // ...at most one more (durable, killed before it was announced)...
        assert!(periods <= announced.len() + 1, "kill {k}");
        // ...and it is exactly the reference run's prefix.
        let index = read_index(&dir).unwrap();
        for (p, hash) in &announced {
            assert_eq!(hex::encode(expected[*p as usize].hash), *hash);
        }
        if periods > 0 {
            assert_eq!(
                report.head.as_deref(),
                Some(hex::encode(expected[periods - 1].hash).as_str())
            );
            assert!(index.len() + 1 >= periods);
        }
        if periods > 0 && periods < expected.len() {
            landed_mid_run += 1;
        }
    }
    assert!(
        landed_mid_run >= 20,
        "only {landed_mid_run} kills landed mid-run"
    );
}

/// Damage of every kind, at many seeded places, is found on reopening at the record it hit:
/// a bit flipped, a region zeroed, the final records torn at every few bytes, and a record
/// overwritten with another's bytes.
#[test]
fn damage_is_located_at_the_record_it_hit() {
    let dir = fresh("locate");
    run_store(&dir, &["--contracts", "300", "--period-txs", "60"]);
    assert!(supervisor(&dir).clean);
    let path = log_path(&dir);
    let original = std::fs::read(&path).unwrap();
    let recs = records(&dir);
    let bounds: Vec<(u64, u64)> = recs.iter().map(|r| (r.offset, r.end())).collect();
    let containing = |at: u64| bounds.iter().find(|b| b.0 <= at && at < b.1).unwrap().0;
    let located = |bytes: &[u8], at: u64, what: &str| {
        std::fs::write(&path, bytes).unwrap();
        let r = supervisor(&dir);
        assert!(
            r.findings.iter().any(|f| f.offset == Some(at)),
            "{what}: no finding at byte {at}: {:?}",
            r.findings
                .iter()
                .map(|f| (f.offset, &f.message))
                .collect::<Vec<_>>()
        );
    };
    let mut rng = ipow::base::rng::Rng::stream(42, &[]);
    let first = bounds[1].0; // after the genesis record
    let end = original.len() as u64;
    for k in 0..24 {
        let at = first + rng.below(end - first);
        let mut flipped = original.clone();
        flipped[at as usize] ^= 1 << (k % 8);
        located(
            &flipped,
            containing(at),
            &format!("bit {} of byte {at}", k % 8),
        );
        let n = (1 + rng.below(256)).min(end - at) as usize;
        let mut zeroed = original.clone();
        zeroed[at as usize..at as usize + n].fill(0);
        if let Some(changed) = (at as usize..at as usize + n).find(|&i| original[i] != 0) {
            located(
                &zeroed,
                containing(changed as u64),
                &format!("{n} bytes zeroed at {at}"),
            );
        }
    }
    // The final records torn: the log cut at every 7th byte of the last committed period's
    // last three records.
    for cut in (bounds[bounds.len() - 3].0 + 1..end).step_by(7) {
        located(
            &original[..cut as usize],
            containing(cut),
            &format!("cut at {cut}"),
        );
    }
    // Each slave record overwritten by the next one of the same length (another's bytes).
    let mut overwritten = 0;
    for (i, a) in recs.iter().enumerate() {
        if let Some(b) = recs[i + 1..].iter().find(|b| {
            b.payload.len() == a.payload.len() && b.payload != a.payload && b.kind == a.kind
        }) {
            let mut bytes = original.clone();
            let (s, e) = (a.offset as usize, a.end() as usize);
            bytes[b.offset as usize..b.offset as usize + (e - s)].copy_from_slice(&original[s..e]);
            located(
                &bytes,
                b.offset,
                &format!("record at {} over {}", a.offset, b.offset),
            );
            overwritten += 1;
        }
    }
    assert!(overwritten >= 3, "{overwritten}");
    std::fs::write(&path, &original).unwrap();
    assert!(supervisor(&dir).clean);
}

fn pinned(dir: &Path, head: Option<[u8; 32]>, genesis: Option<[u8; 32]>) -> AuditReport {
    audit(
        dir,
        AuditOptions {
            viewer: Viewer::Supervisor,
            baseline: false,
            head,
            genesis,
            secret: None,
        },
    )
    .unwrap()
}

fn hash_of(hex_text: &str) -> [u8; 32] {
    let mut h = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut h).unwrap();
    h
}

/// Attack (b) of the tamper issue: the last periods cut from the log and the index. Without a
/// head kept elsewhere the shorter store is a valid store (the audit says it cannot exclude
/// this); with the head `ipow run --store` printed, it is a finding.
#[test]
fn a_rollback_passes_without_a_pinned_head_and_is_caught_with_one() {
    use ipow::chain::store::{INDEX_ENTRY_BYTES, INDEX_FILE};
    let dir = fresh("rollback");
    run_store(&dir, &["--contracts", "600", "--period-txs", "100"]);
    let before = supervisor(&dir);
    assert!(before.clean, "{:#?}", before.findings);
    assert_eq!(before.periods, 6);
    let head = hash_of(before.head.as_deref().unwrap());
    let genesis = hash_of(before.genesis_hash.as_deref().unwrap());
    let r = pinned(&dir, Some(head), Some(genesis));
    assert!(r.clean, "{:#?}", r.findings);
    assert_eq!(r.pinned_head_period, Some(5));

    // Roll back two periods: the log cut at period 3's end, the index two entries shorter.
    let index = read_index(&dir).unwrap();
    let mid_head = index[3].hash;
    let log = std::fs::read(log_path(&dir)).unwrap();
    std::fs::write(
        log_path(&dir),
        &log[..usize::try_from(index[3].end).unwrap()],
    )
    .unwrap();
    let idx = std::fs::read(dir.join(INDEX_FILE)).unwrap();
    std::fs::write(dir.join(INDEX_FILE), &idx[..4 * INDEX_ENTRY_BYTES]).unwrap();
    let r = supervisor(&dir);
    assert!(
        r.clean,
        "without a pinned head a rollback is a valid store: {:#?}",
        r.findings
    );
    assert_eq!(r.periods, 4);
    let r = pinned(&dir, Some(head), Some(genesis));
    assert!(!r.clean);
    let finding = r.findings.iter().find(|f| f.chain == "head").unwrap();
    assert!(
        finding.message.contains("rolled back"),
        "{}",
        finding.message
    );
    assert!(finding.message.contains(&hex::encode(head)));
    // An older head the store still passes through is fine.
    let r = pinned(&dir, Some(mid_head), Some(genesis));
    assert!(r.clean, "{:#?}", r.findings);
    assert_eq!(r.pinned_head_period, Some(3));
    // Another genesis: another market's store, or a rewritten one.
    let r = pinned(&dir, None, Some([7; 32]));
    assert!(r.findings.iter().any(|f| f.chain == "genesis"));

    // The CLI: run --store prints what to keep; audit --head checks it; a bad hash is refused.
    let again = fresh("rollback-cli");
    let d = again.to_str().unwrap();
    let out = ipow(&[
        "run",
        "--store",
        d,
        "--contracts",
        "300",
        "--period-txs",
        "100",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let pin = text.lines().find(|l| l.starts_with("pin ")).unwrap();
    let audit_args: Vec<&str> = pin.split('`').nth(1).unwrap().split(' ').skip(1).collect();
    let out = ipow(&audit_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is period 2's consortium head"));
    let out = ipow(&["audit", "--store", d]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("a rollback to an earlier head cannot be excluded")
    );
    let out = ipow(&["audit", "--store", d, "--head", "abc"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--head \"abc\": expected 64 hex digits")
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&again);
}

/// The node secret: written owner-only beside the store when none is given (and nowhere in the
/// store), never over an existing file, refused when others can read it; the same secret gives
/// the same store bytes; the audit checks tags with it and refuses another store's.
#[test]
fn the_node_secret_stays_apart_owner_only_and_repeats_the_store_bytes() {
    use std::os::unix::fs::PermissionsExt as _;
    let store = |dir: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--store",
            dir.to_str().unwrap(),
            "--contracts",
            "300",
            "--period-txs",
            "100",
        ];
        args.extend_from_slice(extra);
        ipow(&args)
    };
    let a = fresh("secret-a");
    let out = store(&a, &[]);
    assert!(out.status.success());
    let key = secret_path(&a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("wrote a new one to {}", key.display())),
        "{err}"
    );
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    let hex_line = text.lines().find(|l| !l.starts_with('#')).unwrap();
    let bytes = hex::decode(hex_line).unwrap();
    for file in [ipow::chain::store::LOG_FILE, ipow::chain::store::INDEX_FILE] {
        let stored = std::fs::read(a.join(file)).unwrap();
        assert!(
            !stored.windows(32).any(|w| w == bytes),
            "{file} holds the secret"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("--secret {}", key.display())),
        "{stdout}"
    );

    // The same secret, two stores: the same bytes; the audit checks every tag with it.
    let (b, c) = (fresh("secret-b"), fresh("secret-c"));
    let k = key.to_str().unwrap();
    assert!(store(&b, &["--secret", k]).status.success());
    assert!(
        store(&c, &["--secret", k, "--threads", "1"])
            .status
            .success()
    );
    let log = |d: &Path| std::fs::read(d.join(ipow::chain::store::LOG_FILE)).unwrap();
    assert_eq!(log(&b), log(&c));
    assert_eq!(log(&a), log(&b));
    assert!(!secret_path(&b).exists(), "a given secret is not copied");
    let out = ipow(&["audit", "--store", b.to_str().unwrap(), "--secret", k]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("proof tags    checked with the node secret"),
        "{text}"
    );
    let out = ipow(&["audit", "--store", b.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("proof tags    not checked"));

    // Another store's secret: a finding, not a clean audit.
    let other = fixed_secret("secret-other");
    let out = ipow(&[
        "audit",
        "--store",
        b.to_str().unwrap(),
        "--secret",
        other.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not the one this genesis commits to"));
    // A PoW store has no proofs, but a wrong secret is still not taken for its own.
    let pow = fresh("secret-pow");
    let out = store(&pow, &["--consensus", "pow", "--difficulty", "4"]);
    assert!(out.status.success());
    let pow_secret = secret_path(&pow);
    let r = audit(
        &pow,
        AuditOptions::supervisor()
            .with_secret(ipow::crypto::secret::NodeSecret::read(&other).unwrap()),
    )
    .unwrap();
    assert_eq!(r.tag_check, ipow::chain::audit::TagCheck::WrongSecret);
    assert!(!r.clean);
    let r = audit(
        &pow,
        AuditOptions::supervisor()
            .with_secret(ipow::crypto::secret::NodeSecret::read(&pow_secret).unwrap()),
    )
    .unwrap();
    assert_eq!(r.tag_check, ipow::chain::audit::TagCheck::NotIpow);
    assert!(r.clean, "{:#?}", r.findings);

    // Refusals, before any work and leaving nothing behind.
    let d = fresh("secret-d");
    std::fs::write(secret_path(&d), "keep me\n").unwrap();
    crate::util::check_error(
        &["run", "--store", d.to_str().unwrap(), "--contracts", "10"],
        &[&secret_path(&d).display().to_string(), "already exists"],
    );
    assert_eq!(
        std::fs::read_to_string(secret_path(&d)).unwrap(),
        "keep me\n"
    );
    assert!(!d.exists());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    crate::util::check_error(
        &["run", "--store", d.to_str().unwrap(), "--secret", k],
        &[k, "readable by others (mode 640)", "chmod 600"],
    );
    assert!(!d.exists());
    crate::util::check_error(
        &["run", "--contracts", "10", "--secret", k],
        &["--secret", "give --store"],
    );
    crate::util::check_error(
        &[
            "audit",
            "--store",
            b.to_str().unwrap(),
            "--secret",
            "/dev/zero",
        ],
        &["--secret /dev/zero", "regular files only"],
    );
    for dir in [&a, &b, &c, &d, &pow] {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_file(secret_path(dir));
    }
}
