//! Z(Tk, e), the proof a validator returns: its format, the message its HMAC tag covers and the
//! quorum certificate's leaf. The key each validator shares with the supervision node comes
//! from the node secret ([`crate::crypto::secret::NodeSecret::validator_mac`]).

use crate::crypto::merkle::Hash;
use crate::validate::Verdict;
use sha2::{Digest, Sha256};

/// Z(Tk, e): one validator's authenticated verdict on one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Workload index of the transaction.
    pub tx: u32,
    /// The validator.
    pub validator: u32,
    /// Its verdict.
    pub verdict: Verdict,
    /// HMAC-SHA256 tag over (period, tx, contract id, verdict, validator).
    pub tag: [u8; 32],
}

/// The message a proof's tag authenticates: period, transaction, contract id, verdict code and
/// validator, big-endian.
pub fn proof_message(
    period: u64,
    tx: u32,
    id: &[u8; 32],
    verdict_code: u8,
    validator: u32,
) -> [u8; 49] {
    let mut m = [0u8; 49];
    m[..8].copy_from_slice(&period.to_be_bytes());
    m[8..12].copy_from_slice(&tx.to_be_bytes());
    m[12..44].copy_from_slice(id);
    m[44] = verdict_code;
    m[45..49].copy_from_slice(&validator.to_be_bytes());
    m
}

/// The quorum certificate's leaf for one accepted transaction: SHA-256 of its contract id and
/// every proof counted for it (validator, verdict code, tag), in the order they arrived.
pub fn certificate_leaf(id: &Hash, proofs: &[Proof]) -> Hash {
    certificate_leaf_of(
        id,
        proofs
            .iter()
            .map(|p| (p.validator, p.verdict.code(), &p.tag)),
    )
}

/// [`certificate_leaf`] from (validator, verdict code, tag) triples, as a store holds them.
pub fn certificate_leaf_of<'a>(
    id: &Hash,
    proofs: impl Iterator<Item = (u32, u8, &'a [u8; 32])>,
) -> Hash {
    let mut h = Sha256::new();
    h.update(id);
    for (validator, code, tag) in proofs {
        h.update(validator.to_be_bytes());
        h.update([code]);
        h.update(tag);
    }
    h.finalize().into()
}
