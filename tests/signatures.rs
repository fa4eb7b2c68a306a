//! The signature rule (crypto::verify) on the edge-case vectors, on signatures built by a key
//! holder to sit on the rule's edges, in batches at every position, and against ed25519-zebra.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ipow::base::rng::Rng;
use ipow::crypto::keys::{KeyError, KeyPair, PublicKey, Signature};
use ipow::crypto::verify::{
    BatchStats, Item, SINGLE_UP_TO, VerifyingKey, check_one, prepare, verify_batch, verify_one,
};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

/// One signature to check: key bytes, message, signature.
#[derive(Clone, Debug)]
struct Case {
    key: [u8; 32],
    msg: Vec<u8>,
    sig: Signature,
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn hex64(s: &str) -> [u8; 64] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn speccheck() -> Vec<Case> {
    let text = std::fs::read_to_string("tests/data/ed25519/speccheck/cases.json").unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    cases
        .iter()
        .map(|c| Case {
            key: hex32(c["pub_key"].as_str().unwrap()),
            msg: hex::decode(c["message"].as_str().unwrap()).unwrap(),
            sig: hex64(c["signature"].as_str().unwrap()),
        })
        .collect()
}

/// CCTV's vectors with their flags.
fn cctv() -> Vec<(Case, Vec<String>)> {
    let text = std::fs::read_to_string("tests/data/ed25519/cctv/ed25519vectors.json").unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    cases
        .iter()
        .map(|c| {
            let flags = c["flags"]
                .as_array()
                .map(|a| a.iter().map(|f| f.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            let case = Case {
                key: hex32(c["key"].as_str().unwrap()),
                msg: c["msg"].as_str().unwrap().as_bytes().to_vec(),
                sig: hex64(c["sig"].as_str().unwrap()),
            };
            (case, flags)
        })
        .collect()
}

/// The rule's verdict on one case: `Err` when admission refuses the key.
fn single(case: &Case) -> Result<bool, KeyError> {
    let key = PublicKey::admit(case.key)?;
    Ok(verify_one(
        &VerifyingKey::new(&key),
        &[&case.msg],
        &case.sig,
    ))
}

/// Batch verdicts for admitted cases (a `VerifyingKey` per case).
fn batch(cases: &[Case], stats: &mut BatchStats) -> Vec<bool> {
    let keys: Vec<VerifyingKey> = cases
        .iter()
        .map(|c| VerifyingKey::new(&PublicKey::admit(c.key).unwrap()))
        .collect();
    let items: Vec<Option<Item<'_>>> = cases
        .iter()
        .zip(&keys)
        .map(|(c, k)| prepare(k, &[&c.msg], &c.sig))
        .collect();
    let mut verdicts = vec![false; items.len()];
    verify_batch(&items, &mut verdicts, stats);
    verdicts
}

/// `n` honest signatures under distinct keys.
fn honest(n: usize, seed: u64) -> Vec<Case> {
    (0..n)
        .map(|i| {
            let kp = KeyPair::from_seed(&[(i % 251) as u8 ^ seed as u8; 32]);
            let msg = format!("neighbour {seed} {i}").into_bytes();
            Case {
                key: *kp.public_key().as_bytes(),
                sig: kp.sign(&msg),
                msg,
            }
        })
        .collect()
}

#[test]
fn speccheck_cases_are_decided_as_the_rule_says() {
    let cases = speccheck();
    assert_eq!(cases.len(), 12);
    for (i, case) in cases.iter().enumerate() {
        let got = single(case);
        match i {
            0 | 1 | 10 | 11 => assert!(got.is_err(), "case {i} is refused at admission"),
            3..=5 => assert_eq!(got, Ok(true), "case {i} is accepted"),
            _ => assert_eq!(got, Ok(false), "case {i} is rejected"),
        }
    }
}

#[test]
fn cctv_vectors_are_accepted_exactly_without_low_order_or_non_canonical_r() {
    let vectors = cctv();
    let (mut refused, mut accepted, mut rejected) = (0, 0, 0);
    for (case, flags) in &vectors {
        let has = |f: &str| flags.iter().any(|x| x == f);
        match single(case) {
            Err(_) => {
                assert!(
                    has("low_order_A") || has("non_canonical_A"),
                    "{case:?} refused at admission without a small-order or non-canonical A"
                );
                refused += 1;
            }
            Ok(ok) => {
                assert!(!has("low_order_A") && !has("non_canonical_A"), "{case:?}");
                let expected = !has("low_order_R") && !has("non_canonical_R");
                assert_eq!(ok, expected, "{case:?} {flags:?}");
                if ok { accepted += 1 } else { rejected += 1 }
            }
        }
    }
    // Counted from the flags alone (README: low_order / non_canonical A are refused, and of the
    // rest, R decides): 526 refused, 106 accepted, 282 rejected.
    assert_eq!(
        (vectors.len(), refused, accepted, rejected),
        (914, 526, 106, 282)
    );
}

/// Every admitted vector in batches of valid neighbours: the vector's verdict is its single
/// verdict, and no neighbour is named.
fn at_positions(case: &Case, sizes: &[usize], every_position: bool) {
    let expected = single(case).unwrap();
    for &n in sizes {
        let positions: Vec<usize> = if every_position {
            (0..=n).collect()
        } else {
            vec![0, n / 2, n]
        };
        for at in positions {
            let mut cases = honest(n, n as u64);
            cases.insert(at, case.clone());
            let mut stats = BatchStats::default();
            let verdicts = batch(&cases, &mut stats);
            for (j, v) in verdicts.iter().enumerate() {
                let want = if j == at { expected } else { true };
                assert_eq!(*v, want, "vector at {at} of {}, item {j}", n + 1);
            }
        }
    }
}

#[test]
fn speccheck_at_every_position_of_batches_of_1_to_64_neighbours() {
    let sizes: Vec<usize> = (1..=64).collect();
    for case in speccheck() {
        if single(&case).is_ok() {
            // Every size with the vector first, last and in the middle; every position of a few.
            at_positions(&case, &sizes, false);
            at_positions(&case, &[1, 5, 9, 33], true);
        }
    }
}

#[test]
fn cctv_vectors_in_batches_of_neighbours() {
    for (case, _) in cctv() {
        if single(&case).is_ok() {
            at_positions(&case, &[1, 2, 5, 17, 64], false);
        }
    }
}

/// Signatures that fail the equation itself (a wrong message), at chosen positions.
fn with_bad(n: usize, bad: &[usize], seed: u64) -> (Vec<Case>, Vec<bool>) {
    let mut cases = honest(n, seed);
    for &b in bad {
        cases[b].msg.push(b'!');
    }
    let truth = (0..n).map(|i| !bad.contains(&i)).collect();
    (cases, truth)
}

#[test]
fn bisection_names_exactly_the_bad_signatures() {
    let mut rng = Rng::stream(7, &[]);
    for n in [5usize, 8, 16, 33, 64, 100] {
        for bad_count in [1usize, 2, 3] {
            for round in 0..6 {
                let mut bad = Vec::new();
                while bad.len() < bad_count {
                    let b = rng.index(n);
                    if !bad.contains(&b) {
                        bad.push(b);
                    }
                }
                let (cases, truth) = with_bad(n, &bad, round);
                let mut stats = BatchStats::default();
                assert_eq!(batch(&cases, &mut stats), truth, "n {n} bad {bad:?}");
                // Every named bad signature failed a single check.
                assert!(stats.single_checks >= bad_count as u64, "{stats:?}");
            }
        }
    }
    // All bad, and nothing at all.
    let all: Vec<usize> = (0..20).collect();
    let (cases, truth) = with_bad(20, &all, 3);
    let mut stats = BatchStats::default();
    assert_eq!(batch(&cases, &mut stats), truth);
    assert_eq!(stats.single_checks, 20);
    let mut stats = BatchStats::default();
    assert!(batch(&[], &mut stats).is_empty());
    assert_eq!(stats, BatchStats::default());
}

#[test]
fn a_valid_batch_is_one_equation_and_small_pieces_are_single() {
    let mut stats = BatchStats::default();
    assert!(batch(&honest(64, 1), &mut stats).iter().all(|&v| v));
    assert_eq!(
        (stats.batches, stats.bisection_tests, stats.single_checks),
        (1, 0, 0)
    );
    let mut stats = BatchStats::default();
    assert!(
        batch(&honest(SINGLE_UP_TO, 1), &mut stats)
            .iter()
            .all(|&v| v)
    );
    assert_eq!(stats.single_checks, SINGLE_UP_TO as u64);
    // A bad signature in the right half: the left half passes, the right is split untested.
    let (cases, truth) = with_bad(64, &[63], 2);
    let mut stats = BatchStats::default();
    assert_eq!(batch(&cases, &mut stats), truth);
    // Known bad 64: left 32 passes; known bad 32: left 16 passes; 16: left 8 passes; 8: left 4
    // passes; the known bad right 4 is checked singly.
    assert_eq!(
        (stats.bisection_tests, stats.single_checks),
        (4, 4),
        "{stats:?}"
    );
}

/// A key holder's signature with chosen parts: secret scalar `a`, public point `a_point`
/// (which may carry a torsion component), nonce `r`, and `t` added to R.
fn sign_raw(a: Scalar, a_point: EdwardsPoint, r: Scalar, t: EdwardsPoint, msg: &[u8]) -> Case {
    let r_point = B * r + t;
    let r_bytes = r_point.compress().0;
    let key = a_point.compress().0;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key);
    h.update(msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    Case {
        key,
        msg: msg.to_vec(),
        sig,
    }
}

fn torsion() -> Vec<EdwardsPoint> {
    [
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ]
    .iter()
    .map(|h| CompressedEdwardsY(hex32(h)).decompress().unwrap())
    .collect()
}

fn scalar(seed: u8) -> Scalar {
    Scalar::from_bytes_mod_order([seed; 32])
}

fn ring_accepts(case: &Case) -> bool {
    use ring::signature::{ED25519, UnparsedPublicKey};
    UnparsedPublicKey::new(&ED25519, &case.key)
        .verify(&case.msg, &case.sig)
        .is_ok()
}

#[test]
fn r_plus_a_torsion_point_is_accepted_on_both_paths_and_ring_refuses_it() {
    let a = scalar(3);
    let mut built = Vec::new();
    for t in torsion() {
        let case = sign_raw(a, B * a, scalar(9), t, b"r plus t");
        assert_eq!(single(&case), Ok(true));
        assert!(!ring_accepts(&case), "ring is cofactorless");
        built.push(case);
    }
    assert_eq!(built.len(), 7);
    // Among honest neighbours, at every position.
    for case in &built {
        at_positions(case, &[1, 6, 31], true);
    }
    let mut stats = BatchStats::default();
    assert!(batch(&built, &mut stats).iter().all(|&v| v));
}

#[test]
fn a_mixed_order_key_is_admitted_and_its_honest_signatures_verify() {
    let a = scalar(5);
    for t in torsion() {
        let case = sign_raw(
            a,
            B * a + t,
            scalar(11),
            EdwardsPoint::default(),
            b"mixed key",
        );
        assert_eq!(single(&case), Ok(true), "{}", hex::encode(case.key));
        at_positions(&case, &[3, 20], false);
    }
}

#[test]
fn out_of_range_s_and_bad_r_encodings_are_rejected() {
    let kp = KeyPair::from_seed(&[4; 32]);
    let msg = b"edges".to_vec();
    let good = Case {
        key: *kp.public_key().as_bytes(),
        sig: kp.sign(&msg),
        msg,
    };
    assert_eq!(single(&good), Ok(true));
    let l: [u8; 32] = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut l_plus_1 = l;
    l_plus_1[0] += 1;
    let mut s_plus_l = Scalar::from_bytes_mod_order(good.sig[32..].try_into().unwrap()).to_bytes();
    // S + L as a 256-bit integer: the same residue, not canonical.
    let mut carry = 0u16;
    for (x, y) in s_plus_l.iter_mut().zip(l) {
        let sum = u16::from(*x) + u16::from(y) + carry;
        *x = sum as u8;
        carry = sum >> 8;
    }
    let mut high_bit = good.sig;
    high_bit[63] |= 0x80;
    let mut cases = Vec::new();
    for s in [l, l_plus_1, s_plus_l] {
        let mut c = good.clone();
        c.sig[32..].copy_from_slice(&s);
        cases.push(c);
    }
    cases.push(Case {
        sig: high_bit,
        ..good.clone()
    });
    // R with y >= p (p itself, an encoding of y = 0), x = 0 with the sign bit set, off the curve.
    let p = hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    let neg_zero = hex32("0100000000000000000000000000000000000000000000000000000000000080");
    let mut off = [0u8; 32];
    off[0] = 2; // y = 2 is not on the curve
    assert!(CompressedEdwardsY(off).decompress().is_none());
    for r in [p, neg_zero, off] {
        let mut c = good.clone();
        c.sig[..32].copy_from_slice(&r);
        cases.push(c);
    }
    for case in &cases {
        assert_eq!(single(case), Ok(false), "{}", hex::encode(case.sig));
        at_positions(case, &[2, 9], false);
    }
}

/// The wrong cofactored equation: [8]R + [8k mod L]A = [8S]B.
fn premultiplied(case: &Case) -> bool {
    let a = CompressedEdwardsY(case.key).decompress().unwrap();
    let r = CompressedEdwardsY(case.sig[..32].try_into().unwrap())
        .decompress()
        .unwrap();
    let s = Scalar::from_bytes_mod_order(case.sig[32..].try_into().unwrap());
    let mut h = Sha512::new();
    h.update(&case.sig[..32]);
    h.update(case.key);
    h.update(&case.msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let eight = Scalar::from(8u8);
    r.mul_by_cofactor() + a * (eight * k) == B * (eight * s)
}

#[test]
fn a_verifier_that_premultiplies_8k_fails_speccheck_5() {
    let case5 = &speccheck()[5];
    assert!(!premultiplied(case5), "the wrong equation rejects case 5");
    assert_eq!(single(case5), Ok(true), "the rule accepts it");
}

#[test]
fn admission_is_still_required_the_identity_key_takes_any_message() {
    // Under A = O, R = O, S = 0 satisfies the equation for every message: only admission stops it.
    let case = &speccheck()[0];
    assert!(matches!(
        PublicKey::admit(case.key),
        Err(KeyError::SmallOrder(_))
    ));
}

fn zebra(case: &Case) -> bool {
    let Ok(key) = ed25519_zebra::VerificationKey::try_from(case.key) else {
        return false;
    };
    key.verify(&ed25519_zebra::Signature::from_bytes(&case.sig), &case.msg)
        .is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Where the rule reaches the equation (an admitted key, a canonical R that is not of small
    /// order), it decides as ed25519-zebra's ZIP 215 equation does, singly and in a batch.
    #[test]
    fn the_rule_agrees_with_zebra_on_mutated_signatures(
        seed in 0u8..255,
        which in 0usize..3,
        at in 0usize..96,
        bit in 0u8..8,
        torsion_index in 0usize..8,
    ) {
        let kp = KeyPair::from_seed(&[seed; 32]);
        let msg = format!("message {seed}").into_bytes();
        let mut case = Case { key: *kp.public_key().as_bytes(), sig: kp.sign(&msg), msg };
        if torsion_index < 7 {
            // Start from a holder-built signature with a torsion point in R or A half the time.
            let t = torsion()[torsion_index];
            let a = scalar(seed);
            case = if seed % 2 == 0 {
                sign_raw(a, B * a, scalar(seed ^ 0x55), t, &case.msg)
            } else {
                sign_raw(a, B * a + t, scalar(seed ^ 0x55), EdwardsPoint::default(), &case.msg)
            };
        }
        match which {
            0 => case.sig[at % 64] ^= 1 << bit,
            1 => case.key[at % 32] ^= 1 << bit,
            _ => { let i = at % case.msg.len(); case.msg[i] ^= 1 << bit; }
        }
        if let Ok(key) = PublicKey::admit(case.key) {
            let r: [u8; 32] = case.sig[..32].try_into().unwrap();
            let r_ok = CompressedEdwardsY(r).decompress().is_some_and(|p| {
                p.compress().0 == r && !p.is_small_order()
            });
            let ours = verify_one(&VerifyingKey::new(&key), &[&case.msg], &case.sig);
            if r_ok {
                prop_assert_eq!(ours, zebra(&case));
            } else {
                prop_assert!(!ours);
            }
            let mut neighbours = honest(7, u64::from(seed));
            neighbours.insert(at % 8, case.clone());
            let mut stats = BatchStats::default();
            let verdicts = batch(&neighbours, &mut stats);
            prop_assert_eq!(verdicts[at % 8], ours);
            prop_assert!(verdicts.iter().enumerate().all(|(j, v)| j == at % 8 || *v));
        }
    }
}

#[test]
fn check_one_equals_prepare_then_single() {
    let cases = honest(3, 9);
    for c in &cases {
        let key = VerifyingKey::new(&PublicKey::admit(c.key).unwrap());
        let item = prepare(&key, &[&c.msg[..2], &c.msg[2..]], &c.sig).unwrap();
        assert!(check_one(&item), "message parts concatenate");
    }
}

fn zebra_oracle(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    zebra(&Case {
        key: *key,
        msg: msg.to_vec(),
        sig: *sig,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// The fuzz target `signature_rule` (fuzz/ runs it under libFuzzer) on inputs with a few
    /// flipped bits in the signature or key: the rule agrees with zebra, and batches with single.
    #[test]
    fn the_signature_fuzz_target_holds(
        seed in any::<[u8; 32]>(),
        flips in proptest::collection::vec((0usize..96, any::<u8>()), 0..3),
        msg in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut mask = [0u8; 96];
        for (at, bits) in flips {
            mask[at] ^= bits;
        }
        let data: Vec<u8> = seed.iter().chain(&mask).chain(&msg).copied().collect();
        let verdict = ipow::fuzz::signature_rule_against(&data, &zebra_oracle);
        prop_assert!(verdict.is_ok(), "{:?}", verdict);
        if mask == [0u8; 96] {
            prop_assert_eq!(verdict, Ok(true), "an honest signature verifies");
        }
    }
}
