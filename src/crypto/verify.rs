//! Ed25519 verification under one cofactored acceptance rule, one signature at a time or in
//! batches whose verdicts are exact.
//!
//! **The rule.** A signature (R ‖ S) on message M verifies under key A exactly when:
//! 1. A passed key admission ([`PublicKey::admit`]: canonical, on the curve, not of small order;
//!    keys of mixed order are admitted);
//! 2. S < L (the canonical encoding of a scalar; a set high bit is refused);
//! 3. the R bytes are the canonical encoding of a point (y < p, no negative zero x), are not one
//!    of the 8 encodings of a small-order point, and decompress;
//! 4. [8]([S]B − R − [k]A) = O with k = SHA-512(R ‖ A ‖ M) mod L, the cofactor 8 applied to the
//!    final point (pre-multiplying 8k mod L instead is wrong when A has a torsion component).
//!
//! A batch of n signatures passes when [8](Σ zᵢ([Sᵢ]B − Rᵢ − [kᵢ]Aᵢ)) = O for 128-bit zᵢ drawn
//! from SHA-512 of the batch's items. If every item verifies, every term is a torsion point and
//! the batch passes: a valid batch always passes. If an item fails the equation, its term has a
//! non-torsion part and the batch passes with probability at most 2^-128 over the zᵢ (the ZIP 215
//! argument). That is why the rule multiplies by the cofactor: with the cofactorless equation a
//! signature whose R carries a torsion point fails alone but can pass in a batch, depending on
//! its neighbours. Checks 2 and 3 are decided from the bytes, before any equation, so they never
//! depend on a batch either.
//!
//! A failed batch is bisected: the left half is tested; if it passes, the right half is known
//! bad and is split without being tested; pieces of [`SINGLE_UP_TO`] or fewer signatures are
//! checked one by one. So every signature a batch names bad has failed the single check, and
//! every one it names good was in a passing equation (or passed the single check).
//!
//! The zᵢ are a hash of the items, not of a random source: the same batch gives the same
//! equation on every run and thread count, and whoever writes a signature cannot choose them
//! without also changing them. Honest signatures (ring's: R = [r]B of prime order, S < L)
//! verify under this rule exactly as under ring's cofactorless one.

use std::sync::LazyLock;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{
    IsIdentity, VartimeMultiscalarMul, VartimePrecomputedMultiscalarMul,
};
use serde::Serialize;
use sha2::{Digest, Sha512};

use super::keys::{PublicKey, Signature, canonical_encoding, is_small_order_encoding};

/// Pieces of a failed batch of at most this many signatures are checked one by one.
pub const SINGLE_UP_TO: usize = 4;

/// Signatures per batch unless a run says otherwise: near the best from 0% to 3% bad signatures
/// (perf/README, signatures).
pub const DEFAULT_BATCH: usize = 32;

/// Most signatures per batch a run may ask for.
pub const MAX_BATCH: usize = 1 << 16;

/// Refuses a batch size outside 1..=[`MAX_BATCH`].
pub fn check_batch(signatures: usize) -> Result<(), String> {
    if (1..=MAX_BATCH).contains(&signatures) {
        Ok(())
    } else {
        Err(format!(
            "--signature-batch {signatures} is outside 1..={MAX_BATCH}"
        ))
    }
}

/// Domain tag of the hash the batch multipliers come from.
const BATCH_TAG: &[u8] = b"ipow/ed25519-batch/v1";

/// The base point, with its tables for the batch equation, built once.
static BASE: LazyLock<VartimeEdwardsPrecomputation> =
    LazyLock::new(|| VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT]));

/// An admitted key with its point decompressed once, ready for equations. `None` when the bytes
/// do not decompress: only a key that slipped through the list admission's 2^-128 chance could
/// be one, and every signature under it fails.
#[derive(Clone, Copy, Debug)]
pub struct VerifyingKey {
    bytes: [u8; 32],
    point: Option<EdwardsPoint>,
}

impl VerifyingKey {
    /// Decompresses an admitted key (one field exponentiation).
    pub fn new(key: &PublicKey) -> Self {
        let bytes = *key.as_bytes();
        Self {
            bytes,
            point: CompressedEdwardsY(bytes).decompress(),
        }
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

/// One signature with everything its equation needs computed once: S, R's point and k.
#[derive(Clone, Copy, Debug)]
pub struct Item<'k> {
    key: &'k [u8; 32],
    a: &'k EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Prepares one signature over the concatenation of `message_parts`: `None` when the rule
/// refuses it before any equation (S ≥ L, R non-canonical, small-order or off the curve, or a
/// key that does not decompress).
pub fn prepare<'k>(
    key: &'k VerifyingKey,
    message_parts: &[&[u8]],
    signature: &Signature,
) -> Option<Item<'k>> {
    let a = key.point.as_ref()?;
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    if !canonical_encoding(&r_bytes) || is_small_order_encoding(&r_bytes) {
        return None;
    }
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key.bytes);
    for part in message_parts {
        h.update(part);
    }
    let wide: [u8; 64] = h.finalize().into();
    Some(Item {
        key: &key.bytes,
        a,
        r,
        s,
        k: Scalar::from_bytes_mod_order_wide(&wide),
    })
}

/// The single check: [8]([S]B − R − [k]A) = O.
pub fn check_one(item: &Item<'_>) -> bool {
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&-item.k, item.a, &item.s);
    (sb_minus_ka - item.r).mul_by_cofactor().is_identity()
}

/// Verifies one signature under the rule (prepare, then the single check).
pub fn verify_one(key: &VerifyingKey, message_parts: &[&[u8]], signature: &Signature) -> bool {
    prepare(key, message_parts, signature).is_some_and(|item| check_one(&item))
}

/// What batch verification did: the equations it ran and the signatures it checked singly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    /// Signatures given to [`verify_batch`] (each counted once).
    pub signatures: u64,
    /// Signatures refused before any equation (S, R or key).
    pub refused_early: u64,
    /// Batches given to [`verify_batch`] with at least one prepared signature.
    pub batches: u64,
    /// Batch equations run while bisecting a failed batch.
    pub bisection_tests: u64,
    /// Single checks run (pieces of at most [`SINGLE_UP_TO`] of a failed batch).
    pub single_checks: u64,
    /// Batches by size in prepared signatures: 1, 2-3, 4-7, ..., 512-1023, 1024 and more (in
    /// JSON, a map from each non-empty bucket's label to its count).
    #[serde(serialize_with = "sizes_by_label")]
    pub sizes: [u64; SIZE_BUCKETS],
}

/// Buckets of [`BatchStats::sizes`].
pub const SIZE_BUCKETS: usize = 11;

impl BatchStats {
    /// Adds another count to this one.
    pub fn add(&mut self, other: &BatchStats) {
        self.signatures += other.signatures;
        self.refused_early += other.refused_early;
        self.batches += other.batches;
        self.bisection_tests += other.bisection_tests;
        self.single_checks += other.single_checks;
        for (a, b) in self.sizes.iter_mut().zip(other.sizes) {
            *a += b;
        }
    }

    /// The label of size bucket `i` ("1", "2-3", ..., "1024+").
    pub fn size_label(i: usize) -> String {
        match i {
            0 => "1".to_string(),
            i if i + 1 >= SIZE_BUCKETS => format!("{}+", 1usize << i),
            i => format!("{}-{}", 1usize << i, (2usize << i) - 1),
        }
    }
}

fn sizes_by_label<S: serde::Serializer>(
    sizes: &[u64; SIZE_BUCKETS],
    out: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = out.serialize_map(None)?;
    for (i, n) in sizes.iter().enumerate().filter(|(_, n)| **n > 0) {
        map.serialize_entry(&BatchStats::size_label(i), n)?;
    }
    map.end()
}

fn size_bucket(n: usize) -> usize {
    let log2 = n.max(1).ilog2() as usize; // at most 63: the cast cannot truncate
    log2.min(SIZE_BUCKETS - 1)
}

/// Verifies a batch of prepared signatures (`None` are refused ones) and writes each verdict to
/// `verdicts`: exactly the single check's verdicts (see the module doc).
///
/// # Panics
///
/// When `verdicts` is not as long as `items` (a caller's bug, not an input's).
pub fn verify_batch(items: &[Option<Item<'_>>], verdicts: &mut [bool], stats: &mut BatchStats) {
    assert_eq!(items.len(), verdicts.len(), "one verdict per item");
    stats.signatures += items.len() as u64;
    let mut ready: Vec<(usize, Item<'_>)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        verdicts[i] = false;
        match item {
            Some(item) => ready.push((i, *item)),
            None => stats.refused_early += 1,
        }
    }
    if ready.is_empty() {
        return;
    }
    stats.batches += 1;
    stats.sizes[size_bucket(ready.len())] += 1;
    if ready.len() <= SINGLE_UP_TO {
        single(&ready, verdicts, stats);
        return;
    }
    if equation(&ready) {
        for &(i, _) in &ready {
            verdicts[i] = true;
        }
        return;
    }
    bisect(&ready, verdicts, stats);
}

/// Names the bad signatures of a piece known to fail its equation.
fn bisect(bad: &[(usize, Item<'_>)], verdicts: &mut [bool], stats: &mut BatchStats) {
    if bad.len() <= SINGLE_UP_TO {
        single(bad, verdicts, stats);
        return;
    }
    let (left, right) = bad.split_at(bad.len() / 2);
    stats.bisection_tests += 1;
    if equation(left) {
        for &(i, _) in left {
            verdicts[i] = true;
        }
        bisect(right, verdicts, stats);
        return;
    }
    bisect(left, verdicts, stats);
    if right.len() <= SINGLE_UP_TO {
        single(right, verdicts, stats);
        return;
    }
    stats.bisection_tests += 1;
    if equation(right) {
        for &(i, _) in right {
            verdicts[i] = true;
        }
    } else {
        bisect(right, verdicts, stats);
    }
}

fn single(items: &[(usize, Item<'_>)], verdicts: &mut [bool], stats: &mut BatchStats) {
    for (i, item) in items {
        stats.single_checks += 1;
        verdicts[*i] = check_one(item);
    }
}

/// [8](Σ zᵢ([Sᵢ]B − Rᵢ − [kᵢ]Aᵢ)) = O, the zᵢ from SHA-512 of the items (k binds R, A and M;
/// S is added). Terms under the same key are one term (Σ zᵢkᵢ)A: a batch of contracts repeats
/// keys (a transmission company signs many). Below [`PIPPENGER_FROM`] points the base point's
/// table serves (Straus); from there on Pippenger's buckets are faster.
fn equation(items: &[(usize, Item<'_>)]) -> bool {
    let zs = multipliers(items);
    let b_scalar: Scalar = items.iter().zip(&zs).map(|((_, it), z)| z * it.s).sum();
    let mut a_terms: Vec<(&[u8; 32], &EdwardsPoint, Scalar)> = items
        .iter()
        .zip(&zs)
        .map(|((_, it), z)| (it.key, it.a, -(z * it.k)))
        .collect();
    a_terms.sort_unstable_by(|x, y| x.0.cmp(y.0));
    a_terms.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.2 += later.2;
        }
        same
    });
    let scalars = zs.iter().map(|z| -z).chain(a_terms.iter().map(|t| t.2));
    let points = items
        .iter()
        .map(|(_, it)| it.r)
        .chain(a_terms.iter().map(|t| *t.1));
    let sum = if items.len() + a_terms.len() + 1 < PIPPENGER_FROM {
        BASE.vartime_mixed_multiscalar_mul([b_scalar], scalars, points)
    } else {
        EdwardsPoint::vartime_multiscalar_mul(
            std::iter::once(b_scalar).chain(scalars),
            std::iter::once(ED25519_BASEPOINT_POINT).chain(points),
        )
    };
    sum.mul_by_cofactor().is_identity()
}

/// Points from which curve25519-dalek's multiscalar multiplication switches to Pippenger.
const PIPPENGER_FROM: usize = 190;

/// 128-bit multipliers, four per SHA-512 block of (tag ‖ digest of the items ‖ counter).
fn multipliers(items: &[(usize, Item<'_>)]) -> Vec<Scalar> {
    let mut h = Sha512::new();
    h.update(BATCH_TAG);
    h.update((items.len() as u64).to_le_bytes());
    for (_, it) in items {
        h.update(it.k.as_bytes());
        h.update(it.s.as_bytes());
    }
    let seed: [u8; 64] = h.finalize().into();
    let mut zs = Vec::with_capacity(items.len());
    let mut counter = 0u64;
    while zs.len() < items.len() {
        let mut h = Sha512::new();
        h.update(seed);
        h.update(counter.to_le_bytes());
        let block: [u8; 64] = h.finalize().into();
        for chunk in block.chunks_exact(16) {
            let mut z = [0u8; 32];
            z[..16].copy_from_slice(chunk);
            zs.push(Scalar::from_bytes_mod_order(z));
        }
        counter += 1;
    }
    zs.truncate(items.len());
    zs
}

/// Which curve25519-dalek backend runs the equations on this CPU, and whether it was compiled
/// in: "avx512ifma", "avx2" or "serial". The AVX-512 IFMA backend exists only when the build
/// sets `--cfg curve25519_dalek_backend="avx512"` (`.cargo/config.toml` does; a `RUSTFLAGS`
/// variable replaces it and the backend silently disappears).
pub fn backend() -> Backend {
    let compiled_avx512 = cfg!(curve25519_dalek_backend = "avx512");
    #[cfg(target_arch = "x86_64")]
    let (ifma, avx2) = (
        std::arch::is_x86_feature_detected!("avx512ifma")
            && std::arch::is_x86_feature_detected!("avx512vl"),
        std::arch::is_x86_feature_detected!("avx2"),
    );
    #[cfg(not(target_arch = "x86_64"))]
    let (ifma, avx2) = (false, false);
    let running = if compiled_avx512 && ifma {
        "avx512ifma"
    } else if cfg!(target_arch = "x86_64") && avx2 {
        "avx2"
    } else {
        "serial"
    };
    Backend {
        running,
        avx512_compiled_in: compiled_avx512,
        cpu_has_avx512ifma: ifma,
    }
}

/// The curve backend of this build on this CPU (see [`backend`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Backend {
    /// The backend the equations run on.
    pub running: &'static str,
    /// Whether the AVX-512 IFMA backend was compiled in.
    pub avx512_compiled_in: bool,
    /// Whether this CPU has AVX-512 IFMA and VL.
    pub cpu_has_avx512ifma: bool,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (AVX-512 IFMA backend {}compiled in, CPU {} avx512ifma)",
            self.running,
            if self.avx512_compiled_in { "" } else { "not " },
            if self.cpu_has_avx512ifma {
                "has"
            } else {
                "lacks"
            },
        )
    }
}

/// The acceptance rule in one line, for reports.
pub const RULE: &str = "cofactored Ed25519: admitted key, S < L, canonical non-small-order R, \
                        [8]([S]B - R - [k]A) = O; batches bisected to exact verdicts";
