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
//! | master and consortium block signatures against the genesis's node keys | all | all |
//! | quorum certificate tags (HMAC keys come from the node secret, `--secret`) | with the secret | no |
//! | slave block contents: decoding, signatures, root, the contract list against the consensus block | every slave | its own chain |
//!
//! A tampered contract is located by its slave chain, block, position and record offset; the
//! field is named by comparing it with another party's copy of the same contract (the copy
//! whose signatures verify); the path of Merkle nodes whose hashes no longer match is the diff
//! of the tree over the stored ids against the tree over the ids the consensus block commits.

// Periods and positions index in-memory vectors of the same store: they fit in usize.
#![allow(clippy::cast_possible_truncation)]

mod consensus;
mod diagnose;
mod period;
mod slave;

use consensus::check_consensus;
use diagnose::{changed_path, diagnose_list};
use period::{SlaveView, audit_period};
pub use slave::field_diff;
use slave::{Copy, check_slave_contents};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::base::domain::Address;
use crate::chain::sign::signer_name;
use crate::chain::store::{
    Genesis, IndexEntry, LogReader, RawRecord, Stop, StoreError, StoredConsensus, decode_commit,
    decode_consensus, decode_genesis, decode_header_record, decode_slave, genesis_hash, kind,
    read_index,
};
use crate::chain::{
    ChainHeader, ChainId, ConsensusBlock, ContractProof, ENDS, PROOF_FORMAT, Tips, Topology,
    consortium_leaves, master_leaves, parties, proof_level,
};
use crate::contract::verify_signatures_batched;
use crate::contract::{Contract, SignedContract};
use crate::crypto::keys::KeyRegistry;
use crate::crypto::merkle::{Hash, MerkleTree, root_32};
use crate::crypto::secret::NodeSecret;
use crate::crypto::verify::{BatchStats, VerifyingKey};

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
    /// The genesis record's hash (hex): with the head, what a user keeps to pin the store.
    pub genesis_hash: Option<String>,
    /// The head given with `--head`, when one was.
    pub pinned_head: Option<String>,
    /// The period whose consortium head is the pinned head (absent: not found, or none given).
    pub pinned_head_period: Option<u64>,
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
    /// How those signatures were verified: batches of distinct records, bisection, singles.
    pub signatures: BatchStats,
    /// Quorum certificate entries checked.
    pub certificate_entries_checked: u64,
    /// Proof tags checked (supervisor only).
    pub tags_checked: u64,
    /// Whether the proof tags were checked, and why not.
    pub tag_check: TagCheck,
    /// Master and consortium block signatures checked against the genesis's node keys.
    pub block_signatures_checked: u64,
    /// How those signatures were verified.
    pub block_signatures: BatchStats,
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

impl AuditOptions {
    /// The supervisor's audit, nothing pinned, no baseline.
    pub fn supervisor() -> Self {
        Self {
            viewer: Viewer::Supervisor,
            baseline: false,
            head: None,
            genesis: None,
            secret: None,
        }
    }

    /// The same audit with the node secret, to check proof tags.
    pub fn with_secret(self, secret: NodeSecret) -> Self {
        Self {
            secret: Some(secret),
            ..self
        }
    }
}

/// Options of an audit.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Who audits.
    pub viewer: Viewer,
    /// Also time the in-memory baseline (supervisor only).
    pub baseline: bool,
    /// A consortium head kept outside the store: the store must pass through it, so a rollback
    /// past it or a rewritten history before it is a finding.
    pub head: Option<Hash>,
    /// The genesis hash kept outside the store: the store must start from it.
    pub genesis: Option<Hash>,
    /// The node secret kept outside the store: the supervisor needs it to check the proofs'
    /// tags (every other check works without it).
    pub secret: Option<NodeSecret>,
}

/// Whether the audit checked the quorum certificates' tags.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TagCheck {
    /// Checked with the node secret the genesis commits to.
    Checked,
    /// A PoW store has no proofs.
    NotIpow,
    /// A participant does not hold the validators' keys.
    NotSupervisor,
    /// No `--secret` was given.
    NoSecret,
    /// The secret given is not the one the genesis commits to (a finding says so).
    WrongSecret,
}

impl TagCheck {
    /// What the audit says about the tags, for the text report.
    pub fn describe(self) -> &'static str {
        match self {
            TagCheck::Checked => "checked with the node secret the genesis commits to",
            TagCheck::NotIpow => "none: a PoW store has no proofs",
            TagCheck::NotSupervisor => "not checked: the validators' keys are the supervisor's",
            TagCheck::NoSecret => {
                "not checked: they need the node secret (--secret FILE); every other check ran"
            }
            TagCheck::WrongSecret => "not checked: the secret given is not this store's",
        }
    }
}

/// A block signature waiting for its batch: its node, its message, and where it is.
pub(super) struct PendingSignature {
    pub(super) node: usize,
    pub(super) message: Vec<u8>,
    pub(super) signature: crate::crypto::keys::Signature,
    pub(super) place: Finding,
}

struct State {
    viewer: Viewer,
    pinned_head: Option<Hash>,
    genesis: Genesis,
    topology: Topology,
    registry: KeyRegistry,
    keys: Vec<ring::hmac::Key>,
    /// The genesis's node keys, decompressed (`None`: refused at admission, a finding).
    node_keys: Vec<Option<VerifyingKey>>,
    pending_signatures: Vec<PendingSignature>,
    tips: Tips,
    prev_consensus: Hash,
    baseline: bool,
    baseline_seconds: f64,
}

impl AuditReport {
    /// Nothing checked yet.
    fn empty(dir: &Path, viewer: Viewer) -> Self {
        AuditReport {
            store: dir.display().to_string(),
            viewer: viewer.to_string(),
            periods: 0,
            head: None,
            genesis_hash: None,
            pinned_head: None,
            pinned_head_period: None,
            slave_blocks: 0,
            slave_blocks_opened: 0,
            master_blocks: 0,
            consortium_blocks: 0,
            contracts_committed: 0,
            contract_copies_checked: 0,
            contracts_signature_checked: 0,
            signatures: BatchStats::default(),
            certificate_entries_checked: 0,
            tags_checked: 0,
            tag_check: TagCheck::NotIpow,
            block_signatures_checked: 0,
            block_signatures: BatchStats::default(),
            torn_tail_bytes: 0,
            contracts_seen: Vec::new(),
            findings: Vec::new(),
            clean: false,
            seconds: 0.0,
            contracts_per_s: 0.0,
            baseline: None,
        }
    }
}

/// A viewer who is no member of the store's market would see nothing and call it clean.
fn check_viewer(state: &State, dir: &Path) -> Result<(), StoreError> {
    match state.viewer {
        Viewer::Participant(a) if !state.genesis.members.iter().any(|m| m.address == a) => {
            Err(StoreError {
                file: dir.display().to_string(),
                offset: None,
                message: format!("--as {a}: not a participant of this store's market"),
            })
        }
        _ => Ok(()),
    }
}

/// Audits the store at `dir`. Errors are only for a store that cannot be opened at all (no
/// log, unreadable); everything else is a finding.
pub fn audit(dir: &Path, options: AuditOptions) -> Result<AuditReport, StoreError> {
    audit_with_progress(dir, options, &mut |_, _| {})
}

/// [`audit`], calling `progress(bytes read, log length)` after each period.
pub fn audit_with_progress(
    dir: &Path,
    options: AuditOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditReport, StoreError> {
    let started = Instant::now();
    let mut report = AuditReport::empty(dir, options.viewer);
    let mut reader = LogReader::open(dir)?;
    let index = match read_index(dir) {
        Ok(i) => i,
        Err(e) => {
            report.findings.push(Finding::new("index", e.to_string()));
            Vec::new()
        }
    };
    let index_end = index.last().map_or(0, |e| e.end);
    let Some(mut state) = read_genesis(&mut reader, &options, &mut report) else {
        return Ok(finish(report, started, 0.0));
    };
    check_viewer(&state, dir)?;
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
                    progress(end, reader.len());
                    pending_start = end;
                }
            }
            Ok(None) => break,
            Err(stop) => {
                if stop.offset < index_end {
                    damaged_period(&pending, &stop, index_end, &mut report);
                } else {
                    report.torn_tail_bytes = reader.len() - pending_start;
                }
                break;
            }
        }
    }
    if !pending.is_empty() && report.torn_tail_bytes == 0 {
        unfinished_period(pending_start, index_end, reader.len(), &mut report);
    }
    period::flush_block_signatures(&mut state, &mut report);
    check_index_length(&index, &mut report);
    check_pinned_head(options.head, &mut report);
    let baseline = state.baseline_seconds;
    Ok(finish(
        report,
        started,
        if options.baseline { baseline } else { 0.0 },
    ))
}

/// A record that cannot be framed before the end of the last committed period: damage, not a
/// torn write. The period cannot be audited whole; its records whose checks no longer match
/// are still named, so that the damage is located.
fn damaged_period(pending: &[RawRecord], stop: &Stop, index_end: u64, report: &mut AuditReport) {
    for r in pending.iter().filter(|r| !r.check_ok) {
        report.findings.push(check_mismatch(r));
    }
    report.findings.push(Finding {
        offset: Some(stop.offset),
        ..Finding::new(
            "log",
            format!(
                "{}; the index says a committed period ends at byte {index_end}, so this is \
                 damage, not a torn write",
                stop.message
            ),
        )
    });
}

/// Records after the last commit record and no read error: damage when the index says a
/// committed period ends after them, else a torn tail.
fn unfinished_period(start: u64, index_end: u64, log_len: u64, report: &mut AuditReport) {
    if start < index_end {
        report.findings.push(Finding {
            offset: Some(start),
            ..Finding::new(
                "log",
                "records without a commit record before a period the index says is committed",
            )
        });
    } else {
        report.torn_tail_bytes = log_len - start;
    }
}

/// An index longer than the log's committed periods.
fn check_index_length(index: &[IndexEntry], report: &mut AuditReport) {
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
}

/// A pinned head the store does not pass through: it was rolled back past it, or its history
/// before it was rewritten (every later head hashes its predecessors).
fn check_pinned_head(head: Option<Hash>, report: &mut AuditReport) {
    report.pinned_head = head.map(hex::encode);
    if let Some(h) = head
        && report.pinned_head_period.is_none()
    {
        report.findings.push(Finding::new(
            "head",
            format!(
                "the pinned head {} is not the consortium head of any of the {} complete \
                 periods (last verified head {}): the store was rolled back past it or its \
                 history rewritten",
                hex::encode(h),
                report.periods,
                report.head.as_deref().unwrap_or("none")
            ),
        ));
    }
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

/// The genesis record's hash, and a finding when a pinned genesis differs.
fn check_pinned_genesis(
    record: &RawRecord,
    pinned: Option<Hash>,
    report: &mut AuditReport,
) -> Hash {
    let hash = genesis_hash(&record.payload);
    report.genesis_hash = Some(hex::encode(hash));
    if let Some(pinned) = pinned.filter(|&g| g != hash) {
        report.findings.push(
            Finding::new(
                "genesis",
                format!(
                    "the genesis hash is {}, not the pinned {}: another market's store, or a \
                     rewritten genesis",
                    hex::encode(hash),
                    hex::encode(pinned)
                ),
            )
            .at(record),
        );
    }
    hash
}

/// The validators' proof keys, for the supervisor of an IPOW store who holds its secret; and
/// whether the tags can be checked.
fn validator_keys(
    genesis: &Genesis,
    options: &AuditOptions,
    record: &RawRecord,
    report: &mut AuditReport,
) -> Vec<ring::hmac::Key> {
    if let Some(secret) = &options.secret
        && secret.commitment() != genesis.nodes.mac_commitment
    {
        report.tag_check = TagCheck::WrongSecret;
        report.findings.push(Finding {
            field: Some("node keys.mac commitment".into()),
            ..Finding::new(
                "genesis",
                "the node secret given is not the one this genesis commits to: another \
                 store's secret, or a rewritten genesis; proof tags not checked",
            )
            .at(record)
        });
        return Vec::new();
    }
    let StoredConsensus::Ipow { validators, .. } = genesis.consensus else {
        report.tag_check = TagCheck::NotIpow;
        return Vec::new();
    };
    if options.viewer != Viewer::Supervisor {
        report.tag_check = TagCheck::NotSupervisor;
        return Vec::new();
    }
    let Some(secret) = &options.secret else {
        report.tag_check = TagCheck::NoSecret;
        return Vec::new();
    };
    report.tag_check = TagCheck::Checked;
    (0..validators.min(10_000))
        .map(|v| secret.validator_mac(v))
        .collect()
}

/// The genesis's node keys, admitted and decompressed; a key refused at admission is a finding
/// (every signature under it then fails).
fn node_keys(
    genesis: &Genesis,
    record: &RawRecord,
    report: &mut AuditReport,
) -> Vec<Option<VerifyingKey>> {
    (0..5)
        .map(|k| {
            let bytes = *genesis.nodes.key(k)?;
            match crate::crypto::keys::PublicKey::admit(bytes) {
                Ok(key) => Some(VerifyingKey::new(&key)),
                Err(e) => {
                    report.findings.push(Finding {
                        field: Some(format!("node keys: {}", signer_name(k))),
                        ..Finding::new("genesis", e.to_string()).at(record)
                    });
                    None
                }
            }
        })
        .collect()
}

/// The log's first record when it is a genesis record; else a finding.
fn genesis_record(reader: &mut LogReader, report: &mut AuditReport) -> Option<RawRecord> {
    let record = match reader.next_record() {
        Ok(Some(r)) => r,
        Ok(None) => {
            report
                .findings
                .push(Finding::new("log", "empty: no genesis record"));
            return None;
        }
        Err(stop) => {
            report.findings.push(Finding {
                offset: Some(stop.offset),
                ..Finding::new("genesis", stop.message)
            });
            return None;
        }
    };
    if record.kind != kind::GENESIS {
        report.findings.push(
            Finding::new(
                "genesis",
                format!("first record is a {}", kind::name(record.kind)),
            )
            .at(&record),
        );
        return None;
    }
    Some(record)
}

fn read_genesis(
    reader: &mut LogReader,
    options: &AuditOptions,
    report: &mut AuditReport,
) -> Option<State> {
    let record = genesis_record(reader, report)?;
    if !record.check_ok {
        report.findings.push(check_mismatch(&record));
    }
    let hash = check_pinned_genesis(&record, options.genesis, report);
    let genesis = match decode_genesis(&record.payload) {
        Ok(g) => g,
        Err(e) => {
            report.findings.push(Finding {
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
            report.findings.push(Finding {
                field: Some(format!("public key of {}", m.address)),
                ..Finding::new("genesis", e.to_string()).at(&record)
            });
        }
    }
    let keys = validator_keys(&genesis, options, &record, report);
    let node_keys = node_keys(&genesis, &record, report);
    Some(State {
        node_keys,
        pending_signatures: Vec::new(),
        viewer: options.viewer,
        topology: Topology::new(&genesis.members, genesis.slaves_per_master),
        registry,
        keys,
        tips: Tips::new(hash),
        pinned_head: options.head,
        prev_consensus: [0; 32],
        genesis,
        baseline: options.baseline && options.viewer == Viewer::Supervisor,
        baseline_seconds: 0.0,
    })
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

/// Builds the proof that contract `id` is committed, through the slave chain of `party` (the
/// seller when not given), up to the store's consortium head. Reads the store in order and
/// refuses records whose checks fail.
pub fn prove(dir: &Path, id: &Hash, party: Option<Address>) -> Result<ContractProof, StoreError> {
    let err = crate::chain::store::log_error(dir);
    let (mut log, genesis) = crate::chain::store::CheckedLog::open(dir)?;
    let topology = Topology::new(&genesis.members, genesis.slaves_per_master);
    let mut pending: Vec<RawRecord> = Vec::new();
    let mut proof: Option<ContractProof> = None;
    while let Some(record) = log.next_record()? {
        if record.kind != kind::COMMIT {
            pending.push(record);
            continue;
        }
        let records = std::mem::take(&mut pending);
        let header_of = |r: &RawRecord| -> Result<ChainHeader, StoreError> {
            let p = if r.kind == kind::SLAVE {
                decode_slave(&r.payload).map(|s| s.header)
            } else {
                decode_header_record(&r.payload).map(|(h, _)| h)
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
