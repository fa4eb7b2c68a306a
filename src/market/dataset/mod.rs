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

mod json;
mod reader;
mod writer;

pub use json::{from_json, json_format, to_json};
pub use reader::Reader;
pub use writer::Writer;

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
pub const GENERATOR_VERSION: u16 = 2;
/// The JSON form's format tag.
pub const JSON_FORMAT: &str = "ipow-market/2";

/// The JSON form before bus numbers: `bus` held the grid's 0-based bus index. Still read;
/// `ipow dataset convert` rewrites it as format 2.
pub const JSON_FORMAT_V1: &str = "ipow-market/1";
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
    /// Delivery slot length in minutes (a divisor of 60).
    pub slot_minutes: u32,
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
            slot_minutes: rules.slot_minutes,
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

/// Whether the generator parameters a dataset carries agree with the seed and counts it holds: the field
/// that disagrees, and why. (A file whose header claims one market and holds another would
/// otherwise verify "ok".)
pub(super) fn counts_agree(
    params: &WorkloadParams,
    seed: u64,
    members: u64,
    contracts: u64,
) -> Result<(), (&'static str, String)> {
    if params.seed != seed {
        return Err((
            "params.market.seed",
            "differs from the header's seed".into(),
        ));
    }
    if params.contracts as u64 != contracts {
        return Err((
            "params.market.contracts",
            format!(
                "says {} contracts; the dataset holds {contracts}",
                params.contracts
            ),
        ));
    }
    let roles = [
        params.sellers,
        params.purchasers,
        params.transmission_companies,
        params.grid_operators,
        params.sources,
    ];
    // Every generated market has one government supervisor beside the roles it counts.
    let declared: u64 = roles.iter().map(|&n| u64::from(n)).sum::<u64>() + 1;
    if declared != members {
        return Err((
            "params.market",
            format!(
                "its roles and the supervisor add up to {declared} participants; the dataset \
                 holds {members} members"
            ),
        ));
    }
    Ok(())
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
    crate::base::domain::check_slot_minutes(bounds.slot_minutes).map_err(|message| {
        DatasetError {
            file: file.to_owned(),
            at: "params.bounds".to_owned(),
            field: "slot_minutes".to_owned(),
            message,
        }
    })?;
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
        slot_minutes: bounds.slot_minutes,
        seq_watermark: bounds.seq_watermark,
        seller_base: SELLER_BASE,
        purchaser_base: PURCHASER_BASE,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

// ---------------------------------------------------------------------------------------------
// Reading

thread_local! {
    /// Each thread's chunk buffer, reused by every chunk it reads: at most one chunk (about
    /// 600 KB) per thread, so a chunk's bytes stay in that core's L2 cache from the read to
    /// the last record decoded.
    static CHUNK_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

// ---------------------------------------------------------------------------------------------
// JSON form

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

/// Everything in a dataset, in memory (for the JSON form and small markets).
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The header.
    pub header: Header,
    /// The participants.
    pub members: Vec<Member>,
    /// The contracts with truth and readings.
    pub workload: Workload,
    /// The MATPOWER number of each bus of the grid the market was placed on, in the grid
    /// file's order: what the JSON form writes for a participant's bus (members keep the
    /// 0-based index). Empty when unknown: the binary form does not carry them, so writing
    /// JSON from it takes the grid ([`Dataset::number_buses`]).
    pub bus_numbers: Vec<u32>,
}

impl Dataset {
    /// Takes the bus numbers from `grid`, the case the market was placed on: every member's
    /// bus index must be one of its buses.
    pub fn number_buses(&mut self, grid: &crate::grid::Grid) -> Result<(), String> {
        let n = grid.buses.len();
        if let Some((i, b)) = self
            .members
            .iter()
            .enumerate()
            .find_map(|(i, m)| m.bus.filter(|&b| b as usize >= n).map(|b| (i, b)))
        {
            return Err(format!(
                "members[{i}].bus: index {b} is outside {} ({n} buses)",
                grid.source
            ));
        }
        self.bus_numbers = grid.bus_numbers();
        Ok(())
    }
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
    let n = usize::try_from(r.header().contracts).unwrap_or(0);
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
        header: r.header().clone(),
        members: r.members().to_vec(),
        workload: all,
        bus_numbers: Vec::new(),
    })
}

/// Writes a whole in-memory dataset in binary form.
pub fn write_binary(path: &Path, d: &Dataset) -> Result<[u8; 32], DatasetError> {
    let mut w = Writer::create(path, d.header.clone(), &d.members)?;
    w.write(&d.workload)?;
    w.finish()
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
        let text = crate::base::input::read_text(path, MAX_JSON_BYTES).map_err(|message| {
            DatasetError {
                file: name.clone(),
                at: "file".into(),
                field: "-".into(),
                message,
            }
        })?;
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
        let text = to_json(&name, d)?;
        std::fs::write(&partial, text).map_err(|e| DatasetError::io(&name, &e))?;
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
