//! Block headers: what a sealed period commits to, and the check that a block's contracts match
//! its header.
//!
//! A header commits the Merkle root *and* the leaf count: RFC 6962 roots already differ for
//! different sizes, and the count in the header lets a reader size its buffers and reject a
//! short or padded contract list before hashing anything.
//!
//! Header encoding, version 1 (big-endian): version (1) | height (8) | period (8) |
//! previous header hash (32) | Merkle root (32) | leaf count (8). The block hash is SHA-256 of
//! those 89 bytes.

use sha2::{Digest, Sha256};

use crate::contract::SignedContract;
use crate::merkle::{Hash, MerkleTree, root_32};

/// The header encoding version this build writes.
pub const HEADER_VERSION: u8 = 1;
/// Bytes in an encoded header.
pub const HEADER_LEN: usize = 89;

/// A sealed block's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
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
    /// The header over `contracts`, linked to `prev_hash`.
    pub fn seal(height: u64, period: u64, prev_hash: Hash, contracts: &[SignedContract]) -> Self {
        let tree = contract_tree(contracts);
        Self {
            height,
            period,
            prev_hash,
            merkle_root: tree.root(),
            leaf_count: tree.len() as u64,
        }
    }

    /// The canonical header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = HEADER_VERSION;
        out[1..9].copy_from_slice(&self.height.to_be_bytes());
        out[9..17].copy_from_slice(&self.period.to_be_bytes());
        out[17..49].copy_from_slice(&self.prev_hash);
        out[49..81].copy_from_slice(&self.merkle_root);
        out[81..89].copy_from_slice(&self.leaf_count.to_be_bytes());
        out
    }

    /// SHA-256 of the canonical header bytes.
    pub fn hash(&self) -> Hash {
        Sha256::digest(self.encode()).into()
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
