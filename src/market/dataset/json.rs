//! The JSON form, `ipow-market/2`: the same content as the binary form (binary -> JSON ->
//! binary is byte-exact), with each participant's bus as the grid file's MATPOWER number, as
//! in every other file ipow reads or writes. `bus_numbers` lists the grid's numbers in file
//! order, so the file reads back without the grid. `ipow-market/1` (the 0-based bus index) is
//! still read.

use super::*;

/// The JSON form of a whole dataset (small markets only).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JsonDataset {
    format: String,
    generator: u16,
    chunk_records: u32,
    params: Params,
    /// The MATPOWER number of each of the grid's buses, in file order (absent without a grid,
    /// and in format 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bus_numbers: Vec<u32>,
    members: Vec<JsonMember>,
    contracts: Vec<JsonContract>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JsonMember {
    address: Address,
    role: Role,
    bus: Option<u32>,
    public_key: String,
    limit: Energy,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JsonContract {
    contract: crate::contract::Contract,
    signatures: [String; 3],
    /// "valid", or the planted reason (`forged_signature`, ...).
    truth: String,
    reading: JsonReading,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JsonReading {
    delivered: Energy,
    received: Energy,
    carried: bool,
}

pub(super) fn truth_named(name: &str) -> Option<Truth> {
    if name == "valid" {
        return Some(Truth::Valid);
    }
    PlantedReason::ALL
        .into_iter()
        .find(|&r| truth_name(Truth::Invalid(r)) == name)
        .map(Truth::Invalid)
}

/// Renders a dataset as JSON text (`file` names it in errors): every member's bus as its
/// MATPOWER number, which `d.bus_numbers` must give.
pub fn to_json(file: &str, d: &Dataset) -> Result<String, DatasetError> {
    let w = &d.workload;
    let mut members = Vec::with_capacity(d.members.len());
    for (i, m) in d.members.iter().enumerate() {
        let bus = match m.bus {
            None => None,
            Some(b) => Some(*d.bus_numbers.get(b as usize).ok_or_else(|| DatasetError {
                file: file.to_owned(),
                at: format!("members[{i}]"),
                field: "bus".into(),
                message: format!(
                    "bus index {b} has no MATPOWER number: {}",
                    if d.bus_numbers.is_empty() {
                        "the grid's bus numbers are unknown (ipow dataset convert --grid FILE)"
                    } else {
                        "the grid has fewer buses"
                    }
                ),
            })?),
        };
        members.push(JsonMember {
            address: m.address,
            role: m.role,
            bus,
            public_key: hex::encode(m.public_key),
            limit: m.limit,
        });
    }
    let doc = JsonDataset {
        format: JSON_FORMAT.into(),
        generator: d.header.generator,
        chunk_records: d.header.chunk_records,
        params: d.header.params.clone(),
        bus_numbers: d.bus_numbers.clone(),
        members,
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
    Ok(serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// The members of a JSON dataset, each key 64 hex digits, each bus a MATPOWER number among
/// `numbers` (format 2; format 1's buses are indices, `numbers` None).
fn members_of(
    raw: &[JsonMember],
    numbers: Option<&std::collections::HashMap<u32, u32>>,
    err: &dyn Fn(String, &str, String) -> DatasetError,
) -> Result<Vec<Member>, DatasetError> {
    let mut members = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
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
        let bus = match (m.bus, numbers) {
            (Some(number), Some(index)) => Some(*index.get(&number).ok_or_else(|| {
                err(
                    format!("members[{i}]"),
                    "bus",
                    format!("bus {number} is not among bus_numbers (the grid's MATPOWER numbers)"),
                )
            })?),
            (bus, _) => bus,
        };
        members.push(Member {
            address: m.address,
            role: m.role,
            bus,
            public_key: key,
            limit: m.limit,
        });
    }
    Ok(members)
}

/// The `format` of a JSON dataset that reads (`from_json` accepted it).
pub fn json_format(text: &str) -> String {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    serde_json::from_str::<Format>(crate::base::input::strip_bom(text))
        .map(|f| f.format)
        .unwrap_or_default()
}

/// By the document's format: each MATPOWER number's bus index (format 2; a number listed
/// twice is an error), or None (format 1, whose buses are indices).
fn bus_index(
    doc: &JsonDataset,
    err: &dyn Fn(String, &str, String) -> DatasetError,
) -> Result<Option<std::collections::HashMap<u32, u32>>, DatasetError> {
    let numbers = &doc.bus_numbers;
    match doc.format.as_str() {
        JSON_FORMAT => {}
        JSON_FORMAT_V1 if numbers.is_empty() => return Ok(None),
        JSON_FORMAT_V1 => {
            return Err(err(
                "document".into(),
                "bus_numbers",
                format!("not part of {JSON_FORMAT_V1:?} (its buses are indices)"),
            ));
        }
        other => {
            return Err(err(
                "document".into(),
                "format",
                format!("expected {JSON_FORMAT:?} (or {JSON_FORMAT_V1:?}), found {other:?}"),
            ));
        }
    }
    let mut index = std::collections::HashMap::with_capacity(numbers.len());
    for (i, &n) in numbers.iter().enumerate() {
        let at = u32::try_from(i).unwrap_or(u32::MAX);
        if index.insert(n, at).is_some() {
            return Err(err(
                format!("bus_numbers[{i}]"),
                "bus_numbers",
                format!("bus {n} is listed twice"),
            ));
        }
    }
    Ok(Some(index))
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
    let numbers = bus_index(&doc, &err)?;
    version("generator", doc.generator, GENERATOR_VERSION)
        .map_err(|m| err("document".into(), "generator", m))?;
    if doc.chunk_records == 0 || doc.chunk_records > CHUNK_RECORDS {
        return Err(err(
            "document".into(),
            "chunk_records",
            format!("{} is outside 1..={CHUNK_RECORDS}", doc.chunk_records),
        ));
    }
    let members = members_of(&doc.members, numbers.as_ref(), &err)?;
    let bus_numbers = doc.bus_numbers.clone();
    let n = doc.contracts.len();
    let seed = doc.params.market.seed;
    counts_agree(&doc.params.market, seed, members.len() as u64, n as u64)
        .map_err(|(field, message)| err("params".into(), field, message))?;
    let rules = rules_of(file, &members, &doc.params.bounds)?;
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
        bus_numbers,
    })
}
