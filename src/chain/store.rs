//! The durable store of the multi-chain ledger: one append-only log of checksummed records and
//! an index of committed periods, with the fsync discipline that makes a period all-or-nothing.
//!
//! Why not an embedded key-value store: the chains are append-only and read in order, a period
//! is one contiguous write, and the audit must point at the byte a tamperer changed. A log whose
//! layout is documented here gives exactly that, with no second layer (B-tree pages, a WAL) to
//! explain between a changed byte and the record it belongs to.
//!
//! Files in the store directory:
//!
//! - `ledger.log`: records, each `len (u32 BE) | kind (u8) | payload (len bytes) | check (8)`,
//!   `check` = the first 8 bytes of SHA-256(len | kind | payload). The check finds torn and
//!   corrupted records; it is not a seal against tampering (anyone can recompute it): the
//!   chains' hashes, the contracts' signatures and the quorum certificates are.
//! - `commits.idx`: one 56-byte entry per committed period: period (u64 BE), the log's length
//!   after the period's commit record (u64 BE), the consortium block hash (32), and the first 8
//!   bytes of SHA-256 of those 48 bytes.
//!
//! Record kinds and payloads (integers big-endian):
//!
//! | kind | record | payload |
//! |---|---|---|
//! | 1 | genesis | `ipow-store/3`, slaves per master u32, consensus u8 (1 IPOW, 2 PoW), difficulty u8, IPOW seed u64, validators u32, quorum u32, extra u32, node keys (supervision node 32, master nodes of BCE, BCN, BCS, BCL 4 × 32, MAC commitment 32), slot minutes u8, grid fingerprint 32 (all zero: no grid), member count u32, members (address u32, role u8, bus index u32 (`0xFFFFFFFF`: not placed), public key 32) |
//! | 2 | consensus block | block header 128, nonce u64, entry count u32, entries (contract id 32, proof count u16, proofs (tx u32, validator u32, verdict u8, tag 32)) |
//! | 3 | slave block | chain header 94, contract count u32, contracts (length u32, signed contract bytes) |
//! | 4 | master block | chain header 94, the end's master node's signature 64 |
//! | 5 | consortium block | chain header 94, the supervision node's signature 64 |
//! | 6 | commit | period u64, consortium block hash 32 |
//!
//! A period is the records consensus, slave blocks (address order), four master blocks
//! (source, network, sales, load), consortium, commit. Block signatures are
//! [`crate::chain::sign`]'s; the genesis hash (SHA-256 of its payload) is what a user pins, and
//! it fixes the node keys. Write discipline:
//!
//! 1. The store is created whole: the genesis record is written and synced in a temporary
//!    directory beside the target, which is then renamed into place (and its parent synced).
//! 2. Each period is encoded into one buffer, written with one `write_all`, and `fdatasync`ed;
//!    then its index entry is appended and synced. Only then does the run count the period as
//!    committed (its transactions' commit instants are taken after).
//! 3. On reopening, the log is read in order. Bytes after the last commit record are a torn
//!    tail (a crash during a write) and are ignored, unless the index says a period ended after
//!    them: then they are damage. The index may lag the log by one period (a crash between the
//!    two syncs); every index entry must match the log's commit record.

// Lengths and counts written as u32/u16 are bounded first: payloads by `MAX_RECORD_BYTES`
// (checked in `frame`), contracts per block by `rules::MAX_TRANSACTIONS`, proofs per contract
// by `IpowParams::check` (quorum + extra at most 10,000 + 64).
#![allow(clippy::cast_possible_truncation)]

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::base::domain::Address;
use crate::chain::sign::{BlockSigner, NodeKeys};
use crate::chain::{
    CHAIN_HEADER_LEN, CertEntry, ChainHeader, ConsensusBlock, PeriodBlocks, StoredMember,
    StoredProof, Tips, Topology,
};
use crate::contract::SignedContract;
use crate::contract::block::{BlockHeader, HEADER_LEN};
use crate::crypto::keys::{SIGNATURE_LEN, Signature};
use crate::crypto::merkle::Hash;

/// The log file's name.
pub const LOG_FILE: &str = "ledger.log";
/// The index file's name.
pub const INDEX_FILE: &str = "commits.idx";
/// The genesis magic.
pub const MAGIC: &[u8; 12] = b"ipow-store/3";
/// The largest record payload read or written.
pub const MAX_RECORD_BYTES: u32 = 1 << 30;
/// Bytes of framing around a payload.
pub const FRAME_BYTES: u64 = 13;
/// Bytes of one index entry.
pub const INDEX_ENTRY_BYTES: usize = 56;

/// Record kinds.
pub mod kind {
    /// The genesis record.
    pub const GENESIS: u8 = 1;
    /// A consensus block.
    pub const CONSENSUS: u8 = 2;
    /// A slave block.
    pub const SLAVE: u8 = 3;
    /// A master block.
    pub const MASTER: u8 = 4;
    /// A consortium block.
    pub const CONSORTIUM: u8 = 5;
    /// A period's commit.
    pub const COMMIT: u8 = 6;

    /// The record's name in messages.
    pub fn name(kind: u8) -> &'static str {
        match kind {
            GENESIS => "genesis",
            CONSENSUS => "consensus block",
            SLAVE => "slave block",
            MASTER => "master block",
            CONSORTIUM => "consortium block",
            COMMIT => "commit",
            _ => "unknown record",
        }
    }
}

/// How the store's blocks were agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredConsensus {
    /// IPOW with these parameters (the seed drew the assignments; the validators' MAC keys
    /// come from the node secret, which is not in the store).
    Ipow {
        /// Seed.
        seed: u64,
        /// Validators.
        validators: u32,
        /// Quorum.
        quorum: u32,
        /// Extra validators allowed per period.
        extra: u32,
    },
    /// Plain proof of work.
    Pow {
        /// Leading zero bits.
        difficulty: u8,
    },
}

/// The first record: the market's members and how blocks are agreed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// Slave nodes per master node.
    pub slaves_per_master: u32,
    /// The consensus variant.
    pub consensus: StoredConsensus,
    /// The keys that sign blocks, and the commitment to the validators' MAC secret.
    pub nodes: NodeKeys,
    /// What the committed trades' flows depend on.
    pub market: StoredMarket,
    /// Every participant.
    pub members: Vec<StoredMember>,
}

/// What a committed trade's flows depend on besides its contract: the delivery slot's length
/// and the grid the members sit on ([`crate::grid::Grid::fingerprint`]). With the members'
/// buses, a reader of the store rebuilds every slot's committed base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredMarket {
    /// Minutes per delivery slot (a divisor of 60).
    pub slot_minutes: u8,
    /// The grid's fingerprint, when the market runs on one.
    pub grid: Option<Hash>,
}

impl StoredMarket {
    /// The terms of a market with slots of `slot_minutes` on `grid`, if any.
    pub fn new(slot_minutes: u32, grid: Option<&crate::grid::Grid>) -> Result<Self, String> {
        crate::base::domain::check_slot_minutes(slot_minutes)?;
        Ok(Self {
            slot_minutes: slot_minutes as u8,
            grid: grid.map(crate::grid::Grid::fingerprint),
        })
    }
}

/// A member's bus when it has none.
const NO_BUS: u32 = u32::MAX;

/// An error with the store: the file, the byte offset and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
pub struct StoreError {
    /// The file.
    pub file: String,
    /// The byte offset, when one applies.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl StoreError {
    fn io(path: &Path, e: &std::io::Error) -> Self {
        Self {
            file: path.display().to_string(),
            offset: None,
            message: e.to_string(),
        }
    }
}

pub use crate::base::cursor::{Cursor, FieldError};

/// The check of a record.
pub fn record_check(kind: u8, payload: &[u8]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update((payload.len() as u32).to_be_bytes());
    h.update([kind]);
    h.update(payload);
    let d = h.finalize();
    let mut c = [0u8; 8];
    c.copy_from_slice(&d[..8]);
    c
}

/// Appends one framed record to `out`; a payload over [`MAX_RECORD_BYTES`] is refused.
pub fn frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) -> Result<(), String> {
    if payload.len() > MAX_RECORD_BYTES as usize {
        return Err(format!(
            "a {} record of {} bytes is over the {MAX_RECORD_BYTES}-byte limit (fewer \
             transactions per period)",
            kind::name(kind),
            payload.len()
        ));
    }
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    out.extend_from_slice(&record_check(kind, payload));
    Ok(())
}

/// The genesis hash: SHA-256 of the genesis payload.
pub fn genesis_hash(payload: &[u8]) -> Hash {
    Sha256::digest(payload).into()
}

/// Encodes a genesis payload.
pub fn encode_genesis(g: &Genesis) -> Vec<u8> {
    let mut p = Vec::with_capacity(48 + 225 + 41 * g.members.len());
    p.extend_from_slice(MAGIC);
    p.extend_from_slice(&g.slaves_per_master.to_be_bytes());
    let (code, difficulty, seed, validators, quorum, extra) = match g.consensus {
        StoredConsensus::Ipow {
            seed,
            validators,
            quorum,
            extra,
        } => (1u8, 0u8, seed, validators, quorum, extra),
        StoredConsensus::Pow { difficulty } => (2, difficulty, 0, 0, 0, 0),
    };
    p.push(code);
    p.push(difficulty);
    p.extend_from_slice(&seed.to_be_bytes());
    p.extend_from_slice(&validators.to_be_bytes());
    p.extend_from_slice(&quorum.to_be_bytes());
    p.extend_from_slice(&extra.to_be_bytes());
    p.extend_from_slice(&g.nodes.supervisor);
    for m in &g.nodes.masters {
        p.extend_from_slice(m);
    }
    p.extend_from_slice(&g.nodes.mac_commitment);
    p.push(g.market.slot_minutes);
    p.extend_from_slice(&g.market.grid.unwrap_or_default());
    p.extend_from_slice(&(g.members.len() as u32).to_be_bytes());
    for m in &g.members {
        p.extend_from_slice(&m.address.0.to_be_bytes());
        p.push(crate::market::dataset::role_code(m.role));
        p.extend_from_slice(&m.bus.unwrap_or(NO_BUS).to_be_bytes());
        p.extend_from_slice(&m.public_key);
    }
    p
}

fn field_err(field: &str, at: usize, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        at,
        message: message.into(),
    }
}

/// The genesis's node keys: the supervision node's, the four master nodes', the commitment.
fn decode_node_keys(c: &mut Cursor<'_>) -> Result<NodeKeys, FieldError> {
    let supervisor = c.hash("node keys.supervisor")?;
    let mut masters = [[0u8; 32]; 4];
    for (k, m) in masters.iter_mut().enumerate() {
        *m = c.hash(&format!("node keys.masters[{k}]"))?;
    }
    Ok(NodeKeys {
        supervisor,
        masters,
        mac_commitment: c.hash("node keys.mac commitment")?,
    })
}

/// The genesis's market terms: the slot length, the grid's fingerprint (zero: none).
fn decode_market(c: &mut Cursor<'_>) -> Result<StoredMarket, FieldError> {
    let at = c.at();
    let slot_minutes = c.uint(1, "slot minutes")? as u8;
    crate::base::domain::check_slot_minutes(u32::from(slot_minutes))
        .map_err(|m| field_err("slot minutes", at, m))?;
    let grid = c.hash("grid fingerprint")?;
    Ok(StoredMarket {
        slot_minutes,
        grid: (grid != [0; 32]).then_some(grid),
    })
}

/// Decodes a genesis payload.
pub fn decode_genesis(p: &[u8]) -> Result<Genesis, FieldError> {
    let mut c = Cursor::new(p);
    if c.take(12, "magic")? != MAGIC {
        return Err(field_err(
            "magic",
            0,
            "not an ipow-store/3 genesis (a store of an older ipow cannot be read)",
        ));
    }
    let slaves_per_master = c.uint(4, "slaves per master")? as u32;
    if slaves_per_master == 0 {
        return Err(field_err("slaves per master", 12, "zero"));
    }
    let at = c.at();
    let code = c.uint(1, "consensus")?;
    let difficulty = c.uint(1, "difficulty")? as u8;
    let seed = c.uint(8, "seed")?;
    let validators = c.uint(4, "validators")? as u32;
    let quorum = c.uint(4, "quorum")? as u32;
    let extra = c.uint(4, "extra")? as u32;
    // The fields a variant does not use must be zero, as `encode_genesis` writes them: one
    // genesis, one encoding (a fuzzer found the decoder ignoring them).
    let consensus = match code {
        1 if difficulty != 0 => {
            return Err(field_err("difficulty", at + 1, "not 0 under IPOW"));
        }
        1 => StoredConsensus::Ipow {
            seed,
            validators,
            quorum,
            extra,
        },
        2 if seed != 0 || validators != 0 || quorum != 0 || extra != 0 => {
            return Err(field_err(
                "seed",
                at + 2,
                "seed, validators, quorum and extra are not 0 under PoW",
            ));
        }
        2 => StoredConsensus::Pow { difficulty },
        k => return Err(field_err("consensus", at, format!("{k} is not 1 or 2"))),
    };
    let nodes = decode_node_keys(&mut c)?;
    let market = decode_market(&mut c)?;
    let members = decode_members(&mut c, &market)?;
    c.finish("genesis")?;
    Ok(Genesis {
        slaves_per_master,
        consensus,
        nodes,
        market,
        members,
    })
}

/// The genesis's members: a bus only in a market on a grid.
fn decode_members(
    c: &mut Cursor<'_>,
    market: &StoredMarket,
) -> Result<Vec<StoredMember>, FieldError> {
    let n = c.count(4, 41, "member count")?;
    let mut members = Vec::with_capacity(n);
    for k in 0..n {
        let address = Address(c.uint(4, &format!("members[{k}].address"))? as u32);
        let at = c.at();
        let role = crate::market::dataset::role_of(c.uint(1, "role")? as u8)
            .ok_or_else(|| field_err(&format!("members[{k}].role"), at, "unknown role code"))?;
        let at = c.at();
        let bus = match c.uint(4, &format!("members[{k}].bus"))? as u32 {
            NO_BUS => None,
            _ if market.grid.is_none() => {
                return Err(field_err(
                    &format!("members[{k}].bus"),
                    at,
                    "a bus in a market without a grid",
                ));
            }
            b => Some(b),
        };
        let public_key = c.hash(&format!("members[{k}].public_key"))?;
        members.push(StoredMember {
            address,
            role,
            bus,
            public_key,
        });
    }
    Ok(members)
}

/// Encodes a consensus block payload.
pub fn encode_consensus(out: &mut Vec<u8>, b: &ConsensusBlock) {
    out.extend_from_slice(&b.header.encode());
    out.extend_from_slice(&b.header.nonce.to_be_bytes());
    out.extend_from_slice(&(b.entries.len() as u32).to_be_bytes());
    for e in &b.entries {
        out.extend_from_slice(&e.id);
        out.extend_from_slice(&(e.proofs.len() as u16).to_be_bytes());
        for p in &e.proofs {
            out.extend_from_slice(&p.tx.to_be_bytes());
            out.extend_from_slice(&p.validator.to_be_bytes());
            out.push(p.verdict);
            out.extend_from_slice(&p.tag);
        }
    }
}

/// Decodes a consensus block payload.
pub fn decode_consensus(p: &[u8]) -> Result<ConsensusBlock, FieldError> {
    let mut c = Cursor::new(p);
    let mut hb = [0u8; HEADER_LEN];
    hb.copy_from_slice(c.take(HEADER_LEN, "block header")?);
    let nonce = c.uint(8, "nonce")?;
    let header = BlockHeader::decode(&hb, nonce).ok_or_else(|| {
        field_err(
            "block header",
            0,
            "unknown version, variant or reserved bytes",
        )
    })?;
    let n = c.count(4, 34, "entry count")?;
    let mut entries = Vec::with_capacity(n);
    for k in 0..n {
        let id = c.hash(&format!("entries[{k}].id"))?;
        let m = c.count(2, 41, &format!("entries[{k}].proof count"))?;
        let mut proofs = Vec::with_capacity(m);
        for j in 0..m {
            let f = |name: &str| format!("entries[{k}].proofs[{j}].{name}");
            proofs.push(StoredProof {
                tx: c.uint(4, &f("tx"))? as u32,
                validator: c.uint(4, &f("validator"))? as u32,
                verdict: c.uint(1, &f("verdict"))? as u8,
                tag: c.hash(&f("tag"))?,
            });
        }
        entries.push(CertEntry { id, proofs });
    }
    c.finish("consensus block")?;
    Ok(ConsensusBlock { header, entries })
}

/// A slave block as stored: its header and its contracts' bytes with their offsets in the
/// payload.
#[derive(Clone, Debug)]
pub struct StoredSlave<'a> {
    /// The header.
    pub header: ChainHeader,
    /// (offset in the payload, bytes) of each contract.
    pub contracts: Vec<(usize, &'a [u8])>,
}

/// Decodes a slave block payload (contracts left as bytes).
pub fn decode_slave(p: &[u8]) -> Result<StoredSlave<'_>, FieldError> {
    let mut c = Cursor::new(p);
    let header = ChainHeader::decode(c.take(CHAIN_HEADER_LEN, "chain header")?)
        .map_err(|e| field_err(&format!("chain header {}", e.field), 0, e.message))?;
    let n = c.count(4, 4, "contract count")?;
    let mut contracts = Vec::with_capacity(n);
    for k in 0..n {
        let len = c.uint(4, &format!("contracts[{k}].length"))? as usize;
        let at = c.at();
        contracts.push((at, c.take(len, &format!("contracts[{k}]"))?));
    }
    c.finish("slave block")?;
    Ok(StoredSlave { header, contracts })
}

/// Decodes a master or consortium block payload: its header and its node's signature.
pub fn decode_header_record(p: &[u8]) -> Result<(ChainHeader, Signature), FieldError> {
    let mut c = Cursor::new(p);
    let h = ChainHeader::decode(c.take(CHAIN_HEADER_LEN, "chain header")?)
        .map_err(|e| field_err(&format!("chain header {}", e.field), 0, e.message))?;
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(c.take(SIGNATURE_LEN, "signature")?);
    c.finish("block")?;
    Ok((h, signature))
}

/// A master or consortium block payload: its header and `signer`'s signature over it.
fn signed_header(header: &ChainHeader, signer: &BlockSigner) -> Vec<u8> {
    let mut p = header.encode().to_vec();
    p.extend_from_slice(&signer.sign(header).unwrap_or([0; SIGNATURE_LEN]));
    p
}

/// Decodes a commit payload: (period, consortium hash).
pub fn decode_commit(p: &[u8]) -> Result<(u64, Hash), FieldError> {
    let mut c = Cursor::new(p);
    let period = c.uint(8, "period")?;
    let hash = c.hash("consortium hash")?;
    c.finish("commit")?;
    Ok((period, hash))
}

/// Encodes one period's records into one buffer, the master and consortium blocks signed by
/// `signer`.
pub fn encode_period(blocks: &PeriodBlocks, signer: &BlockSigner) -> Result<Vec<u8>, String> {
    let encoded = &blocks.encoded;
    let mut out = Vec::new();
    let mut p = Vec::new();
    encode_consensus(&mut p, &blocks.consensus);
    frame(&mut out, kind::CONSENSUS, &p)?;
    for s in &blocks.slaves {
        p.clear();
        p.extend_from_slice(&s.header.encode());
        p.extend_from_slice(&(s.contracts.len() as u32).to_be_bytes());
        for &k in &s.contracts {
            let bytes = &encoded[k as usize];
            p.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            p.extend_from_slice(bytes);
        }
        frame(&mut out, kind::SLAVE, &p)?;
    }
    for m in &blocks.masters {
        frame(&mut out, kind::MASTER, &signed_header(m, signer))?;
    }
    frame(
        &mut out,
        kind::CONSORTIUM,
        &signed_header(&blocks.consortium, signer),
    )?;
    p.clear();
    p.extend_from_slice(&blocks.period.to_be_bytes());
    p.extend_from_slice(&blocks.consortium.hash());
    frame(&mut out, kind::COMMIT, &p)?;
    Ok(out)
}

/// An index entry's bytes.
pub fn index_entry(period: u64, end: u64, hash: &Hash) -> [u8; INDEX_ENTRY_BYTES] {
    let mut e = [0u8; INDEX_ENTRY_BYTES];
    e[..8].copy_from_slice(&period.to_be_bytes());
    e[8..16].copy_from_slice(&end.to_be_bytes());
    e[16..48].copy_from_slice(hash);
    let d = Sha256::digest(&e[..48]);
    e[48..].copy_from_slice(&d[..8]);
    e
}

/// One index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The period.
    pub period: u64,
    /// The log's length after its commit record.
    pub end: u64,
    /// The consortium block hash.
    pub hash: Hash,
}

/// The most bytes an index may hold: 2^24 periods.
pub const MAX_INDEX_BYTES: u64 = (INDEX_ENTRY_BYTES as u64) << 24;

/// Reads the index; an entry whose check fails is an error naming it.
pub fn read_index(dir: &Path) -> Result<Vec<IndexEntry>, StoreError> {
    use std::io::Read as _;
    let path = dir.join(INDEX_FILE);
    let refused = |message: String| StoreError {
        file: path.display().to_string(),
        offset: None,
        message,
    };
    let file = crate::base::input::open_regular(&path).map_err(refused)?;
    let mut bytes = Vec::new();
    file.take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(&path, &e))?;
    if bytes.len() as u64 > MAX_INDEX_BYTES {
        return Err(refused(format!(
            "over the {MAX_INDEX_BYTES}-byte limit of an index"
        )));
    }
    let mut out = Vec::with_capacity(bytes.len() / INDEX_ENTRY_BYTES);
    for (k, e) in bytes.chunks(INDEX_ENTRY_BYTES).enumerate() {
        let offset = Some((k * INDEX_ENTRY_BYTES) as u64);
        let err = |message: String| StoreError {
            file: path.display().to_string(),
            offset,
            message,
        };
        if e.len() != INDEX_ENTRY_BYTES {
            // A torn final entry: the crash window between the log's sync and the index's.
            if k * INDEX_ENTRY_BYTES + e.len() == bytes.len() {
                break;
            }
            return Err(err(format!("entry {k} is {} bytes", e.len())));
        }
        let d = Sha256::digest(&e[..48]);
        if d[..8] != e[48..] {
            return Err(err(format!("entry {k}: check mismatch")));
        }
        let mut c = Cursor::new(e);
        let period = c.uint(8, "period").map_err(|f| err(f.to_string()))?;
        let end = c.uint(8, "end").map_err(|f| err(f.to_string()))?;
        let hash = c.hash("hash").map_err(|f| err(f.to_string()))?;
        out.push(IndexEntry { period, end, hash });
    }
    Ok(out)
}

/// Appends periods to a store. Create with [`StoreWriter::create`].
pub struct StoreWriter {
    dir: PathBuf,
    log: File,
    index: File,
    end: u64,
    /// While below this offset the writer replays: each period is compared byte for byte with
    /// what the log already holds, never written ([`StoreWriter::resume`]).
    replay_end: u64,
    topology: Topology,
    tips: Tips,
    periods: u64,
    signer: BlockSigner,
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, &e))
}

impl StoreWriter {
    /// Creates the store at `dir` (which must not exist) with `genesis`, whole or not at all;
    /// `signer` signs every master and consortium block and must hold the keys the genesis
    /// lists.
    pub fn create(dir: &Path, genesis: &Genesis, signer: BlockSigner) -> Result<Self, StoreError> {
        if genesis.nodes != signer.keys() {
            return Err(StoreError {
                file: dir.display().to_string(),
                offset: None,
                message: "the genesis lists other node keys than the signer holds".into(),
            });
        }
        if dir.exists() {
            return Err(StoreError {
                file: dir.display().to_string(),
                offset: None,
                message: "already exists; a store is created in a new directory".into(),
            });
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "store".into());
        let tmp = parent.join(format!(".{name}.creating-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, &e))?;
        let payload = encode_genesis(genesis);
        let mut bytes = Vec::new();
        frame(&mut bytes, kind::GENESIS, &payload).map_err(|message| StoreError {
            file: dir.display().to_string(),
            offset: None,
            message,
        })?;
        for (file, content) in [(LOG_FILE, &bytes[..]), (INDEX_FILE, &[][..])] {
            let path = tmp.join(file);
            let mut f = File::create(&path).map_err(|e| StoreError::io(&path, &e))?;
            f.write_all(content)
                .and_then(|()| f.sync_all())
                .map_err(|e| StoreError::io(&path, &e))?;
        }
        sync_dir(&tmp)?;
        std::fs::rename(&tmp, dir).map_err(|e| StoreError::io(dir, &e))?;
        sync_dir(&parent)?;
        let open = |file: &str| {
            let path = dir.join(file);
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| StoreError::io(&path, &e))
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            log: open(LOG_FILE)?,
            index: open(INDEX_FILE)?,
            end: bytes.len() as u64,
            replay_end: 0,
            topology: Topology::new(&genesis.members, genesis.slaves_per_master),
            tips: Tips::new(genesis_hash(&payload)),
            periods: 0,
            signer,
        })
    }

    /// Builds the period's blocks on every chain from its consensus block and contracts (block
    /// order), writes them as one write, syncs, then appends and syncs the index entry. Returns
    /// the consortium block hash.
    pub fn append(
        &mut self,
        consensus: ConsensusBlock,
        contracts: &[SignedContract],
    ) -> Result<Hash, StoreError> {
        let log_path = self.dir.join(LOG_FILE);
        let blocks =
            crate::chain::build_period(&self.topology, &mut self.tips, consensus, contracts)
                .map_err(|e| StoreError {
                    file: log_path.display().to_string(),
                    offset: Some(self.end),
                    message: e.to_string(),
                })?;
        let bytes = encode_period(&blocks, &self.signer).map_err(|message| StoreError {
            file: log_path.display().to_string(),
            offset: Some(self.end),
            message,
        })?;
        let hash = blocks.consortium.hash();
        if self.end < self.replay_end {
            self.replayed(&bytes, blocks.period, &hash)?;
            self.end += bytes.len() as u64;
            self.periods += 1;
            return Ok(hash);
        }
        self.log
            .write_all(&bytes)
            .and_then(|()| self.log.sync_data())
            .map_err(|e| StoreError::io(&log_path, &e))?;
        self.end += bytes.len() as u64;
        let index_path = self.dir.join(INDEX_FILE);
        self.index
            .write_all(&index_entry(blocks.period, self.end, &hash))
            .and_then(|()| self.index.sync_data())
            .map_err(|e| StoreError::io(&index_path, &e))?;
        self.periods += 1;
        Ok(hash)
    }

    /// Records one sealed period of a run: its block's contracts (block order) and, for IPOW,
    /// the proofs that decided each of them.
    pub fn append_period(
        &mut self,
        workload: &crate::market::rules::Workload,
        out: &crate::consensus::PeriodOutput,
    ) -> Result<Hash, StoreError> {
        let mut proofs: std::collections::HashMap<u32, Vec<StoredProof>> =
            std::collections::HashMap::new();
        for p in &out.proofs {
            proofs.entry(p.tx).or_default().push(StoredProof {
                tx: p.tx,
                validator: p.validator,
                verdict: p.verdict.code(),
                tag: p.tag,
            });
        }
        let contracts: Vec<SignedContract> = out
            .block
            .transactions
            .iter()
            .map(|&tx| workload.transactions[tx as usize].clone())
            .collect();
        let entries = out
            .block
            .transactions
            .iter()
            .zip(&contracts)
            .map(|(tx, c)| CertEntry {
                id: c.id().0,
                proofs: proofs.remove(tx).unwrap_or_default(),
            })
            .collect();
        self.append(
            ConsensusBlock {
                header: out.block.header,
                entries,
            },
            &contracts,
        )
    }

    /// Periods committed by this writer (replayed ones included).
    pub fn periods(&self) -> u64 {
        self.periods
    }

    /// Whether the writer is still replaying committed periods.
    pub fn replaying(&self) -> bool {
        self.end < self.replay_end
    }

    /// Reopens the store at `dir` to continue the run that wrote it: its genesis must be
    /// byte for byte the one `genesis` encodes (the same market, validators, grid and node
    /// keys), and `signer` must hold its keys. Only indexed periods count as committed: log
    /// bytes after the last indexed period (a torn write, or a period whose index entry never
    /// synced) are cut off, and so is a torn index entry. The run then starts again from its
    /// first period; each committed period it recomputes is compared byte for byte with the
    /// log and index (an error names the first differing byte), and written periods follow the
    /// last committed one. Returns the writer and the committed periods.
    pub fn resume(
        dir: &Path,
        genesis: &Genesis,
        signer: BlockSigner,
    ) -> Result<(Self, u64), StoreError> {
        let err = log_error(dir);
        if genesis.nodes != signer.keys() {
            return Err(err(
                None,
                "the genesis lists other node keys than the signer holds".into(),
            ));
        }
        let (mut log, stored) = CheckedLog::open(dir)?;
        let payload = encode_genesis(genesis);
        if encode_genesis(&stored) != payload {
            return Err(err(
                Some(0),
                "its genesis is not this run's (another market, validators, grid, secret or \
                 slot length): resume with the flags and --secret of the run that created it"
                    .into(),
            ));
        }
        let genesis_end = log.offset();
        let entries = read_index(dir)?;
        for (k, e) in entries.iter().enumerate() {
            if e.period != k as u64 {
                return Err(err(
                    None,
                    format!("index entry {k} lists period {}", e.period),
                ));
            }
        }
        let committed_end = entries.last().map_or(genesis_end, |e| e.end);
        read_to(&mut log, committed_end, &err)?;
        let cut = |file: &str, len: u64| -> Result<File, StoreError> {
            let path = dir.join(file);
            let f = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .map_err(|e| StoreError::io(&path, &e))?;
            f.set_len(len)
                .and_then(|()| f.sync_all())
                .map_err(|e| StoreError::io(&path, &e))?;
            Ok(f)
        };
        let periods = entries.len() as u64;
        let writer = Self {
            dir: dir.to_path_buf(),
            log: cut(LOG_FILE, committed_end)?,
            index: cut(INDEX_FILE, periods * INDEX_ENTRY_BYTES as u64)?,
            end: genesis_end,
            replay_end: committed_end,
            topology: Topology::new(&genesis.members, genesis.slaves_per_master),
            tips: Tips::new(genesis_hash(&payload)),
            periods: 0,
            signer,
        };
        Ok((writer, periods))
    }

    /// A replayed period: `bytes` must be what the log holds at this writer's end, and its
    /// index entry what the index holds for `period`.
    fn replayed(&self, bytes: &[u8], period: u64, hash: &Hash) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt as _;
        let log_path = self.dir.join(LOG_FILE);
        let mut stored = vec![0u8; bytes.len()];
        let end = self.end + bytes.len() as u64;
        let differs = |at: u64, file: &Path| StoreError {
            file: file.display().to_string(),
            offset: Some(at),
            message: format!(
                "period {period} as recomputed differs from the stored one here: the store was \
                 written with other flags, by another version, or altered (ipow audit)"
            ),
        };
        if end > self.replay_end {
            return Err(differs(self.replay_end, &log_path));
        }
        self.log
            .read_exact_at(&mut stored, self.end)
            .map_err(|e| StoreError::io(&log_path, &e))?;
        if let Some(i) = stored.iter().zip(bytes).position(|(a, b)| a != b) {
            return Err(differs(self.end + i as u64, &log_path));
        }
        let index_path = self.dir.join(INDEX_FILE);
        let mut entry = [0u8; INDEX_ENTRY_BYTES];
        self.index
            .read_exact_at(&mut entry, period * INDEX_ENTRY_BYTES as u64)
            .map_err(|e| StoreError::io(&index_path, &e))?;
        if entry != index_entry(period, end, hash) {
            return Err(differs(period * INDEX_ENTRY_BYTES as u64, &index_path));
        }
        Ok(())
    }
}

/// Reads `log` up to `end`, which must be a record boundary the log reaches.
fn read_to(
    log: &mut CheckedLog,
    end: u64,
    err: &dyn Fn(Option<u64>, String) -> StoreError,
) -> Result<(), StoreError> {
    while log.offset() < end {
        if log.next_record()?.is_none() {
            return Err(err(
                Some(log.offset()),
                format!("the log ends before the indexed end {end}"),
            ));
        }
    }
    if log.offset() != end {
        return Err(err(
            Some(end),
            "the index's last end is not a record boundary".into(),
        ));
    }
    Ok(())
}

/// One record as read.
#[derive(Clone, Debug)]
pub struct RawRecord {
    /// Offset of its length field in the log.
    pub offset: u64,
    /// Its kind.
    pub kind: u8,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Whether its check matched.
    pub check_ok: bool,
}

impl RawRecord {
    /// Offset of the payload's first byte in the log.
    pub fn payload_offset(&self) -> u64 {
        self.offset + 5
    }

    /// Offset just past the record (its framing included).
    pub fn end(&self) -> u64 {
        self.offset + FRAME_BYTES + self.payload.len() as u64
    }
}

/// An error in `dir`'s log at an offset, for readers that point at a byte.
pub fn log_error(dir: &Path) -> impl Fn(Option<u64>, String) -> StoreError + use<> {
    let file = dir.join(LOG_FILE).display().to_string();
    move |offset, message| StoreError {
        file: file.clone(),
        offset,
        message,
    }
}

/// A store's log for a reader that takes the store as written (`ipow prove`, a committed base
/// read back): the intact genesis first, then each record whose check matches. A record whose
/// check fails is an error that sends the user to `ipow audit` (whether to believe the store is
/// the audit's question); the log's end and a torn tail both end the reading.
pub struct CheckedLog {
    reader: LogReader,
    err: Box<dyn Fn(Option<u64>, String) -> StoreError>,
}

impl CheckedLog {
    /// Opens `dir`'s log and decodes its genesis.
    pub fn open(dir: &Path) -> Result<(Self, Genesis), StoreError> {
        let err = log_error(dir);
        let mut reader = LogReader::open(dir)?;
        let genesis = match reader.next_record() {
            Ok(Some(r)) if r.kind == kind::GENESIS && r.check_ok => decode_genesis(&r.payload)
                .map_err(|e| err(Some(r.payload_offset()), e.to_string()))?,
            _ => return Err(err(Some(0), "no intact genesis record".into())),
        };
        let err = Box::new(err);
        Ok((Self { reader, err }, genesis))
    }

    /// The next record; `None` at the end or at a torn tail.
    pub fn next_record(&mut self) -> Result<Option<RawRecord>, StoreError> {
        match self.reader.next_record() {
            Ok(Some(r)) if !r.check_ok => Err((self.err)(
                Some(r.offset),
                format!(
                    "{} record check mismatch; run ipow audit",
                    kind::name(r.kind)
                ),
            )),
            Ok(r) => Ok(r),
            Err(_) => Ok(None),
        }
    }

    /// The offset of the next record.
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }
}

/// Where reading the log stopped short of its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    /// Offset of the record that could not be framed.
    pub offset: u64,
    /// Why.
    pub message: String,
}

/// Reads the log's records in order.
pub struct LogReader {
    r: Box<dyn Read + Send>,
    offset: u64,
    len: u64,
}

impl LogReader {
    /// Opens `dir`'s log.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOG_FILE);
        let f = crate::base::input::open_regular(&path).map_err(|message| StoreError {
            file: path.display().to_string(),
            offset: None,
            message,
        })?;
        let len = f.metadata().map_err(|e| StoreError::io(&path, &e))?.len();
        Ok(Self {
            r: Box::new(BufReader::with_capacity(1 << 20, f)),
            offset: 0,
            len,
        })
    }

    /// Reads a log held in memory: the fuzz targets' way in.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            len: bytes.len() as u64,
            r: Box::new(std::io::Cursor::new(bytes)),
            offset: 0,
        }
    }

    /// The log's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty log.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record; `Ok(None)` at the end; `Err(Stop)` where a record cannot be framed
    /// (shorter than its declared length, or a length over [`MAX_RECORD_BYTES`]).
    pub fn next_record(&mut self) -> Result<Option<RawRecord>, Stop> {
        let left = self.len - self.offset;
        if left == 0 {
            return Ok(None);
        }
        let stop = |message: String| Stop {
            offset: self.offset,
            message,
        };
        if left < FRAME_BYTES {
            return Err(stop(format!(
                "{left} bytes, shorter than a record's framing"
            )));
        }
        let mut head = [0u8; 5];
        self.r
            .read_exact(&mut head)
            .map_err(|e| stop(e.to_string()))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len > MAX_RECORD_BYTES || u64::from(len) + FRAME_BYTES > left {
            return Err(stop(format!(
                "a {} record declares {len} payload bytes; {} bytes are left",
                kind::name(head[4]),
                left - 5
            )));
        }
        let mut payload = vec![0u8; len as usize];
        let mut check = [0u8; 8];
        self.r
            .read_exact(&mut payload)
            .and_then(|()| self.r.read_exact(&mut check))
            .map_err(|e| stop(e.to_string()))?;
        let record = RawRecord {
            offset: self.offset,
            kind: head[4],
            check_ok: record_check(head[4], &payload) == check,
            payload,
        };
        self.offset += u64::from(len) + FRAME_BYTES;
        Ok(Some(record))
    }
}
