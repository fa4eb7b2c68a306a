//! SHA-256 of many independent short messages at once: SHA-NI rounds of several messages
//! interleaved ("multi-buffer"), for Merkle leaves and nodes.
//!
//! # Why
//! One SHA-256 compression is a chain of 32 `sha256rnds2` instructions, each waiting for the one
//! before, so sha2's `compress256` (one message at a time) runs at the instruction's *latency*.
//! The CPU can start a new `sha256rnds2` more often than that; rounds of independent messages in
//! flight together fill those slots. A Merkle level is exactly many independent messages.
//!
//! # Safety
//! This module is the only `unsafe` code in ipow. The SHA-NI function is entered only after
//! `is_x86_feature_detected!` confirmed every feature its `#[target_feature]` names, and its
//! loads and stores go through pointers to `[u8; 64]` blocks and `[u32; 8]` states, which are at
//! least the 16 bytes each `_mm_loadu_si128`/`_mm_storeu_si128` touches (unaligned access is
//! what those intrinsics allow). Without SHA-NI, or off x86_64, the same functions fall back to
//! sha2's `compress256` one message at a time. Tests compare both paths with sha2's hasher.
#![allow(unsafe_code)]

use sha2::block_api::compress256;

/// SHA-256 initial hash value (FIPS 180-4, 5.3.3).
pub const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Messages hashed together. Measured on the 2-core AMD EPYC (SHA-NI) machine with the
/// `merkle_root_2^20` bench (root only, 1 thread, M compressions/s, limit / tree): 2 lanes
/// 42.1 / 33.1, 4 lanes 61.0 / 51.0, 6 lanes 57.7 / 50.8, 8 lanes 53.4 / 47.8 (register spills).
pub const LANES: usize = 4;

/// Compresses `blocks[lane]` (each lane's message, the same number of blocks in every lane)
/// into `states[lane]`, for `L` independent lanes.
pub fn compress_lanes<const L: usize>(states: &mut [[u32; 8]; L], blocks: &[&[[u8; 64]]; L]) {
    #[cfg(target_arch = "x86_64")]
    {
        if shani_available() {
            // SAFETY: the CPU has every feature `compress_lanes_shani` enables (checked above).
            unsafe { x86::compress_lanes_shani(states, blocks) };
            return;
        }
    }
    for (state, lane_blocks) in states.iter_mut().zip(blocks) {
        compress256(state, lane_blocks);
    }
}

/// RFC 6962 nodes of `LANES` pairs: `out[l] = SHA-256(0x01 || pairs[2l] || pairs[2l + 1])`.
/// `None` when SHA-NI is absent (the caller then hashes one node at a time).
pub fn node_hashes_lanes(pairs: &[[u8; 32]; 2 * LANES], out: &mut [[u8; 32]; LANES]) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    {
        if shani_available() {
            // SAFETY: the CPU has every feature the kernel enables (checked above).
            unsafe { x86::node_hashes_shani(pairs, out) };
            return Some(());
        }
    }
    let _ = (pairs, out);
    None
}

/// RFC 6962 leaves over 32 bytes: `out[l] = SHA-256(0x00 || data[l])`, `LANES` at a time.
/// `None` when SHA-NI is absent.
pub fn leaf_hashes_lanes(data: &[[u8; 32]; LANES], out: &mut [[u8; 32]; LANES]) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    {
        if shani_available() {
            // SAFETY: as above.
            unsafe { x86::leaf_hashes_shani(data, out) };
            return Some(());
        }
    }
    let _ = (data, out);
    None
}

/// True when the SHA-NI path is used on this CPU.
pub fn shani_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // std caches the CPUID answers, so this is a few loads.
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse2")
            && std::is_x86_feature_detected!("ssse3")
            && std::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// SHA-256 round constants (FIPS 180-4, 4.2.2).
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// The next four message-schedule words from the previous sixteen.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn schedule(w0: __m128i, w1: __m128i, w2: __m128i, w3: __m128i) -> __m128i {
        let t1 = _mm_sha256msg1_epu32(w0, w1);
        let t2 = _mm_alignr_epi8(w3, w2, 4);
        _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), w3)
    }

    /// Byte order of each 32-bit word reversed: big-endian message words in, digests out.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn bswap32_mask() -> __m128i {
        #[allow(clippy::cast_possible_wrap)]
        _mm_set_epi64x(
            0x0c0d_0e0f_0809_0a0b_u64 as i64,
            0x0405_0607_0001_0203_u64 as i64,
        )
    }

    /// A state `[a, b, ..., h]` in the ABEF/CDGH register layout `sha256rnds2` works on.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn to_abef_cdgh(dcba: __m128i, efgh: __m128i) -> (__m128i, __m128i) {
        let cdab = _mm_shuffle_epi32(dcba, 0xb1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1b);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xf0),
        )
    }

    /// Back from ABEF/CDGH to `[a, b, c, d]`, `[e, f, g, h]`.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn from_abef_cdgh(abef: __m128i, cdgh: __m128i) -> (__m128i, __m128i) {
        let feba = _mm_shuffle_epi32(abef, 0x1b);
        let dchg = _mm_shuffle_epi32(cdgh, 0xb1);
        (
            _mm_blend_epi16(feba, dchg, 0xf0),
            _mm_alignr_epi8(dchg, feba, 8),
        )
    }

    /// The initial hash value in ABEF/CDGH layout.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn iv() -> (__m128i, __m128i) {
        let w = |i: usize| super::SHA256_IV[i].cast_signed();
        to_abef_cdgh(
            _mm_set_epi32(w(3), w(2), w(1), w(0)),
            _mm_set_epi32(w(7), w(6), w(5), w(4)),
        )
    }

    /// One block for each of `L` lanes, rounds interleaved: `w[lane]` holds the block's first
    /// four message words (already in big-endian word order).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn block_lanes<const L: usize>(
        abef: &mut [__m128i; L],
        cdgh: &mut [__m128i; L],
        first: &[[__m128i; 4]; L],
    ) {
        let (abef_save, cdgh_save) = (*abef, *cdgh);
        let mut w = [[_mm_setzero_si128(); 16]; L];
        for lane in 0..L {
            w[lane][..4].copy_from_slice(&first[lane]);
        }
        for i in 0..16 {
            // `_mm_set_epi32` takes the highest lane first.
            let k = _mm_set_epi32(
                K[4 * i + 3].cast_signed(),
                K[4 * i + 2].cast_signed(),
                K[4 * i + 1].cast_signed(),
                K[4 * i].cast_signed(),
            );
            for lane in 0..L {
                if i >= 4 {
                    let wl = &mut w[lane];
                    wl[i] = schedule(wl[i - 4], wl[i - 3], wl[i - 2], wl[i - 1]);
                }
                let t1 = _mm_add_epi32(w[lane][i], k);
                cdgh[lane] = _mm_sha256rnds2_epu32(cdgh[lane], abef[lane], t1);
                let t2 = _mm_shuffle_epi32(t1, 0x0e);
                abef[lane] = _mm_sha256rnds2_epu32(abef[lane], cdgh[lane], t2);
            }
        }
        for lane in 0..L {
            abef[lane] = _mm_add_epi32(abef[lane], abef_save[lane]);
            cdgh[lane] = _mm_add_epi32(cdgh[lane], cdgh_save[lane]);
        }
    }

    /// Writes each lane's final state as its 32-byte big-endian digest.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn store_digests<const L: usize>(
        abef: &[__m128i; L],
        cdgh: &[__m128i; L],
        out: &mut [[u8; 32]; L],
    ) {
        let mask = bswap32_mask();
        for lane in 0..L {
            let (dcba, hgef) = from_abef_cdgh(abef[lane], cdgh[lane]);
            // SAFETY: a `[u8; 32]` holds two 16-byte words.
            unsafe {
                let p = out[lane].as_mut_ptr().cast::<__m128i>();
                _mm_storeu_si128(p, _mm_shuffle_epi8(dcba, mask));
                _mm_storeu_si128(p.add(1), _mm_shuffle_epi8(hgef, mask));
            }
        }
    }

    /// `L` independent SHA-256 compressions with their rounds interleaved.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn compress_lanes_shani<const L: usize>(
        states: &mut [[u32; 8]; L],
        blocks: &[&[[u8; 64]]; L],
    ) {
        let mask = bswap32_mask();
        let mut abef = [_mm_setzero_si128(); L];
        let mut cdgh = [_mm_setzero_si128(); L];
        for lane in 0..L {
            // SAFETY: a `[u32; 8]` is 32 bytes: two unaligned 16-byte loads stay inside it.
            let (dcba, efgh) = unsafe {
                let p = states[lane].as_ptr().cast::<__m128i>();
                (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
            };
            (abef[lane], cdgh[lane]) = to_abef_cdgh(dcba, efgh);
        }
        // Indexes every lane's slice at once, so a range is the clear form here.
        #[allow(clippy::needless_range_loop)]
        for block in 0..blocks[0].len() {
            let first: [[__m128i; 4]; L] = std::array::from_fn(|lane| {
                let p = blocks[lane][block].as_ptr().cast::<__m128i>();
                // SAFETY: a `[u8; 64]` block holds four 16-byte words.
                std::array::from_fn(|j| {
                    _mm_shuffle_epi8(unsafe { _mm_loadu_si128(p.add(j)) }, mask)
                })
            });
            block_lanes(&mut abef, &mut cdgh, &first);
        }
        for lane in 0..L {
            let (dcba, hgef) = from_abef_cdgh(abef[lane], cdgh[lane]);
            // SAFETY: as for the loads above.
            unsafe {
                let p = states[lane].as_mut_ptr().cast::<__m128i>();
                _mm_storeu_si128(p, dcba);
                _mm_storeu_si128(p.add(1), hgef);
            }
        }
    }

    /// RFC 6962 nodes, the padded blocks formed in registers from each 64-byte pair.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn node_hashes_shani<const L2: usize, const L: usize>(
        pairs: &[[u8; 32]; L2],
        out: &mut [[u8; 32]; L],
    ) {
        let mask = bswap32_mask();
        let prefix = _mm_slli_si128(_mm_cvtsi32_si128(0x01), 15); // byte 15 = 0x01
        let pad = _mm_cvtsi32_si128(0x80); // byte 0 = 0x80
        let (iv_abef, iv_cdgh) = iv();
        let mut abef = [iv_abef; L];
        let mut cdgh = [iv_cdgh; L];
        let mut second = [[_mm_setzero_si128(); 4]; L];
        debug_assert_eq!(L2, 2 * L);
        let base = pairs.as_ptr().cast::<__m128i>();
        let first: [[__m128i; 4]; L] = std::array::from_fn(|lane| {
            // SAFETY: the pointer covers the whole `[[u8; 32]; 2L]` array; pair `lane` is its
            // 16-byte words 4 lane .. 4 lane + 4, all inside it.
            let q: [__m128i; 4] =
                std::array::from_fn(|j| unsafe { _mm_loadu_si128(base.add(4 * lane + j)) });
            // Block 1 is 0x01 || bytes 0..63; block 2 is byte 63 || 0x80 || zeros || 520.
            second[lane] = [
                _mm_shuffle_epi8(_mm_alignr_epi8(pad, q[3], 15), mask),
                _mm_setzero_si128(),
                _mm_setzero_si128(),
                _mm_set_epi32(520, 0, 0, 0),
            ];
            [
                _mm_shuffle_epi8(_mm_alignr_epi8(q[0], prefix, 15), mask),
                _mm_shuffle_epi8(_mm_alignr_epi8(q[1], q[0], 15), mask),
                _mm_shuffle_epi8(_mm_alignr_epi8(q[2], q[1], 15), mask),
                _mm_shuffle_epi8(_mm_alignr_epi8(q[3], q[2], 15), mask),
            ]
        });
        block_lanes(&mut abef, &mut cdgh, &first);
        block_lanes(&mut abef, &mut cdgh, &second);
        store_digests(&abef, &cdgh, out);
    }

    /// RFC 6962 leaves over 32 bytes, one block each, formed in registers.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn leaf_hashes_shani<const L: usize>(
        data: &[[u8; 32]; L],
        out: &mut [[u8; 32]; L],
    ) {
        let mask = bswap32_mask();
        let pad = _mm_cvtsi32_si128(0x80);
        let (iv_abef, iv_cdgh) = iv();
        let mut abef = [iv_abef; L];
        let mut cdgh = [iv_cdgh; L];
        let first: [[__m128i; 4]; L] = std::array::from_fn(|lane| {
            // SAFETY: a `[u8; 32]` holds two 16-byte words.
            let d: [__m128i; 2] = std::array::from_fn(|j| unsafe {
                _mm_loadu_si128(data[lane].as_ptr().cast::<__m128i>().add(j))
            });
            // 0x00 || data || 0x80 || zeros || 264.
            [
                _mm_shuffle_epi8(_mm_slli_si128(d[0], 1), mask),
                _mm_shuffle_epi8(_mm_alignr_epi8(d[1], d[0], 15), mask),
                _mm_shuffle_epi8(_mm_alignr_epi8(pad, d[1], 15), mask),
                _mm_set_epi32(264, 0, 0, 0),
            ]
        });
        block_lanes(&mut abef, &mut cdgh, &first);
        store_digests(&abef, &cdgh, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn digest_of(state: &[u32; 8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (c, w) in out.chunks_exact_mut(4).zip(state) {
            c.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Pads `message` (at most 119 bytes) into two blocks.
    fn two_blocks(message: &[u8]) -> [[u8; 64]; 2] {
        let mut bytes = [0u8; 128];
        bytes[..message.len()].copy_from_slice(message);
        bytes[message.len()] = 0x80;
        bytes[120..].copy_from_slice(&(message.len() as u64 * 8).to_be_bytes());
        let mut blocks = [[0u8; 64]; 2];
        blocks[0].copy_from_slice(&bytes[..64]);
        blocks[1].copy_from_slice(&bytes[64..]);
        blocks
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)]
    fn lanes_equal_the_plain_hasher() {
        let messages: Vec<Vec<u8>> = (0..8u8)
            .map(|i| (0..64 + 7 * i as usize).map(|j| (j as u8) ^ i).collect())
            .collect();
        let padded: Vec<[[u8; 64]; 2]> = messages.iter().map(|m| two_blocks(m)).collect();
        let mut states = [SHA256_IV; 8];
        let blocks: [&[[u8; 64]]; 8] = std::array::from_fn(|i| &padded[i][..]);
        compress_lanes(&mut states, &blocks);
        for (state, message) in states.iter().zip(&messages) {
            assert_eq!(digest_of(state), <[u8; 32]>::from(Sha256::digest(message)));
        }
        // The register-formed RFC 6962 kernels against the plain hasher.
        let pairs: [[u8; 32]; 2 * LANES] =
            std::array::from_fn(|i| <[u8; 32]>::from(Sha256::digest([i as u8])));
        let mut nodes = [[0u8; 32]; LANES];
        let mut leaves = [[0u8; 32]; LANES];
        let data: [[u8; 32]; LANES] = std::array::from_fn(|i| pairs[i]);
        if node_hashes_lanes(&pairs, &mut nodes).is_some() {
            leaf_hashes_lanes(&data, &mut leaves).unwrap();
            for l in 0..LANES {
                let node: Vec<u8> = [&[1u8][..], &pairs[2 * l], &pairs[2 * l + 1]].concat();
                assert_eq!(nodes[l], <[u8; 32]>::from(Sha256::digest(node)));
                let leaf: Vec<u8> = [&[0u8][..], &data[l]].concat();
                assert_eq!(leaves[l], <[u8; 32]>::from(Sha256::digest(leaf)));
            }
        }
        let mut two = [SHA256_IV; 2];
        compress_lanes(&mut two, &[&padded[0][..], &padded[1][..]]);
        assert_eq!(two[1], states[1]);
    }
}
