//! The multi-chain ledger of the paper's Sections 3.1-3.2: private slave chains, the four master
//! chains (source BCE, network BCN, sales BCS, load BCL) and the consortium chain above them.
//!
//! Structure, one period (each level a block whose header links to its predecessor on its own
//! chain and commits an RFC 6962 root over the level below):
//!
//! ```text
//! consortium block p   root over [BCE head, BCN head, BCS head, BCL head, consensus block hash]
//!   master block (end)   root over the hashes of the end's new slave block headers, address order
//!     slave block (party)  root over the record digests of the period's contracts the party is
//!                          in, block order (digest = SHA-256 of the signed contract's bytes, so
//!                          the signatures are committed as well as the contract)
//! ```
//!
//! - **Topology** ([`Topology`]): every participant with an end (`Role::end`) is a slave node; the
//!   slaves of an end, in address order, are grouped [`SLAVES_PER_MASTER`] to a master node. A
//!   master node's private master-slave chain is its slaves' chains together with their entries
//!   in its end's master chain. The paper's example has one sales master with four seller slaves,
//!   one load master with four purchaser slaves and the transmission company on the network end.
//! - A contract is recorded on the slave chain of each of its three parties (seller, purchaser,
//!   transmission company): three copies, which is also what lets an auditor name the field a
//!   tamperer changed (the copies disagree, and only one of them carries valid signatures).
//! - A slave gets a block only in periods where it has contracts; every end gets a master block
//!   every period (an empty one has the empty root), so the consortium block always commits four
//!   master heads. The first block of every chain links to the store's genesis hash.
//! - The consortium block also commits the consensus block's hash: the sealed header (Merkle root
//!   over every accepted contract in block order, and for IPOW the quorum certificate's root) and
//!   the certificate itself are stored beside it ([`ConsensusBlock`]).
//!
//! Header encoding, version 1, 94 bytes big-endian: version (1), chain kind (1 slave, 2 master,
//! 3 consortium), chain id (u32: the slave's address, the end's code 0-3, or 0), height (u64),
//! period (u64), previous header hash (32), root (32), leaf count (u64). The block hash is
//! SHA-256 of those bytes.

// Positions in a block are u32: a block holds at most `rules::MAX_TRANSACTIONS` contracts.
#![allow(clippy::cast_possible_truncation)]

pub mod audit;
pub mod committed;
pub mod sign;
pub mod store;

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::domain::{Address, End, Role};
use crate::contract::SignedContract;
use crate::contract::block::BlockHeader;
use crate::crypto::merkle::{Hash, InclusionProof, MerkleTree, leaf_hash_32, root_32};

/// Slave nodes per master node.
pub const SLAVES_PER_MASTER: u32 = 16;
/// The four ends, in the order the consortium block commits their heads.
pub const ENDS: [End; 4] = [End::Source, End::Network, End::Sales, End::Load];
/// Bytes in an encoded chain header.
pub const CHAIN_HEADER_LEN: usize = 94;
/// The chain header version this build writes.
pub const CHAIN_HEADER_VERSION: u8 = 1;

/// The code of an end in headers (its position in [`ENDS`]).
pub fn end_code(end: End) -> u8 {
    match end {
        End::Source => 0,
        End::Network => 1,
        End::Sales => 2,
        End::Load => 3,
    }
}

/// The end with code `code`.
pub fn end_of_code(code: u32) -> Option<End> {
    ENDS.get(usize::try_from(code).ok()?).copied()
}

/// The chain name the paper gives an end's master chain.
pub fn end_chain_name(end: End) -> &'static str {
    match end {
        End::Source => "BCE (source)",
        End::Network => "BCN (network)",
        End::Sales => "BCS (sales)",
        End::Load => "BCL (load)",
    }
}

/// Which chain a header belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainId {
    /// A party's private slave chain.
    Slave(Address),
    /// An end's master chain.
    Master(End),
    /// The consortium chain.
    Consortium,
}

impl std::fmt::Display for ChainId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainId::Slave(a) => write!(f, "slave chain {a}"),
            ChainId::Master(e) => write!(f, "master chain {}", end_chain_name(*e)),
            ChainId::Consortium => write!(f, "consortium chain"),
        }
    }
}

/// A block header of any of the three levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHeader {
    /// Its chain.
    pub chain: ChainId,
    /// Blocks before it on its chain.
    pub height: u64,
    /// The market period it records.
    pub period: u64,
    /// Hash of the previous header on its chain (the genesis hash for the first block).
    pub prev_hash: Hash,
    /// RFC 6962 root over its leaves.
    pub root: Hash,
    /// Number of leaves.
    pub leaf_count: u64,
}

/// Why header bytes are not a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain header field {field}: {message}")]
pub struct HeaderError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

fn hash_at(b: &[u8], at: usize) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(&b[at..at + 32]);
    h
}

impl ChainHeader {
    /// The canonical bytes.
    pub fn encode(&self) -> [u8; CHAIN_HEADER_LEN] {
        let mut out = [0u8; CHAIN_HEADER_LEN];
        out[0] = CHAIN_HEADER_VERSION;
        let (kind, id) = match self.chain {
            ChainId::Slave(a) => (1u8, a.0),
            ChainId::Master(e) => (2, u32::from(end_code(e))),
            ChainId::Consortium => (3, 0),
        };
        out[1] = kind;
        out[2..6].copy_from_slice(&id.to_be_bytes());
        out[6..14].copy_from_slice(&self.height.to_be_bytes());
        out[14..22].copy_from_slice(&self.period.to_be_bytes());
        out[22..54].copy_from_slice(&self.prev_hash);
        out[54..86].copy_from_slice(&self.root);
        out[86..94].copy_from_slice(&self.leaf_count.to_be_bytes());
        out
    }

    /// Reads [`ChainHeader::encode`]'s bytes.
    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        let err = |field, message: String| HeaderError { field, message };
        if b.len() != CHAIN_HEADER_LEN {
            return Err(err(
                "length",
                format!("{} bytes, expected {CHAIN_HEADER_LEN}", b.len()),
            ));
        }
        if b[0] != CHAIN_HEADER_VERSION {
            return Err(err("version", format!("{} is not 1", b[0])));
        }
        let mut id = [0u8; 4];
        id.copy_from_slice(&b[2..6]);
        let id = u32::from_be_bytes(id);
        let chain = match b[1] {
            1 => ChainId::Slave(Address(id)),
            2 => ChainId::Master(
                end_of_code(id).ok_or_else(|| err("chain id", format!("no end has code {id}")))?,
            ),
            3 if id == 0 => ChainId::Consortium,
            3 => return Err(err("chain id", format!("{id} for the consortium chain"))),
            k => return Err(err("chain kind", format!("{k} is not 1, 2 or 3"))),
        };
        Ok(Self {
            chain,
            height: u64_at(b, 6),
            period: u64_at(b, 14),
            prev_hash: hash_at(b, 22),
            root: hash_at(b, 54),
            leaf_count: u64_at(b, 86),
        })
    }

    /// SHA-256 of the encoding.
    pub fn hash(&self) -> Hash {
        Sha256::digest(self.encode()).into()
    }
}

/// A participant as the store's genesis records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredMember {
    /// Its address.
    pub address: Address,
    /// Its role.
    pub role: Role,
    /// The index of the bus it sits at on the market's grid, when placed on one.
    pub bus: Option<u32>,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
}

impl From<&crate::market::generator::Member> for StoredMember {
    fn from(m: &crate::market::generator::Member) -> Self {
        Self {
            address: m.address,
            role: m.role,
            bus: m.bus,
            public_key: m.public_key,
        }
    }
}

/// A master node: its end, its number within the end, its slaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterNode {
    /// The end.
    pub end: End,
    /// Its number among the end's master nodes.
    pub index: u32,
    /// Its slave nodes, in address order.
    pub slaves: Vec<Address>,
}

impl MasterNode {
    /// `sales/0` and so on.
    pub fn name(&self) -> String {
        let end = match self.end {
            End::Source => "source",
            End::Network => "network",
            End::Sales => "sales",
            End::Load => "load",
        };
        format!("{end}/{}", self.index)
    }
}

/// Who is master of whom.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// Every master node, by end then number.
    pub masters: Vec<MasterNode>,
    slave_master: HashMap<Address, usize>,
}

impl Topology {
    /// Master and slave nodes from the market's participants: per end, in address order,
    /// `per_master` slaves to a master (at least 1; [`SLAVES_PER_MASTER`] by default).
    /// Participants without an end (the supervisor) are not slaves.
    pub fn new(members: &[StoredMember], per_master: u32) -> Self {
        let mut t = Topology::default();
        for end in ENDS {
            let mut slaves: Vec<Address> = members
                .iter()
                .filter(|m| m.role.end() == Some(end))
                .map(|m| m.address)
                .collect();
            slaves.sort_unstable();
            slaves.dedup();
            for (index, chunk) in slaves.chunks(per_master.max(1) as usize).enumerate() {
                for &s in chunk {
                    t.slave_master.insert(s, t.masters.len());
                }
                t.masters.push(MasterNode {
                    end,
                    index: index as u32,
                    slaves: chunk.to_vec(),
                });
            }
        }
        t
    }

    /// The master node of slave `address`.
    pub fn master_of(&self, address: Address) -> Option<&MasterNode> {
        self.slave_master.get(&address).map(|&m| &self.masters[m])
    }
}

/// One proof Z(Tk, e) as a store keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredProof {
    /// The transaction's index in its run (part of the authenticated message).
    pub tx: u32,
    /// The validator.
    pub validator: u32,
    /// Its verdict's code (0 valid).
    pub verdict: u8,
    /// The HMAC-SHA256 tag.
    pub tag: [u8; 32],
}

/// One accepted contract of a consensus block with the proofs that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertEntry {
    /// The contract id.
    pub id: Hash,
    /// Its proofs, in arrival order (empty for PoW).
    pub proofs: Vec<StoredProof>,
}

/// The consensus block of a period: the sealed header and, per contract in block order, its
/// id and (IPOW) its part of the quorum certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusBlock {
    /// The sealed header, nonce included.
    pub header: BlockHeader,
    /// One entry per contract, in block order.
    pub entries: Vec<CertEntry>,
}

impl ConsensusBlock {
    /// The IPOW certificate root over the entries (what the header's consensus root must be).
    pub fn certificate_root(&self) -> Hash {
        let leaves: Vec<Hash> = self
            .entries
            .par_iter()
            .map(|e| {
                crate::consensus::proof::certificate_leaf_of(
                    &e.id,
                    e.proofs.iter().map(|p| (p.validator, p.verdict, &p.tag)),
                )
            })
            .collect();
        root_32(&leaves)
    }

    /// The root over the entries' contract ids (what the header's Merkle root must be).
    pub fn id_root(&self) -> Hash {
        let ids: Vec<Hash> = self.entries.iter().map(|e| e.id).collect();
        root_32(&ids)
    }
}

/// A slave block: its header and the positions (in the period's block order) of its contracts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaveBlock {
    /// Its header.
    pub header: ChainHeader,
    /// Positions of its contracts in the consensus block, ascending.
    pub contracts: Vec<u32>,
}

/// The digest a slave block commits for a contract: SHA-256 of its signed canonical bytes
/// (contract and the three signatures; the id covers the contract alone).
pub fn record_digest(signed_bytes: &[u8]) -> Hash {
    Sha256::digest(signed_bytes).into()
}

/// Everything one period adds to the chains.
#[derive(Clone, Debug)]
pub struct PeriodBlocks {
    /// The period.
    pub period: u64,
    /// Each contract's signed canonical bytes, in block order.
    pub encoded: Vec<Vec<u8>>,
    /// The consensus block.
    pub consensus: ConsensusBlock,
    /// New slave blocks, in address order.
    pub slaves: Vec<SlaveBlock>,
    /// The master block of each end, in [`ENDS`] order.
    pub masters: [ChainHeader; 4],
    /// The consortium block.
    pub consortium: ChainHeader,
}

/// Why a period cannot be added to the chains.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A contract names a party that is not a slave node of the market.
    #[error("contract {id} names {address} as {role}, which is not a member of the store's market")]
    UnknownParty {
        /// The contract id, hex.
        id: String,
        /// The party.
        address: Address,
        /// Seller, purchaser or transmission company.
        role: &'static str,
    },
    /// The consensus block does not match the contracts given.
    #[error("consensus block has {entries} entries for {contracts} contracts")]
    Mismatch {
        /// Entries.
        entries: usize,
        /// Contracts.
        contracts: usize,
    },
}

/// The three parties of a contract that keep it on their slave chains, with their role names.
pub fn parties(c: &SignedContract) -> [(Address, &'static str); 3] {
    [
        (c.contract.seller, "seller"),
        (c.contract.purchaser, "purchaser"),
        (c.contract.transmission, "transmission company"),
    ]
}

/// The tips of every chain: what the next block of each links to.
#[derive(Clone, Debug)]
pub struct Tips {
    /// The genesis hash (the first block of every chain links to it).
    pub genesis: Hash,
    /// (blocks so far, last hash) per slave that has a block.
    pub slaves: HashMap<Address, (u64, Hash)>,
    /// Per end, in [`ENDS`] order.
    pub masters: [(u64, Hash); 4],
    /// The consortium chain.
    pub consortium: (u64, Hash),
}

impl Tips {
    /// No block yet on any chain.
    pub fn new(genesis: Hash) -> Self {
        Self {
            genesis,
            slaves: HashMap::new(),
            masters: [(0, genesis); 4],
            consortium: (0, genesis),
        }
    }

    /// The (height, previous hash) of the next block of `chain`.
    pub fn next(&self, chain: ChainId) -> (u64, Hash) {
        match chain {
            ChainId::Slave(a) => self.slaves.get(&a).copied().unwrap_or((0, self.genesis)),
            ChainId::Master(e) => self.masters[usize::from(end_code(e))],
            ChainId::Consortium => self.consortium,
        }
    }

    /// Moves `header`'s chain tip past it.
    pub fn advance(&mut self, header: &ChainHeader) {
        let tip = (header.height + 1, header.hash());
        match header.chain {
            ChainId::Slave(a) => {
                self.slaves.insert(a, tip);
            }
            ChainId::Master(e) => self.masters[usize::from(end_code(e))] = tip,
            ChainId::Consortium => self.consortium = tip,
        }
    }
}

/// The leaves of a consortium block: the four master heads, then the consensus block hash.
pub fn consortium_leaves(masters: &[ChainHeader; 4], consensus: &BlockHeader) -> [Hash; 5] {
    [
        masters[0].hash(),
        masters[1].hash(),
        masters[2].hash(),
        masters[3].hash(),
        consensus.hash(),
    ]
}

/// Builds one period's blocks on every chain from the consensus block and its contracts (in
/// block order), and advances `tips`. Slave roots are computed in parallel.
pub fn build_period(
    topology: &Topology,
    tips: &mut Tips,
    consensus: ConsensusBlock,
    contracts: &[SignedContract],
) -> Result<PeriodBlocks, ChainError> {
    if consensus.entries.len() != contracts.len() {
        return Err(ChainError::Mismatch {
            entries: consensus.entries.len(),
            contracts: contracts.len(),
        });
    }
    let period = consensus.header.period;
    let mut by_slave: BTreeMap<Address, Vec<u32>> = BTreeMap::new();
    for (k, c) in contracts.iter().enumerate() {
        for (address, role) in parties(c) {
            if topology.master_of(address).is_none() {
                return Err(ChainError::UnknownParty {
                    id: hex::encode(consensus.entries[k].id),
                    address,
                    role,
                });
            }
            let list = by_slave.entry(address).or_default();
            // A party in two roles of one contract keeps it once.
            if list.last() != Some(&(k as u32)) {
                list.push(k as u32);
            }
        }
    }
    let lists: Vec<(Address, Vec<u32>)> = by_slave.into_iter().collect();
    let encoded: Vec<Vec<u8>> = contracts.par_iter().map(SignedContract::encode).collect();
    let digests: Vec<Hash> = encoded.par_iter().map(|b| record_digest(b)).collect();
    let roots: Vec<Hash> = lists
        .par_iter()
        .map(|(_, positions)| {
            let leaves: Vec<Hash> = positions.iter().map(|&k| digests[k as usize]).collect();
            root_32(&leaves)
        })
        .collect();
    let mut slaves = Vec::with_capacity(lists.len());
    for ((address, positions), root) in lists.into_iter().zip(roots) {
        let chain = ChainId::Slave(address);
        let (height, prev_hash) = tips.next(chain);
        let header = ChainHeader {
            chain,
            height,
            period,
            prev_hash,
            root,
            leaf_count: positions.len() as u64,
        };
        tips.advance(&header);
        slaves.push(SlaveBlock {
            header,
            contracts: positions,
        });
    }
    let mut masters = [ChainHeader {
        chain: ChainId::Consortium,
        height: 0,
        period,
        prev_hash: [0; 32],
        root: [0; 32],
        leaf_count: 0,
    }; 4];
    for (k, end) in ENDS.into_iter().enumerate() {
        let leaves = master_leaves(topology, end, slaves.iter().map(|s| &s.header));
        let chain = ChainId::Master(end);
        let (height, prev_hash) = tips.next(chain);
        masters[k] = ChainHeader {
            chain,
            height,
            period,
            prev_hash,
            root: root_32(&leaves),
            leaf_count: leaves.len() as u64,
        };
        tips.advance(&masters[k]);
    }
    let leaves = consortium_leaves(&masters, &consensus.header);
    let (height, prev_hash) = tips.next(ChainId::Consortium);
    let consortium = ChainHeader {
        chain: ChainId::Consortium,
        height,
        period,
        prev_hash,
        root: root_32(&leaves),
        leaf_count: leaves.len() as u64,
    };
    tips.advance(&consortium);
    Ok(PeriodBlocks {
        period,
        encoded,
        consensus,
        slaves,
        masters,
        consortium,
    })
}

/// The leaves of `end`'s master block: the hashes of the given slave headers whose slave is of
/// that end, in the order given (address order).
pub fn master_leaves<'a>(
    topology: &Topology,
    end: End,
    slave_headers: impl Iterator<Item = &'a ChainHeader>,
) -> Vec<Hash> {
    slave_headers
        .filter(|h| match h.chain {
            ChainId::Slave(a) => topology.master_of(a).map(|m| m.end) == Some(end),
            _ => false,
        })
        .map(ChainHeader::hash)
        .collect()
}

/// One level of a contract proof: a header and the inclusion proof of the level below in it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProofLevel {
    /// The header's canonical bytes, hex.
    pub header: String,
    /// Index of the leaf below in this header's tree.
    pub leaf_index: u64,
    /// The audit path, hex hashes from the leaf up.
    pub path: Vec<String>,
}

/// A proof that a contract is committed under a consortium head, as `ipow prove` prints it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContractProof {
    /// "ipow-contract-proof/1".
    pub format: String,
    /// The signed contract's canonical bytes, hex.
    pub contract: String,
    /// The slave block that records it.
    pub slave: ProofLevel,
    /// The master block that commits the slave block.
    pub master: ProofLevel,
    /// The consortium block that commits the master block.
    pub consortium: ProofLevel,
    /// Consortium headers after that block, up to the head, hex, oldest first.
    pub later: Vec<String>,
}

/// The format tag of a contract proof.
pub const PROOF_FORMAT: &str = "ipow-contract-proof/1";

/// What a verified proof establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProvenContract {
    /// The contract id, hex.
    pub contract: String,
    /// The slave chain that records it.
    pub slave: String,
    /// The period.
    pub period: u64,
    /// The consortium block's height.
    pub consortium_height: u64,
    /// Blocks between it and the head.
    pub depth: u64,
}

/// Why a proof fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ProofFailure {
    /// Which part of the proof.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

fn fail(at: &str, message: impl Into<String>) -> ProofFailure {
    ProofFailure {
        at: at.to_owned(),
        message: message.into(),
    }
}

/// Builds a [`ProofLevel`] for leaf `index` of the tree over `leaves`.
pub fn proof_level(header: &ChainHeader, leaves: &[Hash], index: usize) -> Option<ProofLevel> {
    let tree = MerkleTree::from_leaves_32(leaves);
    let proof = tree.proof(index)?;
    Some(ProofLevel {
        header: hex::encode(header.encode()),
        leaf_index: proof.leaf_index,
        path: proof.path.iter().map(hex::encode).collect(),
    })
}

fn decode_hash(at: &str, text: &str) -> Result<Hash, ProofFailure> {
    let bytes = hex::decode(text).map_err(|e| fail(at, format!("not hex: {e}")))?;
    bytes.try_into().map_err(|_| fail(at, "not a 32-byte hash"))
}

fn check_level(at: &str, level: &ProofLevel, leaf: &Hash) -> Result<ChainHeader, ProofFailure> {
    let bytes = hex::decode(&level.header).map_err(|e| fail(at, format!("header not hex: {e}")))?;
    let header = ChainHeader::decode(&bytes).map_err(|e| fail(at, e.to_string()))?;
    if level.path.len() > 64 {
        return Err(fail(at, "audit path longer than 64 hashes"));
    }
    let path = level
        .path
        .iter()
        .map(|h| decode_hash(at, h))
        .collect::<Result<Vec<_>, _>>()?;
    let proof = InclusionProof {
        leaf_index: level.leaf_index,
        tree_size: header.leaf_count,
        path,
    };
    proof
        .verify(&leaf_hash_32(leaf), &header.root, header.leaf_count)
        .map_err(|e| fail(at, e.to_string()))?;
    Ok(header)
}

/// Checks `proof` against the consortium head hash `head` alone: the contract's id is a leaf
/// of the slave block, whose chain is one of the contract's parties; the slave header is a leaf
/// of the master block of that party's end, same period; the master header is that end's leaf
/// of the consortium block, same period; and the consortium headers link up to `head`.
pub fn verify_proof(proof: &ContractProof, head: &Hash) -> Result<ProvenContract, ProofFailure> {
    if proof.format != PROOF_FORMAT {
        return Err(fail(
            "format",
            format!("{:?} is not {PROOF_FORMAT:?}", proof.format),
        ));
    }
    let bytes =
        hex::decode(&proof.contract).map_err(|e| fail("contract", format!("not hex: {e}")))?;
    let signed = SignedContract::decode(&bytes).map_err(|e| fail("contract", e.to_string()))?;
    if signed.encode() != bytes {
        return Err(fail("contract", "not the canonical encoding"));
    }
    let id = signed.id().0;
    let slave = check_level("slave", &proof.slave, &record_digest(&bytes))?;
    let ChainId::Slave(address) = slave.chain else {
        return Err(fail("slave", "the header is not a slave chain's"));
    };
    let role = parties(&signed)
        .into_iter()
        .find(|(a, _)| *a == address)
        .map(|(_, r)| r)
        .ok_or_else(|| fail("slave", format!("{address} is not a party to the contract")))?;
    let end = match role {
        "seller" => End::Sales,
        "purchaser" => End::Load,
        _ => End::Network,
    };
    let master = check_level("master", &proof.master, &slave.hash())?;
    if master.chain != ChainId::Master(end) || master.period != slave.period {
        return Err(fail(
            "master",
            format!(
                "header is {} period {}, expected {} period {}",
                master.chain,
                master.period,
                ChainId::Master(end),
                slave.period
            ),
        ));
    }
    let consortium = check_level("consortium", &proof.consortium, &master.hash())?;
    if consortium.chain != ChainId::Consortium
        || consortium.period != slave.period
        || proof.consortium.leaf_index != u64::from(end_code(end))
    {
        return Err(fail(
            "consortium",
            "header is not the consortium block of the period, or the leaf is not the end's head",
        ));
    }
    let mut hash = consortium.hash();
    let mut height = consortium.height;
    for (k, text) in proof.later.iter().enumerate() {
        let at = format!("later[{k}]");
        let bytes = hex::decode(text).map_err(|e| fail(&at, format!("not hex: {e}")))?;
        let h = ChainHeader::decode(&bytes).map_err(|e| fail(&at, e.to_string()))?;
        if h.chain != ChainId::Consortium || h.prev_hash != hash || h.height != height + 1 {
            return Err(fail(&at, "does not link to the consortium block before it"));
        }
        hash = h.hash();
        height = h.height;
    }
    if &hash != head {
        return Err(fail(
            "head",
            format!(
                "the proof leads to {}, not to the head {}",
                hex::encode(hash),
                hex::encode(head)
            ),
        ));
    }
    Ok(ProvenContract {
        contract: hex::encode(id),
        slave: format!("{address} ({role})"),
        period: slave.period,
        consortium_height: consortium.height,
        depth: height - consortium.height,
    })
}
