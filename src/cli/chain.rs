//! The commands on a store: `audit`, `prove`, `verify-proof`.

use super::args::*;
use anyhow::Context as _;
use ipow::report::text::*;

pub(crate) fn audit_command(args: &AuditArgs) -> anyhow::Result<()> {
    use ipow::chain::audit::{AuditOptions, Viewer};
    let viewer = if args.viewer == "supervisor" {
        Viewer::Supervisor
    } else {
        Viewer::Participant(args.viewer.parse().map_err(|e| {
            anyhow::anyhow!(
                "--as {:?}: expected supervisor or an address ({e})",
                args.viewer
            )
        })?)
    };
    if !args.store.join(ipow::chain::store::LOG_FILE).exists() {
        anyhow::bail!(
            "{}: no store here (no {})",
            args.store.display(),
            ipow::chain::store::LOG_FILE
        );
    }
    let report = ipow::chain::audit::audit(
        &args.store,
        AuditOptions {
            viewer,
            baseline: args.baseline,
            head: pinned_hash("--head", args.head.as_deref())?,
            genesis: pinned_hash("--genesis", args.genesis.as_deref())?,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_audit(&report));
    }
    if !report.clean {
        anyhow::bail!(
            "{}: {} finding(s); the store does not verify",
            args.store.display(),
            report.findings.len()
        );
    }
    Ok(())
}

/// A hash given on the command line: 64 hex digits.
fn pinned_hash(flag: &str, text: Option<&str>) -> anyhow::Result<Option<[u8; 32]>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut hash)
        .map_err(|e| anyhow::anyhow!("{flag} {text:?}: expected 64 hex digits ({e})"))?;
    Ok(Some(hash))
}

/// `ipow prove`: the proof that a contract is committed, as JSON.
pub(crate) fn prove_command(
    store: &std::path::Path,
    contract: &str,
    party: Option<ipow::base::domain::Address>,
) -> anyhow::Result<()> {
    let id = hex32("--contract", contract)?;
    let proof = ipow::chain::audit::prove(store, &id, party)?;
    println!("{}", serde_json::to_string_pretty(&proof)?);
    Ok(())
}

/// `ipow verify-proof`: checks a proof against a consortium head hash alone.
pub(crate) fn verify_proof_command(
    proof: &std::path::Path,
    head: &str,
    json: bool,
) -> anyhow::Result<()> {
    let name = proof.display().to_string();
    let text = read_bounded(proof, 64 << 20)?;
    let parsed: ipow::chain::ContractProof =
        serde_json::from_str(ipow::base::input::strip_bom(&text))
            .with_context(|| format!("{name}: not a contract proof"))?;
    let head_hash = hex32("--head", head)?;
    let proven = ipow::chain::verify_proof(&parsed, &head_hash)
        .map_err(|e| anyhow::anyhow!("{name}: proof does not verify: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&proven)?);
    } else {
        println!(
            "valid: contract {} is on {} in period {}, consortium block {} ({} blocks below the \
             head)",
            proven.contract, proven.slave, proven.period, proven.consortium_height, proven.depth
        );
    }
    Ok(())
}

/// 32 bytes from 64 hex digits, or an error naming the flag.
fn hex32(flag: &str, text: &str) -> anyhow::Result<[u8; 32]> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("{flag} {text:?}: expected 64 hex digits"))
}
