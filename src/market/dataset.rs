//! Market dataset files: a compact, versioned, checksummed binary form streamed in and out (a
//! 10,000,000-contract market never sits whole in memory), and a JSON form a person can read and
//! edit. Both hold the same things, so binary -> JSON -> binary gives back every byte.
//!
//! # Binary layout, format 2 (little-endian)
//! ```text
//! header    magic "IPOWMKT\0" | format u16 = 2 | generator u16 | seed u64 | members u64
//!           | contracts u64 | chunk_records u32 | params_len u32 | params (JSON, <= 64 KiB)
//!           | checksum of everything before it in the header
//! members   members x 49-byte records: address u32 | role u8 | bus u32 (u32::MAX: none)
//!           | public key [32] | limit i64 (0.001 MWh) ; then the checksum of those bytes
//! contracts chunks of at most chunk_records: records u32 | body_len u32 | body
//!           | checksum of records, body_len and body.  A record: signed_len u16 | signed
//!           contract (canonical bytes and three signatures) | truth u8 | delivered i64
//!           | received i64 | carried u8
//! trailer   magic "IPOWEND\0" | contracts u64 | the checksum of the header's, the members'
//!           and every chunk's checksum in order (8 bytes each), the file checksum
//! ```
//! A checksum is XXH3-64 (seed 0) stored as a u64. It detects accidental corruption (a flipped
//! bit, a torn or truncated write, chunks out of order); it is not a defence against someone
//! who edits the file on purpose. Contracts carry their own Ed25519 signatures, and the
//! committed datasets' manifest and `ipow generate` give the whole file's SHA-256 for
//! identity. Format 1 used SHA-256 per chunk, which cost three times the whole loading budget;
//! this build reads format 2 only.
//!
//! A reader checks every declared length against its bound and against what is left of the
//! file *before* allocating for it, and every checksum before decoding what it covers; an
//! error names the file, the byte offset and the field. Chunks are read by position
//! (`pread`), each into its thread's reused buffer, and checked and decoded by that thread
//! into its records' final places, chunks in parallel.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use twox_hash::XxHash3_64;

use crate::base::amount::{Energy, Price};
use crate::base::domain::{Address, DeliveryTime, Role};
use crate::base::domain::{PURCHASER_BASE, SELLER_BASE};
use crate::contract::SignedContract;
use crate::crypto::keys::{KeyRegistry, admit_all};
use crate::ledger::Reading;
use crate::market::generator::Member;
use crate::market::rules::{MarketRules, PlantedReason, Truth, Workload, WorkloadParams};

/// First bytes of a binary dataset.
pub const MAGIC: [u8; 8] = *b"IPOWMKT\0";
/// First bytes of its trailer.
pub const TRAILER_MAGIC: [u8; 8] = *b"IPOWEND\0";
/// The binary format this code writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// The generator whose output this code writes: bump when a seed would give other contracts.
pub const GENERATOR_VERSION: u16 = 1;
/// The JSON form's format tag.
pub const JSON_FORMAT: &str = "ipow-market/1";
/// Records per chunk written, and the most a reader accepts: a chunk of 2,048 records (about
/// 600 KB) stays in a core's L2 cache between its read, its checksum and its scan.
pub const CHUNK_RECORDS: u32 = 2048;
/// The largest parameters block read.
pub const MAX_PARAMS_LEN: u32 = 64 << 10;
/// Bytes of a member record.
pub const MEMBER_LEN: usize = 49;
/// Bytes of a checksum.
pub const CHECKSUM_LEN: usize = 8;
/// Bytes of a chunk's head (records u32, body_len u32).
const CHUNK_HEAD: usize = 8;
/// Fixed bytes of a contract record besides the signed contract.
const RECORD_FIXED: usize = 2 + 1 + 8 + 8 + 1;
/// The smallest record (a signed contract without auxiliary service).
const RECORD_MIN: usize = RECORD_FIXED + crate::contract::ENCODED_LEN_BASE + 192;
/// The largest record.
const RECORD_MAX: usize = RECORD_FIXED + crate::contract::SIGNED_LEN_MAX;
/// The largest JSON dataset read (the JSON form is for small markets).
pub const MAX_JSON_BYTES: u64 = 1 << 30;

/// The format's checksum: XXH3-64 with seed 0.
pub fn checksum(bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot(bytes)
}

/// A dataset that cannot be used: the file, where, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {at}: {field}: {message}")]
pub struct DatasetError {
    /// The file.
    pub file: String,
    /// Where: `offset N` in a binary file, `line L column C` or a record path in JSON.
    pub at: String,
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl DatasetError {
    fn at(file: &str, offset: u64, field: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            at: format!("offset {offset}"),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn io(file: &str, e: &std::io::Error) -> Self {
        Self {
            file: file.to_owned(),
            at: "file".into(),
            field: "-".into(),
            message: e.to_string(),
        }
    }
}

/// Market-wide bounds validators check against (the scalar part of [`MarketRules`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Lowest acceptable unit price.
    pub price_min: Price,
    /// Highest acceptable unit price.
    pub price_max: Price,
    /// Highest acceptable auxiliary-service price.
    pub aux_price_max: Price,
    /// Delivery window start (inclusive).
    pub window_start: DeliveryTime,
    /// Delivery window end (exclusive).
    pub window_end: DeliveryTime,
    /// Sequence numbers at or below this were committed before.
    pub seq_watermark: u64,
}

impl Bounds {
    /// The bounds of `rules`.
    pub fn of(rules: &MarketRules) -> Self {
        Self {
            price_min: rules.price_min,
            price_max: rules.price_max,
            aux_price_max: rules.aux_price_max,
            window_start: rules.window.0,
            window_end: rules.window.1,
            seq_watermark: rules.seq_watermark,
        }
    }
}

/// What a dataset says about itself: the parameters block of the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The generator's parameters.
    pub market: WorkloadParams,
    /// The grid file's name the market was placed on, if any.
    pub grid: Option<String>,
    /// The validators' bounds.
    pub bounds: Bounds,
}

/// A dataset's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Header {
    /// Binary format version.
    pub format: u16,
    /// Generator version.
    pub generator: u16,
    /// The market seed.
    pub seed: u64,
    /// Participants.
    pub members: u64,
    /// Contracts.
    pub contracts: u64,
    /// Records per chunk.
    pub chunk_records: u32,
    /// Parameters.
    pub params: Params,
}

/// A version field's check: the message says what was found and what this build reads.
fn version(what: &str, found: u16, reads: u16) -> Result<(), String> {
    if found == reads {
        Ok(())
    } else {
        Err(format!("{what} version {found}; this build reads {reads}"))
    }
}

pub(crate) fn role_code(role: Role) -> u8 {
    match role {
        Role::Seller => 1,
        Role::Purchaser => 2,
        Role::TransmissionCompany => 3,
        Role::GridOperator => 4,
        Role::Source => 5,
        Role::IntegratedEnergyServiceCompany => 6,
        Role::GovernmentSupervisor => 7,
    }
}

pub(crate) fn role_of(code: u8) -> Option<Role> {
    Some(match code {
        1 => Role::Seller,
        2 => Role::Purchaser,
        3 => Role::TransmissionCompany,
        4 => Role::GridOperator,
        5 => Role::Source,
        6 => Role::IntegratedEnergyServiceCompany,
        7 => Role::GovernmentSupervisor,
        _ => return None,
    })
}

fn truth_code(t: Truth) -> u8 {
    match t {
        Truth::Valid => 0,
        Truth::Invalid(r) => match r {
            PlantedReason::ForgedSignature => 1,
            PlantedReason::TamperedAmount => 2,
            PlantedReason::EnergyOverCapacity => 3,
            PlantedReason::MalformedAuxService => 4,
            PlantedReason::ReplayedContract => 5,
            PlantedReason::CongestingTrade => 6,
        },
    }
}

fn truth_of(code: u8) -> Option<Truth> {
    match code {
        0 => Some(Truth::Valid),
        c => PlantedReason::ALL
            .get(usize::from(c) - 1)
            .map(|&r| Truth::Invalid(r)),
    }
}

/// The rules validators use, rebuilt from a dataset's members and bounds. Sellers and
/// purchasers must be numbered densely from their bases (as the generator numbers them).
pub fn rules_of(
    file: &str,
    members: &[Member],
    bounds: &Bounds,
) -> Result<MarketRules, DatasetError> {
    // Admitted as one list (canonical and small order from the bytes, the curve equation for
    // the whole list at once); the first bad key in member order is the one reported.
    let encodings: Vec<_> = members.iter().map(|m| m.public_key).collect();
    let admitted = admit_all(&encodings).map_err(|(i, e)| DatasetError {
        file: file.to_owned(),
        at: format!("members[{i}]"),
        field: "public_key".to_owned(),
        message: e.to_string(),
    })?;
    let mut registry = KeyRegistry::new();
    let mut capacity = Vec::new();
    let mut demand = Vec::new();
    for (i, (m, key)) in members.iter().zip(admitted).enumerate() {
        let bad = |field: &str, message: String| DatasetError {
            file: file.to_owned(),
            at: format!("members[{i}]"),
            field: field.to_owned(),
            message,
        };
        registry.insert(m.address, key);
        let (list, base) = match m.role {
            Role::Seller => (&mut capacity, SELLER_BASE),
            Role::Purchaser => (&mut demand, PURCHASER_BASE),
            _ => continue,
        };
        let expected = u64::from(base) + list.len() as u64;
        if u64::from(m.address.0) != expected {
            return Err(bad(
                "address",
                format!(
                    "{:?} {} out of order: expected {}",
                    m.role,
                    m.address,
                    Address(u32::try_from(expected).unwrap_or(u32::MAX))
                ),
            ));
        }
        list.push(m.limit);
    }
    Ok(MarketRules {
        registry,
        capacity,
        demand,
        price_min: bounds.price_min,
        price_max: bounds.price_max,
        aux_price_max: bounds.aux_price_max,
        window: (bounds.window_start, bounds.window_end),
        seq_watermark: bounds.seq_watermark,
        seller_base: SELLER_BASE,
        purchaser_base: PURCHASER_BASE,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

fn encode_member(m: &Member, out: &mut Vec<u8>) {
    out.extend_from_slice(&m.address.0.to_le_bytes());
    out.push(role_code(m.role));
    out.extend_from_slice(&m.bus.unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&m.public_key);
    out.extend_from_slice(&m.limit.raw().to_le_bytes());
}

fn encode_record(tx: &SignedContract, truth: Truth, r: &Reading, out: &mut Vec<u8>) {
    let signed = tx.encode();
    // At most SIGNED_LEN_MAX (a few hundred bytes).
    out.extend_from_slice(
        &u16::try_from(signed.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&signed);
    out.push(truth_code(truth));
    out.extend_from_slice(&r.delivered.raw().to_le_bytes());
    out.extend_from_slice(&r.received.raw().to_le_bytes());
    out.push(u8::from(r.carried));
}

/// Streams a binary dataset to `path`: written to `path.partial`, renamed into place by
/// [`Writer::finish`] after a flush and fsync, so a failed or interrupted write never leaves a
/// file under the final name.
pub struct Writer {
    path: PathBuf,
    partial: PathBuf,
    out: BufWriter<std::fs::File>,
    header: Header,
    /// SHA-256 of every byte written: the file's identity, returned by [`Writer::finish`].
    sha256: Sha256,
    /// The header's, the members' and every chunk's checksum so far, for the trailer's.
    checksums: Vec<u8>,
    /// The chunk being filled: its head's 8 bytes (written at flush), then its records.
    pending: Vec<u8>,
    pending_records: u32,
    written: u64,
}

impl Writer {
    /// Starts a dataset with this header (its `contracts` is what must be written) and members.
    pub fn create(path: &Path, header: Header, members: &[Member]) -> Result<Self, DatasetError> {
        let name = path.display().to_string();
        let partial = path.with_extension("partial");
        let file = std::fs::File::create(&partial).map_err(|e| DatasetError::io(&name, &e))?;
        let params = serde_json::to_vec(&header.params)
            .map_err(|e| DatasetError::at(&name, 0, "params", format!("cannot serialize: {e}")))?;
        let mut head = Vec::with_capacity(64 + params.len());
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&header.format.to_le_bytes());
        head.extend_from_slice(&header.generator.to_le_bytes());
        head.extend_from_slice(&header.seed.to_le_bytes());
        head.extend_from_slice(&header.members.to_le_bytes());
        head.extend_from_slice(&header.contracts.to_le_bytes());
        head.extend_from_slice(&header.chunk_records.to_le_bytes());
        head.extend_from_slice(
            &u32::try_from(params.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        head.extend_from_slice(&params);
        let head_sum = checksum(&head).to_le_bytes();
        head.extend_from_slice(&head_sum);
        let mut body = Vec::with_capacity(members.len() * MEMBER_LEN);
        for m in members {
            encode_member(m, &mut body);
        }
        let members_sum = checksum(&body).to_le_bytes();
        body.extend_from_slice(&members_sum);
        let mut w = Self {
            path: path.to_owned(),
            partial,
            out: BufWriter::with_capacity(1 << 20, file),
            header,
            sha256: Sha256::new(),
            checksums: [head_sum, members_sum].concat(),
            pending: vec![0; CHUNK_HEAD],
            pending_records: 0,
            written: 0,
        };
        w.put(&head)?;
        w.put(&body)?;
        Ok(w)
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Writes `bytes` and adds them to the file's SHA-256.
    fn put(&mut self, bytes: &[u8]) -> Result<(), DatasetError> {
        self.sha256.update(bytes);
        self.out
            .write_all(bytes)
            .map_err(|e| DatasetError::io(&self.path.display().to_string(), &e))
    }

    /// Appends a batch of transactions (with truth and readings), encoding in parallel.
    pub fn write(&mut self, w: &Workload) -> Result<(), DatasetError> {
        let encoded: Vec<Vec<u8>> = (0..w.transactions.len())
            .into_par_iter()
            .with_min_len(256)
            .map(|i| {
                let mut out = Vec::with_capacity(RECORD_MAX);
                encode_record(&w.transactions[i], w.truth[i], &w.readings[i], &mut out);
                out
            })
            .collect();
        for record in encoded {
            self.pending.extend_from_slice(&record);
            self.pending_records += 1;
            if self.pending_records == self.header.chunk_records {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), DatasetError> {
        if self.pending_records == 0 {
            return Ok(());
        }
        // The head goes in front of the records already there; the checksum covers both.
        let body_len = u32::try_from(self.pending.len() - CHUNK_HEAD).unwrap_or(u32::MAX);
        self.pending[..4].copy_from_slice(&self.pending_records.to_le_bytes());
        self.pending[4..CHUNK_HEAD].copy_from_slice(&body_len.to_le_bytes());
        let sum = checksum(&self.pending).to_le_bytes();
        self.pending.extend_from_slice(&sum);
        let chunk = std::mem::take(&mut self.pending);
        self.put(&chunk)?;
        self.checksums.extend_from_slice(&sum);
        self.written += u64::from(self.pending_records);
        self.pending = chunk;
        self.pending.truncate(CHUNK_HEAD);
        self.pending_records = 0;
        Ok(())
    }

    /// Writes the last chunk and the trailer, syncs, and renames into place. Returns the SHA-256
    /// of the whole file (what `sha256sum` prints). Fails (leaving only the partial file) if the
    /// count written is not the header's.
    pub fn finish(mut self) -> Result<[u8; 32], DatasetError> {
        self.flush_chunk()?;
        let name = self.name();
        if self.written != self.header.contracts {
            return Err(DatasetError::at(
                &name,
                0,
                "contracts",
                format!(
                    "the header declares {} contracts but {} were written",
                    self.header.contracts, self.written
                ),
            ));
        }
        let mut trailer = TRAILER_MAGIC.to_vec();
        trailer.extend_from_slice(&self.written.to_le_bytes());
        trailer.extend_from_slice(&checksum(&self.checksums).to_le_bytes());
        self.put(&trailer)?;
        let io = |e: std::io::Error| DatasetError::io(&name, &e);
        let sha256: [u8; 32] = self.sha256.clone().finalize().into();
        let file = self
            .out
            .into_inner()
            .map_err(|e| DatasetError::io(&name, e.error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.partial, &self.path).map_err(io)?;
        Ok(sha256)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Where a reader's bytes come from. Reads are by position, so chunks are read in parallel,
/// each by the thread that decodes it.
trait Source: Send + Sync {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl Source for std::fs::File {
    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.seek_read(buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A dataset held in memory.
struct InMemory(Vec<u8>);

impl Source for InMemory {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| self.0.get(start..start.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A chunk located by its head: where it starts, its record count and its body length.
#[derive(Clone, Copy, Debug)]
struct Loc {
    offset: u64,
    records: u32,
    body_len: u32,
}

impl Loc {
    /// Its bytes: head, body and checksum.
    fn span(&self) -> usize {
        CHUNK_HEAD + self.body_len as usize + CHECKSUM_LEN
    }
}

thread_local! {
    /// Each thread's chunk buffer, reused by every chunk it reads: at most one chunk (about
    /// 600 KB) per thread, so a chunk's bytes stay in that core's L2 cache from the read to
    /// the last record decoded.
    static CHUNK_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One chunk's share of a batch: where it is, and the slots of its records.
struct ChunkJob<'a> {
    loc: Loc,
    transactions: &'a mut [SignedContract],
    truth: &'a mut [Truth],
    readings: &'a mut [Reading],
}

impl ChunkJob<'_> {
    /// Reads the chunk into this thread's buffer (its length was bounded by
    /// [`Reader::next_chunk`]), checks its checksum, and decodes its records into their slots.
    /// Returns the stored checksum and how many of its records carry each truth.
    fn read_and_scan(self, source: &dyn Source, name: &str) -> Result<ChunkRead, DatasetError> {
        let span = self.loc.span();
        CHUNK_BUF.with_borrow_mut(|buf| {
            if buf.len() < span {
                buf.resize(span, 0);
            }
            self.check_and_decode(&mut buf[..span], source, name)
        })
    }

    fn check_and_decode(
        self,
        bytes: &mut [u8],
        source: &dyn Source,
        name: &str,
    ) -> Result<ChunkRead, DatasetError> {
        let loc = self.loc;
        source
            .read_exact_at(bytes, loc.offset)
            .map_err(|e| DatasetError::at(name, loc.offset, "chunk", e.to_string()))?;
        // The head was read once to locate the chunk; the file must not have changed since.
        let mut head = [0u8; CHUNK_HEAD];
        head[..4].copy_from_slice(&loc.records.to_le_bytes());
        head[4..].copy_from_slice(&loc.body_len.to_le_bytes());
        if bytes[..CHUNK_HEAD] != head {
            return Err(DatasetError::at(
                name,
                loc.offset,
                "chunk.records",
                "the file changed while it was read",
            ));
        }
        let body_end = CHUNK_HEAD + loc.body_len as usize;
        let mut stored = [0u8; CHECKSUM_LEN];
        stored.copy_from_slice(&bytes[body_end..]);
        if checksum(&bytes[..body_end]).to_le_bytes() != stored {
            return Err(DatasetError::at(
                name,
                loc.offset + body_end as u64,
                "chunk.checksum",
                format!(
                    "the chunk at offset {} does not match its checksum",
                    loc.offset
                ),
            ));
        }
        let base = loc.offset + CHUNK_HEAD as u64;
        let b = &bytes[CHUNK_HEAD..body_end];
        let mut at = 0usize;
        let mut truths = [0u64; TRUTHS];
        for k in 0..loc.records as usize {
            let err = |o: usize, field: &str, m: String| {
                DatasetError::at(
                    name,
                    base + o as u64,
                    &format!("record {k} of chunk: {field}"),
                    m,
                )
            };
            let need = |o: usize, n: usize, field: &str| {
                if b.len() < o + n {
                    Err(err(
                        o,
                        field,
                        format!(
                            "{n} bytes needed, {} left in the chunk",
                            b.len().saturating_sub(o)
                        ),
                    ))
                } else {
                    Ok(())
                }
            };
            need(at, 2, "signed_len")?;
            let len = usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
            need(at + 2, len + RECORD_FIXED - 2, "signed")?;
            self.transactions[k]
                .decode_into(&b[at + 2..at + 2 + len])
                .map_err(|e| err(at + 2, "signed", e.to_string()))?;
            let p = at + 2 + len;
            self.truth[k] =
                truth_of(b[p]).ok_or_else(|| err(p, "truth", format!("unknown code {}", b[p])))?;
            // Counted here, in parallel, rather than by the caller between batches.
            if let Some(n) = truths.get_mut(usize::from(b[p])) {
                *n += 1;
            }
            let i64_at = |o: usize| {
                let mut x = [0u8; 8];
                x.copy_from_slice(&b[o..o + 8]);
                i64::from_le_bytes(x)
            };
            let (delivered, received) = (i64_at(p + 1), i64_at(p + 9));
            for (v, o, f) in [
                (delivered, p + 1, "delivered"),
                (received, p + 9, "received"),
            ] {
                if v < 0 {
                    return Err(err(o, f, format!("negative energy {v}")));
                }
            }
            let carried = match b[p + 17] {
                0 => false,
                1 => true,
                x => return Err(err(p + 17, "carried", format!("{x} is not 0 or 1"))),
            };
            self.readings[k] = Reading {
                delivered: Energy::from_raw(delivered),
                received: Energy::from_raw(received),
                carried,
            };
            at = p + 18;
        }
        if at != b.len() {
            return Err(DatasetError::at(
                name,
                base + at as u64,
                "chunk.body",
                format!("{} bytes after the last record", b.len() - at),
            ));
        }
        Ok(ChunkRead {
            checksum: stored,
            truths,
        })
    }
}

/// What reading one chunk gives besides its records.
struct ChunkRead {
    checksum: [u8; CHECKSUM_LEN],
    /// Its records per truth, indexed as [`tally`] indexes them.
    truths: [u64; TRUTHS],
}

/// Streams a binary dataset: the header and members at open, then batches of contracts.
pub struct Reader {
    name: String,
    source: Box<dyn Source>,
    /// The next byte to read in file order (the header, then each chunk's head).
    offset: u64,
    size: u64,
    header: Header,
    members: Vec<Member>,
    rules: Arc<MarketRules>,
    /// Contracts located so far.
    read: u64,
    /// The header's, the members' and every checked chunk's checksum, for the trailer's.
    checksums: Vec<u8>,
    /// Records read so far per truth, indexed as [`tally`] indexes them.
    truths: [u64; TRUTHS],
    done: bool,
    /// While the header is read: every byte read, for its checksum.
    header_bytes: Option<Vec<u8>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("file", &self.name)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Opens `path` and reads and checks its header and members.
    pub fn open(path: &Path) -> Result<Self, DatasetError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| DatasetError::io(&name, &e))?;
        let size = file
            .metadata()
            .map_err(|e| DatasetError::io(&name, &e))?
            .len();
        Self::start(name, Box::new(file), size)
    }

    /// Reads a dataset held in memory (`name` names it in errors): the fuzz targets' way in.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, DatasetError> {
        let size = bytes.len() as u64;
        Self::start(name.to_owned(), Box::new(InMemory(bytes)), size)
    }

    fn start(name: String, source: Box<dyn Source>, size: u64) -> Result<Self, DatasetError> {
        let mut r = Self {
            name,
            source,
            offset: 0,
            size,
            header: Header {
                format: 0,
                generator: 0,
                seed: 0,
                members: 0,
                contracts: 0,
                chunk_records: 0,
                params: Params {
                    market: WorkloadParams::scaled_paper(0, 0),
                    grid: None,
                    bounds: Bounds::of(&MarketRules::empty()),
                },
            },
            members: Vec::new(),
            rules: Arc::new(MarketRules::empty()),
            read: 0,
            checksums: Vec::new(),
            truths: [0; TRUTHS],
            done: false,
            header_bytes: None,
        };
        r.read_header()?;
        Ok(r)
    }

    fn err(&self, offset: u64, field: &str, message: impl Into<String>) -> DatasetError {
        DatasetError::at(&self.name, offset, field, message)
    }

    /// Checks that the file has `n` more bytes.
    fn has(&self, n: u64, field: &str) -> Result<(), DatasetError> {
        let left = self.size.saturating_sub(self.offset);
        if n > left {
            return Err(self.err(
                self.offset,
                field,
                format!("truncated: {n} bytes needed, {left} left in the file"),
            ));
        }
        Ok(())
    }

    /// Reads exactly `n` bytes (after checking that the file has them).
    fn bytes(&mut self, n: usize, field: &str) -> Result<Vec<u8>, DatasetError> {
        self.has(n as u64, field)?;
        let at = self.offset;
        let mut buf = vec![0u8; n];
        self.source
            .read_exact_at(&mut buf, at)
            .map_err(|e| self.err(at, field, e.to_string()))?;
        self.offset += n as u64;
        if let Some(h) = &mut self.header_bytes {
            h.extend_from_slice(&buf);
        }
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], DatasetError> {
        let b = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&b);
        Ok(out)
    }

    fn u16(&mut self, field: &str) -> Result<u16, DatasetError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &str) -> Result<u32, DatasetError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &str) -> Result<u64, DatasetError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn read_header(&mut self) -> Result<(), DatasetError> {
        self.header_bytes = Some(Vec::new());
        let magic: [u8; 8] = self.array("magic")?;
        if magic != MAGIC {
            return Err(self.err(
                0,
                "magic",
                format!(
                    "not an ipow dataset (first bytes {:?}, expected {:?})",
                    String::from_utf8_lossy(&magic),
                    String::from_utf8_lossy(&MAGIC)
                ),
            ));
        }
        let at = self.offset;
        let format = self.u16("format")?;
        version("format", format, FORMAT_VERSION).map_err(|m| self.err(at, "format", m))?;
        let at = self.offset;
        let generator = self.u16("generator")?;
        version("generator", generator, GENERATOR_VERSION)
            .map_err(|m| self.err(at, "generator", m))?;
        let seed = self.u64("seed")?;
        let at_members = self.offset;
        let members = self.u64("members")?;
        let at_contracts = self.offset;
        let contracts = self.u64("contracts")?;
        let at = self.offset;
        let chunk_records = self.u32("chunk_records")?;
        if chunk_records == 0 || chunk_records > CHUNK_RECORDS {
            return Err(self.err(
                at,
                "chunk_records",
                format!("{chunk_records} is outside 1..={CHUNK_RECORDS}"),
            ));
        }
        let at = self.offset;
        let params_len = self.u32("params_len")?;
        if params_len > MAX_PARAMS_LEN {
            return Err(self.err(
                at,
                "params_len",
                format!("{params_len} bytes declared; the limit is {MAX_PARAMS_LEN}"),
            ));
        }
        let at_params = self.offset;
        let params_bytes = self.bytes(params_len as usize, "params")?;
        let head_end = self.offset;
        let head = self.header_bytes.take().unwrap_or_default();
        let stored: [u8; 8] = self.array("header_checksum")?;
        let head_sum = checksum(&head).to_le_bytes();
        if head_sum != stored {
            return Err(self.err(
                head_end,
                "header_checksum",
                "the header does not match its checksum",
            ));
        }
        let params: Params = serde_json::from_slice(&params_bytes)
            .map_err(|e| self.err(at_params, "params", e.to_string()))?;
        if params.market.seed != seed {
            return Err(self.err(
                at_params,
                "params.market.seed",
                "differs from the header's seed",
            ));
        }
        // Members: bounded by what is left of the file before allocating.
        let left = self.size.saturating_sub(self.offset);
        if members > left / MEMBER_LEN as u64 {
            return Err(self.err(
                at_members,
                "members",
                format!(
                    "{members} declared; the file has room for at most {}",
                    left / MEMBER_LEN as u64
                ),
            ));
        }
        let min_contract_bytes = contracts.saturating_mul(RECORD_MIN as u64);
        if min_contract_bytes > left {
            return Err(self.err(
                at_contracts,
                "contracts",
                format!(
                    "{contracts} declared; the file has room for at most {}",
                    left / RECORD_MIN as u64
                ),
            ));
        }
        let at_body = self.offset;
        // Bounded by the file size just above.
        let member_bytes = usize::try_from(members)
            .unwrap_or(usize::MAX)
            .saturating_mul(MEMBER_LEN);
        let body = self.bytes(member_bytes, "members")?;
        let stored: [u8; 8] = self.array("members_checksum")?;
        let members_sum = checksum(&body).to_le_bytes();
        if members_sum != stored {
            return Err(self.err(
                at_body,
                "members_checksum",
                "the member records do not match their checksum",
            ));
        }
        let mut list = Vec::with_capacity(body.len() / MEMBER_LEN);
        for (i, rec) in body.chunks_exact(MEMBER_LEN).enumerate() {
            let at = at_body + (i * MEMBER_LEN) as u64;
            let u32_at =
                |o: usize| u32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
            let role = role_of(rec[4]).ok_or_else(|| {
                self.err(
                    at + 4,
                    &format!("members[{i}].role"),
                    format!("unknown role code {}", rec[4]),
                )
            })?;
            let bus = match u32_at(5) {
                u32::MAX => None,
                b => Some(b),
            };
            let mut public_key = [0u8; 32];
            public_key.copy_from_slice(&rec[9..41]);
            let mut limit = [0u8; 8];
            limit.copy_from_slice(&rec[41..49]);
            list.push(Member {
                address: Address(u32_at(0)),
                role,
                bus,
                public_key,
                limit: Energy::from_raw(i64::from_le_bytes(limit)),
            });
        }
        self.rules = Arc::new(rules_of(&self.name, &list, &params.bounds)?);
        self.members = list;
        self.checksums.extend_from_slice(&head_sum);
        self.checksums.extend_from_slice(&members_sum);
        self.header = Header {
            format,
            generator,
            seed,
            members,
            contracts,
            chunk_records,
            params,
        };
        Ok(())
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How many of the records read so far carry each truth, indexed as [`tally`] indexes them
    /// (counted while each chunk is decoded).
    pub fn truths_read(&self) -> &[u64; TRUTHS] {
        &self.truths
    }

    /// The participants.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The validators' rules.
    pub fn rules(&self) -> Arc<MarketRules> {
        Arc::clone(&self.rules)
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Locates the next chunk from its head (checking its counts against their bounds and its
    /// bytes against the file), or None when every declared contract was located.
    fn next_chunk(&mut self) -> Result<Option<Loc>, DatasetError> {
        if self.read == self.header.contracts {
            return Ok(None);
        }
        let offset = self.offset;
        let records = self.u32("chunk.records")?;
        let left = self.header.contracts - self.read;
        if records == 0 || records > self.header.chunk_records || u64::from(records) > left {
            return Err(self.err(
                offset,
                "chunk.records",
                format!(
                    "{records} records declared; expected 1 to {} ({left} contracts left)",
                    self.header.chunk_records
                ),
            ));
        }
        let at = self.offset;
        let body_len = self.u32("chunk.body_len")?;
        let bounds =
            u64::from(records) * RECORD_MIN as u64..=u64::from(records) * RECORD_MAX as u64;
        if !bounds.contains(&u64::from(body_len)) {
            return Err(self.err(
                at,
                "chunk.body_len",
                format!("{body_len} bytes for {records} records; expected {bounds:?}"),
            ));
        }
        self.has(u64::from(body_len), "chunk.body")?;
        self.offset += u64::from(body_len);
        self.has(CHECKSUM_LEN as u64, "chunk.checksum")?;
        self.offset += CHECKSUM_LEN as u64;
        self.read += u64::from(records);
        Ok(Some(Loc {
            offset,
            records,
            body_len,
        }))
    }

    fn trailer(&mut self) -> Result<(), DatasetError> {
        let at = self.offset;
        let magic: [u8; 8] = self.array("trailer.magic")?;
        if magic != TRAILER_MAGIC {
            return Err(self.err(
                at,
                "trailer.magic",
                "expected the trailer after the last chunk",
            ));
        }
        let at = self.offset;
        let count = self.u64("trailer.contracts")?;
        if count != self.header.contracts {
            return Err(self.err(
                at,
                "trailer.contracts",
                format!("{count}; the header declares {}", self.header.contracts),
            ));
        }
        let at = self.offset;
        let stored: [u8; 8] = self.array("trailer.checksum")?;
        if checksum(&self.checksums).to_le_bytes() != stored {
            return Err(self.err(
                at,
                "trailer.checksum",
                "the file checksum does not match the chunks read",
            ));
        }
        if self.offset != self.size {
            return Err(self.err(
                self.offset,
                "trailer",
                format!("{} bytes after the trailer", self.size - self.offset),
            ));
        }
        Ok(())
    }

    /// Reads up to `max` contracts (whole chunks; at least one chunk): every chunk's checksum is
    /// checked and every record decoded, in parallel. None once every contract was read and the
    /// trailer checked.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Workload>, DatasetError> {
        let mut w = self.empty_batch();
        Ok(self.next_batch_into(max, &mut w)?.then_some(w))
    }

    /// A batch of this dataset holding no contracts: what [`Reader::next_batch_into`] fills.
    pub fn empty_batch(&self) -> Workload {
        Workload {
            params: self.header.params.market.clone(),
            rules: Arc::clone(&self.rules),
            transactions: Vec::new(),
            truth: Vec::new(),
            readings: Vec::new(),
        }
    }

    /// [`Reader::next_batch`] into `into`, replacing its contents and reusing its vectors'
    /// memory: a loop that consumes one batch before reading the next touches fresh memory only
    /// for the first. Returns false (and leaves `into` empty) once every contract was read and
    /// the trailer checked; on an error `into` is left empty too.
    pub fn next_batch_into(
        &mut self,
        max: usize,
        into: &mut Workload,
    ) -> Result<bool, DatasetError> {
        let read = self.read_batch(max, into);
        if !matches!(read, Ok(true)) {
            into.transactions.clear();
            into.truth.clear();
            into.readings.clear();
        }
        read
    }

    fn read_batch(&mut self, max: usize, into: &mut Workload) -> Result<bool, DatasetError> {
        let mut locs = Vec::new();
        let mut count = 0usize;
        while count < max.max(1) {
            match self.next_chunk()? {
                Some(loc) => {
                    count += loc.records as usize;
                    locs.push(loc);
                }
                None => break,
            }
        }
        if locs.is_empty() {
            if !self.done {
                self.trailer()?;
                self.done = true;
            }
            return Ok(false);
        }
        // Slots are overwritten in place: resizing drops the slots past this batch's count, and
        // writes new ones only when this batch is larger than the vector already is.
        into.transactions.resize(count, SignedContract::blank());
        into.truth.resize(count, Truth::Valid);
        into.readings.resize(
            count,
            Reading {
                delivered: Energy::ZERO,
                received: Energy::ZERO,
                carried: false,
            },
        );
        // Each chunk gets its own disjoint part of the record slots.
        let mut jobs = Vec::with_capacity(locs.len());
        let mut txs = &mut into.transactions[..];
        let (mut truths, mut reads) = (&mut into.truth[..], &mut into.readings[..]);
        for &loc in &locs {
            let n = loc.records as usize;
            let (x, rest) = std::mem::take(&mut txs).split_at_mut(n);
            txs = rest;
            let (t, rest) = std::mem::take(&mut truths).split_at_mut(n);
            truths = rest;
            let (r, rest) = std::mem::take(&mut reads).split_at_mut(n);
            reads = rest;
            jobs.push(ChunkJob {
                loc,
                transactions: x,
                truth: t,
                readings: r,
            });
        }
        let (name, source) = (&self.name, &*self.source);
        let reads: Vec<Result<ChunkRead, DatasetError>> = jobs
            .into_par_iter()
            .map(|job| job.read_and_scan(source, name))
            .collect();
        // The first failing chunk in file order names the error.
        for read in reads {
            let read = read?;
            self.checksums.extend_from_slice(&read.checksum);
            for (total, n) in self.truths.iter_mut().zip(read.truths) {
                *total += n;
            }
        }
        if self.read == self.header.contracts && !self.done {
            self.trailer()?;
            self.done = true;
        }
        into.params.clone_from(&self.header.params.market);
        into.rules = Arc::clone(&self.rules);
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON form

/// The JSON form of a whole dataset (small markets only).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDataset {
    format: String,
    generator: u16,
    chunk_records: u32,
    params: Params,
    members: Vec<JsonMember>,
    contracts: Vec<JsonContract>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonMember {
    address: Address,
    role: Role,
    bus: Option<u32>,
    public_key: String,
    limit: Energy,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonContract {
    contract: crate::contract::Contract,
    signatures: [String; 3],
    /// "valid", or the planted reason (`forged_signature`, ...).
    truth: String,
    reading: JsonReading,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonReading {
    delivered: Energy,
    received: Energy,
    carried: bool,
}

/// Truths a record can carry: valid, and one per planted reason.
pub const TRUTHS: usize = 1 + PlantedReason::ALL.len();

/// Adds to `counts` how many of `truth` carry each truth, indexed by the code the file gives it
/// (0 valid, then `PlantedReason::ALL` in order; [`truth_at`] names an index). An array
/// increment per record: counting a 1,000,000-contract file this way is noise beside reading it.
pub fn tally(truth: &[Truth], counts: &mut [u64; TRUTHS]) {
    for &t in truth {
        counts[usize::from(truth_code(t))] += 1;
    }
}

/// The truth counted at index `i` of a [`tally`].
pub fn truth_at(i: usize) -> Option<Truth> {
    u8::try_from(i).ok().and_then(truth_of)
}

/// A truth's name in the JSON form and reports: "valid" or the reason's snake_case name.
pub fn truth_name(t: Truth) -> String {
    match t {
        Truth::Valid => "valid".into(),
        Truth::Invalid(r) => serde_json::to_value(r)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

fn truth_named(name: &str) -> Option<Truth> {
    if name == "valid" {
        return Some(Truth::Valid);
    }
    PlantedReason::ALL
        .into_iter()
        .find(|&r| truth_name(Truth::Invalid(r)) == name)
        .map(Truth::Invalid)
}

/// Everything in a dataset, in memory (for the JSON form and small markets).
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The header.
    pub header: Header,
    /// The participants.
    pub members: Vec<Member>,
    /// The contracts with truth and readings.
    pub workload: Workload,
}

/// Reads a whole binary dataset into memory.
pub fn read_binary(path: &Path) -> Result<Dataset, DatasetError> {
    read_all(Reader::open(path)?)
}

/// Reads a whole binary dataset held in memory (`name` names it in errors).
pub fn read_binary_bytes(name: &str, bytes: Vec<u8>) -> Result<Dataset, DatasetError> {
    read_all(Reader::from_bytes(name, bytes)?)
}

fn read_all(mut r: Reader) -> Result<Dataset, DatasetError> {
    // The count was checked against the file's size at open (every record takes RECORD_MIN
    // bytes), so reserving it reserves no more than the file can fill.
    let n = usize::try_from(r.header.contracts).unwrap_or(0);
    let mut all = r.empty_batch();
    all.transactions.reserve_exact(n);
    all.truth.reserve_exact(n);
    all.readings.reserve_exact(n);
    let mut batch = r.empty_batch();
    while r.next_batch_into(1 << 16, &mut batch)? {
        all.transactions.extend_from_slice(&batch.transactions);
        all.truth.extend_from_slice(&batch.truth);
        all.readings.extend_from_slice(&batch.readings);
    }
    Ok(Dataset {
        header: r.header.clone(),
        members: r.members.clone(),
        workload: all,
    })
}

/// Writes a whole in-memory dataset in binary form.
pub fn write_binary(path: &Path, d: &Dataset) -> Result<[u8; 32], DatasetError> {
    let mut w = Writer::create(path, d.header.clone(), &d.members)?;
    w.write(&d.workload)?;
    w.finish()
}

/// Renders a dataset as JSON text.
pub fn to_json(d: &Dataset) -> String {
    let w = &d.workload;
    let doc = JsonDataset {
        format: JSON_FORMAT.into(),
        generator: d.header.generator,
        chunk_records: d.header.chunk_records,
        params: d.header.params.clone(),
        members: d
            .members
            .iter()
            .map(|m| JsonMember {
                address: m.address,
                role: m.role,
                bus: m.bus,
                public_key: hex::encode(m.public_key),
                limit: m.limit,
            })
            .collect(),
        contracts: (0..w.transactions.len())
            .map(|i| JsonContract {
                contract: w.transactions[i].contract,
                signatures: w.transactions[i].signatures.map(hex::encode),
                truth: truth_name(w.truth[i]),
                reading: JsonReading {
                    delivered: w.readings[i].delivered,
                    received: w.readings[i].received,
                    carried: w.readings[i].carried,
                },
            })
            .collect(),
    };
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Parses the JSON form (`file` names it in errors).
pub fn from_json(file: &str, text: &str) -> Result<Dataset, DatasetError> {
    let err = |at: String, field: &str, message: String| DatasetError {
        file: file.to_owned(),
        at,
        field: field.to_owned(),
        message,
    };
    let doc: JsonDataset =
        serde_json::from_str(crate::base::input::strip_bom(text)).map_err(|e| {
            err(
                format!("line {} column {}", e.line(), e.column()),
                "document",
                e.to_string(),
            )
        })?;
    if doc.format != JSON_FORMAT {
        return Err(err(
            "document".into(),
            "format",
            format!("expected {JSON_FORMAT:?}, found {:?}", doc.format),
        ));
    }
    version("generator", doc.generator, GENERATOR_VERSION)
        .map_err(|m| err("document".into(), "generator", m))?;
    if doc.chunk_records == 0 || doc.chunk_records > CHUNK_RECORDS {
        return Err(err(
            "document".into(),
            "chunk_records",
            format!("{} is outside 1..={CHUNK_RECORDS}", doc.chunk_records),
        ));
    }
    let mut members = Vec::with_capacity(doc.members.len());
    for (i, m) in doc.members.iter().enumerate() {
        let key = hex::decode(&m.public_key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| {
                err(
                    format!("members[{i}]"),
                    "public_key",
                    "expected 64 hex digits".into(),
                )
            })?;
        members.push(Member {
            address: m.address,
            role: m.role,
            bus: m.bus,
            public_key: key,
            limit: m.limit,
        });
    }
    let rules = rules_of(file, &members, &doc.params.bounds)?;
    let n = doc.contracts.len();
    let mut w = Workload {
        params: doc.params.market.clone(),
        rules: Arc::new(rules),
        transactions: Vec::with_capacity(n),
        truth: Vec::with_capacity(n),
        readings: Vec::with_capacity(n),
    };
    for (i, c) in doc.contracts.into_iter().enumerate() {
        let record = format!("contracts[{i}]");
        let mut signatures = [[0u8; 64]; 3];
        for (k, s) in c.signatures.iter().enumerate() {
            signatures[k] = hex::decode(s)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .ok_or_else(|| {
                    err(
                        record.clone(),
                        &format!("signatures[{k}]"),
                        "expected 128 hex digits".into(),
                    )
                })?;
        }
        for (v, f) in [
            (c.reading.delivered, "reading.delivered"),
            (c.reading.received, "reading.received"),
        ] {
            if v < Energy::ZERO {
                return Err(err(record.clone(), f, format!("negative energy {v}")));
            }
        }
        // The canonical encoding must accept it (the binary form stores those bytes).
        let signed = SignedContract {
            contract: c.contract,
            signatures,
        };
        if let Err(e) = SignedContract::decode(&signed.encode()) {
            return Err(err(record, "contract", e.to_string()));
        }
        w.transactions.push(signed);
        w.truth.push(truth_named(&c.truth).ok_or_else(|| {
            err(
                record.clone(),
                "truth",
                format!("{:?} is not \"valid\" or a planted reason", c.truth),
            )
        })?);
        w.readings.push(Reading {
            delivered: c.reading.delivered,
            received: c.reading.received,
            carried: c.reading.carried,
        });
    }
    let seed = doc.params.market.seed;
    Ok(Dataset {
        header: Header {
            format: FORMAT_VERSION,
            generator: doc.generator,
            seed,
            members: members.len() as u64,
            contracts: n as u64,
            chunk_records: doc.chunk_records,
            params: doc.params,
        },
        members,
        workload: w,
    })
}

/// True when `path` names the JSON form (by its extension).
pub fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Reads either form whole, by extension.
pub fn read_any(path: &Path) -> Result<Dataset, DatasetError> {
    if is_json(path) {
        let name = path.display().to_string();
        let size = std::fs::metadata(path)
            .map_err(|e| DatasetError::io(&name, &e))?
            .len();
        if size > MAX_JSON_BYTES {
            return Err(DatasetError {
                file: name,
                at: "file".into(),
                field: "-".into(),
                message: format!("{size} bytes; the JSON form is read up to {MAX_JSON_BYTES}"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(&name, &e))?;
        from_json(&name, &text)
    } else {
        read_binary(path)
    }
}

/// Writes either form whole, by extension (JSON through a temporary name and a rename too).
pub fn write_any(path: &Path, d: &Dataset) -> Result<(), DatasetError> {
    if is_json(path) {
        let name = path.display().to_string();
        let partial = path.with_extension("partial");
        std::fs::write(&partial, to_json(d)).map_err(|e| DatasetError::io(&name, &e))?;
        std::fs::rename(&partial, path).map_err(|e| DatasetError::io(&name, &e))?;
        Ok(())
    } else {
        write_binary(path, d).map(|_| ())
    }
}

/// The header a generated market's dataset gets.
pub fn header_for(
    params: &WorkloadParams,
    grid: Option<&str>,
    rules: &MarketRules,
    members: u64,
) -> Header {
    Header {
        format: FORMAT_VERSION,
        generator: GENERATOR_VERSION,
        seed: params.seed,
        members,
        contracts: params.contracts as u64,
        chunk_records: CHUNK_RECORDS,
        params: Params {
            market: params.clone(),
            grid: grid.map(str::to_owned),
            bounds: Bounds::of(rules),
        },
    }
}
