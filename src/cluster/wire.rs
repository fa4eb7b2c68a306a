//! The messages between the supervision node (worker 0) and the validator processes, as bytes.
//! timely carries each as one [`Frame`] (a destination worker and the bytes, in one copy
//! through serde); ipow encodes and decodes the bytes itself, big-endian, with every count
//! checked against the bytes left before anything is allocated, and a typed error naming the
//! field ([`WireError`]). Tags: 1 keys, 2 context, 3 asks, 4 answers.
//!
//! - **Keys** (0 to k, once): the MAC keys of process k's validators, (validator u32, key 32)*.
//! - **Context** (0 to every k, once per period): period u64, then the congestion stage's
//!   published bytes (empty without a grid; `validate::congestion::publish` for the layout).
//! - **Asks** (0 to k, per round): period u64, then per ask: position in the round u32,
//!   transaction u32, validator u32, flags u8 (bit 0: planted invalid, the simulation's ground
//!   truth a colluder reads; bit 1: a contract follows), and in `bytes` mode the signed
//!   contract (length u32, then its canonical encoding with the three signatures), carried by
//!   the first ask of its transaction in the message only (the later ones refer to it).
//! - **Answers** (k to 0, per round): per answer: position u32, flags u8 (bit 0: worked,
//!   bit 1: a proof follows), and the proof (transaction u32, validator u32, verdict code u8,
//!   tag 32); then the validators' signature batch counts (5 + 11 u64); then the process's CPU
//!   time for the round in microseconds u64.

// Fields are read at their width (uint(n) of n <= 4 bytes fits u32) and positions are u32
// (a workload holds at most `rules::MAX_TRANSACTIONS`).
#![allow(clippy::cast_possible_truncation)]

use serde::{Deserialize, Serialize};

use crate::base::cursor::{Cursor, FieldError};
use crate::consensus::pool::{Answer, Ask};
use crate::consensus::proof::Proof;
use crate::contract::SignedContract;
use crate::crypto::verify::BatchStats;
use crate::validate::Verdict;

/// The largest message ipow decodes (a round's asks for one process in `bytes` mode at 284
/// bytes a contract: 3.7 million asks).
pub const MAX_MESSAGE: usize = 1 << 30;

/// One message on a timely channel: its destination worker and its bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Frame {
    /// The worker it goes to.
    pub to: u32,
    /// The worker it comes from.
    pub from: u32,
    /// The encoded [`Message`].
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// One ask as a validator process receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireAsk {
    /// Its position among the round's asks.
    pub pos: u32,
    /// The transaction and the validator.
    pub ask: Ask,
    /// A planted invalid transaction (only a colluder reads it).
    pub planted: bool,
    /// The signed contract, in `bytes` mode.
    pub contract: Option<SignedContract>,
}

/// The validators' answers of one process for one round.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Answers {
    /// (position in the round, answer).
    pub answers: Vec<(u32, Answer)>,
    /// The signature batches its validators ran.
    pub stats: BatchStats,
    /// The process's CPU time since the run's first message, in microseconds.
    pub cpu_us: u64,
    /// The process's peak resident memory so far, in bytes.
    pub peak_rss_bytes: u64,
}

/// A message between worker 0 and a validator process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The MAC keys of the receiving process's validators.
    Keys(Vec<(u32, [u8; 32])>),
    /// The period's published context.
    Context {
        /// The period.
        period: u64,
        /// The congestion stage's published bytes (empty without a grid).
        context: Vec<u8>,
    },
    /// A round's asks for the receiving process's validators, in ask order.
    Asks {
        /// The period.
        period: u64,
        /// The asks.
        asks: Vec<WireAsk>,
    },
    /// A process's answers to a round.
    Answers(Answers),
}

/// A message that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Larger than [`MAX_MESSAGE`].
    #[error("a message of {0} bytes is over the {MAX_MESSAGE}-byte bound")]
    TooLarge(usize),
    /// No such message kind.
    #[error("unknown message tag {0}")]
    Tag(u8),
    /// A field does not decode.
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl Message {
    /// Its bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Message::Keys(keys) => {
                out.push(1);
                put_u32(&mut out, keys.len());
                for (v, key) in keys {
                    out.extend_from_slice(&v.to_be_bytes());
                    out.extend_from_slice(key);
                }
            }
            Message::Context { period, context } => {
                out.push(2);
                out.extend_from_slice(&period.to_be_bytes());
                out.extend_from_slice(context);
            }
            Message::Asks { period, asks } => {
                out.push(3);
                out.extend_from_slice(&period.to_be_bytes());
                put_u32(&mut out, asks.len());
                for a in asks {
                    put_ask(&mut out, a.pos, &a.ask, a.planted, a.contract.as_ref());
                }
            }
            Message::Answers(a) => {
                out.push(4);
                put_u32(&mut out, a.answers.len());
                for (pos, answer) in &a.answers {
                    encode_answer(&mut out, *pos, answer);
                }
                encode_stats(&mut out, &a.stats);
                out.extend_from_slice(&a.cpu_us.to_be_bytes());
                out.extend_from_slice(&a.peak_rss_bytes.to_be_bytes());
            }
        }
        out
    }

    /// The message `bytes` encode; every byte must be read.
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(WireError::TooLarge(bytes.len()));
        }
        let mut r = Cursor::new(bytes);
        let message = match r.uint(1, "tag")? as u8 {
            1 => {
                let n = r.count(4, 36, "keys")?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push((r.uint(4, "validator")? as u32, r.hash("key")?));
                }
                Message::Keys(keys)
            }
            2 => {
                let period = r.uint(8, "period")?;
                let context = r.take(r.remaining(), "context")?.to_vec();
                Message::Context { period, context }
            }
            3 => {
                let period = r.uint(8, "period")?;
                let n = r.count(4, 13, "asks")?;
                let mut asks = Vec::with_capacity(n);
                for _ in 0..n {
                    asks.push(decode_ask(&mut r)?);
                }
                Message::Asks { period, asks }
            }
            4 => {
                let n = r.count(4, 5, "answers")?;
                let mut answers = Vec::with_capacity(n);
                for _ in 0..n {
                    answers.push(decode_answer(&mut r)?);
                }
                let stats = decode_stats(&mut r)?;
                let cpu_us = r.uint(8, "cpu")?;
                let peak_rss_bytes = r.uint(8, "peak rss")?;
                Message::Answers(Answers {
                    answers,
                    stats,
                    cpu_us,
                    peak_rss_bytes,
                })
            }
            tag => return Err(WireError::Tag(tag)),
        };
        r.finish("message")?;
        Ok(message)
    }
}

/// The bytes of [`Message::Asks`] for `asks` (position, ask, planted), written straight from
/// the workload's `contracts` in `bytes` mode (no copy of a contract on the way).
pub fn encode_asks(
    period: u64,
    asks: &[(u32, Ask, bool)],
    contracts: Option<&[SignedContract]>,
) -> Vec<u8> {
    let per = 13 + contracts.map_or(0, |_| 4 + crate::contract::SIGNED_LEN_MAX);
    let mut out = Vec::with_capacity(13 + per * asks.len());
    let mut carried = std::collections::HashSet::new();
    out.push(3);
    out.extend_from_slice(&period.to_be_bytes());
    put_u32(&mut out, asks.len());
    for (pos, ask, planted) in asks {
        let contract = contracts
            .and_then(|c| c.get(ask.tx as usize))
            .filter(|_| carried.insert(ask.tx));
        put_ask(&mut out, *pos, ask, *planted, contract);
    }
    out
}

#[allow(clippy::cast_possible_truncation)]
fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_be_bytes());
}

/// One ask as the module's doc lays it out, its contract (if any) encoded in place behind its
/// length.
fn put_ask(
    out: &mut Vec<u8>,
    pos: u32,
    ask: &Ask,
    planted: bool,
    contract: Option<&SignedContract>,
) {
    out.extend_from_slice(&pos.to_be_bytes());
    out.extend_from_slice(&ask.tx.to_be_bytes());
    out.extend_from_slice(&ask.validator.to_be_bytes());
    out.push(u8::from(planted) | u8::from(contract.is_some()) << 1);
    if let Some(c) = contract {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        c.encode_into(out);
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
}

fn decode_ask(r: &mut Cursor<'_>) -> Result<WireAsk, WireError> {
    let pos = r.uint(4, "ask position")? as u32;
    let tx = r.uint(4, "transaction")? as u32;
    let validator = r.uint(4, "validator")? as u32;
    let flags = flags(r, "ask flags")?;
    let contract = if flags & 2 != 0 {
        let n = r.count(4, 1, "contract length")?;
        let at = r.at();
        let bytes = r.take(n, "contract")?;
        let c = SignedContract::decode(bytes).map_err(|e| FieldError {
            field: "contract".into(),
            at,
            message: e.to_string(),
        })?;
        Some(c)
    } else {
        None
    };
    Ok(WireAsk {
        pos,
        ask: Ask { tx, validator },
        planted: flags & 1 != 0,
        contract,
    })
}

fn encode_answer(out: &mut Vec<u8>, pos: u32, a: &Answer) {
    out.extend_from_slice(&pos.to_be_bytes());
    out.push(u8::from(a.worked) | u8::from(a.proof.is_some()) << 1);
    if let Some(p) = &a.proof {
        out.extend_from_slice(&p.tx.to_be_bytes());
        out.extend_from_slice(&p.validator.to_be_bytes());
        out.push(p.verdict.code());
        out.extend_from_slice(&p.tag);
    }
}

fn decode_answer(r: &mut Cursor<'_>) -> Result<(u32, Answer), WireError> {
    let pos = r.uint(4, "answer position")? as u32;
    let flags = flags(r, "answer flags")?;
    let proof = if flags & 2 != 0 {
        let tx = r.uint(4, "proof transaction")? as u32;
        let validator = r.uint(4, "proof validator")? as u32;
        let at = r.at();
        let code = r.uint(1, "verdict")? as u8;
        let verdict = Verdict::from_code(code).ok_or_else(|| FieldError {
            field: "verdict".into(),
            at,
            message: format!("{code} is no verdict code"),
        })?;
        let tag = r.hash("tag")?;
        Some(Proof {
            tx,
            validator,
            verdict,
            tag,
        })
    } else {
        None
    };
    Ok((
        pos,
        Answer {
            proof,
            worked: flags & 1 != 0,
        },
    ))
}

/// A flags byte with only its two low bits used.
fn flags(r: &mut Cursor<'_>, field: &str) -> Result<u8, FieldError> {
    let at = r.at();
    let f = r.uint(1, field)? as u8;
    if f > 3 {
        return Err(FieldError {
            field: field.into(),
            at,
            message: format!("{f:#04x} sets bits above the two defined"),
        });
    }
    Ok(f)
}

fn encode_stats(out: &mut Vec<u8>, s: &BatchStats) {
    for v in [
        s.signatures,
        s.refused_early,
        s.batches,
        s.bisection_tests,
        s.single_checks,
    ]
    .iter()
    .chain(&s.sizes)
    {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn decode_stats(r: &mut Cursor<'_>) -> Result<BatchStats, FieldError> {
    let mut s = BatchStats {
        signatures: r.uint(8, "signatures")?,
        refused_early: r.uint(8, "refused early")?,
        batches: r.uint(8, "batches")?,
        bisection_tests: r.uint(8, "bisection tests")?,
        single_checks: r.uint(8, "single checks")?,
        ..BatchStats::default()
    };
    for b in &mut s.sizes {
        *b = r.uint(8, "batch sizes")?;
    }
    Ok(s)
}
