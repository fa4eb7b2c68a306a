//! `ipow audit`: re-verifies a store as the government supervisor or as one participant, and
//! says precisely what no longer matches; and `ipow prove`'s contract proofs.
//!
//! What each viewer checks (the paper's visibility: a slave's private chain content is visible
//! to that slave and its master, headers and roots to every master, everything to the
//! supervisor):
//!
//! | check | supervisor | participant |
//! |---|---|---|
//! | record checks, framing, index | all | all |
//! | every header's link (height, previous hash, period) on every chain | all | all |
//! | master roots over slave headers; consortium roots over master heads and the consensus block | all | all |
//! | consensus block: Merkle root over its ids, certificate root, quorum and majority per contract, PoW | all | all |
//! | quorum certificate tags (HMAC keys are the supervisor's) | yes | no |
//! | slave block contents: decoding, signatures, root, the contract list against the consensus block | every slave | its own chain |
//!
//! A tampered contract is located by its slave chain, block, position and record offset; the
//! field is named by comparing it with another party's copy of the same contract (the copy
//! whose signatures verify); the path of Merkle nodes whose hashes no longer match is the diff
//! of the tree over the stored ids against the tree over the ids the consensus block commits.

// Periods and positions index in-memory vectors of the same store: they fit in usize.
#![allow(clippy::cast_possible_truncation)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::base::domain::Address;
use crate::chain::store::{
    Genesis, IndexEntry, LogReader, RawRecord, StoreError, StoredConsensus, decode_commit,
    decode_consensus, decode_genesis, decode_header_record, decode_slave, genesis_hash, kind,
    read_index,
};
use crate::chain::{
    ChainHeader, ChainId, ConsensusBlock, ContractProof, ENDS, PROOF_FORMAT, Tips, Topology,
    consortium_leaves, master_leaves, parties, proof_level,
};
use crate::contract::{Contract, SignedContract};
use crate::crypto::keys::KeyRegistry;
use crate::crypto::merkle::{Hash, MerkleTree, root_32};

/// Who audits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// The government supervisor: sees everything.
    Supervisor,
    /// A participant: sees its own slave chain's contents and every header.
    Participant(Address),
}

impl Viewer {
    fn sees(self, slave: Address) -> bool {
        match self {
            Viewer::Supervisor => true,
            Viewer::Participant(a) => a == slave,
        }
    }
}

impl std::fmt::Display for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Viewer::Supervisor => f.write_str("supervisor"),
            Viewer::Participant(a) => write!(f, "{a}"),
        }
    }
}

/// A Merkle node whose hash no longer matches.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PathNode {
    /// Level (0 = leaves).
    pub level: usize,
    /// Index within the level.
    pub index: usize,
    /// Leaves it covers, [first, end).
    pub leaves: (usize, usize),
    /// The hash the consensus block's contracts give, hex.
    pub expected: String,
    /// The hash the stored contracts give, hex.
    pub stored: String,
}

/// One thing that does not verify, located as precisely as the store allows.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// The chain (`slave chain 0x1003`, `master chain BCS (sales)`, `consortium chain`,
    /// `consensus block`, `log`, `index`).
    pub chain: String,
    /// The period, when known.
    pub period: Option<u64>,
    /// The block's height on its chain, when known.
    pub height: Option<u64>,
    /// Byte offset of the record in the log, when known.
    pub offset: Option<u64>,
    /// The contract, hex id (as stored), when one is concerned.
    pub contract: Option<String>,
    /// Its position in the block, when one is concerned.
    pub position: Option<usize>,
    /// The field, when it can be told.
    pub field: Option<String>,
    /// What does not match.
    pub message: String,
    /// Merkle nodes from the changed leaf up to the root whose hashes no longer match.
    pub path: Vec<PathNode>,
}

impl Finding {
    fn new(chain: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            chain: chain.into(),
            period: None,
            height: None,
            offset: None,
            contract: None,
            position: None,
            field: None,
            message: message.into(),
            path: Vec::new(),
        }
    }

    fn at(mut self, record: &RawRecord) -> Self {
        self.offset = Some(record.offset);
        self
    }

    fn in_block(mut self, period: u64, height: Option<u64>) -> Self {
        self.period = Some(period);
        self.height = height;
        self
    }
}

/// The finding for a record whose check no longer matches its bytes.
fn check_mismatch(r: &RawRecord) -> Finding {
    Finding::new(
        kind::name(r.kind),
        "record check mismatch: its bytes changed after they were written",
    )
    .at(r)
}

/// The in-memory baseline: the same contracts' signatures and Merkle roots checked again from
/// memory, timed beside the audit in the same process.
#[derive(Clone, Debug, Serialize, Default)]
pub struct Baseline {
    /// Seconds spent on the in-memory checks.
    pub seconds: f64,
    /// Contracts per second in memory.
    pub contracts_per_s: f64,
    /// The audit's rate over the in-memory rate.
    pub audit_ratio: f64,
}

/// What an audit found.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    /// The store directory.
    pub store: String,
    /// Who audited.
    pub viewer: String,
    /// Complete periods read.
    pub periods: u64,
    /// The consortium head hash (hex) after the last complete period.
    pub head: Option<String>,
    /// Slave blocks read.
    pub slave_blocks: u64,
    /// Slave blocks whose contents this viewer checked.
    pub slave_blocks_opened: u64,
    /// Master blocks read.
    pub master_blocks: u64,
    /// Consortium blocks read.
    pub consortium_blocks: u64,
    /// Distinct contracts the consensus blocks commit.
    pub contracts_committed: u64,
    /// Contract copies this viewer decoded and checked.
    pub contract_copies_checked: u64,
    /// Distinct contracts whose signatures this viewer checked (three each).
    pub contracts_signature_checked: u64,
    /// Quorum certificate entries checked.
    pub certificate_entries_checked: u64,
    /// Proof tags checked (supervisor only).
    pub tags_checked: u64,
    /// Bytes after the last complete period (a crash during a write), ignored.
    pub torn_tail_bytes: u64,
    /// Hex ids of the contracts this viewer saw (participants only; empty for the supervisor).
    pub contracts_seen: Vec<String>,
    /// Everything that does not verify.
    pub findings: Vec<Finding>,
    /// True when there is no finding.
    pub clean: bool,
    /// Wall seconds of the audit.
    pub seconds: f64,
    /// Contracts (committed) per second.
    pub contracts_per_s: f64,
    /// The in-memory baseline, when asked for.
    pub baseline: Option<Baseline>,
}

/// Options of an audit.
#[derive(Clone, Copy, Debug)]
pub struct AuditOptions {
    /// Who audits.
    pub viewer: Viewer,
    /// Also time the in-memory baseline (supervisor only).
    pub baseline: bool,
}

struct State {
    viewer: Viewer,
    genesis: Genesis,
    topology: Topology,
    registry: KeyRegistry,
    keys: Vec<ring::hmac::Key>,
    tips: Tips,
    prev_consensus: Hash,
    baseline: bool,
    baseline_seconds: f64,
}

/// Audits the store at `dir`. Errors are only for a store that cannot be opened at all (no
/// log, unreadable); everything else is a finding.
pub fn audit(dir: &Path, options: AuditOptions) -> Result<AuditReport, StoreError> {
    let started = Instant::now();
    let mut report = AuditReport {
        store: dir.display().to_string(),
        viewer: options.viewer.to_string(),
        periods: 0,
        head: None,
        slave_blocks: 0,
        slave_blocks_opened: 0,
        master_blocks: 0,
        consortium_blocks: 0,
        contracts_committed: 0,
        contract_copies_checked: 0,
        contracts_signature_checked: 0,
        certificate_entries_checked: 0,
        tags_checked: 0,
        torn_tail_bytes: 0,
        contracts_seen: Vec::new(),
        findings: Vec::new(),
        clean: false,
        seconds: 0.0,
        contracts_per_s: 0.0,
        baseline: None,
    };
    let mut reader = LogReader::open(dir)?;
    let index = match read_index(dir) {
        Ok(i) => i,
        Err(e) => {
            report.findings.push(Finding::new("index", e.to_string()));
            Vec::new()
        }
    };
    let index_end = index.last().map_or(0, |e| e.end);
    let Some(mut state) = read_genesis(&mut reader, options, &mut report.findings) else {
        return Ok(finish(report, started, 0.0));
    };
    let mut pending: Vec<RawRecord> = Vec::new();
    let mut pending_start = reader.offset();
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                let is_commit = record.kind == kind::COMMIT;
                pending.push(record);
                if is_commit {
                    let end = reader.offset();
                    let records = std::mem::take(&mut pending);
                    audit_period(&mut state, &records, end, &index, &mut report);
                    pending_start = end;
                }
            }
            Ok(None) => break,
            Err(stop) => {
                if stop.offset < index_end {
                    // The period cannot be audited whole; still say which of its records no
                    // longer match their checks, so that the damage is located.
                    for r in pending.iter().filter(|r| !r.check_ok) {
                        report.findings.push(check_mismatch(r));
                    }
                    report.findings.push(Finding {
                        offset: Some(stop.offset),
                        ..Finding::new(
                            "log",
                            format!(
                                "{}; the index says a committed period ends at byte {index_end}, \
                                 so this is damage, not a torn write",
                                stop.message
                            ),
                        )
                    });
                } else {
                    report.torn_tail_bytes = reader.len() - pending_start;
                }
                break;
            }
        }
    }
    if !pending.is_empty() && report.torn_tail_bytes == 0 {
        if pending_start < index_end {
            report.findings.push(Finding {
                offset: Some(pending_start),
                ..Finding::new(
                    "log",
                    "records without a commit record before a period the index says is committed",
                )
            });
        } else {
            report.torn_tail_bytes = reader.len() - pending_start;
        }
    }
    let committed_in_log = usize::try_from(report.periods).unwrap_or(usize::MAX);
    if index.len() > committed_in_log {
        report.findings.push(Finding::new(
            "index",
            format!(
                "the index lists {} committed periods, the log holds {committed_in_log}",
                index.len()
            ),
        ));
    }
    let baseline = state.baseline_seconds;
    Ok(finish(
        report,
        started,
        if options.baseline { baseline } else { 0.0 },
    ))
}

fn finish(mut report: AuditReport, started: Instant, baseline_seconds: f64) -> AuditReport {
    report.seconds = started.elapsed().as_secs_f64() - baseline_seconds;
    report.contracts_per_s = if report.seconds > 0.0 {
        report.contracts_committed as f64 / report.seconds
    } else {
        0.0
    };
    if baseline_seconds > 0.0 {
        let rate = report.contracts_committed as f64 / baseline_seconds;
        report.baseline = Some(Baseline {
            seconds: baseline_seconds,
            contracts_per_s: rate,
            audit_ratio: if rate > 0.0 {
                report.contracts_per_s / rate
            } else {
                0.0
            },
        });
    }
    report.clean = report.findings.is_empty();
    report
}

fn read_genesis(
    reader: &mut LogReader,
    options: AuditOptions,
    findings: &mut Vec<Finding>,
) -> Option<State> {
    let record = match reader.next_record() {
        Ok(Some(r)) => r,
        Ok(None) => {
            findings.push(Finding::new("log", "empty: no genesis record"));
            return None;
        }
        Err(stop) => {
            findings.push(Finding {
                offset: Some(stop.offset),
                ..Finding::new("genesis", stop.message)
            });
            return None;
        }
    };
    if record.kind != kind::GENESIS {
        findings.push(
            Finding::new(
                "genesis",
                format!("first record is a {}", kind::name(record.kind)),
            )
            .at(&record),
        );
        return None;
    }
    if !record.check_ok {
        findings.push(check_mismatch(&record));
    }
    let genesis = match decode_genesis(&record.payload) {
        Ok(g) => g,
        Err(e) => {
            findings.push(Finding {
                field: Some(e.field.clone()),
                offset: Some(record.payload_offset() + e.at as u64),
                ..Finding::new("genesis", e.to_string())
            });
            return None;
        }
    };
    let mut registry = KeyRegistry::new();
    for m in &genesis.members {
        if let Err(e) = registry.register(m.address, m.public_key) {
            findings.push(Finding {
                field: Some(format!("public key of {}", m.address)),
                ..Finding::new("genesis", e.to_string()).at(&record)
            });
        }
    }
    let keys = match genesis.consensus {
        StoredConsensus::Ipow {
            seed, validators, ..
        } if options.viewer == Viewer::Supervisor => (0..validators.min(10_000))
            .map(|v| crate::consensus::proof::validator_key(seed, v))
            .collect(),
        _ => Vec::new(),
    };
    Some(State {
        viewer: options.viewer,
        topology: Topology::new(&genesis.members, genesis.slaves_per_master),
        registry,
        keys,
        tips: Tips::new(genesis_hash(&record.payload)),
        prev_consensus: [0; 32],
        genesis,
        baseline: options.baseline && options.viewer == Viewer::Supervisor,
        baseline_seconds: 0.0,
    })
}

/// A slave block as the audit holds it.
struct SlaveView<'r> {
    record: &'r RawRecord,
    header: ChainHeader,
    /// Decoded contracts (only for slaves the viewer sees): (payload offset, contract).
    contracts: Option<Vec<Copy<'r>>>,
}

fn link_check(
    tips: &Tips,
    header: &ChainHeader,
    period: u64,
    record: &RawRecord,
    findings: &mut Vec<Finding>,
) {
    let (height, prev) = tips.next(header.chain);
    let chain = header.chain.to_string();
    if header.height != height {
        findings.push(
            Finding {
                field: Some("height".into()),
                ..Finding::new(
                    &chain,
                    format!("height {}, expected {height}", header.height),
                )
            }
            .at(record)
            .in_block(period, Some(header.height)),
        );
    }
    if header.prev_hash != prev {
        findings.push(
            Finding {
                field: Some("previous hash".into()),
                ..Finding::new(
                    &chain,
                    format!(
                        "previous hash {} is not the hash of the block before it ({})",
                        short(&header.prev_hash),
                        short(&prev)
                    ),
                )
            }
            .at(record)
            .in_block(period, Some(header.height)),
        );
    }
    if header.period != period {
        findings.push(
            Finding {
                field: Some("period".into()),
                ..Finding::new(
                    &chain,
                    format!("records period {}, inside period {period}", header.period),
                )
            }
            .at(record)
            .in_block(period, Some(header.height)),
        );
    }
}

fn short(h: &Hash) -> String {
    hex::encode(&h[..8])
}

/// One period of the log: its records' checks and order, then each chain's blocks in turn.
fn audit_period(
    state: &mut State,
    records: &[RawRecord],
    end: u64,
    index: &[IndexEntry],
    report: &mut AuditReport,
) {
    let period = report.periods;
    check_record_order(records, period, &mut report.findings);
    let consensus = consensus_block(state, records, period, report);
    let slaves = decode_slaves(state.viewer, records, period, &mut report.findings);
    check_slave_headers(state, &slaves, period, report);
    check_slave_contents(state, &slaves, consensus.as_ref(), period, report);
    let masters = check_masters(state, records, &slaves, period, report);
    let consortium_hash =
        check_consortium(state, records, &masters, consensus.as_ref(), period, report);
    check_commit(
        records,
        index,
        end,
        consortium_hash,
        period,
        &mut report.findings,
    );
    report.periods += 1;
    report.head = consortium_hash.map(hex::encode);
}

/// Every record's check, and the kinds in the order a period writes them.
fn check_record_order(records: &[RawRecord], period: u64, findings: &mut Vec<Finding>) {
    for r in records {
        if !r.check_ok {
            findings.push(check_mismatch(r).in_block(period, None));
        }
    }
    let kinds: Vec<u8> = records.iter().map(|r| r.kind).collect();
    let slaves_n = kinds.iter().filter(|&&k| k == kind::SLAVE).count();
    let mut expected = vec![kind::CONSENSUS];
    expected.extend(std::iter::repeat_n(kind::SLAVE, slaves_n));
    expected.extend([kind::MASTER; 4]);
    expected.extend([kind::CONSORTIUM, kind::COMMIT]);
    if kinds != expected {
        findings.push(
            Finding::new(
                "log",
                format!(
                    "period's records are [{}], expected consensus, slave blocks, 4 master \
                     blocks, consortium, commit",
                    kinds
                        .iter()
                        .map(|&k| kind::name(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .at(&records[0])
            .in_block(period, None),
        );
        // Where the order breaks, reading forward and reading backward: a record replaced by
        // another kind's lies between the two (a simulator seed found only the period named).
        let forward = kinds.iter().zip(&expected).position(|(a, b)| a != b);
        let backward = kinds
            .iter()
            .rev()
            .zip(expected.iter().rev())
            .position(|(a, b)| a != b)
            .map(|k| kinds.len() - 1 - k);
        let mut places: Vec<(usize, &str)> = forward
            .map(|k| (k, "forward"))
            .into_iter()
            .chain(backward.map(|k| (k, "backward")))
            .collect();
        places.dedup_by_key(|p| p.0);
        for (at, reading) in places {
            findings.push(
                Finding::new(
                    "log",
                    format!(
                        "the order of record kinds breaks at this {} record, reading {reading}",
                        kind::name(records[at].kind)
                    ),
                )
                .at(&records[at])
                .in_block(period, None),
            );
        }
    }
}

/// The period's consensus block, decoded and checked against the period's proofs.
fn consensus_block(
    state: &mut State,
    records: &[RawRecord],
    period: u64,
    report: &mut AuditReport,
) -> Option<ConsensusBlock> {
    let findings = &mut report.findings;
    let consensus_record = records.iter().find(|r| r.kind == kind::CONSENSUS);
    let consensus = consensus_record.and_then(|r| match decode_consensus(&r.payload) {
        Ok(b) => Some(b),
        Err(e) => {
            findings.push(
                Finding {
                    field: Some(e.field.clone()),
                    offset: Some(r.payload_offset() + e.at as u64),
                    ..Finding::new("consensus block", e.to_string())
                }
                .in_block(period, None),
            );
            None
        }
    });
    if let (Some(b), Some(r)) = (&consensus, consensus_record) {
        check_consensus(state, b, r, period, report);
    }
    consensus
}

/// The period's slave blocks, decoded in parallel, with the contracts of those the viewer sees.
fn decode_slaves<'r>(
    viewer: Viewer,
    records: &'r [RawRecord],
    period: u64,
    findings: &mut Vec<Finding>,
) -> Vec<SlaveView<'r>> {
    let slave_records: Vec<&RawRecord> = records.iter().filter(|r| r.kind == kind::SLAVE).collect();
    let decoded: Vec<Result<SlaveView<'_>, Box<Finding>>> = slave_records
        .par_iter()
        .map(|r| {
            let s = decode_slave(&r.payload).map_err(|e| {
                Box::new(
                    Finding {
                        field: Some(e.field.clone()),
                        offset: Some(r.payload_offset() + e.at as u64),
                        ..Finding::new("slave block", e.to_string())
                    }
                    .in_block(period, None),
                )
            })?;
            let ChainId::Slave(address) = s.header.chain else {
                return Err(Box::new(
                    Finding::new(
                        s.header.chain.to_string(),
                        "a slave block record holds another chain's header",
                    )
                    .at(r)
                    .in_block(period, Some(s.header.height)),
                ));
            };
            let contracts = viewer.sees(address).then(|| {
                s.contracts
                    .iter()
                    .map(|&(at, bytes)| {
                        (
                            at,
                            bytes,
                            crate::chain::record_digest(bytes),
                            SignedContract::decode(bytes)
                                .map(|c| {
                                    let id = c.id().0;
                                    (c, id)
                                })
                                .map_err(|e| e.to_string()),
                        )
                    })
                    .collect()
            });
            Ok(SlaveView {
                record: r,
                header: s.header,
                contracts,
            })
        })
        .collect();
    let mut slaves: Vec<SlaveView<'_>> = Vec::with_capacity(decoded.len());
    for d in decoded {
        match d {
            Ok(v) => slaves.push(v),
            Err(f) => findings.push(*f),
        }
    }
    slaves
}

/// Slave headers: address order, membership, and each link on its chain.
fn check_slave_headers(
    state: &mut State,
    slaves: &[SlaveView<'_>],
    period: u64,
    report: &mut AuditReport,
) {
    let findings = &mut report.findings;
    let mut last_address = None;
    for s in slaves {
        report.slave_blocks += 1;
        let ChainId::Slave(address) = s.header.chain else {
            continue;
        };
        if last_address.is_some_and(|l| l >= address) {
            findings.push(
                Finding::new(
                    s.header.chain.to_string(),
                    "slave blocks are not in address order",
                )
                .at(s.record)
                .in_block(period, Some(s.header.height)),
            );
        }
        last_address = Some(address);
        if state.topology.master_of(address).is_none() {
            findings.push(
                Finding::new(
                    s.header.chain.to_string(),
                    "not a slave node of the store's market",
                )
                .at(s.record)
                .in_block(period, Some(s.header.height)),
            );
        }
        link_check(&state.tips, &s.header, period, s.record, findings);
        state.tips.advance(&s.header);
    }
}

/// The four master blocks: each in its end's place, linked, its root over that end's new slave
/// headers.
fn check_masters(
    state: &mut State,
    records: &[RawRecord],
    slaves: &[SlaveView<'_>],
    period: u64,
    report: &mut AuditReport,
) -> Vec<ChainHeader> {
    let findings = &mut report.findings;
    let master_records: Vec<&RawRecord> =
        records.iter().filter(|r| r.kind == kind::MASTER).collect();
    let mut masters: Vec<ChainHeader> = Vec::with_capacity(4);
    for (k, r) in master_records.iter().enumerate() {
        report.master_blocks += 1;
        let h = match decode_header_record(&r.payload) {
            Ok(h) => h,
            Err(e) => {
                findings.push(
                    Finding {
                        field: Some(e.field.clone()),
                        ..Finding::new("master block", e.to_string())
                    }
                    .at(r)
                    .in_block(period, None),
                );
                continue;
            }
        };
        let Some(&end) = ENDS.get(k) else { continue };
        if h.chain != ChainId::Master(end) {
            findings.push(
                Finding::new(
                    h.chain.to_string(),
                    format!("in the place of {}", ChainId::Master(end)),
                )
                .at(r)
                .in_block(period, Some(h.height)),
            );
        }
        link_check(&state.tips, &h, period, r, findings);
        let leaves = master_leaves(&state.topology, end, slaves.iter().map(|s| &s.header));
        if root_32(&leaves) != h.root || leaves.len() as u64 != h.leaf_count {
            findings.push(
                Finding {
                    field: Some("root".into()),
                    ..Finding::new(
                        h.chain.to_string(),
                        format!(
                            "root {} over {} slave headers does not match the {} slave block \
                             headers stored for the end this period (root {})",
                            short(&h.root),
                            h.leaf_count,
                            leaves.len(),
                            short(&root_32(&leaves))
                        ),
                    )
                }
                .at(r)
                .in_block(period, Some(h.height)),
            );
        }
        state.tips.advance(&h);
        masters.push(h);
    }
    masters
}

/// The consortium block: linked, its root over the four master heads and the consensus block.
/// Returns its hash, the period's head.
fn check_consortium(
    state: &mut State,
    records: &[RawRecord],
    masters: &[ChainHeader],
    consensus: Option<&ConsensusBlock>,
    period: u64,
    report: &mut AuditReport,
) -> Option<Hash> {
    let findings = &mut report.findings;
    let consortium_record = records.iter().find(|r| r.kind == kind::CONSORTIUM);
    let mut consortium_hash = None;
    if let Some(r) = consortium_record {
        report.consortium_blocks += 1;
        match decode_header_record(&r.payload) {
            Ok(h) => {
                if h.chain != ChainId::Consortium {
                    findings.push(
                        Finding::new(h.chain.to_string(), "in the place of the consortium block")
                            .at(r)
                            .in_block(period, Some(h.height)),
                    );
                }
                link_check(&state.tips, &h, period, r, findings);
                if let (Ok(m), Some(b)) =
                    (<[ChainHeader; 4]>::try_from(masters.to_vec()), consensus)
                {
                    let leaves = consortium_leaves(&m, &b.header);
                    if root_32(&leaves) != h.root || h.leaf_count != 5 {
                        let names = [
                            "BCE head",
                            "BCN head",
                            "BCS head",
                            "BCL head",
                            "consensus block",
                        ];
                        findings.push(
                            Finding {
                                field: Some("root".into()),
                                ..Finding::new(
                                    "consortium chain",
                                    format!(
                                        "root {} does not commit the stored [{}]",
                                        short(&h.root),
                                        names.join(", ")
                                    ),
                                )
                            }
                            .at(r)
                            .in_block(period, Some(h.height)),
                        );
                    }
                }
                state.tips.advance(&h);
                consortium_hash = Some(h.hash());
            }
            Err(e) => findings.push(
                Finding {
                    field: Some(e.field.clone()),
                    ..Finding::new("consortium block", e.to_string())
                }
                .at(r)
                .in_block(period, None),
            ),
        }
    }
    consortium_hash
}

/// The commit record and the index entry name this period and its head.
fn check_commit(
    records: &[RawRecord],
    index: &[IndexEntry],
    end: u64,
    consortium_hash: Option<Hash>,
    period: u64,
    findings: &mut Vec<Finding>,
) {
    if let Some(r) = records.last().filter(|r| r.kind == kind::COMMIT) {
        match decode_commit(&r.payload) {
            Ok((p, hash)) => {
                if p != period || Some(hash) != consortium_hash {
                    findings.push(
                        Finding::new(
                            "commit",
                            format!(
                                "commits period {p} with consortium hash {}; expected period \
                                 {period} and the stored consortium block's hash",
                                short(&hash)
                            ),
                        )
                        .at(r)
                        .in_block(period, None),
                    );
                }
            }
            Err(e) => findings.push(Finding::new("commit", e.to_string()).at(r)),
        }
    }
    if let Some(entry) = usize::try_from(period).ok().and_then(|p| index.get(p))
        && (entry.period != period || entry.end != end || Some(entry.hash) != consortium_hash)
    {
        findings.push(Finding::new(
            "index",
            format!(
                "entry {period} (period {}, ends at byte {}, hash {}) does not match the log \
                 (ends at byte {end})",
                entry.period,
                entry.end,
                short(&entry.hash)
            ),
        ));
    }
}

fn check_consensus(
    state: &mut State,
    b: &ConsensusBlock,
    r: &RawRecord,
    period: u64,
    report: &mut AuditReport,
) {
    let findings = &mut report.findings;
    let h = &b.header;
    let f = |field: &str, message: String| {
        Finding {
            field: Some(field.to_owned()),
            ..Finding::new("consensus block", message)
        }
        .at(r)
        .in_block(period, Some(h.height))
    };
    report.contracts_committed += b.entries.len() as u64;
    if h.period != period || h.height != period {
        findings.push(f(
            "period",
            format!("height {} period {}, expected {period}", h.height, h.period),
        ));
    }
    if h.prev_hash != state.prev_consensus {
        findings.push(f(
            "previous hash",
            "does not link to the previous consensus block".into(),
        ));
    }
    state.prev_consensus = h.hash();
    if b.id_root() != h.merkle_root || b.entries.len() as u64 != h.leaf_count {
        findings.push(f(
            "merkle root",
            format!(
                "the header commits {} contracts under root {}; the stored ids give {} under {}",
                h.leaf_count,
                short(&h.merkle_root),
                b.entries.len(),
                short(&b.id_root())
            ),
        ));
    }
    let mut seen = HashSet::with_capacity(b.entries.len());
    for (k, e) in b.entries.iter().enumerate() {
        if !seen.insert(e.id) {
            findings.push(Finding {
                contract: Some(hex::encode(e.id)),
                position: Some(k),
                ..f("entries", "the same contract twice in one block".into())
            });
        }
    }
    match state.genesis.consensus {
        StoredConsensus::Pow { difficulty } => {
            if h.kind != crate::contract::block::SealKind::Pow || h.difficulty_bits != difficulty {
                findings.push(f(
                    "kind",
                    "not a PoW block at the store's difficulty".into(),
                ));
            } else if let Err(e) = crate::consensus::pow::verify_pow(h) {
                findings.push(f("nonce", e.to_string()));
            }
        }
        StoredConsensus::Ipow {
            quorum, validators, ..
        } => {
            if b.certificate_root() != h.consensus_root {
                findings.push(f(
                    "consensus root",
                    "the quorum certificate does not hash to the header's consensus root".into(),
                ));
            }
            report.certificate_entries_checked += b.entries.len() as u64;
            let supervisor = state.viewer == Viewer::Supervisor;
            let bad: Vec<Finding> = b
                .entries
                .par_iter()
                .enumerate()
                .flat_map_iter(|(k, e)| {
                    let mut out = Vec::new();
                    let valid = e.proofs.iter().filter(|p| p.verdict == 0).count();
                    if (e.proofs.len() as u64) < u64::from(quorum) || valid * 2 <= e.proofs.len() {
                        out.push(Finding {
                            contract: Some(hex::encode(e.id)),
                            position: Some(k),
                            ..f(
                                "certificate",
                                format!(
                                    "{valid} valid of {} proofs: not a quorum of {quorum} with a \
                                     strict majority",
                                    e.proofs.len()
                                ),
                            )
                        });
                    }
                    for (j, p) in e.proofs.iter().enumerate() {
                        if p.validator >= validators {
                            out.push(Finding {
                                contract: Some(hex::encode(e.id)),
                                position: Some(k),
                                ..f(
                                    &format!("certificate proof {j} validator"),
                                    format!("validator {} of {validators}", p.validator),
                                )
                            });
                            continue;
                        }
                        if supervisor {
                            let msg = crate::consensus::proof::proof_message(
                                period,
                                p.tx,
                                &e.id,
                                p.verdict,
                                p.validator,
                            );
                            let ok = state
                                .keys
                                .get(p.validator as usize)
                                .is_some_and(|key| ring::hmac::verify(key, &msg, &p.tag).is_ok());
                            if !ok {
                                out.push(Finding {
                                    contract: Some(hex::encode(e.id)),
                                    position: Some(k),
                                    ..f(
                                        &format!("certificate proof {j} tag"),
                                        format!(
                                            "validator {}'s tag does not authenticate its proof",
                                            p.validator
                                        ),
                                    )
                                });
                            }
                        }
                    }
                    out
                })
                .collect();
            if supervisor {
                report.tags_checked += b.entries.iter().map(|e| e.proofs.len() as u64).sum::<u64>();
            }
            findings.extend(bad);
        }
    }
}

/// Names the fields in which `a` and `b` differ, as `field: a -> b`.
pub fn field_diff(a: &Contract, b: &Contract) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! shown {
        ($($f:ident),*) => {$(
            if a.$f != b.$f {
                out.push(format!("{}: {} -> {}", stringify!($f), a.$f, b.$f));
            }
        )*};
    }
    macro_rules! debugged {
        ($($f:ident),*) => {$(
            if a.$f != b.$f {
                out.push(format!("{}: {:?} -> {:?}", stringify!($f), a.$f, b.$f));
            }
        )*};
    }
    debugged!(category);
    shown!(
        seller,
        purchaser,
        transmission,
        price,
        energy,
        transmission_rate,
        damages_rate,
        delivery_time,
        seller_seq,
        purchaser_seq,
        transmission_seq
    );
    debugged!(aux);
    out
}

/// A copy of a contract in a slave block: payload offset, bytes, record digest, decoded with
/// its id.
type Copy<'r> = (
    usize,
    &'r [u8],
    Hash,
    Result<(SignedContract, Hash), String>,
);

/// Every stored copy of a contract in a period, by record digest (same bytes, same digest),
/// with whether its signatures verify (checked once per distinct record, in parallel).
struct Copies<'c> {
    distinct: HashMap<Hash, &'c SignedContract>,
    by_id: HashMap<Hash, Vec<Hash>>,
    verified: HashMap<Hash, bool>,
}

impl<'c> Copies<'c> {
    fn verify(slaves: &'c [SlaveView<'_>], registry: &KeyRegistry) -> Self {
        let mut distinct: HashMap<Hash, &SignedContract> = HashMap::new();
        let mut by_id: HashMap<Hash, Vec<Hash>> = HashMap::new();
        for s in slaves {
            for (_, _, digest, c) in s.contracts.iter().flatten() {
                if let Ok((c, id)) = c
                    && distinct.insert(*digest, c).is_none()
                {
                    by_id.entry(*id).or_default().push(*digest);
                }
            }
        }
        let records: Vec<(Hash, &SignedContract)> =
            distinct.iter().map(|(d, c)| (*d, *c)).collect();
        let verified = records
            .par_iter()
            .map(|(d, c)| (*d, c.verify_signatures(registry).is_ok()))
            .collect();
        Self {
            distinct,
            by_id,
            verified,
        }
    }

    fn signatures_ok(&self, digest: &Hash) -> bool {
        self.verified.get(digest).copied().unwrap_or(false)
    }

    /// The reference copy of an id: the first whose signatures verify.
    fn reference(&self, id: &Hash) -> Option<(Hash, &'c SignedContract)> {
        let digests = self.by_id.get(id)?;
        let d = digests.iter().find(|d| self.signatures_ok(d))?;
        self.distinct.get(d).map(|c| (*d, *c))
    }

    fn any_copy(&self, id: &Hash) -> Option<&'c SignedContract> {
        self.by_id
            .get(id)
            .and_then(|v| v.first())
            .and_then(|d| self.distinct.get(d).copied())
    }
}

/// The slave blocks' contents the viewer may see: decoding, party, signatures, each list
/// against the consensus block's order for that party, each root; as the supervisor, every
/// committed contract on some chain.
fn check_slave_contents(
    state: &mut State,
    slaves: &[SlaveView<'_>],
    consensus: Option<&ConsensusBlock>,
    period: u64,
    report: &mut AuditReport,
) {
    let copies = Copies::verify(slaves, &state.registry);
    report.contracts_signature_checked += copies.distinct.len() as u64;
    if state.baseline
        && let Some(b) = consensus
    {
        baseline_checks(state, &copies, slaves, b);
    }
    let committed: Vec<Hash> = consensus
        .map(|b| b.entries.iter().map(|e| e.id).collect())
        .unwrap_or_default();
    // What each party should hold: the committed contracts it is party to, in block order.
    let mut expected_of: HashMap<Address, Vec<Hash>> = HashMap::new();
    for id in &committed {
        if let Some(c) = copies.any_copy(id) {
            for (a, _) in parties(c) {
                // A party in two roles of one contract keeps it once.
                let list = expected_of.entry(a).or_default();
                if list.last() != Some(id) {
                    list.push(*id);
                }
            }
        }
    }
    let mut on_some_chain: HashSet<Hash> = HashSet::new();
    for s in slaves {
        let ChainId::Slave(address) = s.header.chain else {
            continue;
        };
        let Some(contracts) = &s.contracts else {
            continue;
        };
        report.slave_blocks_opened += 1;
        let (stored, stored_leaves) =
            check_copies(state.viewer, s, contracts, &copies, period, report);
        on_some_chain.extend(stored.iter().copied());
        // What this slave should hold: the committed contracts it is party to, block order.
        let expected: Vec<Hash> = if consensus.is_some() {
            expected_of.remove(&address).unwrap_or_default()
        } else {
            stored.clone()
        };
        let lists = Lists {
            stored: &stored,
            stored_leaves: &stored_leaves,
            expected: &expected,
        };
        check_slave_list(s, &lists, &copies, period, &mut report.findings);
    }
    if state.viewer == Viewer::Supervisor {
        committed_on_no_chain(&committed, &on_some_chain, period, &mut report.findings);
    }
}

/// As the supervisor: every committed contract is on one of its parties' slave chains.
fn committed_on_no_chain(
    committed: &[Hash],
    on_some_chain: &HashSet<Hash>,
    period: u64,
    findings: &mut Vec<Finding>,
) {
    for (k, id) in committed.iter().enumerate() {
        if !on_some_chain.contains(id) {
            findings.push(
                Finding {
                    contract: Some(hex::encode(id)),
                    position: Some(k),
                    ..Finding::new(
                        "consensus block",
                        "a committed contract is on none of its parties' slave chains",
                    )
                }
                .in_block(period, Some(period)),
            );
        }
    }
}

/// `--baseline`: the same work from memory, timed: every distinct record's signatures, every
/// slave root over its records' digests, the consensus root over the ids.
fn baseline_checks(
    state: &mut State,
    copies: &Copies<'_>,
    slaves: &[SlaveView<'_>],
    b: &ConsensusBlock,
) {
    let records: Vec<&SignedContract> = copies.distinct.values().copied().collect();
    let t = Instant::now();
    let ok = records
        .par_iter()
        .filter(|c| c.verify_signatures(&state.registry).is_ok())
        .count();
    let roots: Vec<Hash> = slaves
        .par_iter()
        .map(|s| {
            let leaves: Vec<Hash> = s
                .contracts
                .iter()
                .flatten()
                .map(|(_, bytes, _, _)| crate::chain::record_digest(bytes))
                .collect();
            root_32(&leaves)
        })
        .collect();
    std::hint::black_box((ok, roots, b.id_root()));
    state.baseline_seconds += t.elapsed().as_secs_f64();
}

/// One slave block's copies: each decodes, names the slave as a party and verifies. Returns the
/// stored ids (zero for one that does not decode) and leaves, in block order.
fn check_copies(
    viewer: Viewer,
    s: &SlaveView<'_>,
    contracts: &[Copy<'_>],
    copies: &Copies<'_>,
    period: u64,
    report: &mut AuditReport,
) -> (Vec<Hash>, Vec<Hash>) {
    let ChainId::Slave(address) = s.header.chain else {
        return (Vec::new(), Vec::new());
    };
    let chain = s.header.chain.to_string();
    let here = |f: Finding| f.at(s.record).in_block(period, Some(s.header.height));
    let mut stored: Vec<Hash> = Vec::with_capacity(contracts.len());
    let mut stored_leaves: Vec<Hash> = Vec::with_capacity(contracts.len());
    for (pos, (at, _, digest, c)) in contracts.iter().enumerate() {
        report.contract_copies_checked += 1;
        stored_leaves.push(*digest);
        let (c, id) = match c {
            Ok((c, id)) => (c, *id),
            Err(e) => {
                report.findings.push(here(Finding {
                    position: Some(pos),
                    offset: Some(s.record.payload_offset() + *at as u64),
                    ..Finding::new(&chain, format!("contract does not decode: {e}"))
                }));
                stored.push([0; 32]);
                continue;
            }
        };
        stored.push(id);
        if viewer != Viewer::Supervisor {
            report.contracts_seen.push(hex::encode(id));
        }
        if !parties(c).iter().any(|(a, _)| *a == address) {
            report.findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                ..Finding::new(&chain, format!("{address} is not a party to this contract"))
            }));
        }
        if !copies.signatures_ok(digest) {
            report.findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                field: Some("signatures".into()),
                ..Finding::new(&chain, "the contract's signatures do not verify")
            }));
        }
    }
    (stored, stored_leaves)
}

/// A slave block's stored list and leaves beside the list the consensus block gives it.
struct Lists<'l> {
    stored: &'l [Hash],
    stored_leaves: &'l [Hash],
    expected: &'l [Hash],
}

/// A slave block's list against the consensus block's order, and its root against its leaves
/// (naming the changed tree nodes where the committed copies give the header's root).
fn check_slave_list(
    s: &SlaveView<'_>,
    lists: &Lists<'_>,
    copies: &Copies<'_>,
    period: u64,
    findings: &mut Vec<Finding>,
) {
    let chain = s.header.chain.to_string();
    let here = |f: Finding| f.at(s.record).in_block(period, Some(s.header.height));
    if lists.stored != lists.expected {
        diagnose_list(
            &chain,
            lists.stored,
            lists.expected,
            &|id| copies.reference(id).map(|(_, c)| c),
            &|id| copies.any_copy(id),
            findings,
            &here,
        );
    }
    let stored_root = root_32(lists.stored_leaves);
    if stored_root == s.header.root && lists.stored_leaves.len() as u64 == s.header.leaf_count {
        return;
    }
    // The leaves the committed contracts give (their verified copies), for the path.
    let expected_leaves: Option<Vec<Hash>> = lists
        .expected
        .iter()
        .map(|id| copies.reference(id).map(|(d, _)| d))
        .collect();
    let path = match expected_leaves {
        Some(e) if e.len() == lists.stored_leaves.len() && root_32(&e) == s.header.root => {
            changed_path(&e, lists.stored_leaves)
        }
        _ => Vec::new(),
    };
    findings.push(here(Finding {
        field: Some("root".into()),
        path,
        ..Finding::new(
            &chain,
            format!(
                "header commits {} contracts under root {}; the stored contracts give {} under {}",
                s.header.leaf_count,
                short(&s.header.root),
                lists.stored_leaves.len(),
                short(&stored_root)
            ),
        )
    }));
}

fn changed_path(expected: &[Hash], stored: &[Hash]) -> Vec<PathNode> {
    let a = MerkleTree::from_leaves_32(expected);
    let b = MerkleTree::from_leaves_32(stored);
    match a.diff(&b) {
        Ok(d) => d
            .changed_nodes
            .iter()
            .map(|c| PathNode {
                level: c.node.level,
                index: c.node.index,
                leaves: (c.node.first_leaf, c.node.end_leaf),
                expected: hex::encode(c.before),
                stored: hex::encode(c.after),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn diagnose_list<'c>(
    chain: &str,
    stored: &[Hash],
    expected: &[Hash],
    reference: &dyn Fn(&Hash) -> Option<&'c SignedContract>,
    any_copy: &dyn Fn(&Hash) -> Option<&'c SignedContract>,
    findings: &mut Vec<Finding>,
    here: &dyn Fn(Finding) -> Finding,
) {
    let expected_set: HashSet<&Hash> = expected.iter().collect();
    let stored_set: HashSet<&Hash> = stored.iter().collect();
    let mut counted: HashMap<&Hash, usize> = HashMap::new();
    for (pos, id) in stored.iter().enumerate() {
        let n = counted.entry(id).or_default();
        *n += 1;
        if *n == 2 {
            findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                ..Finding::new(chain, "duplicated: the contract appears twice in the block")
            }));
        }
        if !expected_set.contains(id) {
            // Tampered (or injected): name the field against the committed contract at this
            // position, taken from a party's copy whose signatures verify.
            let original = expected
                .get(pos)
                .filter(|e| !stored_set.contains(e))
                .and_then(|e| reference(e).map(|o| (e, o)));
            let tampered = any_copy(id);
            let (field, message) = match (original, tampered) {
                (Some((oid, o)), Some(t)) => {
                    let diff = field_diff(&o.contract, &t.contract);
                    let message = if diff.is_empty() {
                        format!(
                            "tampered: differs from the committed contract {} (another party's \
                             copy) in its signatures",
                            short(oid)
                        )
                    } else {
                        format!(
                            "tampered: differs from the committed contract {} (another party's \
                             copy, signatures valid) in {}",
                            short(oid),
                            diff.join("; ")
                        )
                    };
                    let field = diff
                        .iter()
                        .map(|d| d.split(':').next().unwrap_or("").to_owned())
                        .collect::<Vec<_>>()
                        .join(", ");
                    (
                        Some(if field.is_empty() {
                            "signatures".into()
                        } else {
                            field
                        }),
                        message,
                    )
                }
                _ => (
                    None,
                    "not in the consensus block: tampered or injected (no intact copy to compare)"
                        .to_owned(),
                ),
            };
            findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                field,
                ..Finding::new(chain, message)
            }));
        }
    }
    for (pos, id) in expected.iter().enumerate() {
        // A position whose stored contract is a tampered one is reported as tampered above.
        let replaced = stored.len() == expected.len()
            && stored.get(pos).is_some_and(|s| !expected_set.contains(s));
        if !stored_set.contains(id) && !replaced {
            findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                ..Finding::new(
                    chain,
                    "dropped: a committed contract of this party is missing",
                )
            }));
        }
    }
    // Same contracts, another order.
    let mut a = stored.to_vec();
    let mut b = expected.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    if a == b
        && let Some(pos) = stored.iter().zip(expected).position(|(s, e)| s != e)
    {
        {
            let want = expected
                .iter()
                .position(|e| *e == stored[pos])
                .unwrap_or(pos);
            findings.push(here(Finding {
                contract: Some(hex::encode(stored[pos])),
                position: Some(pos),
                ..Finding::new(
                    chain,
                    format!("reordered: at position {pos}, the consensus block's order puts it at {want}"),
                )
            }));
        }
    }
}

/// Builds the proof that contract `id` is committed, through the slave chain of `party` (the
/// seller when not given), up to the store's consortium head. Reads the store in order and
/// refuses records whose checks fail.
pub fn prove(dir: &Path, id: &Hash, party: Option<Address>) -> Result<ContractProof, StoreError> {
    let log = dir
        .join(crate::chain::store::LOG_FILE)
        .display()
        .to_string();
    let err = |offset: Option<u64>, message: String| StoreError {
        file: log.clone(),
        offset,
        message,
    };
    let mut reader = LogReader::open(dir)?;
    let genesis = match reader.next_record() {
        Ok(Some(r)) if r.kind == kind::GENESIS && r.check_ok => {
            decode_genesis(&r.payload).map_err(|e| err(Some(r.payload_offset()), e.to_string()))?
        }
        _ => return Err(err(Some(0), "no intact genesis record".into())),
    };
    let topology = Topology::new(&genesis.members, genesis.slaves_per_master);
    let mut pending: Vec<RawRecord> = Vec::new();
    let mut proof: Option<ContractProof> = None;
    while let Ok(Some(record)) = reader.next_record() {
        if !record.check_ok {
            return Err(err(
                Some(record.offset),
                format!(
                    "{} record check mismatch; run ipow audit",
                    kind::name(record.kind)
                ),
            ));
        }
        if record.kind != kind::COMMIT {
            pending.push(record);
            continue;
        }
        let records = std::mem::take(&mut pending);
        let header_of = |r: &RawRecord| -> Result<ChainHeader, StoreError> {
            let p = if r.kind == kind::SLAVE {
                decode_slave(&r.payload).map(|s| s.header)
            } else {
                decode_header_record(&r.payload)
            };
            p.map_err(|e| err(Some(r.offset), e.to_string()))
        };
        if let Some(p) = &mut proof {
            if let Some(r) = records.iter().find(|r| r.kind == kind::CONSORTIUM) {
                p.later.push(hex::encode(header_of(r)?.encode()));
            }
            continue;
        }
        // Is the contract in this period, on the chosen party's slave chain?
        let mut found = None;
        let mut slave_headers = Vec::new();
        for r in records.iter().filter(|r| r.kind == kind::SLAVE) {
            let s = decode_slave(&r.payload).map_err(|e| err(Some(r.offset), e.to_string()))?;
            if found.is_none() {
                let contracts: Vec<Option<SignedContract>> = s
                    .contracts
                    .iter()
                    .map(|(_, b)| SignedContract::decode(b).ok())
                    .collect();
                if let Some((pos, Some(c))) = contracts
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.as_ref().is_some_and(|c| c.id().0 == *id))
                {
                    let wanted = party.unwrap_or(c.contract.seller);
                    if s.header.chain == ChainId::Slave(wanted) {
                        let leaves: Vec<Hash> = s
                            .contracts
                            .iter()
                            .map(|(_, b)| crate::chain::record_digest(b))
                            .collect();
                        found = Some((s.header, leaves, pos, c.encode()));
                    }
                }
            }
            slave_headers.push(s.header);
        }
        let Some((slave, ids, pos, bytes)) = found else {
            continue;
        };
        let ChainId::Slave(address) = slave.chain else {
            continue;
        };
        let end = topology
            .master_of(address)
            .map(|m| m.end)
            .ok_or_else(|| err(None, format!("{address} is not a slave of the market")))?;
        let masters: Vec<ChainHeader> = records
            .iter()
            .filter(|r| r.kind == kind::MASTER)
            .map(header_of)
            .collect::<Result<_, _>>()?;
        let end_k = usize::from(crate::chain::end_code(end));
        let master = *masters
            .get(end_k)
            .ok_or_else(|| err(None, "a period without its four master blocks".into()))?;
        let m_leaves = master_leaves(&topology, end, slave_headers.iter());
        let m_index = m_leaves
            .iter()
            .position(|h| *h == slave.hash())
            .ok_or_else(|| err(None, "slave header not among its master's leaves".into()))?;
        let consortium = records
            .iter()
            .find(|r| r.kind == kind::CONSORTIUM)
            .map(header_of)
            .transpose()?
            .ok_or_else(|| err(None, "a period without its consortium block".into()))?;
        let consensus = records
            .iter()
            .find(|r| r.kind == kind::CONSENSUS)
            .ok_or_else(|| err(None, "a period without its consensus block".into()))?;
        let consensus = decode_consensus(&consensus.payload)
            .map_err(|e| err(Some(consensus.offset), e.to_string()))?;
        let masters: [ChainHeader; 4] = masters
            .try_into()
            .map_err(|_| err(None, "a period without its four master blocks".into()))?;
        let c_leaves = consortium_leaves(&masters, &consensus.header);
        let missing = || err(None, "cannot build an audit path".to_owned());
        proof = Some(ContractProof {
            format: PROOF_FORMAT.to_owned(),
            contract: hex::encode(bytes),
            slave: proof_level(&slave, &ids, pos).ok_or_else(missing)?,
            master: proof_level(&master, &m_leaves, m_index).ok_or_else(missing)?,
            consortium: proof_level(&consortium, &c_leaves, end_k).ok_or_else(missing)?,
            later: Vec::new(),
        });
    }
    proof.ok_or_else(|| {
        err(
            None,
            format!(
                "contract {} is not on {} slave chain in any committed period",
                hex::encode(id),
                party.map_or("its seller's".to_owned(), |a| format!("{a}'s"))
            ),
        )
    })
}
