//! Fuzz targets: one function per reader of outside bytes, shared by the cargo-fuzz crate in
//! `fuzz/` (coverage-guided, nightly) and by the stable test that replays the committed corpora
//! and mutates them (`tests/fuzz.rs`).
//!
//! Each target takes arbitrary bytes and returns `Err` with the broken property, never panics
//! on its own: a rejected input is fine (`Ok`), an accepted one must round-trip where the format
//! has an encoder, and an error must name the input's file. Whether a target allocates in
//! proportion to a length the input declares is checked by the callers (libFuzzer's
//! `-malloc_limit_mb`, and the stable test's counting allocator).
//!
//! [`mutate`] is the stable test's mutator: deterministic from its seed, byte- and
//! text-aware (digits become extreme numbers, lengths become huge). It is not coverage-guided;
//! libFuzzer is, where a nightly toolchain exists.

use std::path::Path;

use crate::base::rng::Rng;

/// The name every target gives its input in errors.
pub const FILE: &str = "fuzz-input";

/// A property a target found broken. A target's `Ok` says whether it accepted the input.
pub type Finding = String;

/// A target: its name (the cargo-fuzz target and corpus directory) and its function.
pub type Target = (&'static str, fn(&[u8]) -> Result<bool, Finding>);

/// Every target, in the order the corpora are listed.
pub const TARGETS: [Target; 12] = [
    ("contract", contract),
    ("dataset_binary", dataset_binary),
    ("dataset_json", dataset_json),
    ("readings", readings),
    ("matpower", matpower),
    ("scenario", scenario),
    ("paper_market", paper_market),
    ("trades", trades),
    ("store_log", store_log),
    ("proof", proof),
    ("signature_rule", signature_rule),
    ("wire", wire),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.0 == name)
}

fn names_file(what: &str, message: &str) -> Result<bool, Finding> {
    if message.contains(FILE) {
        Ok(false)
    } else {
        Err(format!(
            "{what}: the error does not name the file: {message}"
        ))
    }
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `Contract::decode` and `SignedContract::decode`: whatever decodes re-encodes to the same
/// bytes (the encoding is canonical).
pub fn contract(data: &[u8]) -> Result<bool, Finding> {
    use crate::contract::{Contract, SignedContract};
    let mut accepted = false;
    if let Ok(c) = Contract::decode(data) {
        if c.encode() != data {
            return Err("Contract::decode accepted bytes that encode differently".into());
        }
        accepted = true;
    }
    if let Ok(s) = SignedContract::decode(data) {
        if s.encode() != data {
            return Err("SignedContract::decode accepted bytes that encode differently".into());
        }
        accepted = true;
    }
    Ok(accepted)
}

/// The binary dataset reader: an accepted file converts to JSON and back to the same dataset,
/// and writes back to the same bytes.
pub fn dataset_binary(data: &[u8]) -> Result<bool, Finding> {
    use crate::market::dataset;
    let mut d = match dataset::read_binary_bytes(FILE, data.to_vec()) {
        Ok(d) => d,
        Err(e) => return names_file("dataset_binary", &e.to_string()),
    };
    // The binary form carries no bus numbers: the round trip numbers buses from 1.
    if !numbered(&mut d) {
        return Ok(true);
    }
    let json = dataset::to_json(FILE, &d).map_err(|e| e.to_string())?;
    let back = dataset::from_json(FILE, &json)
        .map_err(|e| format!("a read dataset's JSON does not read back: {e}"))?;
    if back.members != d.members {
        return Err("binary -> JSON -> dataset changed the members".into());
    }
    if dataset::to_json(FILE, &back).map_err(|e| e.to_string())? != json {
        return Err("binary -> JSON -> dataset -> JSON changed the JSON".into());
    }
    let dir = std::env::temp_dir().join(format!("ipow-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("roundtrip.ipowm");
    dataset::write_binary(&path, &back).map_err(|e| format!("writing back: {e}"))?;
    let written = std::fs::read(&path).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&path);
    if written != data {
        return Err("an accepted binary dataset writes back to different bytes".into());
    }
    Ok(true)
}

/// The JSON dataset reader: an accepted document writes to JSON that reads back the same.
pub fn dataset_json(data: &[u8]) -> Result<bool, Finding> {
    use crate::market::dataset;
    let Some(t) = text(data) else {
        return Ok(false);
    };
    let mut d = match dataset::from_json(FILE, t) {
        Ok(d) => d,
        Err(e) => return names_file("dataset_json", &e.to_string()),
    };
    // Format 1 carries no bus numbers: the round trip numbers buses from 1.
    if !numbered(&mut d) {
        return Ok(true);
    }
    let json = dataset::to_json(FILE, &d).map_err(|e| e.to_string())?;
    let back = dataset::from_json(FILE, &json)
        .map_err(|e| format!("an accepted dataset's JSON does not read back: {e}"))?;
    if back.members != d.members {
        return Err("JSON -> dataset changed the members".into());
    }
    if dataset::to_json(FILE, &back).map_err(|e| e.to_string())? != json {
        return Err("JSON -> dataset -> JSON is not stable".into());
    }
    Ok(true)
}

/// Gives `d` bus numbers 1, 2, ... when it has none; false when its largest bus index is 2^20
/// or more (no grid has that many buses).
fn numbered(d: &mut crate::market::dataset::Dataset) -> bool {
    if !d.bus_numbers.is_empty() {
        return true;
    }
    match d.members.iter().filter_map(|m| m.bus).max() {
        Some(top) if top >= 1 << 20 => false,
        Some(top) => {
            d.bus_numbers = (1..=top + 1).collect();
            true
        }
        None => true,
    }
}

/// The readings file, against 64 contracts named by position (`7`) or as the paper names them
/// (`f7`).
pub fn readings(data: &[u8]) -> Result<bool, Finding> {
    let Some(t) = text(data) else {
        return Ok(false);
    };
    let lookup = |r: &str| -> Option<usize> {
        r.strip_prefix('f')
            .unwrap_or(r)
            .parse::<usize>()
            .ok()
            .filter(|&k| k < 64)
    };
    // Contracts large enough that only the readings' own syntax and bounds decide.
    let contracted = |_: usize| crate::base::amount::Energy::from_raw(i64::MAX / 2);
    match crate::market::readings::parse_partial(t, FILE, 64, &lookup, &contracted) {
        Ok(out) if out.len() != 64 => Err(format!("{} readings for 64 contracts", out.len())),
        Ok(_) => Ok(true),
        Err(e) => names_file("readings", &e.to_string()),
    }
}

/// The MATPOWER parser, and the DC model built from what it accepts.
pub fn matpower(data: &[u8]) -> Result<bool, Finding> {
    let Some(t) = text(data) else {
        return Ok(false);
    };
    let grid = match crate::grid::Grid::parse(FILE, t) {
        Ok(g) => g,
        Err(e) => return names_file("matpower", &e.to_string()),
    };
    match crate::grid::DcModel::new(grid) {
        Ok(_) => Ok(true),
        Err(e) => names_file("matpower model", &e.to_string()),
    }
}

/// The scenario file (paths resolve under a directory that does not exist).
pub fn scenario(data: &[u8]) -> Result<bool, Finding> {
    let Some(t) = text(data) else {
        return Ok(false);
    };
    match crate::lab::scenario::parse(FILE, t, Path::new("/nonexistent/ipow-fuzz")) {
        Ok(_) => Ok(true),
        Err(e) => names_file("scenario", &e.to_string()),
    }
}

/// The paper's market file.
pub fn paper_market(data: &[u8]) -> Result<bool, Finding> {
    let Some(t) = text(data) else {
        return Ok(false);
    };
    match crate::market::paper::PaperMarket::from_json(t, FILE) {
        Ok(_) => Ok(true),
        Err(e) => names_file("paper_market", &e.to_string()),
    }
}

/// The trades file of `ipow grid flows`.
pub fn trades(data: &[u8]) -> Result<bool, Finding> {
    let Some(t) = text(data) else {
        return Ok(false);
    };
    match crate::grid::parse_trades(FILE, t) {
        Ok(list) if list.iter().any(|t| !t.mw.is_finite()) => {
            Err("a trade with a non-finite mw was accepted".into())
        }
        Ok(_) => Ok(true),
        Err(e) => names_file("trades", &e.to_string()),
    }
}

/// The store's record reader and every record decoder, run on every record whether or not its
/// check matches (so mutations reach the decoders); genesis, consensus and header records that
/// decode re-encode to the same payload, and the reader only moves forward within the bytes.
pub fn store_log(data: &[u8]) -> Result<bool, Finding> {
    use crate::chain::store::{self, LogReader, kind};
    let mut reader = LogReader::from_bytes(data.to_vec());
    let mut last = 0u64;
    let mut accepted = !data.is_empty();
    loop {
        let record = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(stop) if stop.offset == reader.offset() => {
                accepted = false;
                break;
            }
            Err(stop) => return Err(format!("stop at {} while at {}", stop.offset, last)),
        };
        if record.offset < last || reader.offset() > data.len() as u64 {
            return Err("the reader went backwards or past the end".into());
        }
        last = reader.offset();
        accepted &= record.check_ok;
        let p = &record.payload;
        let decoded = match record.kind {
            kind::GENESIS => match store::decode_genesis(p) {
                Ok(g) if store::encode_genesis(&g) != *p => {
                    return Err("a genesis record decodes and re-encodes differently".into());
                }
                r => r.is_ok(),
            },
            kind::CONSENSUS => match store::decode_consensus(p) {
                Ok(b) => {
                    let mut out = Vec::new();
                    store::encode_consensus(&mut out, &b);
                    if out != *p {
                        return Err("a consensus record decodes and re-encodes differently".into());
                    }
                    true
                }
                Err(_) => false,
            },
            kind::SLAVE => match store::decode_slave(p) {
                Ok(s) => {
                    let mut all = true;
                    for (_, bytes) in &s.contracts {
                        all &= contract(bytes)?;
                    }
                    all
                }
                Err(_) => false,
            },
            kind::MASTER | kind::CONSORTIUM => match store::decode_header_record(p) {
                Ok((h, signature)) if [&h.encode()[..], &signature[..]].concat() != p[..] => {
                    return Err("a chain header decodes and re-encodes differently".into());
                }
                r => r.is_ok(),
            },
            kind::COMMIT => store::decode_commit(p).is_ok(),
            _ => false,
        };
        accepted &= decoded;
    }
    Ok(accepted)
}

/// The cluster's messages (`cluster::wire`): what decodes re-encodes to the same bytes; a
/// context message's published congestion context, decoded on case14 (the shipped grid with
/// sellers and purchasers placed), re-encodes to the same bytes too.
pub fn wire(data: &[u8]) -> Result<bool, Finding> {
    use crate::cluster::wire::Message;
    use crate::validate::congestion::PeriodCongestion;
    let Ok(m) = Message::decode(data) else {
        return Ok(false);
    };
    if m.encode() != data {
        return Err("a wire message decoded from bytes that encode differently".into());
    }
    if let Message::Context { context, .. } = &m
        && !context.is_empty()
    {
        let grid = case14();
        let terms = crate::market::rules::MarketRules::empty().terms();
        if let Ok(pc) = PeriodCongestion::published(grid, terms, context) {
            let mut again = Vec::new();
            pc.encode_published(&mut again);
            if &again != context {
                return Err(
                    "a published context decoded from bytes that encode differently".into(),
                );
            }
        }
    }
    Ok(true)
}

/// case14 with 5 sellers and 9 purchasers placed, built once.
fn case14() -> &'static crate::grid::placement::GridMarket {
    static GRID: std::sync::OnceLock<crate::grid::placement::GridMarket> =
        std::sync::OnceLock::new();
    GRID.get_or_init(|| {
        let text = include_str!("../datasets/grids/pglib_opf_case14_ieee.m");
        let grid = crate::grid::Grid::parse("case14", text)
            .unwrap_or_else(|e| unreachable!("the shipped case14 parses: {e}"));
        let model = crate::grid::DcModel::new(grid)
            .unwrap_or_else(|e| unreachable!("the shipped case14 factors: {e}"));
        crate::grid::placement::GridMarket::place(model, 5, 9)
            .unwrap_or_else(|e| unreachable!("case14 places 5 sellers and 9 purchasers: {e}"))
    })
}

/// Proof verification: the input is a consortium head in hex on the first line and a proof as
/// `ipow prove` prints it after. A proof that verifies still verifies after a JSON round trip,
/// and no longer verifies once its contract's last byte changes.
pub fn proof(data: &[u8]) -> Result<bool, Finding> {
    use crate::chain::{ContractProof, verify_proof};
    let Some(t) = text(data) else {
        return Ok(false);
    };
    let Some((head_hex, body)) = t.split_once('\n') else {
        return Ok(false);
    };
    let mut head = [0u8; 32];
    if hex::decode_to_slice(head_hex.trim(), &mut head).is_err() {
        return Ok(false);
    }
    let Ok(p) = serde_json::from_str::<ContractProof>(body) else {
        return Ok(false);
    };
    let Ok(proven) = verify_proof(&p, &head) else {
        return Ok(false);
    };
    let again: ContractProof = serde_json::to_string(&p)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or("a verified proof does not round-trip through JSON")?;
    if verify_proof(&again, &head).as_ref() != Ok(&proven) {
        return Err("a verified proof verifies differently after a JSON round trip".into());
    }
    let mut forged = p.clone();
    let last = forged.contract.pop().unwrap_or('0');
    forged.contract.push(if last == '0' { '1' } else { '0' });
    if verify_proof(&forged, &head).is_ok() {
        return Err("a proof still verifies with its contract's last byte changed".into());
    }
    Ok(true)
}

/// An oracle for [`signature_rule`]: (key, message, signature) to its verdict.
pub type SignatureOracle = dyn Fn(&[u8; 32], &[u8], &[u8; 64]) -> bool;

/// [`signature_rule_against`] with [`plain_equation`] as the oracle (the stable replay's target;
/// `fuzz/` runs the same input against ed25519-zebra).
pub fn signature_rule(data: &[u8]) -> Result<bool, Finding> {
    signature_rule_against(data, &plain_equation)
}

/// The cofactored equation written plainly, apart from `crypto::verify` (no tables, no
/// batches): [8]([S]B − R − [k]A) = O for a canonical S and decompressible R and A.
pub fn plain_equation(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::IsIdentity;
    use sha2::{Digest, Sha512};
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    let (Some(a), Some(r)) = (
        CompressedEdwardsY(*key).decompress(),
        CompressedEdwardsY(r_bytes).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key);
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    (EdwardsPoint::mul_base(&s) - r - a * k)
        .mul_by_cofactor()
        .is_identity()
}

/// The signature rule against an oracle of the same equation (ed25519-zebra in `fuzz/` and in
/// `tests/signatures.rs`, where the library does not depend on it; [`plain_equation`] here). The input's first 32 bytes seed a
/// key pair that signs the rest as a message; the next 96 bytes (zero when short) are XORed
/// onto the signature and then the key. Where the key passes admission and R is canonical and
/// not of small order, the rule must agree with the oracle; elsewhere it must reject; and among
/// seven honest neighbours a batch must give the single verdict and pass the neighbours.
pub fn signature_rule_against(data: &[u8], oracle: &SignatureOracle) -> Result<bool, Finding> {
    use crate::crypto::keys::{KeyPair, PublicKey};
    use crate::crypto::verify::{BatchStats, VerifyingKey, prepare, verify_batch, verify_one};
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let mut seed = [0u8; 32];
    let n = data.len().min(32);
    seed[..n].copy_from_slice(&data[..n]);
    let mask: Vec<u8> = data.iter().skip(32).take(96).copied().collect();
    let message = data.get(128..).unwrap_or(&[]);
    let pair = KeyPair::from_seed(&seed);
    let mut signature = pair.sign(message);
    let mut key = *pair.public_key().as_bytes();
    for (i, m) in mask.iter().enumerate() {
        match i {
            0..64 => signature[i] ^= m,
            _ => key[i - 64] ^= m,
        }
    }
    let Ok(admitted) = PublicKey::admit(key) else {
        return Ok(false);
    };
    let verifying = VerifyingKey::new(&admitted);
    let ours = verify_one(&verifying, &[message], &signature);
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    let equation = CompressedEdwardsY(r)
        .decompress()
        .is_some_and(|p| p.compress().0 == r && !p.is_small_order());
    if equation && ours != oracle(&key, message, &signature) {
        return Err(format!("the rule says {ours}, the oracle the opposite"));
    }
    if !equation && ours {
        return Err("accepted a non-canonical or small-order R".into());
    }
    let neighbours: Vec<(KeyPair, Vec<u8>)> = (0..7u8)
        .map(|i| (KeyPair::from_seed(&[i; 32]), vec![i; 5]))
        .collect();
    let keys: Vec<VerifyingKey> = neighbours
        .iter()
        .map(|(k, _)| VerifyingKey::new(&k.public_key()))
        .collect();
    let signatures: Vec<_> = neighbours.iter().map(|(k, m)| k.sign(m)).collect();
    let at = usize::from(seed[0] % 8);
    let mut items: Vec<_> = neighbours
        .iter()
        .zip(&keys)
        .zip(&signatures)
        .map(|(((_, m), k), s)| prepare(k, &[m.as_slice()], s))
        .collect();
    items.insert(at, prepare(&verifying, &[message], &signature));
    let mut verdicts = vec![false; items.len()];
    verify_batch(&items, &mut verdicts, &mut BatchStats::default());
    let others_pass = verdicts.iter().enumerate().all(|(i, v)| i == at || *v);
    if verdicts[at] != ours || !others_pass {
        return Err(format!(
            "batch verdicts {verdicts:?} differ from single {ours} at {at}"
        ));
    }
    Ok(ours)
}

/// Interesting replacements for a run of ASCII digits.
const NUMBERS: [&str; 12] = [
    "0",
    "-1",
    "1e999",
    "-1e999",
    "NaN",
    "4294967296",
    "18446744073709551616",
    "9223372036854775807",
    "0.000000001",
    "1e-400",
    "99999999999999999999999999",
    "-0",
];

/// One deterministic mutation of `input` (another corpus entry may be spliced in).
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = out.len();
        let at = |rng: &mut Rng| rng.index(len.max(1));
        match rng.below(10) {
            0 if len > 0 => {
                let i = at(rng);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = at(rng);
                out[i] = [0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'-', b'9'][rng.index(8)];
            }
            2 => {
                let i = at(rng);
                let n = 1 + rng.index(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64().to_le_bytes()[0]).collect();
                out.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = at(rng);
                let n = (1 + rng.index(64)).min(out.len() - i);
                out.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = at(rng);
                let n = (1 + rng.index(64)).min(out.len() - i);
                let copy = out[i..i + n].to_vec();
                let j = at(rng);
                out.splice(j..j, copy);
            }
            5 if !other.is_empty() => {
                let i = at(rng);
                let j = rng.index(other.len());
                let n = (1 + rng.index(256)).min(other.len() - j);
                out.truncate(i);
                out.extend_from_slice(&other[j..j + n]);
            }
            6 if len > 0 => {
                // A run of digits becomes an extreme number.
                let i = at(rng);
                if let Some(s) = out[i..].iter().position(u8::is_ascii_digit) {
                    let s = i + s;
                    let e = s + out[s..].iter().take_while(|b| b.is_ascii_digit()).count();
                    let n = NUMBERS[rng.index(NUMBERS.len())];
                    out.splice(s..e, n.bytes());
                }
            }
            7 if len >= 4 => {
                // A 4-byte field becomes huge (lengths and counts).
                let i = rng.index(out.len() - 3);
                let v = [u32::MAX, 0x7fff_ffff, 0x0100_0000, 0xffff][rng.index(4)];
                if rng.below(2) == 0 {
                    out[i..i + 4].copy_from_slice(&v.to_be_bytes());
                } else {
                    out[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            8 if len > 0 => out.truncate(at(rng)),
            _ => {
                let i = at(rng);
                out.splice(
                    i..i,
                    [b"\xef\xbb\xbf".as_slice(), b"\r\n", b"null", b"[]"][rng.index(4)]
                        .iter()
                        .copied(),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_a_distinct_name_and_mutation_is_deterministic() {
        let mut names: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TARGETS.len());
        let a = mutate(&mut Rng::stream(7, &[]), b"{\"x\": 12345}", b"other");
        let b = mutate(&mut Rng::stream(7, &[]), b"{\"x\": 12345}", b"other");
        assert_eq!(a, b);
    }

    #[test]
    fn the_properties_can_fail() {
        // names_file is what most targets end in: it must refuse a message without the file.
        assert!(names_file("t", "somewhere: bad").is_err());
        assert!(names_file("t", &format!("{FILE}: record 1: bad")).is_ok());
    }
}
