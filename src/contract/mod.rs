//! Bilateral contracts: the paper's Table 3 fields, the canonical encoding that is hashed and
//! signed, the contract id, and the three signatures (seller, purchaser, transmission company).
//!
//! Canonical encoding, version 1 (all integers big-endian, fixed width, no padding):
//!
//! | offset | size | field                                        |
//! |--------|------|----------------------------------------------|
//! | 0      | 1    | encoding version (1)                         |
//! | 1      | 1    | business category (1, 2, 3)                  |
//! | 2      | 4    | seller address                               |
//! | 6      | 4    | purchaser address                            |
//! | 10     | 4    | transmission company address                 |
//! | 14     | 8    | unit price (`Price` raw, >= 0)               |
//! | 22     | 8    | energy (`Energy` raw, >= 0)                  |
//! | 30     | 8    | transmission cost rate (`Price` raw, >= 0)   |
//! | 38     | 8    | liquidated damages rate (`Price` raw, >= 0)  |
//! | 46     | 4    | delivery time (minutes)                      |
//! | 50     | 8    | seller sequence number                       |
//! | 58     | 8    | purchaser sequence number                    |
//! | 66     | 8    | transmission company sequence number         |
//! | 74     | 1    | auxiliary service present (0 or 1)           |
//! | 75     | 17   | if present: kind (1), quantity (8), price (8)|
//!
//! A signed contract is the canonical bytes followed by the three 64-byte signatures in the
//! order seller, purchaser, transmission company. The id is SHA-256 of the canonical (unsigned)
//! bytes, so re-signing never changes it. Each signature covers a role tag plus the canonical
//! bytes, so a seller's signature cannot stand in for the purchaser's.

pub mod block;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::amount::{AmountError, Energy, Money, Price};
use crate::base::domain::{Address, AuxServiceKind, BusinessCategory, DeliveryTime};
use crate::crypto::keys::{KeyError, KeyPair, KeyRegistry, SIGNATURE_LEN, Signature};
use crate::crypto::verify::{BatchStats, Item, prepare, verify_batch, verify_one};

/// The encoding version this build writes and reads.
pub const ENCODING_VERSION: u8 = 1;
/// Canonical length without an auxiliary service.
pub const ENCODED_LEN_BASE: usize = 75;
/// Canonical length with an auxiliary service.
pub const ENCODED_LEN_AUX: usize = ENCODED_LEN_BASE + 17;
/// The longest canonical contract; a decoder refuses anything longer before reading it.
pub const ENCODED_LEN_MAX: usize = ENCODED_LEN_AUX;
/// The longest signed contract.
pub const SIGNED_LEN_MAX: usize = ENCODED_LEN_MAX + 3 * SIGNATURE_LEN;

/// A contract id: SHA-256 of the canonical unsigned bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContractId(pub [u8; 32]);

impl std::fmt::Debug for ContractId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContractId({})", hex::encode(self.0))
    }
}

impl std::fmt::Display for ContractId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// An auxiliary service carried by an auxiliary-service contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuxService {
    /// What service.
    pub kind: AuxServiceKind,
    /// How much of it, in MWh of service.
    pub quantity: Energy,
    /// Its price per MWh.
    pub price: Price,
}

/// The unsigned content of a bilateral contract: every field of the paper's Table 3, plus the
/// business category, the signers' sequence numbers (against replay) and an optional auxiliary
/// service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Direct purchase, common supply or auxiliary service.
    pub category: BusinessCategory,
    /// The electricity sales company.
    pub seller: Address,
    /// The purchaser.
    pub purchaser: Address,
    /// The transmission company carrying the energy.
    pub transmission: Address,
    /// The seller's unit power supply price.
    pub price: Price,
    /// The transaction energy.
    pub energy: Energy,
    /// Transmission cost per unit of energy.
    pub transmission_rate: Price,
    /// Liquidated damages per unit of energy not delivered.
    pub damages_rate: Price,
    /// When the energy is delivered.
    pub delivery_time: DeliveryTime,
    /// The seller's sequence number for this contract.
    pub seller_seq: u64,
    /// The purchaser's sequence number for this contract.
    pub purchaser_seq: u64,
    /// The transmission company's sequence number for this contract.
    pub transmission_seq: u64,
    /// The auxiliary service, for auxiliary-service contracts.
    pub aux: Option<AuxService>,
}

/// The money figures of Table 3, computed from a contract by the one rounding rule
/// ([`Price::mul_energy_round_half_even`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ContractCosts {
    /// transmission rate x energy.
    pub transmission_cost: Money,
    /// price x energy.
    pub purchase_cost: Money,
    /// damages rate x energy: what a full default costs.
    pub liquidated_damages: Money,
}

/// The three signers of a contract, in signing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signer {
    /// The seller.
    Seller,
    /// The purchaser.
    Purchaser,
    /// The transmission company.
    Transmission,
}

impl Signer {
    /// All three, in the order their signatures are stored.
    pub const ALL: [Signer; 3] = [Signer::Seller, Signer::Purchaser, Signer::Transmission];

    /// The domain tag prefixed to the canonical bytes before this signer signs them.
    pub fn domain_tag(self) -> &'static [u8] {
        match self {
            Signer::Seller => b"ipow/contract/v1/seller\0",
            Signer::Purchaser => b"ipow/contract/v1/purchaser\0",
            Signer::Transmission => b"ipow/contract/v1/transmission\0",
        }
    }

    fn index(self) -> usize {
        match self {
            Signer::Seller => 0,
            Signer::Purchaser => 1,
            Signer::Transmission => 2,
        }
    }
}

/// Why bytes are not a canonical contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends before `field` (which starts at `offset` and needs `needed` bytes).
    #[error("truncated at byte {offset}: field {field} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// Longer than any contract can be; refused before reading.
    #[error("{length} bytes is longer than the {max}-byte maximum")]
    Oversized {
        /// Bytes given.
        length: usize,
        /// The maximum.
        max: usize,
    },
    /// Bytes left after the last field.
    #[error("{extra} trailing bytes after byte {offset}")]
    TrailingBytes {
        /// Where the contract ended.
        offset: usize,
        /// How many bytes were left.
        extra: usize,
    },
    /// An encoding version this build does not read.
    #[error("unsupported encoding version {0} (this build reads {ENCODING_VERSION})")]
    UnsupportedVersion(u8),
    /// A field holds a value outside its domain.
    #[error("field {field} at byte {offset}: invalid value {value}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Where it starts.
        offset: usize,
        /// The value read, as a number.
        value: i128,
    },
}

/// Why a contract's signatures do not all verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A party's address has no admitted key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The named signer's signature does not verify.
    #[error("the {0:?} signature does not verify")]
    Invalid(Signer),
}

/// Appends fixed-width big-endian fields.
struct Writer<'w> {
    bytes: &'w mut Vec<u8>,
}

impl Writer<'_> {
    fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
}

/// Reads fixed-width big-endian fields, naming the field in any error.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let available = self.bytes.len().saturating_sub(self.offset);
        let end = self.offset.saturating_add(N);
        let slice = self
            .bytes
            .get(self.offset..end)
            .ok_or(DecodeError::Truncated {
                field,
                offset: self.offset,
                needed: N,
                available,
            })?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.offset = end;
        Ok(out)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take::<1>(field)?[0])
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(field)?))
    }
    /// A non-negative raw amount.
    fn amount(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        let offset = self.offset;
        let value = i64::from_be_bytes(self.take(field)?);
        if value < 0 {
            return Err(DecodeError::InvalidValue {
                field,
                offset,
                value: value.into(),
            });
        }
        Ok(value)
    }
}

/// Runs `read` over `bytes_untrusted` after refusing more than `max` bytes, and refuses any
/// bytes `read` leaves over: the bounds every decoder of outside bytes shares.
fn decode_bounded<T>(
    bytes_untrusted: &[u8],
    max: usize,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    if bytes_untrusted.len() > max {
        return Err(DecodeError::Oversized {
            length: bytes_untrusted.len(),
            max,
        });
    }
    let mut r = Reader {
        bytes: bytes_untrusted,
        offset: 0,
    };
    let value = read(&mut r)?;
    if r.offset != bytes_untrusted.len() {
        return Err(DecodeError::TrailingBytes {
            offset: r.offset,
            extra: bytes_untrusted.len().saturating_sub(r.offset),
        });
    }
    Ok(value)
}

impl Contract {
    /// The canonical bytes: what is hashed into the id and signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(ENCODED_LEN_MAX);
        self.encode_into(&mut bytes);
        bytes
    }

    /// [`Contract::encode`] appended to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer { bytes: out };
        w.u8(ENCODING_VERSION);
        w.u8(self.category.code());
        w.u32(self.seller.0);
        w.u32(self.purchaser.0);
        w.u32(self.transmission.0);
        w.i64(self.price.raw());
        w.i64(self.energy.raw());
        w.i64(self.transmission_rate.raw());
        w.i64(self.damages_rate.raw());
        w.u32(self.delivery_time.0);
        w.u64(self.seller_seq);
        w.u64(self.purchaser_seq);
        w.u64(self.transmission_seq);
        match self.aux {
            None => w.u8(0),
            Some(aux) => {
                w.u8(1);
                w.u8(aux.kind.code());
                w.i64(aux.quantity.raw());
                w.i64(aux.price.raw());
            }
        }
    }

    /// Decodes canonical bytes, refusing anything that [`Contract::encode`] would not produce.
    pub fn decode(bytes_untrusted: &[u8]) -> Result<Self, DecodeError> {
        decode_bounded(bytes_untrusted, ENCODED_LEN_MAX, Self::read)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("version")?;
        if version != ENCODING_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let offset = r.offset;
        let code = r.u8("category")?;
        let category = BusinessCategory::from_code(code).ok_or(DecodeError::InvalidValue {
            field: "category",
            offset,
            value: code.into(),
        })?;
        let seller = Address(r.u32("seller")?);
        let purchaser = Address(r.u32("purchaser")?);
        let transmission = Address(r.u32("transmission")?);
        let price = Price::from_raw(r.amount("price")?);
        let energy = Energy::from_raw(r.amount("energy")?);
        let transmission_rate = Price::from_raw(r.amount("transmission_rate")?);
        let damages_rate = Price::from_raw(r.amount("damages_rate")?);
        let delivery_time = DeliveryTime(r.u32("delivery_time")?);
        let seller_seq = r.u64("seller_seq")?;
        let purchaser_seq = r.u64("purchaser_seq")?;
        let transmission_seq = r.u64("transmission_seq")?;
        let offset = r.offset;
        let aux = match r.u8("aux_present")? {
            0 => None,
            1 => {
                let offset = r.offset;
                let code = r.u8("aux_kind")?;
                let kind = AuxServiceKind::from_code(code).ok_or(DecodeError::InvalidValue {
                    field: "aux_kind",
                    offset,
                    value: code.into(),
                })?;
                let quantity = Energy::from_raw(r.amount("aux_quantity")?);
                let price = Price::from_raw(r.amount("aux_price")?);
                Some(AuxService {
                    kind,
                    quantity,
                    price,
                })
            }
            flag => {
                return Err(DecodeError::InvalidValue {
                    field: "aux_present",
                    offset,
                    value: flag.into(),
                });
            }
        };
        Ok(Self {
            category,
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
            transmission_seq,
            aux,
        })
    }

    /// SHA-256 of the canonical bytes.
    pub fn id(&self) -> ContractId {
        ContractId(Sha256::digest(self.encode()).into())
    }

    /// Table 3's money figures, each rounded once by the one rule.
    pub fn costs(&self) -> Result<ContractCosts, AmountError> {
        Ok(ContractCosts {
            transmission_cost: self
                .transmission_rate
                .mul_energy_round_half_even(self.energy)?,
            purchase_cost: self.price.mul_energy_round_half_even(self.energy)?,
            liquidated_damages: self.damages_rate.mul_energy_round_half_even(self.energy)?,
        })
    }

    /// The address that signs as `signer`.
    pub fn signer_address(&self, signer: Signer) -> Address {
        match signer {
            Signer::Seller => self.seller,
            Signer::Purchaser => self.purchaser,
            Signer::Transmission => self.transmission,
        }
    }

    /// The exact message `signer` signs: its domain tag followed by the canonical bytes.
    pub fn signing_message(&self, signer: Signer) -> Vec<u8> {
        let tag = signer.domain_tag();
        let mut message = Vec::with_capacity(tag.len() + ENCODED_LEN_MAX);
        message.extend_from_slice(tag);
        message.extend_from_slice(&self.encode());
        message
    }

    /// Signs as all three parties. The keys must belong to the seller, the purchaser and the
    /// transmission company, in that order; a mismatch shows up at verification.
    pub fn sign(
        self,
        seller: &KeyPair,
        purchaser: &KeyPair,
        transmission: &KeyPair,
    ) -> SignedContract {
        let keys = [seller, purchaser, transmission];
        let signatures = Signer::ALL.map(|s| keys[s.index()].sign(&self.signing_message(s)));
        SignedContract {
            contract: self,
            signatures,
        }
    }
}

/// A contract with its three signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedContract {
    /// The signed content.
    pub contract: Contract,
    /// Signatures in the order seller, purchaser, transmission company.
    pub signatures: [Signature; 3],
}

impl SignedContract {
    /// The contract id (independent of the signatures).
    pub fn id(&self) -> ContractId {
        self.contract.id()
    }

    /// The signature of `signer`.
    pub fn signature(&self, signer: Signer) -> &Signature {
        &self.signatures[signer.index()]
    }

    /// Canonical bytes followed by the three signatures.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(ENCODED_LEN_MAX + 3 * SIGNATURE_LEN);
        self.encode_into(&mut bytes);
        bytes
    }

    /// [`SignedContract::encode`] appended to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.contract.encode_into(out);
        for signature in &self.signatures {
            out.extend_from_slice(signature);
        }
    }

    /// Decodes [`SignedContract::encode`]'s output, with the same bounds as [`Contract::decode`].
    pub fn decode(bytes_untrusted: &[u8]) -> Result<Self, DecodeError> {
        let mut signed = Self::blank();
        signed.decode_into(bytes_untrusted)?;
        Ok(signed)
    }

    /// [`SignedContract::decode`] into `self`, written in place: a reader filling a batch's
    /// slots copies each record once. On an error `self` holds unspecified contents.
    pub fn decode_into(&mut self, bytes_untrusted: &[u8]) -> Result<(), DecodeError> {
        if !self.fill_well_formed(bytes_untrusted) {
            *self = Self::decode_field_by_field(bytes_untrusted)?;
        }
        Ok(())
    }

    /// A slot to decode into: every field zero (not a contract anyone signed).
    pub fn blank() -> Self {
        Self {
            contract: Contract {
                category: BusinessCategory::DirectPurchase,
                seller: Address(0),
                purchaser: Address(0),
                transmission: Address(0),
                price: Price::ZERO,
                energy: Energy::ZERO,
                transmission_rate: Price::ZERO,
                damages_rate: Price::ZERO,
                delivery_time: DeliveryTime(0),
                seller_seq: 0,
                purchaser_seq: 0,
                transmission_seq: 0,
                aux: None,
            },
            signatures: [[0; SIGNATURE_LEN]; 3],
        }
    }

    /// The fast path of [`SignedContract::decode_into`]: the bytes read at the fixed offsets of
    /// the two canonical lengths, with every check the field-by-field path makes, written into
    /// `self` only once all pass. False (and `self` untouched) for anything else, which that
    /// path then explains. (A dataset's million records decode here at a fraction of the
    /// field-by-field cost; the unit test below holds the two paths equal.)
    fn fill_well_formed(&mut self, b: &[u8]) -> bool {
        let Some(canonical) = b.len().checked_sub(3 * SIGNATURE_LEN) else {
            return false;
        };
        let aux_present = match canonical {
            ENCODED_LEN_BASE => 0,
            ENCODED_LEN_AUX => 1,
            _ => return false,
        };
        if b[0] != ENCODING_VERSION || b[74] != aux_present {
            return false;
        }
        let u32_at = |at: usize| {
            let mut x = [0u8; 4];
            x.copy_from_slice(&b[at..at + 4]);
            u32::from_be_bytes(x)
        };
        let u64_at = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[at..at + 8]);
            u64::from_be_bytes(x)
        };
        // A non-negative raw amount, as `Reader::amount` requires: the big-endian i64 is
        // non-negative exactly when its bits as a u64 are below 2^63.
        let amount = |at: usize| i64::try_from(u64_at(at)).ok();
        let aux = if aux_present == 1 {
            let (Some(kind), Some(quantity), Some(price)) =
                (AuxServiceKind::from_code(b[75]), amount(76), amount(84))
            else {
                return false;
            };
            Some(AuxService {
                kind,
                quantity: Energy::from_raw(quantity),
                price: Price::from_raw(price),
            })
        } else {
            None
        };
        let (
            Some(category),
            Some(price),
            Some(energy),
            Some(transmission_rate),
            Some(damages_rate),
        ) = (
            BusinessCategory::from_code(b[1]),
            amount(14),
            amount(22),
            amount(30),
            amount(38),
        )
        else {
            return false;
        };
        let c = &mut self.contract;
        c.category = category;
        c.seller = Address(u32_at(2));
        c.purchaser = Address(u32_at(6));
        c.transmission = Address(u32_at(10));
        c.price = Price::from_raw(price);
        c.energy = Energy::from_raw(energy);
        c.transmission_rate = Price::from_raw(transmission_rate);
        c.damages_rate = Price::from_raw(damages_rate);
        c.delivery_time = DeliveryTime(u32_at(46));
        c.seller_seq = u64_at(50);
        c.purchaser_seq = u64_at(58);
        c.transmission_seq = u64_at(66);
        c.aux = aux;
        for (k, signature) in self.signatures.iter_mut().enumerate() {
            let at = canonical + k * SIGNATURE_LEN;
            signature.copy_from_slice(&b[at..at + SIGNATURE_LEN]);
        }
        true
    }

    /// The field-by-field decoder: every error names its field and offset.
    fn decode_field_by_field(bytes_untrusted: &[u8]) -> Result<Self, DecodeError> {
        decode_bounded(bytes_untrusted, SIGNED_LEN_MAX, |r| {
            let contract = Contract::read(r)?;
            let signatures = [
                r.take::<SIGNATURE_LEN>("seller_signature")?,
                r.take::<SIGNATURE_LEN>("purchaser_signature")?,
                r.take::<SIGNATURE_LEN>("transmission_signature")?,
            ];
            Ok(Self {
                contract,
                signatures,
            })
        })
    }

    /// Checks all three signatures against the registered keys of the three parties, one by
    /// one, stopping at the first that fails (seller, purchaser, transmission company).
    pub fn verify_signatures(&self, registry: &KeyRegistry) -> Result<(), SignatureError> {
        let canonical = self.contract.encode();
        for signer in Signer::ALL {
            let key = registry.verifying(self.contract.signer_address(signer))?;
            let parts = [signer.domain_tag(), canonical.as_slice()];
            if !verify_one(key, &parts, self.signature(signer)) {
                return Err(SignatureError::Invalid(signer));
            }
        }
        Ok(())
    }
}

/// Verifies the signatures of many contracts in batches, with exactly the result
/// [`SignedContract::verify_signatures`] gives each one. A batch holds whole contracts (a
/// contract's signatures up to its first signer without a key), at most `batch` signatures but
/// at least one contract; batches form in the order given, so their boundaries depend only on
/// the list and `batch`.
pub fn verify_signatures_batched(
    contracts: &[&SignedContract],
    registry: &KeyRegistry,
    batch: usize,
    stats: &mut BatchStats,
) -> Vec<Result<(), SignatureError>> {
    let mut results = Vec::with_capacity(contracts.len());
    let mut items: Vec<Option<Item<'_>>> = Vec::with_capacity(batch.max(3));
    // Per contract of the open batch: its signatures in `items` and its first missing key.
    let mut open: Vec<(usize, Option<KeyError>)> = Vec::new();
    let mut verdicts: Vec<bool> = Vec::new();
    let mut flush = |items: &mut Vec<Option<Item<'_>>>,
                     open: &mut Vec<(usize, Option<KeyError>)>,
                     results: &mut Vec<Result<(), SignatureError>>| {
        verdicts.clear();
        verdicts.resize(items.len(), false);
        verify_batch(items, &mut verdicts, stats);
        let mut at = 0;
        for (n, key_error) in open.drain(..) {
            let failed = verdicts[at..at + n].iter().position(|ok| !ok);
            at += n;
            results.push(match (failed, key_error) {
                (Some(j), _) => Err(SignatureError::Invalid(Signer::ALL[j])),
                (None, Some(e)) => Err(SignatureError::Key(e)),
                (None, None) => Ok(()),
            });
        }
        items.clear();
    };
    for signed in contracts {
        let canonical = signed.contract.encode();
        let mut mine: [Option<Item<'_>>; 3] = [None; 3];
        let mut n = 0;
        let mut key_error = None;
        for signer in Signer::ALL {
            match registry.verifying(signed.contract.signer_address(signer)) {
                Ok(key) => {
                    let parts = [signer.domain_tag(), canonical.as_slice()];
                    mine[n] = prepare(key, &parts, signed.signature(signer));
                    n += 1;
                }
                Err(e) => {
                    key_error = Some(e);
                    break;
                }
            }
        }
        if !open.is_empty() && items.len() + n > batch {
            flush(&mut items, &mut open, &mut results);
        }
        items.extend_from_slice(&mine[..n]);
        open.push((n, key_error));
    }
    if !open.is_empty() {
        flush(&mut items, &mut open, &mut results);
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contract(aux: bool, x: u64) -> SignedContract {
        let amount = |k: u64| {
            i64::try_from((x.rotate_left(u32::try_from(k).unwrap_or(0)) >> 2) % 1_000_000_000)
                .unwrap_or(0)
        };
        SignedContract {
            contract: Contract {
                category: BusinessCategory::from_code(u8::try_from(x % 3).unwrap_or(0) + 1)
                    .unwrap_or(BusinessCategory::DirectPurchase),
                seller: Address(u32::try_from(x % 100_000).unwrap_or(0)),
                purchaser: Address(7),
                transmission: Address(9),
                price: Price::from_raw(amount(1)),
                energy: Energy::from_raw(amount(2)),
                transmission_rate: Price::from_raw(amount(3)),
                damages_rate: Price::from_raw(amount(4)),
                delivery_time: DeliveryTime(600),
                seller_seq: x,
                purchaser_seq: x ^ 5,
                transmission_seq: !x,
                aux: aux.then(|| AuxService {
                    kind: AuxServiceKind::Reserve,
                    quantity: Energy::from_raw(amount(5)),
                    price: Price::from_raw(amount(6)),
                }),
            },
            signatures: [[1; 64], [2; 64], [3; 64]],
        }
    }

    proptest! {
        /// The fast path accepts exactly what the field-by-field path accepts, with the same
        /// value: checked on valid encodings with bytes overwritten and lengths cut or grown.
        #[test]
        fn the_fast_path_equals_the_field_by_field_decoder(
            aux in any::<bool>(),
            x in any::<u64>(),
            // Mostly the fields (the first 92 bytes), sometimes the signatures.
            edits in proptest::collection::vec((prop_oneof![3 => 0usize..92, 1 => 0usize..300], any::<u8>()), 0..4),
            // Mostly the exact length, where the fast path decides.
            cut in prop_oneof![6 => Just(0usize), 1 => 0usize..20],
            grow in prop_oneof![6 => Just(0usize), 1 => 0usize..3],
        ) {
            let mut b = contract(aux, x).encode();
            for (at, v) in edits {
                if let Some(slot) = b.get_mut(at) {
                    *slot = v;
                }
            }
            b.truncate(b.len().saturating_sub(cut));
            b.extend(std::iter::repeat_n(0u8, grow));
            let slow = SignedContract::decode_field_by_field(&b).ok();
            let mut slot = contract(!aux, x ^ 1);
            let before = slot.clone();
            let fast = slot.fill_well_formed(&b);
            prop_assert_eq!(fast.then(|| slot.clone()), slow);
            if !fast {
                prop_assert_eq!(slot, before, "a refused record leaves the slot untouched");
            }
        }
    }

    #[test]
    fn valid_encodings_take_the_fast_path() {
        for aux in [false, true] {
            let c = contract(aux, 42);
            let mut slot = SignedContract::blank();
            assert!(slot.fill_well_formed(&c.encode()));
            assert_eq!(slot, c);
        }
    }
}
