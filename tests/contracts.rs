use ipow::base::amount::{Energy, Price};
use ipow::base::domain::{Address, AuxServiceKind, BusinessCategory, DeliveryTime};
use ipow::contract::AuxService;
use ipow::contract::{
    Contract, DecodeError, ENCODED_LEN_AUX, ENCODED_LEN_BASE, SignatureError, SignedContract,
    Signer,
};
use ipow::crypto::keys::{BATCH_FROM, KeyError, KeyPair, KeyRegistry, PublicKey, admit_all};

const SEED: u64 = 7;

fn sample(aux: bool) -> Contract {
    Contract {
        category: if aux {
            BusinessCategory::AuxiliaryService
        } else {
            BusinessCategory::DirectPurchase
        },
        seller: Address(0x20),
        purchaser: Address(0x25),
        transmission: Address(0x28),
        price: Price::parse("17.09").unwrap(),
        energy: Energy::parse("10.98").unwrap(),
        transmission_rate: Price::parse("1.5").unwrap(),
        damages_rate: Price::parse("15").unwrap(),
        delivery_time: "18:00".parse().unwrap(),
        seller_seq: 1,
        purchaser_seq: 2,
        transmission_seq: 3,
        aux: aux.then(|| AuxService {
            kind: AuxServiceKind::Reserve,
            quantity: Energy::parse("2.5").unwrap(),
            price: Price::parse("4.2").unwrap(),
        }),
    }
}

fn keys() -> [KeyPair; 3] {
    [Address(0x20), Address(0x25), Address(0x28)].map(|a| KeyPair::derive(SEED, a))
}

fn registry() -> KeyRegistry {
    let mut r = KeyRegistry::new();
    for (a, k) in [Address(0x20), Address(0x25), Address(0x28)]
        .iter()
        .zip(keys())
    {
        r.register(*a, *k.public_key().as_bytes()).unwrap();
    }
    r
}

fn signed(aux: bool) -> SignedContract {
    let [s, p, t] = keys();
    sample(aux).sign(&s, &p, &t)
}

#[test]
fn canonical_encoding_round_trips_and_has_documented_length() {
    for aux in [false, true] {
        let c = sample(aux);
        let bytes = c.encode();
        assert_eq!(
            bytes.len(),
            if aux {
                ENCODED_LEN_AUX
            } else {
                ENCODED_LEN_BASE
            }
        );
        assert_eq!(bytes[0], 1, "version byte");
        assert_eq!(Contract::decode(&bytes).unwrap(), c);
        let sc = signed(aux);
        assert_eq!(SignedContract::decode(&sc.encode()).unwrap(), sc);
    }
}

#[test]
fn malformed_encodings_give_typed_errors() {
    let bytes = sample(true).encode();
    // Every truncation names the field it stopped in.
    for len in 0..bytes.len() {
        match Contract::decode(&bytes[..len]) {
            Err(DecodeError::Truncated { offset, .. }) => assert!(offset <= len),
            other => panic!("length {len}: {other:?}"),
        }
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        Contract::decode(&long),
        Err(DecodeError::Oversized { .. })
    ));
    let mut trailing = sample(false).encode();
    trailing.push(0);
    assert!(matches!(
        Contract::decode(&trailing),
        Err(DecodeError::TrailingBytes {
            offset: 75,
            extra: 1
        })
    ));
    let mut version = bytes.clone();
    version[0] = 2;
    assert_eq!(
        Contract::decode(&version),
        Err(DecodeError::UnsupportedVersion(2))
    );
    let mut category = bytes.clone();
    category[1] = 9;
    assert!(matches!(
        Contract::decode(&category),
        Err(DecodeError::InvalidValue {
            field: "category",
            offset: 1,
            value: 9
        })
    ));
    let mut negative = bytes.clone();
    negative[22] = 0x80; // energy's sign bit
    assert!(matches!(
        Contract::decode(&negative),
        Err(DecodeError::InvalidValue {
            field: "energy",
            offset: 22,
            ..
        })
    ));
    let mut flag = bytes.clone();
    flag[74] = 2;
    assert!(matches!(
        Contract::decode(&flag),
        Err(DecodeError::InvalidValue {
            field: "aux_present",
            offset: 74,
            value: 2
        })
    ));
    let mut kind = bytes.clone();
    kind[75] = 0;
    assert!(matches!(
        Contract::decode(&kind),
        Err(DecodeError::InvalidValue {
            field: "aux_kind",
            ..
        })
    ));
    let sc = signed(false).encode();
    assert!(matches!(
        SignedContract::decode(&sc[..sc.len() - 1]),
        Err(DecodeError::Truncated {
            field: "transmission_signature",
            ..
        })
    ));
}

#[test]
fn contract_id_ignores_signatures_and_resigning_keeps_it() {
    let a = signed(false);
    let other = [Address(1), Address(2), Address(3)].map(|x| KeyPair::derive(99, x));
    let b = sample(false).sign(&other[0], &other[1], &other[2]);
    assert_ne!(a.signatures, b.signatures);
    assert_eq!(a.id(), b.id());
    let mut changed = sample(false);
    changed.seller_seq += 1;
    assert_ne!(changed.id(), a.id(), "every field is in the id");
}

#[test]
fn all_three_signatures_verify_and_any_flipped_bit_fails() {
    let reg = registry();
    let sc = signed(true);
    sc.verify_signatures(&reg).unwrap();

    // A flipped bit in the message: every byte of the canonical encoding is covered.
    let bytes = sc.contract.encode();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        if let Ok(c) = Contract::decode(&b) {
            let tampered = SignedContract {
                contract: c,
                signatures: sc.signatures,
            };
            assert!(tampered.verify_signatures(&reg).is_err(), "byte {i}");
        }
    }
    // A flipped bit in each signature.
    for signer in Signer::ALL {
        for bit in [0usize, 7, 255, 511] {
            let mut bad = sc.clone();
            let idx = Signer::ALL.iter().position(|s| *s == signer).unwrap();
            bad.signatures[idx][bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                bad.verify_signatures(&reg),
                Err(SignatureError::Invalid(signer)),
                "{signer:?} bit {bit}"
            );
        }
    }
    // A flipped bit in a key: the key is refused or the signature fails under it.
    let seller_key = *keys()[0].public_key().as_bytes();
    for bit in 0..256 {
        let mut k = seller_key;
        k[bit / 8] ^= 1 << (bit % 8);
        let Ok(key) = PublicKey::admit(k) else {
            continue;
        };
        assert!(
            !key.verify(
                &sc.contract.signing_message(Signer::Seller),
                sc.signature(Signer::Seller)
            ),
            "key bit {bit}"
        );
    }
}

#[test]
fn a_signature_is_bound_to_its_role() {
    // Seller and purchaser the same party: its seller signature must not pass as the purchaser's.
    let mut c = sample(false);
    c.purchaser = c.seller;
    let k = KeyPair::derive(SEED, c.seller);
    let t = KeyPair::derive(SEED, c.transmission);
    let mut sc = c.sign(&k, &k, &t);
    let mut reg = KeyRegistry::new();
    reg.register(c.seller, *k.public_key().as_bytes()).unwrap();
    reg.register(c.transmission, *t.public_key().as_bytes())
        .unwrap();
    sc.verify_signatures(&reg).unwrap();
    sc.signatures[1] = sc.signatures[0];
    assert_eq!(
        sc.verify_signatures(&reg),
        Err(SignatureError::Invalid(Signer::Purchaser))
    );
}

#[test]
fn unknown_party_is_a_key_error() {
    let mut reg = KeyRegistry::new();
    let k = keys();
    reg.register(Address(0x20), *k[0].public_key().as_bytes())
        .unwrap();
    assert_eq!(
        signed(false).verify_signatures(&reg),
        Err(SignatureError::Key(KeyError::UnknownAddress(Address(0x25))))
    );
}

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[test]
fn a_signature_with_l_added_to_s_is_rejected() {
    let reg = registry();
    let sc = signed(false);
    let mut malleated = sc.clone();
    let s = &mut malleated.signatures[0][32..];
    let mut carry = 0u16;
    for (byte, l) in s.iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 256 bits");
    assert_ne!(malleated.signatures[0], sc.signatures[0]);
    assert_eq!(
        malleated.verify_signatures(&reg),
        Err(SignatureError::Invalid(Signer::Seller))
    );
}

#[test]
fn small_order_and_malformed_keys_are_refused_at_admission() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    for (i, point) in EIGHT_TORSION.iter().enumerate() {
        let bytes = point.compress().to_bytes();
        assert!(
            matches!(PublicKey::admit(bytes), Err(KeyError::SmallOrder(_))),
            "torsion point {i}"
        );
    }
    // The identity written with y = p + 1 instead of 1: non-canonical.
    let mut y_p_plus_1 = [0xffu8; 32];
    y_p_plus_1[0] = 0xee;
    y_p_plus_1[31] = 0x7f;
    assert!(matches!(
        PublicKey::admit(y_p_plus_1),
        Err(KeyError::NonCanonical(_))
    ));
    // Some small y is not on the curve (about half of all y are not).
    let off_curve = (2u8..=255)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| PublicKey::admit(*b) == Err(KeyError::NotOnCurve(hex::encode(b))));
    assert!(off_curve.is_some());
    let mut reg = KeyRegistry::new();
    assert!(
        reg.register(Address(1), EIGHT_TORSION[0].compress().to_bytes())
            .is_err()
    );
    assert!(reg.is_empty(), "a refused key is not registered");
}

/// Admission as first written: a key is canonical when compressing the decompressed point
/// gives back its bytes. `PublicKey::admit` decides that from the bytes instead.
fn admit_by_compressing(bytes: [u8; 32]) -> Result<(), KeyError> {
    let shown = hex::encode(bytes);
    let point = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
        .decompress()
        .ok_or_else(|| KeyError::NotOnCurve(shown.clone()))?;
    if point.compress().to_bytes() != bytes {
        return Err(KeyError::NonCanonical(shown));
    }
    if point.is_small_order() {
        return Err(KeyError::SmallOrder(shown));
    }
    Ok(())
}

/// Encodings at every edge of admission: y near 0 and p with either sign, real keys, the torsion
/// points, pseudo-random bytes.
fn admission_cases() -> Vec<[u8; 32]> {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use sha2::Digest as _;
    let mut cases: Vec<[u8; 32]> = Vec::new();
    // y near 0 and near p (p - 1 = EC FF .. FF 7F), up to 2^255 - 1, with either sign bit.
    let near_p = |low: u8| {
        let mut b = [0xffu8; 32];
        b[0] = low;
        b[31] = 0x7f;
        b
    };
    for low in 0..=255u8 {
        let mut small = [0u8; 32];
        small[0] = low;
        cases.push(small);
        cases.push(near_p(low));
    }
    // Real keys, the torsion points, and each with its sign bit flipped.
    cases.extend((0..200).map(|i| {
        KeyPair::derive(9, Address(i))
            .public_key()
            .as_bytes()
            .to_owned()
    }));
    cases.extend(EIGHT_TORSION.iter().map(|p| p.compress().to_bytes()));
    // Pseudo-random bytes (SHA-256 of a counter).
    cases.extend((0u32..2000).map(|i| <[u8; 32]>::from(sha2::Sha256::digest(i.to_le_bytes()))));
    let flipped: Vec<[u8; 32]> = cases
        .iter()
        .map(|b| {
            let mut f = *b;
            f[31] ^= 0x80;
            f
        })
        .collect();
    cases.extend(flipped);
    cases
}

#[test]
fn admission_decides_canonical_encodings_as_compressing_does() {
    let cases = admission_cases();
    let mut seen = [0usize; 4];
    for b in cases {
        let expected = admit_by_compressing(b);
        seen[match &expected {
            Ok(()) => 0,
            Err(KeyError::NotOnCurve(_)) => 1,
            Err(KeyError::NonCanonical(_)) => 2,
            Err(_) => 3,
        }] += 1;
        assert_eq!(
            PublicKey::admit(b).map(|_| ()),
            expected,
            "{}",
            hex::encode(b)
        );
    }
    // Every outcome was exercised: admitted, off the curve, non-canonical, small order.
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
}

/// A list admitted at once decides as `admit` decides each key: edge cases of every outcome, each
/// placed at a moving position among valid keys (some of them of mixed order: a prime-order point plus a
/// torsion point), is refused at its position with `admit`'s error, or admitted with the rest;
/// of two bad keys, the earlier one is named.
#[test]
fn a_list_is_admitted_as_admit_decides_each_key() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    // Below and above the size from which the curve equation is checked for the whole list.
    for size in [41, BATCH_FROM + 44] {
        let valid: Vec<[u8; 32]> = (0..size as u32)
            .map(|i| {
                let key = *KeyPair::derive(5, Address(i)).public_key().as_bytes();
                if i % 3 == 0 {
                    let point = CompressedEdwardsY(key).decompress().unwrap();
                    (point + EIGHT_TORSION[(i as usize / 3) % 8])
                        .compress()
                        .to_bytes()
                } else {
                    key
                }
            })
            .collect();
        let expected: Vec<PublicKey> = valid
            .iter()
            .map(|&b| PublicKey::admit(b).unwrap())
            .collect();
        assert_eq!(admit_all(&valid).unwrap(), expected);
        let mut seen = [0usize; 4];
        for (n, case) in admission_cases().into_iter().step_by(23).enumerate() {
            let at = (n * 7) % (valid.len() + 1);
            let mut list = valid.clone();
            list.insert(at, case);
            let outcome = PublicKey::admit(case);
            seen[match &outcome {
                Ok(_) => 0,
                Err(KeyError::NotOnCurve(_)) => 1,
                Err(KeyError::NonCanonical(_)) => 2,
                Err(_) => 3,
            }] += 1;
            match outcome {
                Ok(key) => {
                    let mut with = expected.clone();
                    with.insert(at, key);
                    assert_eq!(admit_all(&list).unwrap(), with, "{}", hex::encode(case));
                }
                Err(e) => {
                    assert_eq!(
                        admit_all(&list),
                        Err((at, e.clone())),
                        "{}",
                        hex::encode(case)
                    );
                    // A second bad key later in the list does not change which one is named.
                    list.push(case);
                    assert_eq!(admit_all(&list), Err((at, e)), "{}", hex::encode(case));
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    }
    assert_eq!(admit_all(&[]).unwrap(), Vec::<PublicKey>::new());
}

#[test]
fn why_admission_matters_the_identity_key_accepts_a_forgery_in_ring() {
    // Under the identity key, R = identity and S = 0 satisfy [S]B = R + [k]A for every message.
    // ring accepts it, which is why keys are admitted before use.
    let identity = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    let mut forged = [0u8; 64];
    forged[0] = 1;
    let ring_accepts = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, identity)
        .verify(b"any message", &forged)
        .is_ok();
    assert!(
        ring_accepts,
        "if ring starts refusing this, admission is belt and braces"
    );
    assert!(matches!(
        PublicKey::admit(identity),
        Err(KeyError::SmallOrder(_))
    ));
}

#[test]
fn keys_are_a_pure_function_of_seed_and_address() {
    let a = KeyPair::derive(1, Address(0x20)).public_key();
    assert_eq!(a, KeyPair::derive(1, Address(0x20)).public_key());
    assert_ne!(a, KeyPair::derive(2, Address(0x20)).public_key());
    assert_ne!(a, KeyPair::derive(1, Address(0x21)).public_key());
    // Ed25519 signing is deterministic: the same contract gives the same bytes.
    assert_eq!(signed(true).encode(), signed(true).encode());
}

#[test]
fn delivery_time_text() {
    assert_eq!("18:00".parse::<DeliveryTime>().unwrap(), DeliveryTime(1080));
    assert_eq!(DeliveryTime(1080 + 1440).to_string(), "day 1 18:00");
    assert_eq!(
        "day 1 18:00".parse::<DeliveryTime>().unwrap(),
        DeliveryTime(2520)
    );
    for bad in ["24:00", "18:60", "1800", "8:00", "day x 18:00", ""] {
        assert!(bad.parse::<DeliveryTime>().is_err(), "{bad}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..320)) {
        let _ = Contract::decode(&bytes);
        let _ = SignedContract::decode(&bytes);
    }

    #[test]
    fn random_contracts_round_trip(
        addrs in proptest::array::uniform3(proptest::num::u32::ANY),
        amounts in proptest::array::uniform4(0i64..=i64::MAX),
        seqs in proptest::array::uniform3(proptest::num::u64::ANY),
        time in proptest::num::u32::ANY,
        aux in proptest::option::of((1u8..=4, 0i64..=i64::MAX, 0i64..=i64::MAX)),
    ) {
        let c = Contract {
            category: if aux.is_some() { BusinessCategory::AuxiliaryService } else { BusinessCategory::CommonSupply },
            seller: Address(addrs[0]), purchaser: Address(addrs[1]), transmission: Address(addrs[2]),
            price: Price::from_raw(amounts[0]), energy: Energy::from_raw(amounts[1]),
            transmission_rate: Price::from_raw(amounts[2]), damages_rate: Price::from_raw(amounts[3]),
            delivery_time: DeliveryTime(time),
            seller_seq: seqs[0], purchaser_seq: seqs[1], transmission_seq: seqs[2],
            aux: aux.map(|(k, q, p)| AuxService { kind: AuxServiceKind::from_code(k).unwrap(), quantity: Energy::from_raw(q), price: Price::from_raw(p) }),
        };
        proptest::prop_assert_eq!(Contract::decode(&c.encode()).unwrap(), c);
    }
}

/// Derived keys, enough for a list that is admitted as one (above `BATCH_FROM`).
fn list_of_valid_keys() -> &'static [[u8; 32]] {
    static KEYS: std::sync::OnceLock<Vec<[u8; 32]>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        (0..BATCH_FROM as u32 + 20)
            .map(|i| *KeyPair::derive(21, Address(i)).public_key().as_bytes())
            .collect()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Random 32-byte keys (about half of them off the curve) inserted anywhere in a list of
    /// valid keys: the list is admitted, or refused at the first bad key, exactly as admitting
    /// its keys one by one decides.
    #[test]
    fn a_list_with_random_keys_is_decided_as_key_by_key(
        inserts in proptest::collection::vec(
            (0usize..1024, proptest::array::uniform32(proptest::num::u8::ANY)),
            0..4,
        ),
    ) {
        let mut list = list_of_valid_keys().to_vec();
        for (at, bytes) in inserts {
            let n = list.len();
            list.insert(at % (n + 1), bytes);
        }
        let one_by_one: Result<Vec<PublicKey>, (usize, KeyError)> = list
            .iter()
            .enumerate()
            .map(|(i, &b)| PublicKey::admit(b).map_err(|e| (i, e)))
            .collect();
        proptest::prop_assert_eq!(admit_all(&list), one_by_one);
    }
}
