//! Block headers: what a sealed period commits to, and the check that a block's contracts match
//! its header.
//!
//! A header commits the Merkle root *and* the leaf count: RFC 6962 roots already differ for
//! different sizes, and the count in the header lets a reader size its buffers and reject a
//! short or padded contract list before hashing anything.
//!
//! Header encoding, version 1 (big-endian), exactly 128 bytes so that a proof-of-work try costs
//! one SHA-256 compression (the two header blocks are hashed once into a midstate, and the nonce
//! sits alone in the last block):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version (1) |
//! | 1 | 1 | consensus variant (1 IPOW, 2 PoW) |
//! | 2 | 1 | PoW difficulty in leading zero bits (0 for IPOW) |
//! | 3 | 8 | height |
//! | 11 | 8 | period |
//! | 19 | 32 | previous block hash |
//! | 51 | 32 | Merkle root over the contract ids |
//! | 83 | 8 | leaf count |
//! | 91 | 32 | consensus commitment (IPOW: root of the quorum certificate; PoW: zeros) |
//! | 123 | 5 | reserved, zero |
//!
//! The block hash is SHA-256(header || nonce), the nonce 8 bytes big-endian (0 for IPOW).

use sha2::{Digest, Sha256};

use crate::contract::SignedContract;
use crate::crypto::merkle::{Hash, MerkleTree, root_32};

/// The header encoding version this build writes.
pub const HEADER_VERSION: u8 = 1;
/// Bytes in an encoded header.
pub const HEADER_LEN: usize = 128;

/// How a block was agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SealKind {
    /// Improved Proof of Work: a quorum certificate.
    Ipow,
    /// Plain proof of work at `difficulty_bits`.
    Pow,
}

impl SealKind {
    fn code(self) -> u8 {
        match self {
            SealKind::Ipow => 1,
            SealKind::Pow => 2,
        }
    }
}

/// A sealed block's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// IPOW or PoW.
    pub kind: SealKind,
    /// Leading zero bits the block hash must have (PoW); 0 for IPOW.
    pub difficulty_bits: u8,
    /// Blocks before this one on its chain.
    pub height: u64,
    /// The market period the block seals.
    pub period: u64,
    /// Hash of the previous header (zeros for the first block).
    pub prev_hash: Hash,
    /// RFC 6962 root over the block's contract ids.
    pub merkle_root: Hash,
    /// Number of contracts in the block.
    pub leaf_count: u64,
    /// IPOW: root of the quorum certificate; PoW: zeros.
    pub consensus_root: Hash,
    /// PoW nonce; 0 for IPOW.
    pub nonce: u64,
}

/// How a block fails to match its header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header's leaf count is not the number of contracts.
    #[error("header says {header} contracts, the block has {actual}")]
    LeafCountMismatch {
        /// The header's count.
        header: u64,
        /// Contracts present.
        actual: u64,
    },
    /// The contracts hash to another root.
    #[error("Merkle root mismatch: header {header}, contracts {actual}")]
    RootMismatch {
        /// The header's root, hex.
        header: String,
        /// The recomputed root, hex.
        actual: String,
    },
}

impl BlockHeader {
    /// An IPOW header over `contracts` (root only, the tree is not kept), linked to
    /// `prev_hash`; the consensus commitment and nonce are filled in by the variant.
    pub fn seal(height: u64, period: u64, prev_hash: Hash, contracts: &[SignedContract]) -> Self {
        Self {
            kind: SealKind::Ipow,
            difficulty_bits: 0,
            height,
            period,
            prev_hash,
            merkle_root: contract_root(contracts),
            leaf_count: contracts.len() as u64,
            consensus_root: [0; 32],
            nonce: 0,
        }
    }

    /// The canonical header bytes (without the nonce).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = HEADER_VERSION;
        out[1] = self.kind.code();
        out[2] = self.difficulty_bits;
        out[3..11].copy_from_slice(&self.height.to_be_bytes());
        out[11..19].copy_from_slice(&self.period.to_be_bytes());
        out[19..51].copy_from_slice(&self.prev_hash);
        out[51..83].copy_from_slice(&self.merkle_root);
        out[83..91].copy_from_slice(&self.leaf_count.to_be_bytes());
        out[91..123].copy_from_slice(&self.consensus_root);
        out
    }

    /// Reads a header written by [`BlockHeader::encode`] (with its nonce); `None` when the
    /// version, the variant code or the reserved bytes are not what this build writes.
    pub fn decode(bytes: &[u8; HEADER_LEN], nonce: u64) -> Option<Self> {
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let hash_at = |at: usize| {
            let mut h = [0u8; 32];
            h.copy_from_slice(&bytes[at..at + 32]);
            h
        };
        let kind = match bytes[1] {
            1 => SealKind::Ipow,
            2 => SealKind::Pow,
            _ => return None,
        };
        if bytes[0] != HEADER_VERSION || bytes[123..].iter().any(|&b| b != 0) {
            return None;
        }
        Some(Self {
            kind,
            difficulty_bits: bytes[2],
            height: u64_at(3),
            period: u64_at(11),
            prev_hash: hash_at(19),
            merkle_root: hash_at(51),
            leaf_count: u64_at(83),
            consensus_root: hash_at(91),
            nonce,
        })
    }

    /// The block hash: SHA-256(header || nonce).
    pub fn hash(&self) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update(self.encode());
        hasher.update(self.nonce.to_be_bytes());
        hasher.finalize().into()
    }

    /// Checks that `contracts` are exactly what this header commits to: count first, then root.
    pub fn check_contracts(&self, contracts: &[SignedContract]) -> Result<(), BlockError> {
        if self.leaf_count != contracts.len() as u64 {
            return Err(BlockError::LeafCountMismatch {
                header: self.leaf_count,
                actual: contracts.len() as u64,
            });
        }
        let root = contract_root(contracts);
        if root != self.merkle_root {
            return Err(BlockError::RootMismatch {
                header: hex::encode(self.merkle_root),
                actual: hex::encode(root),
            });
        }
        Ok(())
    }
}

fn contract_ids(contracts: &[SignedContract]) -> Vec<[u8; 32]> {
    use rayon::prelude::*;
    contracts.par_iter().map(|c| c.id().0).collect()
}

/// The Merkle tree of a block, kept whole for proofs and diffs: leaf i is contract i's id.
pub fn contract_tree(contracts: &[SignedContract]) -> MerkleTree {
    MerkleTree::from_leaves_32(&contract_ids(contracts))
}

/// The Merkle root of a block, without keeping the tree.
pub fn contract_root(contracts: &[SignedContract]) -> Hash {
    root_32(&contract_ids(contracts))
}
