//! The commands on a store: `audit`, `prove`, `verify-proof`.

use super::args::*;
use anyhow::Context as _;
use ipow::crypto::secret::NodeSecret;
use ipow::report::text::*;

/// The node secret of a new store: read from `--secret`, or generated, to be written to
/// `DIR.secret` beside the store just before the store is created.
pub(crate) struct StoreSecret {
    pub(crate) secret: NodeSecret,
    pub(crate) path: std::path::PathBuf,
    generated: bool,
}

/// The node secret of a new store at `store` (none without a store; `--secret` alone is an
/// error), checked before any work: the store must not exist, a given secret file must read,
/// and the file a generated one goes to must not exist.
pub(crate) fn store_secret(
    store: Option<&std::path::Path>,
    given: Option<&std::path::Path>,
    resume: bool,
) -> anyhow::Result<Option<StoreSecret>> {
    match (store, given) {
        (Some(dir), given) if resume => resumed_store_secret(dir, given).map(Some),
        (None, _) if resume => anyhow::bail!("--resume continues a store: give --store"),
        (Some(dir), given) => new_store_secret(dir, given).map(Some),
        (None, Some(_)) => anyhow::bail!("--secret is the node secret of a store: give --store"),
        (None, None) => Ok(None),
    }
}

/// The node secret of a store to resume: `--secret`, or `DIR.secret` beside it.
fn resumed_store_secret(
    dir: &std::path::Path,
    given: Option<&std::path::Path>,
) -> anyhow::Result<StoreSecret> {
    if !dir.join(ipow::chain::store::LOG_FILE).exists() {
        anyhow::bail!(
            "--store {} --resume: no store here (no {})",
            dir.display(),
            ipow::chain::store::LOG_FILE
        );
    }
    let name = dir
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    let path = given.map_or_else(|| dir.with_file_name(format!("{name}.secret")), Into::into);
    let secret = NodeSecret::read(&path).map_err(|m| {
        anyhow::anyhow!("--resume needs the store's node secret (--secret, or DIR.secret): {m}")
    })?;
    Ok(StoreSecret {
        secret,
        path,
        generated: false,
    })
}

fn new_store_secret(
    dir: &std::path::Path,
    given: Option<&std::path::Path>,
) -> anyhow::Result<StoreSecret> {
    if dir.exists() {
        anyhow::bail!(
            "--store {}: already exists; a store is created in a new directory",
            dir.display()
        );
    }
    if let Some(path) = given {
        let secret = NodeSecret::read(path).map_err(|m| anyhow::anyhow!("--secret {m}"))?;
        return Ok(StoreSecret {
            secret,
            path: path.to_path_buf(),
            generated: false,
        });
    }
    let name = dir
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    let path = dir.with_file_name(format!("{name}.secret"));
    if path.exists() {
        anyhow::bail!(
            "{} already exists (an earlier run's node secret?): pass it with --secret, or move \
             it away",
            path.display()
        );
    }
    Ok(StoreSecret {
        secret: NodeSecret::generate().map_err(|m| anyhow::anyhow!(m))?,
        path,
        generated: true,
    })
}

impl StoreSecret {
    /// `variant` with its node keys from the store's secret, when there is a store.
    pub(crate) fn apply(
        secret: Option<&Self>,
        variant: ipow::pipeline::VariantConfig,
    ) -> ipow::pipeline::VariantConfig {
        match secret {
            Some(s) => variant.with_secret(&s.secret),
            None => variant,
        }
    }

    /// Creates the store at `dir`, first writing a generated secret (owner-only) so that no
    /// store exists without its secret; a store that cannot be created takes the new secret
    /// file with it.
    pub(crate) fn create_store(
        &self,
        dir: &std::path::Path,
        genesis: &ipow::chain::store::Genesis,
        signer: ipow::chain::sign::BlockSigner,
    ) -> anyhow::Result<ipow::chain::store::StoreWriter> {
        if self.generated {
            self.secret
                .write_new(&self.path)
                .map_err(|m| anyhow::anyhow!(m))?;
        }
        match ipow::chain::store::StoreWriter::create(dir, genesis, signer) {
            Ok(writer) => {
                if self.generated {
                    eprintln!(
                        "node secret   wrote a new one to {} (owner-only): keep it apart from \
                         the store; it signs the blocks, and `ipow audit --secret` needs it to \
                         check proof tags",
                        self.path.display()
                    );
                }
                Ok(writer)
            }
            Err(e) => {
                if self.generated {
                    let _ = std::fs::remove_file(&self.path);
                }
                Err(e.into())
            }
        }
    }
}

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
    let log_bytes =
        std::fs::metadata(args.store.join(ipow::chain::store::LOG_FILE)).map_or(0, |m| m.len());
    let progress = super::progress::bar(log_bytes, "audit", args.json);
    progress.set_message("log bytes".into());
    let report = ipow::chain::audit::audit_with_progress(
        &args.store,
        AuditOptions {
            viewer,
            baseline: args.baseline,
            head: pinned_hash("--head", args.head.as_deref())?,
            genesis: pinned_hash("--genesis", args.genesis.as_deref())?,
            secret: args
                .secret
                .as_deref()
                .map(|path| NodeSecret::read(path).map_err(|m| anyhow::anyhow!("--secret {m}")))
                .transpose()?,
        },
        &mut |done, _| progress.set_position(done),
    )?;
    progress.finish_and_clear();
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

/// A hash pinned on the command line, when given: 64 hex digits.
fn pinned_hash(flag: &str, text: Option<&str>) -> anyhow::Result<Option<[u8; 32]>> {
    text.map(|t| hex32(flag, t.trim())).transpose()
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
