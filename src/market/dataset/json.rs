//! The JSON form, `ipow-market/1`: the same content as the binary form (binary -> JSON ->
//! binary is byte-exact).

use super::*;

/// The JSON form of a whole dataset (small markets only).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JsonDataset {
    format: String,
    generator: u16,
    chunk_records: u32,
    params: Params,
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

/// The members of a JSON dataset, each key 64 hex digits.
fn members_of(
    raw: &[JsonMember],
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
        members.push(Member {
            address: m.address,
            role: m.role,
            bus: m.bus,
            public_key: key,
            limit: m.limit,
        });
    }
    Ok(members)
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
    let members = members_of(&doc.members, &err)?;
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
    })
}
