//! One period of the log: its records' checks and order, then each chain's blocks in turn
//! (consensus, slave headers, slave contents, masters, consortium, commit and index).

use super::*;

/// A slave block as the audit holds it.
pub(super) struct SlaveView<'r> {
    pub(super) record: &'r RawRecord,
    pub(super) header: ChainHeader,
    /// Decoded contracts (only for slaves the viewer sees): (payload offset, contract).
    pub(super) contracts: Option<Vec<Copy<'r>>>,
}

/// One period of the log: its records' checks and order, then each chain's blocks in turn.
pub(super) fn audit_period(
    state: &mut State,
    records: &[RawRecord],
    end: u64,
    index: &[IndexEntry],
    report: &mut AuditReport,
) {
    let period = report.periods;
    check_record_order(records, period, &mut report.findings);
    let consensus = consensus_block(state, records, period, report);
    let slaves = decode_slaves(state.viewer, records, period, &mut report.findings);
    check_slave_headers(state, &slaves, period, report);
    check_slave_contents(state, &slaves, consensus.as_ref(), period, report);
    let masters = check_masters(state, records, &slaves, period, report);
    let consortium_hash =
        check_consortium(state, records, &masters, consensus.as_ref(), period, report);
    check_commit(
        records,
        index,
        end,
        consortium_hash,
        period,
        &mut report.findings,
    );
    if consortium_hash.is_some() && consortium_hash == state.pinned_head {
        report.pinned_head_period = Some(period);
    }
    report.periods += 1;
    report.head = consortium_hash.map(hex::encode);
    if state.pending_signatures.len() >= BLOCK_SIGNATURE_BATCH {
        flush_block_signatures(state, report);
    }
}

/// Block signatures verified in one batch (5 per period).
const BLOCK_SIGNATURE_BATCH: usize = 255;

/// Queues the signature of a master or consortium block for the next batch.
fn queue_block_signature(
    state: &mut State,
    header: &ChainHeader,
    signature: crate::crypto::keys::Signature,
    r: &RawRecord,
    period: u64,
) {
    let Some(node) = crate::chain::sign::signer_of(header.chain) else {
        return;
    };
    state.pending_signatures.push(PendingSignature {
        node,
        message: crate::chain::sign::block_message(header),
        signature,
        place: Finding {
            field: Some("signature".into()),
            ..Finding::new(
                header.chain.to_string(),
                format!(
                    "the block's signature does not verify under {}'s key in the genesis",
                    signer_name(node)
                ),
            )
        }
        .at(r)
        .in_block(period, Some(header.height)),
    });
}

/// Verifies the queued block signatures in one batch (the signature rule, bisected down to the
/// bad ones); each that fails is a finding at its block.
pub(super) fn flush_block_signatures(state: &mut State, report: &mut AuditReport) {
    let pending = std::mem::take(&mut state.pending_signatures);
    if pending.is_empty() {
        return;
    }
    let items: Vec<Option<crate::crypto::verify::Item<'_>>> = pending
        .iter()
        .map(|p| {
            let key = state.node_keys.get(p.node)?.as_ref()?;
            crate::crypto::verify::prepare(key, &[&p.message], &p.signature)
        })
        .collect();
    let mut verdicts = vec![false; items.len()];
    crate::crypto::verify::verify_batch(&items, &mut verdicts, &mut report.block_signatures);
    report.block_signatures_checked += pending.len() as u64;
    for (p, ok) in pending.into_iter().zip(verdicts) {
        if !ok {
            report.findings.push(p.place);
        }
    }
}

/// Every record's check, and the kinds in the order a period writes them.
pub(super) fn check_record_order(records: &[RawRecord], period: u64, findings: &mut Vec<Finding>) {
    for r in records {
        if !r.check_ok {
            findings.push(check_mismatch(r).in_block(period, None));
        }
    }
    let kinds: Vec<u8> = records.iter().map(|r| r.kind).collect();
    let slaves_n = kinds.iter().filter(|&&k| k == kind::SLAVE).count();
    let mut expected = vec![kind::CONSENSUS];
    expected.extend(std::iter::repeat_n(kind::SLAVE, slaves_n));
    expected.extend([kind::MASTER; 4]);
    expected.extend([kind::CONSORTIUM, kind::COMMIT]);
    if kinds != expected {
        findings.push(
            Finding::new(
                "log",
                format!(
                    "period's records are [{}], expected consensus, slave blocks, 4 master \
                     blocks, consortium, commit",
                    kinds
                        .iter()
                        .map(|&k| kind::name(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .at(&records[0])
            .in_block(period, None),
        );
        // Where the order breaks, reading forward and reading backward: a record replaced by
        // another kind's lies between the two (a simulator seed found only the period named).
        let forward = kinds.iter().zip(&expected).position(|(a, b)| a != b);
        let backward = kinds
            .iter()
            .rev()
            .zip(expected.iter().rev())
            .position(|(a, b)| a != b)
            .map(|k| kinds.len() - 1 - k);
        let mut places: Vec<(usize, &str)> = forward
            .map(|k| (k, "forward"))
            .into_iter()
            .chain(backward.map(|k| (k, "backward")))
            .collect();
        places.dedup_by_key(|p| p.0);
        for (at, reading) in places {
            findings.push(
                Finding::new(
                    "log",
                    format!(
                        "the order of record kinds breaks at this {} record, reading {reading}",
                        kind::name(records[at].kind)
                    ),
                )
                .at(&records[at])
                .in_block(period, None),
            );
        }
    }
}

/// The period's consensus block, decoded and checked against the period's proofs.
pub(super) fn consensus_block(
    state: &mut State,
    records: &[RawRecord],
    period: u64,
    report: &mut AuditReport,
) -> Option<ConsensusBlock> {
    let findings = &mut report.findings;
    let consensus_record = records.iter().find(|r| r.kind == kind::CONSENSUS);
    let consensus = consensus_record.and_then(|r| match decode_consensus(&r.payload) {
        Ok(b) => Some(b),
        Err(e) => {
            findings.push(
                Finding {
                    field: Some(e.field.clone()),
                    offset: Some(r.payload_offset() + e.at as u64),
                    ..Finding::new("consensus block", e.to_string())
                }
                .in_block(period, None),
            );
            None
        }
    });
    if let (Some(b), Some(r)) = (&consensus, consensus_record) {
        check_consensus(state, b, r, period, report);
    }
    consensus
}

/// The period's slave blocks, decoded in parallel, with the contracts of those the viewer sees.
pub(super) fn decode_slaves<'r>(
    viewer: Viewer,
    records: &'r [RawRecord],
    period: u64,
    findings: &mut Vec<Finding>,
) -> Vec<SlaveView<'r>> {
    let slave_records: Vec<&RawRecord> = records.iter().filter(|r| r.kind == kind::SLAVE).collect();
    let decoded: Vec<Result<SlaveView<'_>, Box<Finding>>> = slave_records
        .par_iter()
        .map(|r| {
            let s = decode_slave(&r.payload).map_err(|e| {
                Box::new(
                    Finding {
                        field: Some(e.field.clone()),
                        offset: Some(r.payload_offset() + e.at as u64),
                        ..Finding::new("slave block", e.to_string())
                    }
                    .in_block(period, None),
                )
            })?;
            let ChainId::Slave(address) = s.header.chain else {
                return Err(Box::new(
                    Finding::new(
                        s.header.chain.to_string(),
                        "a slave block record holds another chain's header",
                    )
                    .at(r)
                    .in_block(period, Some(s.header.height)),
                ));
            };
            let contracts = viewer.sees(address).then(|| {
                s.contracts
                    .iter()
                    .map(|&(at, bytes)| {
                        (
                            at,
                            bytes,
                            crate::chain::record_digest(bytes),
                            SignedContract::decode(bytes)
                                .map(|c| {
                                    let id = c.id().0;
                                    (c, id)
                                })
                                .map_err(|e| e.to_string()),
                        )
                    })
                    .collect()
            });
            Ok(SlaveView {
                record: r,
                header: s.header,
                contracts,
            })
        })
        .collect();
    let mut slaves: Vec<SlaveView<'_>> = Vec::with_capacity(decoded.len());
    for d in decoded {
        match d {
            Ok(v) => slaves.push(v),
            Err(f) => findings.push(*f),
        }
    }
    slaves
}

/// Slave headers: address order, membership, and each link on its chain.
pub(super) fn check_slave_headers(
    state: &mut State,
    slaves: &[SlaveView<'_>],
    period: u64,
    report: &mut AuditReport,
) {
    let findings = &mut report.findings;
    let mut last_address = None;
    for s in slaves {
        report.slave_blocks += 1;
        let ChainId::Slave(address) = s.header.chain else {
            continue;
        };
        if last_address.is_some_and(|l| l >= address) {
            findings.push(
                Finding::new(
                    s.header.chain.to_string(),
                    "slave blocks are not in address order",
                )
                .at(s.record)
                .in_block(period, Some(s.header.height)),
            );
        }
        last_address = Some(address);
        if state.topology.master_of(address).is_none() {
            findings.push(
                Finding::new(
                    s.header.chain.to_string(),
                    "not a slave node of the store's market",
                )
                .at(s.record)
                .in_block(period, Some(s.header.height)),
            );
        }
        link_check(&state.tips, &s.header, period, s.record, findings);
        state.tips.advance(&s.header);
    }
}

/// The four master blocks: each in its end's place, linked, its root over that end's new slave
/// headers.
pub(super) fn check_masters(
    state: &mut State,
    records: &[RawRecord],
    slaves: &[SlaveView<'_>],
    period: u64,
    report: &mut AuditReport,
) -> Vec<ChainHeader> {
    let findings = &mut report.findings;
    let master_records: Vec<&RawRecord> =
        records.iter().filter(|r| r.kind == kind::MASTER).collect();
    let mut masters: Vec<ChainHeader> = Vec::with_capacity(4);
    for (k, r) in master_records.iter().enumerate() {
        report.master_blocks += 1;
        let h = match decode_header_record(&r.payload) {
            Ok((h, signature)) => {
                queue_block_signature(state, &h, signature, r, period);
                h
            }
            Err(e) => {
                findings.push(
                    Finding {
                        field: Some(e.field.clone()),
                        ..Finding::new("master block", e.to_string())
                    }
                    .at(r)
                    .in_block(period, None),
                );
                continue;
            }
        };
        let Some(&end) = ENDS.get(k) else { continue };
        if h.chain != ChainId::Master(end) {
            findings.push(
                Finding::new(
                    h.chain.to_string(),
                    format!("in the place of {}", ChainId::Master(end)),
                )
                .at(r)
                .in_block(period, Some(h.height)),
            );
        }
        link_check(&state.tips, &h, period, r, findings);
        let leaves = master_leaves(&state.topology, end, slaves.iter().map(|s| &s.header));
        if root_32(&leaves) != h.root || leaves.len() as u64 != h.leaf_count {
            findings.push(
                Finding {
                    field: Some("root".into()),
                    ..Finding::new(
                        h.chain.to_string(),
                        format!(
                            "root {} over {} slave headers does not match the {} slave block \
                             headers stored for the end this period (root {})",
                            short(&h.root),
                            h.leaf_count,
                            leaves.len(),
                            short(&root_32(&leaves))
                        ),
                    )
                }
                .at(r)
                .in_block(period, Some(h.height)),
            );
        }
        state.tips.advance(&h);
        masters.push(h);
    }
    masters
}

/// The consortium block: linked, its root over the four master heads and the consensus block.
/// Returns its hash, the period's head.
pub(super) fn check_consortium(
    state: &mut State,
    records: &[RawRecord],
    masters: &[ChainHeader],
    consensus: Option<&ConsensusBlock>,
    period: u64,
    report: &mut AuditReport,
) -> Option<Hash> {
    let findings = &mut report.findings;
    let consortium_record = records.iter().find(|r| r.kind == kind::CONSORTIUM);
    let mut consortium_hash = None;
    if let Some(r) = consortium_record {
        report.consortium_blocks += 1;
        match decode_header_record(&r.payload) {
            Ok((h, signature)) => {
                queue_block_signature(state, &h, signature, r, period);
                if h.chain != ChainId::Consortium {
                    findings.push(
                        Finding::new(h.chain.to_string(), "in the place of the consortium block")
                            .at(r)
                            .in_block(period, Some(h.height)),
                    );
                }
                link_check(&state.tips, &h, period, r, findings);
                if let (Ok(m), Some(b)) =
                    (<[ChainHeader; 4]>::try_from(masters.to_vec()), consensus)
                {
                    let leaves = consortium_leaves(&m, &b.header);
                    if root_32(&leaves) != h.root || h.leaf_count != 5 {
                        let names = [
                            "BCE head",
                            "BCN head",
                            "BCS head",
                            "BCL head",
                            "consensus block",
                        ];
                        findings.push(
                            Finding {
                                field: Some("root".into()),
                                ..Finding::new(
                                    "consortium chain",
                                    format!(
                                        "root {} does not commit the stored [{}]",
                                        short(&h.root),
                                        names.join(", ")
                                    ),
                                )
                            }
                            .at(r)
                            .in_block(period, Some(h.height)),
                        );
                    }
                }
                state.tips.advance(&h);
                consortium_hash = Some(h.hash());
            }
            Err(e) => findings.push(
                Finding {
                    field: Some(e.field.clone()),
                    ..Finding::new("consortium block", e.to_string())
                }
                .at(r)
                .in_block(period, None),
            ),
        }
    }
    consortium_hash
}

/// The commit record and the index entry name this period and its head.
pub(super) fn check_commit(
    records: &[RawRecord],
    index: &[IndexEntry],
    end: u64,
    consortium_hash: Option<Hash>,
    period: u64,
    findings: &mut Vec<Finding>,
) {
    if let Some(r) = records.last().filter(|r| r.kind == kind::COMMIT) {
        match decode_commit(&r.payload) {
            Ok((p, hash)) => {
                if p != period || Some(hash) != consortium_hash {
                    findings.push(
                        Finding::new(
                            "commit",
                            format!(
                                "commits period {p} with consortium hash {}; expected period \
                                 {period} and the stored consortium block's hash",
                                short(&hash)
                            ),
                        )
                        .at(r)
                        .in_block(period, None),
                    );
                }
            }
            Err(e) => findings.push(Finding::new("commit", e.to_string()).at(r)),
        }
    }
    if let Some(entry) = usize::try_from(period).ok().and_then(|p| index.get(p))
        && (entry.period != period || entry.end != end || Some(entry.hash) != consortium_hash)
    {
        findings.push(Finding::new(
            "index",
            format!(
                "entry {period} (period {}, ends at byte {}, hash {}) does not match the log \
                 (ends at byte {end})",
                entry.period,
                entry.end,
                short(&entry.hash)
            ),
        ));
    }
}
