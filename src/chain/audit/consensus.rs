//! The consensus block: its id root and certificate root, quorum and majority per contract,
//! and, with the node secret, every proof's tag; or its PoW.

use super::*;

pub(super) fn check_consensus(
    state: &mut State,
    b: &ConsensusBlock,
    r: &RawRecord,
    period: u64,
    report: &mut AuditReport,
) {
    let findings = &mut report.findings;
    let h = &b.header;
    let f = |field: &str, message: String| {
        Finding {
            field: Some(field.to_owned()),
            ..Finding::new("consensus block", message)
        }
        .at(r)
        .in_block(period, Some(h.height))
    };
    report.contracts_committed += b.entries.len() as u64;
    if h.period != period || h.height != period {
        findings.push(f(
            "period",
            format!("height {} period {}, expected {period}", h.height, h.period),
        ));
    }
    if h.prev_hash != state.prev_consensus {
        findings.push(f(
            "previous hash",
            "does not link to the previous consensus block".into(),
        ));
    }
    state.prev_consensus = h.hash();
    if b.id_root() != h.merkle_root || b.entries.len() as u64 != h.leaf_count {
        findings.push(f(
            "merkle root",
            format!(
                "the header commits {} contracts under root {}; the stored ids give {} under {}",
                h.leaf_count,
                short(&h.merkle_root),
                b.entries.len(),
                short(&b.id_root())
            ),
        ));
    }
    let mut seen = HashSet::with_capacity(b.entries.len());
    for (k, e) in b.entries.iter().enumerate() {
        if !seen.insert(e.id) {
            findings.push(Finding {
                contract: Some(hex::encode(e.id)),
                position: Some(k),
                ..f("entries", "the same contract twice in one block".into())
            });
        }
    }
    match state.genesis.consensus {
        StoredConsensus::Pow { difficulty } => {
            if h.kind != crate::contract::block::SealKind::Pow || h.difficulty_bits != difficulty {
                findings.push(f(
                    "kind",
                    "not a PoW block at the store's difficulty".into(),
                ));
            } else if let Err(e) = crate::consensus::pow::verify_pow(h) {
                findings.push(f("nonce", e.to_string()));
            }
        }
        StoredConsensus::Ipow {
            quorum, validators, ..
        } => {
            if b.certificate_root() != h.consensus_root {
                findings.push(f(
                    "consensus root",
                    "the quorum certificate does not hash to the header's consensus root".into(),
                ));
            }
            report.certificate_entries_checked += b.entries.len() as u64;
            let check_tags = !state.keys.is_empty();
            let bad: Vec<Finding> = b
                .entries
                .par_iter()
                .enumerate()
                .flat_map_iter(|(k, e)| {
                    let mut out = Vec::new();
                    let valid = e.proofs.iter().filter(|p| p.verdict == 0).count();
                    if (e.proofs.len() as u64) < u64::from(quorum) || valid * 2 <= e.proofs.len() {
                        out.push(Finding {
                            contract: Some(hex::encode(e.id)),
                            position: Some(k),
                            ..f(
                                "certificate",
                                format!(
                                    "{valid} valid of {} proofs: not a quorum of {quorum} with a \
                                     strict majority",
                                    e.proofs.len()
                                ),
                            )
                        });
                    }
                    for (j, p) in e.proofs.iter().enumerate() {
                        if p.validator >= validators {
                            out.push(Finding {
                                contract: Some(hex::encode(e.id)),
                                position: Some(k),
                                ..f(
                                    &format!("certificate proof {j} validator"),
                                    format!("validator {} of {validators}", p.validator),
                                )
                            });
                            continue;
                        }
                        if check_tags {
                            let msg = crate::consensus::proof::proof_message(
                                period,
                                p.tx,
                                &e.id,
                                p.verdict,
                                p.validator,
                            );
                            let ok = state
                                .keys
                                .get(p.validator as usize)
                                .is_some_and(|key| ring::hmac::verify(key, &msg, &p.tag).is_ok());
                            if !ok {
                                out.push(Finding {
                                    contract: Some(hex::encode(e.id)),
                                    position: Some(k),
                                    ..f(
                                        &format!("certificate proof {j} tag"),
                                        format!(
                                            "validator {}'s tag does not authenticate its proof",
                                            p.validator
                                        ),
                                    )
                                });
                            }
                        }
                    }
                    out
                })
                .collect();
            if check_tags {
                report.tags_checked += b.entries.iter().map(|e| e.proofs.len() as u64).sum::<u64>();
            }
            findings.extend(bad);
        }
    }
}
