//! Plain proof of work, tuned the way an honest CPU miner is tuned.
//!
//! The miner validates every pending transaction once (the same checks an IPOW validator runs),
//! seals the valid ones, and searches for a nonce with SHA-256(header || nonce) below the
//! target 2^(256 - difficulty_bits), that is, a hash with at least `difficulty_bits` leading zero
//! bits.
//!
//! The search: the 128-byte header is two SHA-256 blocks that never change during the search, so
//! they are compressed once into a midstate; each try then costs exactly one compression (the
//! last block holds the 8-byte nonce and the padding). Four nonces are hashed at a time with
//! their SHA-NI rounds interleaved (`sha_lanes`), and every core searches. Workers take chunks of
//! nonces in order from a shared counter and stop once a solution is known in an earlier chunk,
//! so the result is the *smallest* valid nonce: the same block whatever the thread count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;
use sha2::block_api::compress256;

use super::{
    Consensus, Decision, Outcome, PeriodInput, PeriodOutput, SealedBlock, StageTimes, Work,
};
use crate::contract::block::{BlockHeader, HEADER_LEN, SealKind};
use crate::crypto::sha_lanes::{LANES, SHA256_IV, compress_lanes};
use crate::crypto::verify::{DEFAULT_BATCH, check_batch};

/// Nonces per chunk a worker takes: large enough that the shared counter is touched rarely
/// (a chunk is ~0.3 ms at 60 M tries/s), small enough that stopping is prompt.
const NONCE_CHUNK: u64 = 1 << 14;

/// PoW parameters.
#[derive(Clone, Debug, Serialize)]
pub struct PowParams {
    /// Leading zero bits the block hash must have.
    pub difficulty_bits: u8,
    /// Most signatures the miner verifies in one batch (whole contracts; at least one).
    pub signature_batch: usize,
}

impl PowParams {
    /// A difficulty of at most 64 bits (the target is a prefix of the hash's first 8 bytes).
    pub fn new(difficulty_bits: u8) -> Result<Self, String> {
        if difficulty_bits > 64 {
            return Err(format!("{difficulty_bits} is above 64 bits"));
        }
        Ok(Self {
            difficulty_bits,
            signature_batch: DEFAULT_BATCH,
        })
    }

    /// The same miner verifying at most `signatures` signatures per batch.
    pub fn with_signature_batch(self, signatures: usize) -> Result<Self, String> {
        check_batch(signatures)?;
        Ok(Self {
            signature_batch: signatures,
            ..self
        })
    }
}

/// The result of a nonce search.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MiningResult {
    /// The smallest nonce that meets the target.
    pub nonce: u64,
    /// Nonces hashed, over all workers (some past the solution, in chunks already started).
    pub hashes: u64,
    /// Wall time of the search.
    pub elapsed: Duration,
}

/// Why a PoW block does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    /// Not a PoW header.
    #[error("not a proof-of-work header")]
    NotPow,
    /// The hash has too few leading zero bits.
    #[error("block hash has {found} leading zero bits, the header requires {required}")]
    InsufficientWork {
        /// Bits required.
        required: u8,
        /// Bits found.
        found: u32,
    },
}

/// Leading zero bits of a hash read as a 256-bit big-endian number.
pub fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut bits = 0;
    for &b in hash {
        if b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// Checks a PoW header: its hash (nonce included) meets its own difficulty.
pub fn verify_pow(header: &BlockHeader) -> Result<(), PowError> {
    if header.kind != SealKind::Pow {
        return Err(PowError::NotPow);
    }
    let found = leading_zero_bits(&header.hash());
    if found < u32::from(header.difficulty_bits) {
        return Err(PowError::InsufficientWork {
            required: header.difficulty_bits,
            found,
        });
    }
    Ok(())
}

/// The midstate after the header's two blocks.
pub fn midstate(header: &[u8; HEADER_LEN]) -> [u32; 8] {
    let mut blocks = [[0u8; 64]; 2];
    blocks[0].copy_from_slice(&header[..64]);
    blocks[1].copy_from_slice(&header[64..]);
    let mut state = SHA256_IV;
    compress256(&mut state, &blocks);
    state
}

/// The last block of SHA-256(header || nonce): nonce, padding, bit length 136 * 8.
fn nonce_block(nonce: u64) -> [u8; 64] {
    let mut block = [0u8; 64];
    block[..8].copy_from_slice(&nonce.to_be_bytes());
    block[8] = 0x80;
    block[56..].copy_from_slice(&((HEADER_LEN as u64 + 8) * 8).to_be_bytes());
    block
}

/// True when the state's digest has at least `bits` leading zero bits.
fn meets(state: &[u32; 8], bits: u32) -> bool {
    let mut remaining = bits;
    for &word in state {
        if remaining == 0 {
            return true;
        }
        if remaining < 32 {
            return word.leading_zeros() >= remaining;
        }
        if word != 0 {
            return false;
        }
        remaining -= 32;
    }
    true
}

/// This machine's nonce rate on the current pool: hashes per second, measured on 2^20 nonces at
/// a difficulty no nonce meets (about 0.05 s). Mining a block at `bits` bits takes 2^bits
/// nonces on average.
pub fn nonce_rate() -> f64 {
    let probe = search(&[0u8; HEADER_LEN], 64, 1 << 20);
    probe.hashes as f64 / probe.elapsed.as_secs_f64().max(1e-9)
}

/// Searches nonces 0, 1, 2, ... for the smallest one giving `bits` leading zero bits, on every
/// thread of the current rayon pool.
pub fn mine(header: &[u8; HEADER_LEN], bits: u8) -> MiningResult {
    search(header, bits, u64::MAX)
}

/// As [`mine`], trying no nonce at or above `limit` (rounded up to whole chunks); the result's
/// nonce is `u64::MAX` when none below the limit works. Benchmarks use it to measure the hash
/// rate at a difficulty no nonce meets.
pub fn search(header: &[u8; HEADER_LEN], bits: u8, limit: u64) -> MiningResult {
    let start = Instant::now();
    let mid = midstate(header);
    let bits = u32::from(bits);
    let next_chunk = AtomicU64::new(0);
    let best = AtomicU64::new(u64::MAX);
    let hashes = AtomicU64::new(0);
    let workers = rayon::current_num_threads();
    (0..workers).into_par_iter().for_each(|_| {
        loop {
            let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
            let first = chunk.saturating_mul(NONCE_CHUNK);
            if first >= limit || first > best.load(Ordering::Relaxed) || first == u64::MAX {
                break;
            }
            let (found, tried) = search_chunk(&mid, bits, first);
            hashes.fetch_add(tried, Ordering::Relaxed);
            if let Some(n) = found {
                best.fetch_min(n, Ordering::Relaxed);
                break;
            }
        }
    });
    MiningResult {
        nonce: best.into_inner(),
        hashes: hashes.into_inner(),
        elapsed: start.elapsed(),
    }
}

/// Tries the nonces of one chunk in order, `LANES` at a time; returns the first that works and
/// the number tried.
fn search_chunk(mid: &[u32; 8], bits: u32, first: u64) -> (Option<u64>, u64) {
    let mut tried = 0u64;
    let mut nonce = first;
    while nonce < first.saturating_add(NONCE_CHUNK) {
        let blocks: [[[u8; 64]; 1]; LANES] =
            std::array::from_fn(|l| [nonce_block(nonce + l as u64)]);
        let mut states = [*mid; LANES];
        compress_lanes(&mut states, &std::array::from_fn(|l| &blocks[l][..]));
        tried += LANES as u64;
        if let Some(l) = states.iter().position(|s| meets(s, bits)) {
            return (Some(nonce + l as u64), tried);
        }
        nonce += LANES as u64;
    }
    (None, tried)
}

/// The PoW variant: one honest miner.
pub struct Pow {
    params: PowParams,
    hashes_total: u64,
    mining_time: Duration,
    blocks: u64,
}

impl Pow {
    /// A miner at `params.difficulty_bits`.
    pub fn new(params: PowParams) -> Self {
        Self {
            params,
            hashes_total: 0,
            mining_time: Duration::ZERO,
            blocks: 0,
        }
    }
}

impl Consensus for Pow {
    fn name(&self) -> &'static str {
        "pow"
    }

    fn run_period(
        &mut self,
        input: &PeriodInput<'_>,
    ) -> Result<PeriodOutput, super::pool::PoolError> {
        let mut stages = StageTimes::default();
        let t = Instant::now();
        // The miner batches its pending transactions' signatures in order.
        let pending = input.workload.at(input.pending);
        let batch = self.params.signature_batch;
        let (verdicts, signatures) = input.checks.validate_all(&pending, batch);
        stages.validate = t.elapsed();
        let decided = Instant::now();

        let t = Instant::now();
        let block_txs: Vec<u32> = input
            .pending
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.is_valid())
            .map(|(&tx, _)| tx)
            .collect();
        let contracts: Vec<_> = block_txs
            .iter()
            .map(|&i| input.workload.transactions[i as usize].clone())
            .collect();
        let mut header = BlockHeader::seal(input.height, input.period, input.prev_hash, &contracts);
        header.kind = SealKind::Pow;
        header.difficulty_bits = self.params.difficulty_bits;
        let result = mine(&header.encode(), self.params.difficulty_bits);
        header.nonce = result.nonce;
        debug_assert!(verify_pow(&header).is_ok());
        stages.seal = t.elapsed();
        self.hashes_total += result.hashes;
        self.mining_time += result.elapsed;
        self.blocks += 1;

        let decisions = input
            .pending
            .iter()
            .zip(&verdicts)
            .map(|(&tx, &verdict)| Decision {
                tx,
                outcome: if verdict.is_valid() {
                    Outcome::Accepted
                } else {
                    Outcome::Rejected
                },
                verdict: Some(verdict),
                validators_asked: 1,
                at: decided,
            })
            .collect();
        let work = Work {
            validations: input.pending.len() as u64,
            timeouts: 0,
            hashes: result.hashes,
            signatures,
        };
        Ok(PeriodOutput {
            decisions,
            block: SealedBlock {
                header,
                transactions: block_txs,
            },
            stages,
            work,
            proofs: Vec::new(),
        })
    }

    fn extra_report(&self) -> serde_json::Value {
        let secs = self.mining_time.as_secs_f64();
        let rate = if secs > 0.0 {
            self.hashes_total as f64 / secs
        } else {
            0.0
        };
        let expected_tries = 2f64.powi(i32::from(self.params.difficulty_bits));
        serde_json::json!({
            "difficulty_bits": self.params.difficulty_bits,
            "hashes_tried": self.hashes_total,
            "hash_rate_per_s": rate,
            "blocks": self.blocks,
            "mining_seconds": secs,
            "expected_seconds_per_block": if rate > 0.0 { expected_tries / rate } else { 0.0 },
            "measured_seconds_per_block": if self.blocks > 0 { secs / self.blocks as f64 } else { 0.0 },
        })
    }
}
