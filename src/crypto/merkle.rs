//! RFC 6962 Merkle trees over byte leaves: parallel build, inclusion proofs, and the diff of two
//! trees that localizes tampering (the paper's Figures 5 and 6).
//!
//! Hashing (RFC 6962 section 2.1): leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left ||
//! right), the empty tree's root is SHA-256 of nothing, and a tree of n > 1 leaves splits at the
//! largest power of two below n. Nothing is ever duplicated, so the CVE-2012-2459 ambiguity of
//! Bitcoin's tree (appending a copy of the last leaf keeps the root) cannot occur.
//!
//! # Design note: levels instead of recursion
//! Pairing a level left to right and carrying a lone last node up unchanged gives exactly the
//! RFC 6962 tree: the split at the largest power of two k < n puts the first k leaves in a
//! perfect subtree, and the carried node is the root of the ragged right part. So a tree is
//! stored as its levels, level 0 holding the leaf hashes, and each level is one parallel pass
//! over the one below. A carried node is the same RFC node as its child (it covers the same
//! leaves); [`MerkleTree::diff`] and proofs skip such copies.
//!
//! # Design note: hashing by compression function
//! An interior node hashes 65 bytes, which SHA-256 pads to two 64-byte blocks; a leaf over a
//! 32-byte datum hashes 33 bytes, one block. [`node_hash`] and [`leaf_hash_32`] lay those blocks
//! out themselves and call sha2's `compress256` (SHA-NI where the CPU has it), so the cost per
//! node is the two compressions and nothing else. [`reference_root`] uses the ordinary
//! `Sha256` hasher and the RFC's recursive definition, and is what the fast path is tested
//! against.

use rayon::prelude::*;
use sha2::block_api::compress256;
use sha2::{Digest, Sha256};

use crate::crypto::sha_lanes::{LANES, SHA256_IV, leaf_hashes_lanes, node_hashes_lanes};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Nodes hashed per rayon task when building a level. Below a few thousand nodes the task
/// overhead (about a microsecond) starts to show against 2 x ~40 ns per node.
const LEVEL_CHUNK_NODES: usize = 4096;

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// RFC 6962 leaf hash of arbitrary data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

fn state_to_hash(state: &[u32; 8]) -> Hash {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// The one padded block of an RFC 6962 leaf over 32 bytes:
/// 0x00 || data (33 bytes) || 0x80 || zeros || bit length 264.
fn leaf_block_32(data: &[u8; 32]) -> [u8; 64] {
    let mut block = [0u8; 64];
    block[1..33].copy_from_slice(data);
    block[33] = 0x80;
    block[56..64].copy_from_slice(&(33u64 * 8).to_be_bytes());
    block
}

/// The two padded blocks of an RFC 6962 node:
/// 0x01 || left || right (65 bytes) || 0x80 || zeros || bit length 520.
fn node_blocks(left: &Hash, right: &Hash) -> [[u8; 64]; 2] {
    let mut blocks = [[0u8; 64]; 2];
    blocks[0][0] = 0x01;
    blocks[0][1..33].copy_from_slice(left);
    blocks[0][33..64].copy_from_slice(&right[..31]);
    blocks[1][0] = right[31];
    blocks[1][1] = 0x80;
    blocks[1][56..64].copy_from_slice(&(65u64 * 8).to_be_bytes());
    blocks
}

/// RFC 6962 leaf hash of a 32-byte datum (a contract id, say): one compression.
pub fn leaf_hash_32(data: &[u8; 32]) -> Hash {
    let mut state = SHA256_IV;
    compress256(&mut state, &[leaf_block_32(data)]);
    state_to_hash(&state)
}

/// RFC 6962 interior node hash: two compressions.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut state = SHA256_IV;
    compress256(&mut state, &node_blocks(left, right));
    state_to_hash(&state)
}

/// `out[i] = leaf_hash_32(data[i])`, `LANES` messages at a time.
pub fn leaf_hashes_32(data: &[[u8; 32]], out: &mut [Hash]) {
    debug_assert_eq!(data.len(), out.len());
    let (groups, rest) = data.as_chunks::<LANES>();
    let (out_groups, out_rest) = out.as_chunks_mut::<LANES>();
    for (group, out_group) in groups.iter().zip(out_groups.iter_mut()) {
        if leaf_hashes_lanes(group, out_group).is_none() {
            for (o, d) in out_group.iter_mut().zip(group) {
                *o = leaf_hash_32(d);
            }
        }
    }
    for (o, d) in out_rest.iter_mut().zip(rest) {
        *o = leaf_hash_32(d);
    }
}

/// `out[i] = node_hash(pairs[2i], pairs[2i + 1])`, `LANES` nodes at a time.
pub fn node_hashes(pairs: &[Hash], out: &mut [Hash]) {
    debug_assert_eq!(pairs.len(), 2 * out.len());
    let (groups, rest) = pairs.as_chunks::<{ 2 * LANES }>();
    let (out_groups, out_rest) = out.as_chunks_mut::<LANES>();
    for (group, out_group) in groups.iter().zip(out_groups.iter_mut()) {
        if node_hashes_lanes(group, out_group).is_none() {
            for (o, pair) in out_group.iter_mut().zip(group.chunks_exact(2)) {
                *o = node_hash(&pair[0], &pair[1]);
            }
        }
    }
    for (o, pair) in out_rest.iter_mut().zip(rest.chunks_exact(2)) {
        *o = node_hash(&pair[0], &pair[1]);
    }
}

/// Leaves per sequential chunk of [`root_32`]: 4096 leaf hashes are 128 KiB, which stays in L2
/// while its levels are hashed, and 256 chunks per 2^20 leaves keep both cores busy.
const ROOT_CHUNK_LEAVES: usize = 1 << 12;

/// The RFC 6962 root over 32-byte leaf data, without keeping the tree: what sealing a block
/// needs. Splits at the RFC's largest power of two with `rayon::join` down to chunks of
/// [`ROOT_CHUNK_LEAVES`], each hashed level by level in two small buffers. Equal to
/// [`MerkleTree::from_leaves_32`]'s root and to [`reference_root`] (tested).
pub fn root_32(leaves: &[[u8; 32]]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    subtree_root_32(leaves)
}

fn subtree_root_32(leaves: &[[u8; 32]]) -> Hash {
    if leaves.len() <= ROOT_CHUNK_LEAVES {
        return chunk_root_32(leaves);
    }
    let k = largest_power_of_two_below(leaves.len());
    let (left, right) = rayon::join(
        || subtree_root_32(&leaves[..k]),
        || subtree_root_32(&leaves[k..]),
    );
    node_hash(&left, &right)
}

fn chunk_root_32(leaves: &[[u8; 32]]) -> Hash {
    let mut level = vec![[0u8; 32]; leaves.len()];
    leaf_hashes_32(leaves, &mut level);
    let mut next = vec![[0u8; 32]; leaves.len().div_ceil(2)];
    let mut width = leaves.len();
    while width > 1 {
        let paired = width / 2;
        node_hashes(&level[..2 * paired], &mut next[..paired]);
        if width % 2 == 1 {
            next[paired] = level[width - 1];
        }
        width = width.div_ceil(2);
        std::mem::swap(&mut level, &mut next);
    }
    level[0]
}

/// The RFC 6962 root computed the way the RFC defines it: recursively, sequentially, with the
/// plain hasher. The reference the parallel build is tested against.
pub fn reference_root<T: AsRef<[u8]>>(leaves: &[T]) -> Hash {
    fn mth<T: AsRef<[u8]>>(leaves: &[T]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(leaves[0].as_ref()),
            n => {
                let k = largest_power_of_two_below(n);
                let (left, right) = (mth(&leaves[..k]), mth(&leaves[k..]));
                let mut hasher = Sha256::new();
                hasher.update([0x01]);
                hasher.update(left);
                hasher.update(right);
                hasher.finalize().into()
            }
        }
    }
    mth(leaves)
}

/// The largest power of two strictly below `n` (n >= 2).
fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n >= 2);
    1usize << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// One node of a tree: its level (0 = leaves) and index within the level, the leaves it covers
/// (`first_leaf..end_leaf`) and its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeRef {
    /// 0 for leaves, increasing toward the root.
    pub level: usize,
    /// Position within the level.
    pub index: usize,
    /// First leaf covered.
    pub first_leaf: usize,
    /// One past the last leaf covered.
    pub end_leaf: usize,
}

/// A node whose hash differs between two trees of the same size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeChange {
    /// Which node.
    pub node: NodeRef,
    /// Its hash in the first tree.
    pub before: Hash,
    /// Its hash in the second tree.
    pub after: Hash,
}

/// What changed between two trees of the same size: the changed leaves, and every RFC node
/// whose hash changed, leaves first, up to the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeDiff {
    /// Indices of leaves whose hashes differ, ascending.
    pub changed_leaves: Vec<usize>,
    /// Changed nodes (leaves included), ordered by level and then index.
    pub changed_nodes: Vec<NodeChange>,
}

/// Two trees that cannot be compared node by node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trees differ in size: {left} leaves against {right}")]
pub struct SizeMismatch {
    /// Leaves in the first tree.
    pub left: usize,
    /// Leaves in the second tree.
    pub right: usize,
}

/// A Merkle tree kept whole: every level, for proofs and diffs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` holds the leaf hashes; the last level holds the root alone. Empty for the
    /// empty tree.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over 32-byte leaf data (contract ids), hashing leaves and levels in
    /// parallel on the current rayon pool.
    pub fn from_leaves_32(leaves: &[[u8; 32]]) -> Self {
        let mut hashes = vec![[0u8; 32]; leaves.len()];
        hashes
            .par_chunks_mut(LEVEL_CHUNK_NODES)
            .zip(leaves.par_chunks(LEVEL_CHUNK_NODES))
            .for_each(|(out, data)| leaf_hashes_32(data, out));
        Self::from_leaf_hashes(hashes)
    }

    /// Builds the tree over arbitrary byte leaves.
    pub fn from_leaves<T: AsRef<[u8]> + Sync>(leaves: &[T]) -> Self {
        let hashes = leaves
            .par_iter()
            .map(|leaf| leaf_hash(leaf.as_ref()))
            .collect();
        Self::from_leaf_hashes(hashes)
    }

    /// Builds the tree over already hashed leaves.
    pub fn from_leaf_hashes(leaf_hashes: Vec<Hash>) -> Self {
        if leaf_hashes.is_empty() {
            return Self { levels: Vec::new() };
        }
        let mut levels = vec![leaf_hashes];
        while let Some(below) = levels.last().filter(|level| level.len() > 1) {
            let next = build_level(below);
            levels.push(next);
        }
        Self { levels }
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// True for the empty tree.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.levels.last().map_or_else(empty_root, |top| top[0])
    }

    /// All levels, leaves first.
    pub fn levels(&self) -> &[Vec<Hash>] {
        &self.levels
    }

    /// The hash of leaf `index`.
    pub fn leaf(&self, index: usize) -> Option<&Hash> {
        self.levels.first().and_then(|leaves| leaves.get(index))
    }

    /// The node at (`level`, `index`), with the leaves it covers.
    pub fn node(&self, level: usize, index: usize) -> Option<NodeRef> {
        let width = self.levels.get(level)?.len();
        if index >= width {
            return None;
        }
        let span = 1usize.checked_shl(u32::try_from(level).ok()?)?;
        let first_leaf = index.checked_mul(span)?;
        Some(NodeRef {
            level,
            index,
            first_leaf,
            end_leaf: first_leaf.saturating_add(span).min(self.len()),
        })
    }

    /// The hash of the node at (`level`, `index`).
    pub fn hash_at(&self, level: usize, index: usize) -> Option<&Hash> {
        self.levels.get(level)?.get(index)
    }

    /// True when (`level`, `index`) is a lone last node carried up from the level below: the
    /// same RFC node as its only child.
    pub fn is_carried(&self, level: usize, index: usize) -> bool {
        level > 0 && self.levels[level - 1].len() == 2 * index + 1
    }

    /// The RFC 6962 audit path for leaf `index`.
    pub fn proof(&self, index: usize) -> Option<InclusionProof> {
        if index >= self.len() {
            return None;
        }
        let mut path = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if let Some(hash) = level.get(sibling) {
                path.push(*hash);
            }
            i /= 2;
        }
        Some(InclusionProof {
            leaf_index: index as u64,
            tree_size: self.len() as u64,
            path,
        })
    }

    /// The leaves and nodes whose hashes differ between `self` and `other`, found by descending
    /// from the root only into subtrees that differ: O(changes x depth).
    pub fn diff(&self, other: &MerkleTree) -> Result<TreeDiff, SizeMismatch> {
        if self.len() != other.len() {
            return Err(SizeMismatch {
                left: self.len(),
                right: other.len(),
            });
        }
        let mut diff = TreeDiff::default();
        if self.is_empty() {
            return Ok(diff);
        }
        let top = self.levels.len() - 1;
        let mut stack = vec![(top, 0usize)];
        while let Some((level, index)) = stack.pop() {
            let (before, after) = (self.levels[level][index], other.levels[level][index]);
            if before == after {
                continue;
            }
            if !self.is_carried(level, index)
                && let Some(node) = self.node(level, index)
            {
                diff.changed_nodes.push(NodeChange {
                    node,
                    before,
                    after,
                });
            }
            if level > 0 {
                let below = &self.levels[level - 1];
                for child in [2 * index, 2 * index + 1] {
                    if child < below.len() {
                        stack.push((level - 1, child));
                    }
                }
            } else {
                diff.changed_leaves.push(index);
            }
        }
        diff.changed_leaves.sort_unstable();
        diff.changed_nodes
            .sort_by_key(|c| (c.node.level, c.node.index));
        Ok(diff)
    }
}

/// One level up: pairs hashed, a lone last node carried.
fn build_level(below: &[Hash]) -> Vec<Hash> {
    let width = below.len().div_ceil(2);
    let mut next = vec![[0u8; 32]; width];
    next.par_chunks_mut(LEVEL_CHUNK_NODES)
        .enumerate()
        .for_each(|(chunk, out)| {
            let start = chunk * LEVEL_CHUNK_NODES;
            let pairs = &below[2 * start..below.len().min(2 * (start + out.len()))];
            let paired = pairs.len() / 2;
            node_hashes(&pairs[..2 * paired], &mut out[..paired]);
            if let [lone] = &pairs[2 * paired..] {
                // Only the level's last chunk can have a lone node, and it is the last output.
                out[paired] = *lone;
            }
        });
    next
}

/// Why an inclusion proof does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {leaf_index} is outside a tree of {tree_size} leaves")]
    IndexOutOfRange {
        /// The claimed index.
        leaf_index: u64,
        /// The claimed size.
        tree_size: u64,
    },
    /// The proof claims another tree size than the trusted header's.
    #[error("proof is for a tree of {proof} leaves, the header commits {trusted}")]
    TreeSizeMismatch {
        /// The size the proof claims.
        proof: u64,
        /// The size the header commits.
        trusted: u64,
    },
    /// The path has the wrong number of hashes for this index and size.
    #[error("audit path has the wrong length for this index and tree size")]
    WrongPathLength,
    /// The path leads to another root.
    #[error("the audit path does not lead to the expected root")]
    RootMismatch,
}

/// An RFC 6962 inclusion proof: the leaf's index, the tree's size and the audit path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The leaf's position.
    pub leaf_index: u64,
    /// The number of leaves in the tree.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks that `leaf_hash` sits at `leaf_index` in the tree with root `root` and
    /// `tree_size_trusted` leaves, both taken from a trusted header (RFC 9162, section 2.1.3.2).
    ///
    /// The size must come from the header, not from the proof: an audit path does not bind the
    /// size by itself (the path of leaf 0 in a 3-leaf tree also reaches the same root read as a
    /// 4-leaf tree whose right subtree is leaf 2), which is why block headers commit the leaf
    /// count beside the root.
    pub fn verify(
        &self,
        leaf_hash: &Hash,
        root: &Hash,
        tree_size_trusted: u64,
    ) -> Result<(), ProofError> {
        if self.tree_size != tree_size_trusted {
            return Err(ProofError::TreeSizeMismatch {
                proof: self.tree_size,
                trusted: tree_size_trusted,
            });
        }
        if self.leaf_index >= self.tree_size {
            return Err(ProofError::IndexOutOfRange {
                leaf_index: self.leaf_index,
                tree_size: self.tree_size,
            });
        }
        let (mut f_n, mut s_n) = (self.leaf_index, self.tree_size - 1);
        let mut r = *leaf_hash;
        for p in &self.path {
            if s_n == 0 {
                return Err(ProofError::WrongPathLength);
            }
            if f_n & 1 == 1 || f_n == s_n {
                r = node_hash(p, &r);
                if f_n & 1 == 0 {
                    while f_n & 1 == 0 && f_n != 0 {
                        f_n >>= 1;
                        s_n >>= 1;
                    }
                }
            } else {
                r = node_hash(&r, p);
            }
            f_n >>= 1;
            s_n >>= 1;
        }
        if s_n != 0 {
            return Err(ProofError::WrongPathLength);
        }
        if r != *root {
            return Err(ProofError::RootMismatch);
        }
        Ok(())
    }
}
