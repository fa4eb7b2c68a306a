//! Whether every public key of a list lies on the Ed25519 curve, decided for the whole list at
//! once: a few multiplications per key and 128 Legendre symbols in all, where deciding each key
//! alone costs a field exponentiation per key (admitting a dataset's 10,000 member keys one by
//! one was about half of its loading time).
//!
//! The rule. A canonical encoding (y < p, see `crypto`) of a y other than ±1 names a curve point
//! exactly when (y² − 1) / (d y² + 1) is a square mod p (the equation −x² + y² = 1 + d x² y²
//! solved for x²), that is when the Legendre symbol χ(a) = 1 for a = (y² − 1)(d y² + 1). Here
//! a ≠ 0: y² ≠ 1, and d y² + 1 ≠ 0 because −1/d is not a square. χ is multiplicative, so the
//! product of any subset of the a's is a square when every a is. When some a's are not, a subset
//! drawn uniformly holds an odd number of them with probability exactly 1/2, so the products of
//! 128 independent subsets are all squares with probability 2^-128.
//!
//! The subsets are drawn from SHA-256 of the whole list, so they are fixed by the list (the same
//! answer on every run and thread count, because every product is exact) and are not chosen by
//! whoever wrote it: to slip an off-curve key past this check they would have to find a list
//! whose hash draws 128 even subsets, 2^128 tries. Even then nothing is forged: ring refuses to
//! decode such a key, so every signature under it fails verification. The exact per-key rule is
//! `PublicKey::admit`; `crypto::keys::admit_all` falls back to it to name the first bad key.

use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Independent random subsets whose products are tested: the chance that an off-curve key goes
/// unnoticed is 2^-SUBSETS.
const SUBSETS: usize = 128;
/// Keys per block: each block's 16 subset products are tabulated once, and each subset then
/// takes one multiplication per block (4 bits of its membership pick the table entry).
const BLOCK: usize = 4;
/// Blocks per parallel task.
const BLOCKS_PER_TASK: usize = 64;
/// Domain tag of the hash that draws the subsets.
const SUBSET_TAG: &[u8] = b"ipow/key-batch-subsets/v1";

/// True when every encoding names a curve point, except with probability 2^-128 when some does
/// not (see the module documentation). Every encoding must be canonical with y ≠ ±1 (its top
/// bit, the sign of x, is ignored): callers check that first from the bytes.
pub fn all_on_curve(encodings: &[[u8; 32]]) -> bool {
    if encodings.is_empty() {
        return true;
    }
    let mut hasher = Sha256::new();
    hasher.update(SUBSET_TAG);
    hasher.update((encodings.len() as u64).to_le_bytes());
    for e in encodings {
        hasher.update(e);
    }
    let seed: [u8; 32] = hasher.finalize().into();
    let products = encodings
        .par_chunks(BLOCK * BLOCKS_PER_TASK)
        .enumerate()
        .map(|(task, part)| {
            let mut products = [Fe::ONE; SUBSETS];
            for (i, block) in part.chunks(BLOCK).enumerate() {
                let index = (task * BLOCKS_PER_TASK + i) as u64;
                fold_block(&seed, index, block, &mut products);
            }
            products
        })
        .reduce(
            || [Fe::ONE; SUBSETS],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b.iter()) {
                    *x = x.mul(y);
                }
                a
            },
        );
    products.par_iter().all(|p| p.legendre() == 1)
}

/// a = (y² − 1)(d y² + 1) for the y of an encoding.
fn curve_ratio_product(encoding: &[u8; 32]) -> Fe {
    let y = Fe::from_bytes(encoding);
    let yy = y.square();
    yy.sub(&Fe::ONE).mul(&Fe::D.mul(&yy).add(&Fe::ONE))
}

/// Multiplies block `index`'s contribution into each subset's product: the block's a's are
/// tabulated over all 16 sub-blocks, and subset s takes the entry its 4 membership bits name
/// (nibble s of SHA-256(seed || index || 0) || SHA-256(seed || index || 1)). A short last block
/// is padded with a = 1, which changes no product.
fn fold_block(seed: &[u8; 32], index: u64, block: &[[u8; 32]], products: &mut [Fe; SUBSETS]) {
    let mut table = [Fe::ONE; 1 << BLOCK];
    for (j, encoding) in block.iter().enumerate() {
        let a = curve_ratio_product(encoding);
        let bit = 1 << j;
        table[bit] = a;
        for low in 1..bit {
            table[bit | low] = table[low].mul(&a);
        }
    }
    let mut bits = [0u8; 2 * 32];
    for (half, out) in [0u8, 1].into_iter().zip(bits.chunks_mut(32)) {
        let mut hasher = Sha256::new();
        hasher.update(seed);
        hasher.update(index.to_le_bytes());
        hasher.update([half]);
        out.copy_from_slice(&hasher.finalize());
    }
    for (s, product) in products.iter_mut().enumerate() {
        let mask = (bits[s / 2] >> (4 * (s % 2))) & 0x0f;
        if mask != 0 {
            *product = product.mul(&table[usize::from(mask)]);
        }
    }
}

/// Low 51 bits.
const MASK: u64 = (1 << 51) - 1;

/// An element of GF(2^255 − 19) in five 51-bit limbs, little-endian. Limbs stay below 2^52
/// between operations (every operation's result is carried), which keeps every product sum of
/// [`Fe::mul`] below 2^112.
#[derive(Clone, Copy, Debug)]
struct Fe([u64; 5]);

impl Fe {
    const ONE: Fe = Fe([1, 0, 0, 0, 0]);
    /// The curve constant d = −121665/121666 (checked against that definition in the tests).
    const D: Fe = Fe([
        929_955_233_495_203,
        466_365_720_129_213,
        1_662_059_464_998_953,
        2_033_849_074_728_123,
        1_442_794_654_840_575,
    ]);

    /// The value of the low 255 bits of `bytes` (little-endian); the top bit is ignored.
    fn from_bytes(bytes: &[u8; 32]) -> Fe {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[8 * i..8 * i + 8]);
            u64::from_le_bytes(w)
        };
        let (w0, w1, w2, w3) = (word(0), word(1), word(2), word(3));
        Fe([
            w0 & MASK,
            ((w0 >> 51) | (w1 << 13)) & MASK,
            ((w1 >> 38) | (w2 << 26)) & MASK,
            ((w2 >> 25) | (w3 << 39)) & MASK,
            (w3 >> 12) & MASK,
        ])
    }

    /// Carries every limb into the next (the top one times 19 into the bottom: 2^255 = 19).
    fn carried(mut c: [u128; 5]) -> Fe {
        for i in 0..4 {
            c[i + 1] += c[i] >> 51;
            c[i] &= u128::from(MASK);
        }
        c[0] += (c[4] >> 51) * 19;
        c[4] &= u128::from(MASK);
        c[1] += c[0] >> 51;
        c[0] &= u128::from(MASK);
        // Each limb is now below 2^51 except limb 1, below 2^51 + 2^17; all fit in u64.
        Fe(c.map(|v| u64::try_from(v).unwrap_or(u64::MAX)))
    }

    fn add(&self, other: &Fe) -> Fe {
        let mut c = [0u128; 5];
        for (i, c) in c.iter_mut().enumerate() {
            *c = u128::from(self.0[i]) + u128::from(other.0[i]);
        }
        Fe::carried(c)
    }

    /// self − other, computed as self + 4p − other (4p's limbs exceed any limb below 2^52).
    fn sub(&self, other: &Fe) -> Fe {
        const FOUR_P: [u64; 5] = [4 * ((1 << 51) - 19), 4 * MASK, 4 * MASK, 4 * MASK, 4 * MASK];
        let mut c = [0u128; 5];
        for (i, c) in c.iter_mut().enumerate() {
            *c = u128::from(self.0[i]) + u128::from(FOUR_P[i]) - u128::from(other.0[i]);
        }
        Fe::carried(c)
    }

    fn mul(&self, other: &Fe) -> Fe {
        // Limbs below 2^52 make every sum below 5 x 2^52 x 19 x 2^52 < 2^110.3, so the top
        // carry is below 2^59.3 and 19 times it fits a u64 (curve25519-dalek's argument).
        let wide = |x: u64, y: u64| u128::from(x) * u128::from(y);
        let (a, b) = (&self.0, &other.0);
        let b19 = b.map(|v| v * 19);
        let c0 = wide(a[0], b[0])
            + wide(a[1], b19[4])
            + wide(a[2], b19[3])
            + wide(a[3], b19[2])
            + wide(a[4], b19[1]);
        let c1 = wide(a[0], b[1])
            + wide(a[1], b[0])
            + wide(a[2], b19[4])
            + wide(a[3], b19[3])
            + wide(a[4], b19[2]);
        let c2 = wide(a[0], b[2])
            + wide(a[1], b[1])
            + wide(a[2], b[0])
            + wide(a[3], b19[4])
            + wide(a[4], b19[3]);
        let c3 = wide(a[0], b[3])
            + wide(a[1], b[2])
            + wide(a[2], b[1])
            + wide(a[3], b[0])
            + wide(a[4], b19[4]);
        let c4 = wide(a[0], b[4])
            + wide(a[1], b[3])
            + wide(a[2], b[2])
            + wide(a[3], b[1])
            + wide(a[4], b[0]);
        // The low 64 bits of each sum, then the carries (each below 2^64).
        let low = |c: u128| u64::try_from(c & u128::from(MASK)).unwrap_or(0);
        let high = |c: u128| u64::try_from(c >> 51).unwrap_or(u64::MAX);
        let c1 = c1 + u128::from(high(c0));
        let c2 = c2 + u128::from(high(c1));
        let c3 = c3 + u128::from(high(c2));
        let c4 = c4 + u128::from(high(c3));
        let mut out = [low(c0), low(c1), low(c2), low(c3), low(c4)];
        out[0] += high(c4) * 19;
        out[1] += out[0] >> 51;
        out[0] &= MASK;
        Fe(out)
    }

    fn square(&self) -> Fe {
        self.mul(self)
    }

    fn square_times(&self, n: u32) -> Fe {
        let mut r = *self;
        for _ in 0..n {
            r = r.square();
        }
        r
    }

    /// The canonical representative, in limbs below 2^51 (the value reduced below p).
    fn reduced(&self) -> [u64; 5] {
        // After one carry every limb is below 2^51 except limb 1 (below 2^51 + 2^15), so the
        // value h is below 2^255 + 2^66 < 2p: h >= p exactly when h + 19 carries out of bit
        // 255, which the chain finds limb by limb (q is 0 or 1).
        let mut l = Fe::carried(self.0.map(u128::from)).0;
        let mut q = (l[0] + 19) >> 51;
        for limb in &l[1..] {
            q = (limb + q) >> 51;
        }
        // h - q p = h + 19 q - q 2^255: add 19 q, carry, and drop bit 255.
        l[0] += 19 * q;
        for i in 0..4 {
            l[i + 1] += l[i] >> 51;
            l[i] &= MASK;
        }
        l[4] &= MASK;
        l
    }

    /// The Legendre symbol: 1 for a non-zero square, −1 for a non-square, 0 for zero, as
    /// self^((p − 1)/2) with (p − 1)/2 = 2^254 − 10.
    fn legendre(&self) -> i8 {
        let z = *self;
        // z^(2^250 − 1) by the usual chain (ref10's pow22501).
        let z2 = z.square();
        let z9 = z2.square_times(2).mul(&z);
        let z11 = z9.mul(&z2);
        let z_5 = z11.square().mul(&z9); // z^(2^5 − 1)
        let z_10 = z_5.square_times(5).mul(&z_5);
        let z_20 = z_10.square_times(10).mul(&z_10);
        let z_40 = z_20.square_times(20).mul(&z_20);
        let z_50 = z_40.square_times(10).mul(&z_10);
        let z_100 = z_50.square_times(50).mul(&z_50);
        let z_200 = z_100.square_times(100).mul(&z_100);
        let z_250 = z_200.square_times(50).mul(&z_50);
        // z^(2^254 − 16) · z^6.
        let z6 = z2.square().mul(&z2);
        let r = z_250.square_times(4).mul(&z6).reduced();
        if r == [1, 0, 0, 0, 0] {
            1
        } else if r == [0; 5] {
            0
        } else {
            -1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    /// SplitMix64, enough to draw test inputs.
    fn draws(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    fn random_bytes(next: &mut impl FnMut() -> u64) -> [u8; 32] {
        let mut b = [0u8; 32];
        for w in b.chunks_mut(8) {
            w.copy_from_slice(&next().to_le_bytes());
        }
        b
    }

    /// A small integer.
    fn fe(v: u64) -> Fe {
        Fe([v & MASK, v >> 51, 0, 0, 0])
    }

    fn neg(a: &Fe) -> Fe {
        fe(0).sub(a)
    }

    #[test]
    fn d_is_minus_121665_over_121666() {
        // d · 121666 + 121665 = 0 mod p.
        let zero = Fe::D.mul(&fe(121_666)).add(&fe(121_665)).reduced();
        assert_eq!(zero, [0; 5]);
    }

    #[test]
    fn legendre_of_known_values() {
        // p = 5 mod 8: −1 is a square, 2 is not; d is not a square (the addition law is
        // complete because of it); 0 is 0.
        assert_eq!(fe(1).legendre(), 1);
        assert_eq!(fe(4).legendre(), 1);
        assert_eq!(neg(&fe(1)).legendre(), 1);
        assert_eq!(fe(2).legendre(), -1);
        assert_eq!(neg(&fe(2)).legendre(), -1);
        assert_eq!(Fe::D.legendre(), -1);
        assert_eq!(fe(0).legendre(), 0);
        // p itself, written in the 255 bits, is zero.
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert_eq!(Fe::from_bytes(&p).legendre(), 0);
    }

    #[test]
    fn legendre_is_multiplicative_and_squares_are_squares() {
        let mut next = draws(7);
        for _ in 0..200 {
            let a = Fe::from_bytes(&random_bytes(&mut next));
            let b = Fe::from_bytes(&random_bytes(&mut next));
            let (la, lb) = (a.legendre(), b.legendre());
            assert_eq!(a.mul(&b).legendre(), la * lb);
            assert_eq!(a.square().legendre(), 1);
            // (a − b) + b = a, reduced.
            assert_eq!(a.sub(&b).add(&b).reduced(), a.reduced());
        }
    }

    #[test]
    fn reduction_is_canonical_at_the_edges() {
        // p − 1, p, p + 1 and 2^255 − 1 (= 18), each written in the 255 bits.
        let mut bytes = [0xffu8; 32];
        bytes[31] = 0x7f;
        for (low, expected) in [
            (0xec, None),
            (0xed, Some(0)),
            (0xee, Some(1)),
            (0xff, Some(18)),
        ] {
            bytes[0] = low;
            let r = Fe::from_bytes(&bytes).reduced();
            match expected {
                Some(v) => assert_eq!(r, [v, 0, 0, 0, 0]),
                None => assert_eq!(r, [MASK - 19, MASK, MASK, MASK, MASK]),
            }
        }
    }

    /// The Legendre rule for one key agrees with curve25519-dalek's decompression on canonical
    /// y's: random ones (about half are on the curve) and the y's next to ±1.
    #[test]
    fn the_rule_for_one_key_agrees_with_decompression() {
        let mut next = draws(11);
        let (mut on, mut off) = (0, 0);
        for i in 0..4000 {
            let mut bytes = random_bytes(&mut next);
            bytes[31] &= 0x7f;
            if i < 4 {
                bytes = [0; 32];
                bytes[0] = [0, 2, 3, 5][i];
            }
            let ours = curve_ratio_product(&bytes).legendre() == 1;
            let dalek = CompressedEdwardsY(bytes).decompress().is_some();
            assert_eq!(ours, dalek, "y = {}", hex::encode(bytes));
            if ours {
                on += 1;
            } else {
                off += 1;
            }
        }
        assert!(on > 1000 && off > 1000, "{on} on the curve, {off} off");
    }

    #[test]
    fn a_list_with_any_off_curve_key_is_refused() {
        let mut next = draws(13);
        let mut on_curve = Vec::new();
        let mut off_curve = Vec::new();
        while on_curve.len() < 300 || off_curve.len() < 10 {
            let mut bytes = random_bytes(&mut next);
            bytes[31] &= 0x7f;
            if CompressedEdwardsY(bytes).decompress().is_some() {
                on_curve.push(bytes);
            } else {
                off_curve.push(bytes);
            }
        }
        on_curve.truncate(300);
        assert!(all_on_curve(&on_curve));
        assert!(all_on_curve(&on_curve[..1]));
        assert!(all_on_curve(&[]));
        // One, two or three bad keys anywhere (first, last, inside a block, across blocks): an
        // even number of them in one subset must not hide them.
        for bad in [1usize, 2, 3] {
            for at in [0usize, 1, 5, 150, 298] {
                let mut list = on_curve.clone();
                for k in 0..bad {
                    let n = list.len();
                    list[(at + 37 * k) % n] = off_curve[k];
                }
                assert!(!all_on_curve(&list), "{bad} bad at {at}");
            }
        }
        assert!(!all_on_curve(&off_curve[..1]));
        assert!(!all_on_curve(&off_curve[..2]));
    }
}
