//! Ed25519 keys and signatures: deterministic key derivation, key admission and signing (with
//! `ring`), and the registry of a market's admitted keys.
//!
//! Acceptance rule for a signature (one rule, used everywhere, single or in batches): the
//! cofactored rule of [`crate::crypto::verify`]. The public key must have been admitted
//! ([`PublicKey::admit`]: a canonical encoding of a point on the curve that is not of small
//! order); the rule accepts the trivial forgery under the identity key, so admission is part of
//! it.

use std::collections::HashMap;
use std::sync::OnceLock;

use curve25519_dalek::edwards::CompressedEdwardsY;
use rayon::prelude::*;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use sha2::{Digest, Sha256};

use crate::base::domain::Address;
use crate::crypto::verify::VerifyingKey;

/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Domain tag for deriving a participant's key seed from the market seed.
const KEY_SEED_TAG: &[u8] = b"ipow/key-seed/v1";

/// An Ed25519 signature.
pub type Signature = [u8; SIGNATURE_LEN];

/// Why a public key was refused at admission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The 32 bytes are not the encoding of a curve point.
    #[error("public key {0} is not a point on the Ed25519 curve")]
    NotOnCurve(String),
    /// The encoding is not the canonical one (y not reduced, or a negative zero x).
    #[error("public key {0} is not canonically encoded")]
    NonCanonical(String),
    /// The point has order 1, 2, 4 or 8: anyone can forge signatures that verify under it.
    #[error("public key {0} has small order")]
    SmallOrder(String),
    /// No admitted key is registered for this address.
    #[error("no public key registered for address {0}")]
    UnknownAddress(Address),
}

/// A public key that passed admission. The only way to build one is [`PublicKey::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// Admits a key: it must decode to a curve point, be canonically encoded and not be of
    /// small order. ring verifies under any 32 bytes it can decode, small-order keys included,
    /// so this check is ours.
    pub fn admit(bytes_untrusted: [u8; PUBLIC_KEY_LEN]) -> Result<Self, KeyError> {
        let shown = || hex::encode(bytes_untrusted);
        let point = CompressedEdwardsY(bytes_untrusted)
            .decompress()
            .ok_or_else(|| KeyError::NotOnCurve(shown()))?;
        if !canonical_encoding(&bytes_untrusted) {
            return Err(KeyError::NonCanonical(shown()));
        }
        if point.is_small_order() {
            return Err(KeyError::SmallOrder(shown()));
        }
        Ok(Self(bytes_untrusted))
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Verifies `signature` over `message` under this key by the rule (single check; the key
    /// is decompressed for this one call: [`KeyRegistry::verifying`] keeps it decompressed).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        crate::crypto::verify::verify_one(&VerifyingKey::new(self), &[message], signature)
    }
}

/// Whether the encoding of a decompressed point is the one `compress` gives back, decided from
/// the bytes alone (compressing costs a field inversion, as much again as decompressing). The
/// decompressed point has y = (bytes mod 2^255) mod p and an x whose sign bit is the top bit,
/// except that x = 0 has no negative. So `compress` gives back the same bytes exactly when
/// y < p = 2^255 - 19 and not (the top bit is set and x = 0), and x = 0 exactly when y = 1 or
/// y = p - 1 (on -x^2 + y^2 = 1 + d x^2 y^2, x = 0 gives y^2 = 1, and 1 + d is not 0).
pub(crate) fn canonical_encoding(bytes: &[u8; PUBLIC_KEY_LEN]) -> bool {
    let top = bytes[31] & 0x7f;
    let sign = bytes[31] >> 7;
    let middle_all = |v: u8| bytes[1..31].iter().all(|&b| b == v);
    // p's little-endian bytes are ED FF .. FF 7F; p - 1 ends in EC.
    let y_at_least_p = top == 0x7f && middle_all(0xff) && bytes[0] >= 0xed;
    let y_is_one = bytes[0] == 1 && middle_all(0) && top == 0;
    let y_is_p_minus_1 = bytes[0] == 0xec && middle_all(0xff) && top == 0x7f;
    !y_at_least_p && !(sign == 1 && (y_is_one || y_is_p_minus_1))
}

/// The canonical encodings of the eight points of small order (the whole torsion subgroup; a
/// test collects them from curve25519-dalek as [L]P for random P).
const SMALL_ORDER: [[u8; PUBLIC_KEY_LEN]; 8] = [
    from_hex("0000000000000000000000000000000000000000000000000000000000000000"),
    from_hex("0000000000000000000000000000000000000000000000000000000000000080"),
    from_hex("0100000000000000000000000000000000000000000000000000000000000000"),
    from_hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    from_hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    from_hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    from_hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    from_hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
];

/// Whether these bytes are one of the 8 canonical encodings of a small-order point.
pub(crate) fn is_small_order_encoding(bytes: &[u8; PUBLIC_KEY_LEN]) -> bool {
    SMALL_ORDER.contains(bytes)
}

/// 32 bytes from 64 lowercase hex digits, at compile time.
const fn from_hex(hex: &str) -> [u8; PUBLIC_KEY_LEN] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            // Only ever evaluated at compile time, on the literals above: a typo there stops
            // the build instead of running.
            #[allow(clippy::panic)]
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let h = hex.as_bytes();
    assert!(h.len() == 2 * PUBLIC_KEY_LEN, "not 32 bytes of hex");
    let mut out = [0u8; PUBLIC_KEY_LEN];
    let mut i = 0;
    while i < PUBLIC_KEY_LEN {
        out[i] = digit(h[2 * i]) << 4 | digit(h[2 * i + 1]);
        i += 1;
    }
    out
}

/// Lists shorter than this are admitted key by key: the batch's fixed cost (128 Legendre
/// symbols, each an exponentiation) is that of admitting about 150 keys one by one.
pub const BATCH_FROM: usize = 256;

/// Admits every key of a list, in order, deciding as [`PublicKey::admit`] decides each one;
/// on a refusal, the position and error of the first key `admit` refuses. Canonical encoding
/// and small order are decided from the bytes; whether the keys lie on the curve is decided for
/// the whole list at once (`admission::all_on_curve`, a few field multiplications per key
/// instead of an exponentiation), which can miss an off-curve key with probability 2^-128 (ring
/// then refuses to decode that key: every signature under it fails). Lists shorter than
/// [`BATCH_FROM`], and any list where something fails, go through `admit` key by key (the
/// first refused key is named).
pub fn admit_all(list: &[[u8; PUBLIC_KEY_LEN]]) -> Result<Vec<PublicKey>, (usize, KeyError)> {
    let as_one_list = list.len() >= BATCH_FROM
        && list
            .par_iter()
            .all(|b| canonical_encoding(b) && !SMALL_ORDER.contains(b));
    if as_one_list && crate::crypto::admission::all_on_curve(list) {
        return Ok(list.iter().map(|&b| PublicKey(b)).collect());
    }
    let admitted: Vec<_> = list
        .par_iter()
        .with_min_len(64)
        .map(|&b| PublicKey::admit(b))
        .collect();
    admitted
        .into_iter()
        .enumerate()
        .map(|(i, key)| key.map_err(|e| (i, e)))
        .collect()
}

/// A signing key pair.
pub struct KeyPair {
    inner: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", hex::encode(self.public.0))
    }
}

impl KeyPair {
    /// The key pair of `address` in the market whose key seed is `market_seed`: the Ed25519
    /// seed is SHA-256(tag || market_seed || address as 4 big-endian bytes). Datasets are
    /// reproducible because keys are a pure function of the market seed.
    pub fn derive(market_seed: u64, address: Address) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(KEY_SEED_TAG);
        hasher.update(market_seed.to_be_bytes());
        hasher.update(address.0.to_be_bytes());
        let seed: [u8; 32] = hasher.finalize().into();
        Self::from_seed(&seed)
    }

    /// The key pair with this 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        // A 32-byte seed is always a valid Ed25519 private key and its public key is never of
        // small order (it is a multiple of the base point of prime order), so neither call fails.
        #[allow(clippy::expect_used)]
        let inner = Ed25519KeyPair::from_seed_unchecked(seed).expect("32-byte Ed25519 seed");
        let mut public_bytes = [0u8; PUBLIC_KEY_LEN];
        public_bytes.copy_from_slice(inner.public_key().as_ref());
        // Derived from a valid seed: a prime-order point (see above).
        #[allow(clippy::expect_used)]
        let public = PublicKey::admit(public_bytes).expect("a derived key is a prime-order point");
        Self { inner, public }
    }

    /// The admitted public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs `message` (Ed25519 signatures are deterministic).
    pub fn sign(&self, message: &[u8]) -> Signature {
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(self.inner.sign(message).as_ref());
        signature
    }
}

/// The admitted public keys of a market, by address, each decompressed the first time a
/// signature is checked under it (decompressing per signature cost about 30% of a check, and
/// decompressing every key when a dataset opens would cost its loading as much again).
#[derive(Clone, Debug, Default)]
pub struct KeyRegistry {
    keys: HashMap<Address, Registered>,
}

#[derive(Clone, Debug)]
struct Registered {
    key: PublicKey,
    verifying: OnceLock<VerifyingKey>,
}

impl KeyRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Admits `bytes_untrusted` and registers it for `address`, replacing any earlier key.
    pub fn register(
        &mut self,
        address: Address,
        bytes_untrusted: [u8; PUBLIC_KEY_LEN],
    ) -> Result<PublicKey, KeyError> {
        let key = PublicKey::admit(bytes_untrusted)?;
        self.insert(address, key);
        Ok(key)
    }

    /// Registers a key already admitted for `address`, replacing any earlier key.
    pub fn insert(&mut self, address: Address, key: PublicKey) {
        let verifying = OnceLock::new();
        self.keys.insert(address, Registered { key, verifying });
    }

    /// The key registered for `address`.
    pub fn get(&self, address: Address) -> Result<&PublicKey, KeyError> {
        self.keys
            .get(&address)
            .map(|r| &r.key)
            .ok_or(KeyError::UnknownAddress(address))
    }

    /// The key registered for `address`, decompressed (once per key and registry).
    pub fn verifying(&self, address: Address) -> Result<&VerifyingKey, KeyError> {
        let r = self
            .keys
            .get(&address)
            .ok_or(KeyError::UnknownAddress(address))?;
        Ok(r.verifying.get_or_init(|| VerifyingKey::new(&r.key)))
    }

    /// How many keys are registered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::scalar::Scalar;
    use std::collections::BTreeSet;

    /// The small-order list is exactly the torsion subgroup: [L]P = [L − 1]P + P is P's torsion
    /// component, and over enough points every one of the eight appears.
    #[test]
    fn the_small_order_list_is_the_torsion_subgroup() {
        let l_minus_1 = Scalar::ZERO - Scalar::ONE;
        let mut torsion = BTreeSet::new();
        for i in 0..=255u8 {
            let mut y = [0u8; 32];
            y[0] = i;
            y[1] = 7;
            if let Some(p) = CompressedEdwardsY(y).decompress() {
                torsion.insert((p * l_minus_1 + p).compress().0);
            }
        }
        let listed: BTreeSet<_> = SMALL_ORDER.into_iter().collect();
        assert_eq!(torsion, listed);
        for encoding in SMALL_ORDER {
            assert!(canonical_encoding(&encoding));
            assert_eq!(
                PublicKey::admit(encoding),
                Err(KeyError::SmallOrder(hex::encode(encoding)))
            );
        }
    }
}
