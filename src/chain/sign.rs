//! Block signatures: the supervision node signs every consortium block, the master node of each
//! end signs that end's master blocks. A consortium block commits the four master heads and the
//! consensus block (with its quorum certificate), and each block links to the one before it, so
//! one valid signature on a consortium block vouches for the whole history below and before it;
//! the master signatures say which node produced each master block.
//!
//! The message is a domain tag and the block's 94 header bytes. The public keys are in the
//! genesis ([`NodeKeys`]); the secret keys come from the node secret
//! ([`crate::crypto::secret::NodeSecret`]), which never enters the store.

use crate::chain::{CHAIN_HEADER_LEN, ChainHeader, ChainId, ENDS, end_code};
use crate::crypto::keys::{KeyPair, PUBLIC_KEY_LEN, Signature};
use crate::crypto::merkle::Hash;
use crate::crypto::secret::NodeSecret;

/// The domain tag before a block header in a block signature's message.
pub const BLOCK_SIGNATURE_TAG: &[u8] = b"ipow/block-signature/v1";

/// The message a block signature covers: the tag and the header's bytes.
pub fn block_message(header: &ChainHeader) -> Vec<u8> {
    let mut m = Vec::with_capacity(BLOCK_SIGNATURE_TAG.len() + CHAIN_HEADER_LEN);
    m.extend_from_slice(BLOCK_SIGNATURE_TAG);
    m.extend_from_slice(&header.encode());
    m
}

/// The node keys a store's genesis lists: what the audit checks block signatures against, and
/// the commitment that recognises the node secret (for the proof tags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeKeys {
    /// The supervision node's public key (consortium blocks).
    pub supervisor: [u8; PUBLIC_KEY_LEN],
    /// Each end's master node's public key, in [`ENDS`] order (master blocks).
    pub masters: [[u8; PUBLIC_KEY_LEN]; 4],
    /// [`NodeSecret::commitment`] of the secret the validators' MAC keys come from.
    pub mac_commitment: Hash,
}

/// Which node signs blocks of `chain`: 0 the supervision node, 1 + end code a master node;
/// `None` for slave blocks, which their master's block commits.
pub fn signer_of(chain: ChainId) -> Option<usize> {
    match chain {
        ChainId::Consortium => Some(0),
        ChainId::Master(end) => Some(1 + usize::from(end_code(end))),
        ChainId::Slave(_) => None,
    }
}

/// The name of node `k` of [`signer_of`] in messages.
pub fn signer_name(k: usize) -> String {
    match k.checked_sub(1).and_then(|e| ENDS.get(e)) {
        Some(end) => format!("the master node of {}", crate::chain::end_chain_name(*end)),
        None => "the supervision node".to_owned(),
    }
}

impl NodeKeys {
    /// The public key of node `k` of [`signer_of`].
    pub fn key(&self, k: usize) -> Option<&[u8; PUBLIC_KEY_LEN]> {
        match k {
            0 => Some(&self.supervisor),
            _ => self.masters.get(k - 1),
        }
    }
}

/// The signing keys of the supervision node and the four master nodes.
pub struct BlockSigner {
    supervisor: KeyPair,
    masters: [KeyPair; 4],
    keys: NodeKeys,
}

impl std::fmt::Debug for BlockSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockSigner({:?})", self.keys)
    }
}

impl BlockSigner {
    /// The keys `secret` derives.
    pub fn new(secret: &NodeSecret) -> Self {
        let supervisor = KeyPair::from_seed(&secret.supervisor_seed());
        let masters = [0u8, 1, 2, 3].map(|e| KeyPair::from_seed(&secret.master_seed(e)));
        let keys = NodeKeys {
            supervisor: *supervisor.public_key().as_bytes(),
            masters: [0, 1, 2, 3].map(|e| *masters[e].public_key().as_bytes()),
            mac_commitment: secret.commitment(),
        };
        Self {
            supervisor,
            masters,
            keys,
        }
    }

    /// What the genesis lists.
    pub fn keys(&self) -> NodeKeys {
        self.keys
    }

    /// The signature of the node that produces `header`'s block; `None` for a slave block.
    pub fn sign(&self, header: &ChainHeader) -> Option<Signature> {
        let pair = match signer_of(header.chain)? {
            0 => &self.supervisor,
            k => &self.masters[k - 1],
        };
        Some(pair.sign(&block_message(header)))
    }
}
