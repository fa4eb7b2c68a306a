//! Meter readings files: what the meters read for each contract at its delivery time.
//!
//! Format (JSON; amounts as decimal strings, never JSON numbers):
//!
//! ```json
//! { "format": "ipow-readings/1",
//!   "readings": [
//!     { "contract": "f15", "delivered": "10.98", "received": "10.98", "carried": true } ] }
//! ```
//!
//! `contract` is a contract's name in its market (`f15`), its id in hex, or (in a dataset) its
//! position in the file as a decimal number from 0. Every contract of the period must have
//! exactly one reading: a missing, duplicated or unknown contract is an error naming the file,
//! the record and the field, and nothing is settled. (A dataset's contracts that the checks
//! reject are not part of the period and need no reading; one given for them is ignored.)
//!
//! A reading may be above the contracted energy (meters read a little over; settlement pays at
//! most the contract), but not by more than [`MAX_OVER_PERCENT`] percent: 10^15 MWh against a
//! 10.98 MWh contract is a wrong file, not a delivery, and is refused naming the record and field.

use serde::Deserialize;

use crate::base::amount::Energy;
use crate::ledger::Reading;

/// The format tag a readings file must carry.
pub const FORMAT: &str = "ipow-readings/1";
/// How far above the contracted energy a reading may be, in percent of the contract (the limit
/// is rounded down to 0.001 MWh).
pub const MAX_OVER_PERCENT: i64 = 10;

/// The largest readings file read, checked before reading it whole.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A readings file that cannot be used, naming the file, the record and the field.
pub type ReadingsError = crate::base::input::InputError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: String,
    readings: Vec<RawReading>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReading {
    contract: String,
    delivered: String,
    received: String,
    carried: bool,
}

/// Parses `text` (named `file` in errors) into one reading per contract. `lookup` maps a
/// contract reference (name or hex id) to its position among the `count` contracts, and
/// `contracted` a position to its contract's energy.
pub fn parse(
    text: &str,
    file: &str,
    count: usize,
    lookup: &dyn Fn(&str) -> Option<usize>,
    contracted: &dyn Fn(usize) -> Energy,
) -> Result<Vec<Reading>, ReadingsError> {
    let out = parse_partial(text, file, count, lookup, contracted)?;
    if let Some(missing) = out.iter().position(Option::is_none) {
        return Err(ReadingsError::new(
            file,
            "readings",
            "contract",
            format!("no reading for contract #{missing} of the period"),
        ));
    }
    Ok(out.into_iter().flatten().collect())
}

/// As [`parse`], leaving contracts without a reading as `None` for the caller to judge (a
/// dataset's rejected contracts need none).
pub fn parse_partial(
    text: &str,
    file: &str,
    count: usize,
    lookup: &dyn Fn(&str) -> Option<usize>,
    contracted: &dyn Fn(usize) -> Energy,
) -> Result<Vec<Option<Reading>>, ReadingsError> {
    let err = |record: String, field: &str, message: String| {
        ReadingsError::new(file, &record, field, message)
    };
    let raw: RawFile = crate::base::input::json_document(file, text)?;
    crate::base::input::check_format(file, &raw.format, FORMAT)?;
    let mut out: Vec<Option<Reading>> = vec![None; count];
    for (k, r) in raw.readings.iter().enumerate() {
        let record = format!("readings[{k}]");
        let position = lookup(&r.contract).ok_or_else(|| {
            err(
                record.clone(),
                "contract",
                format!("unknown contract {:?}", r.contract),
            )
        })?;
        let limit = over_limit(contracted(position));
        let energy = |field: &str, text: &str| {
            let e = Energy::parse(text).map_err(|e| err(record.clone(), field, e.to_string()))?;
            if e > limit {
                return Err(err(
                    record.clone(),
                    field,
                    format!(
                        "{text} MWh is more than {MAX_OVER_PERCENT}% above the contract's {} \
                         MWh: no meter reads that against this contract",
                        contracted(position)
                    ),
                ));
            }
            Ok(e)
        };
        let reading = Reading {
            delivered: energy("delivered", &r.delivered)?,
            received: energy("received", &r.received)?,
            carried: r.carried,
        };
        if out[position].replace(reading).is_some() {
            return Err(err(
                record,
                "contract",
                format!("a second reading for {:?}", r.contract),
            ));
        }
    }
    Ok(out)
}

/// The most a reading may say against a contract of `energy`: [`MAX_OVER_PERCENT`] above it,
/// rounded down to 0.001 MWh (saturating, for the largest contracts).
fn over_limit(energy: Energy) -> Energy {
    let raw = energy.raw();
    let over = raw / 100 * MAX_OVER_PERCENT + raw % 100 * MAX_OVER_PERCENT / 100;
    Energy::from_raw(raw.saturating_add(over))
}
