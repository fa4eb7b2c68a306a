//! The tamperer who recomputes: everything a copy of the store holds is the attacker's, and the
//! library's own encoders rebuild every root, header hash, link, record check and index entry
//! after the change, signing with keys of the attacker's own. Each attack must still be caught
//! by `ipow audit` and named.
//!
//! Written before the store was signed, attacks (a) and (d) passed that audit clean (as (b), the
//! rollback in `store.rs`, did): nothing in the store was signed by a node, and the validators'
//! MAC keys were derived from the IPOW seed the genesis records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ipow::chain::audit::{AuditOptions, AuditReport, TagCheck, audit};
use ipow::chain::sign::BlockSigner;
use ipow::chain::store::{
    INDEX_FILE, LOG_FILE, LogReader, decode_consensus, decode_genesis, decode_slave, encode_period,
    frame, genesis_hash, index_entry, kind,
};
use ipow::chain::{ConsensusBlock, Tips, Topology, build_period};
use ipow::contract::SignedContract;
use ipow::crypto::secret::NodeSecret;

use crate::util::ipow;

/// Everything a store holds, decoded as an attacker would: the genesis payload and, per
/// period, the consensus block and its contracts in block order.
struct Copy {
    genesis: Vec<u8>,
    periods: Vec<(ConsensusBlock, Vec<SignedContract>)>,
}

fn read_copy(dir: &Path) -> Copy {
    let mut reader = LogReader::open(dir).unwrap();
    let genesis = reader.next_record().unwrap().unwrap();
    assert_eq!(genesis.kind, kind::GENESIS);
    let mut periods = Vec::new();
    let mut consensus = None;
    let mut by_id: HashMap<[u8; 32], SignedContract> = HashMap::new();
    while let Some(r) = reader.next_record().unwrap() {
        match r.kind {
            kind::CONSENSUS => consensus = Some(decode_consensus(&r.payload).unwrap()),
            kind::SLAVE => {
                for (_, b) in decode_slave(&r.payload).unwrap().contracts {
                    let c = SignedContract::decode(b).unwrap();
                    by_id.insert(c.id().0, c);
                }
            }
            kind::COMMIT => {
                let b: ConsensusBlock = consensus.take().unwrap();
                let contracts = b.entries.iter().map(|e| by_id[&e.id].clone()).collect();
                periods.push((b, contracts));
                by_id.clear();
            }
            _ => {}
        }
    }
    Copy {
        genesis: genesis.payload,
        periods,
    }
}

/// Keys of the attacker's own.
fn attacker() -> BlockSigner {
    BlockSigner::new(&NodeSecret::from_bytes([0xa7; 32]))
}

/// Writes `copy` as a whole new log and index at `dir`, recomputing every consensus header
/// (roots, counts, links) and every chain block above it with the library's own code, the
/// blocks signed by `signer`.
fn forge(dir: &Path, copy: &Copy, signer: &BlockSigner) {
    let g = decode_genesis(&copy.genesis).unwrap();
    let topology = Topology::new(&g.members, g.slaves_per_master);
    let mut tips = Tips::new(genesis_hash(&copy.genesis));
    let mut log = Vec::new();
    frame(&mut log, kind::GENESIS, &copy.genesis).unwrap();
    let mut index = Vec::new();
    let mut prev_consensus = [0u8; 32];
    for (block, contracts) in &copy.periods {
        let mut b = block.clone();
        b.header.prev_hash = prev_consensus;
        b.header.merkle_root = b.id_root();
        b.header.leaf_count = b.entries.len() as u64;
        if b.header.kind == ipow::contract::block::SealKind::Ipow {
            b.header.consensus_root = b.certificate_root();
        }
        prev_consensus = b.header.hash();
        let blocks = build_period(&topology, &mut tips, b, contracts).unwrap();
        log.extend(encode_period(&blocks, signer).unwrap());
        index.extend(index_entry(
            blocks.period,
            log.len() as u64,
            &blocks.consortium.hash(),
        ));
    }
    std::fs::write(dir.join(LOG_FILE), log).unwrap();
    std::fs::write(dir.join(INDEX_FILE), index).unwrap();
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("ipow-attack-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ =
        std::fs::remove_file(dir.with_file_name(format!("{name}-{}.secret", std::process::id())));
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

fn run_store(dir: &Path) {
    let out = ipow(&[
        "run",
        "--store",
        dir.to_str().unwrap(),
        "--contracts",
        "400",
        "--period-txs",
        "100",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn supervisor(dir: &Path) -> AuditReport {
    audit(dir, AuditOptions::supervisor()).unwrap()
}

fn secret_of(dir: &Path) -> NodeSecret {
    let name = dir.file_name().unwrap().to_string_lossy();
    NodeSecret::read(&dir.with_file_name(format!("{name}.secret"))).unwrap()
}

/// The findings of `chain` on `field`, as (period, message).
fn named(r: &AuditReport, chain: &str, field: &str) -> Vec<(Option<u64>, String)> {
    r.findings
        .iter()
        .filter(|f| f.chain == chain && f.field.as_deref() == Some(field))
        .map(|f| (f.period, f.message.clone()))
        .collect()
}

/// Attack (a): a committed contract dropped from its three slave chains and from the consensus
/// block, every root, hash, link, check and index entry recomputed and every block re-signed
/// with the attacker's keys. The supervision node's signature on each consortium block from
/// the changed period on no longer verifies; re-signing under new keys means a new genesis,
/// which a pinned genesis hash refuses.
#[test]
fn a_dropped_contract_with_everything_recomputed_is_caught() {
    let dir = fresh("drop");
    run_store(&dir);
    let honest = supervisor(&dir);
    assert!(honest.clean, "{:#?}", honest.findings);
    assert_eq!(honest.block_signatures_checked, 4 * 5);
    let mut copy = read_copy(&dir);
    let (block, contracts) = &mut copy.periods[1];
    block.entries.remove(7);
    contracts.remove(7);
    forge(&dir, &copy, &attacker());
    let r = supervisor(&dir);
    assert!(!r.clean);
    let consortium = named(&r, "consortium chain", "signature");
    assert!(
        consortium.contains(&(
            Some(1),
            "the block's signature does not verify under the supervision node's key in the \
             genesis"
                .to_owned()
        )),
        "{:#?}",
        r.findings
    );
    // Every finding is a signature: the recomputation left nothing else to find.
    assert!(
        r.findings
            .iter()
            .all(|f| f.field.as_deref() == Some("signature")),
        "{:#?}",
        r.findings
    );

    // The attacker's keys written into the genesis: a store that verifies by itself, but not
    // against the genesis hash its owner kept.
    let honest_genesis = genesis_hash(&copy.genesis);
    let mut g = decode_genesis(&copy.genesis).unwrap();
    g.nodes = attacker().keys();
    copy.genesis = ipow::chain::store::encode_genesis(&g);
    forge(&dir, &copy, &attacker());
    let r = supervisor(&dir);
    assert!(r.clean, "{:#?}", r.findings);
    let r = audit(
        &dir,
        AuditOptions {
            genesis: Some(honest_genesis),
            ..AuditOptions::supervisor()
        },
    )
    .unwrap();
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert_eq!(r.findings[0].chain, "genesis");
    assert!(r.findings[0].message.contains("not the pinned"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Attack (c): a master block replaced by the same block signed with another key.
#[test]
fn a_master_block_signed_by_another_key_is_caught() {
    let dir = fresh("master");
    run_store(&dir);
    let mut reader = LogReader::open(&dir).unwrap();
    let mut records = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        records.push(r);
    }
    // The third master block of period 2 (BCS, the sales end).
    let commits: Vec<usize> = (0..records.len())
        .filter(|&k| records[k].kind == kind::COMMIT)
        .collect();
    let at = (commits[1]..commits[2])
        .filter(|&k| records[k].kind == kind::MASTER)
        .nth(2)
        .unwrap();
    let (header, _) = ipow::chain::store::decode_header_record(&records[at].payload).unwrap();
    let mut payload = header.encode().to_vec();
    payload.extend_from_slice(&attacker().sign(&header).unwrap());
    records[at].payload = payload;
    let mut log = Vec::new();
    for r in &records {
        frame(&mut log, r.kind, &r.payload).unwrap();
    }
    std::fs::write(dir.join(LOG_FILE), log).unwrap();
    let r = supervisor(&dir);
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.chain, "master chain BCS (sales)");
    assert_eq!(f.field.as_deref(), Some("signature"));
    assert_eq!((f.period, f.height), (Some(2), Some(2)));
    assert_eq!(f.offset, Some(records[at].offset));
    assert!(
        f.message
            .contains("under the master node of BCS (sales)'s key"),
        "{}",
        f.message
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The MAC key the stored IPOW seed derived before the node secret existed: what an attacker
/// who reads the genesis would compute.
fn key_from_seed(seed: u64, v: u32) -> ring::hmac::Key {
    let mut r = ipow::base::rng::Rng::stream(seed, &[10, u64::from(v)]);
    let bytes: Vec<u8> = (0..4).flat_map(|_| r.next_u64().to_le_bytes()).collect();
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes)
}

/// Attack (d): a validator's proof forged with the key the stored IPOW seed derives, the
/// certificate and everything above it recomputed. With the node secret the audit names the
/// forged tag; without it the consortium signatures still refuse the rewrite.
#[test]
fn a_proof_forged_with_a_key_derived_from_the_stored_seed_is_caught() {
    let dir = fresh("forge-proof");
    run_store(&dir);
    let secret = secret_of(&dir);
    let with_secret = AuditOptions::supervisor().with_secret(secret.clone());
    let honest = audit(&dir, with_secret.clone()).unwrap();
    assert!(honest.clean, "{:#?}", honest.findings);
    assert_eq!(honest.tag_check, TagCheck::Checked);
    assert_eq!(honest.tags_checked, 3 * honest.contracts_committed);
    let mut copy = read_copy(&dir);
    let g = decode_genesis(&copy.genesis).unwrap();
    let ipow::chain::store::StoredConsensus::Ipow {
        seed, validators, ..
    } = g.consensus
    else {
        panic!("an IPOW store")
    };
    // Proof 0 of contract 3 in period 2 replaced by one from a validator that never saw it.
    let (block, _) = &mut copy.periods[2];
    let entry = &mut block.entries[3];
    let asked: Vec<u32> = entry.proofs.iter().map(|p| p.validator).collect();
    let stranger = (0..validators).find(|v| !asked.contains(v)).unwrap();
    let p = &mut entry.proofs[0];
    p.validator = stranger;
    let message = ipow::consensus::proof::proof_message(2, p.tx, &entry.id, p.verdict, stranger);
    p.tag
        .copy_from_slice(ring::hmac::sign(&key_from_seed(seed, stranger), &message).as_ref());
    let id = hex::encode(entry.id);
    forge(&dir, &copy, &attacker());
    let r = audit(&dir, with_secret).unwrap();
    let tag = r
        .findings
        .iter()
        .find(|f| f.field.as_deref() == Some("certificate proof 0 tag"))
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(tag.contract.as_deref(), Some(id.as_str()));
    assert_eq!((tag.period, tag.position), (Some(2), Some(3)));
    assert!(
        tag.message
            .contains(&format!("validator {stranger}'s tag does not authenticate"))
    );
    assert!(
        named(&r, "consortium chain", "signature").contains(&(
            Some(2),
            "the block's signature does not verify under the supervision node's key in the genesis"
                .to_owned()
        ))
    );
    let r = supervisor(&dir);
    assert_eq!(r.tag_check, TagCheck::NoSecret);
    assert!(!named(&r, "consortium chain", "signature").is_empty());
    // Another store's secret is refused by the genesis's commitment, not taken for this one's.
    let r = audit(
        &dir,
        AuditOptions::supervisor().with_secret(NodeSecret::from_bytes([1; 32])),
    )
    .unwrap();
    assert_eq!(r.tag_check, TagCheck::WrongSecret);
    assert!(
        named(&r, "genesis", "node keys.mac commitment")[0]
            .1
            .contains("not the one this genesis commits to")
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_file_name(format!(
        "{}.secret",
        dir.file_name().unwrap().to_string_lossy()
    )));
}
