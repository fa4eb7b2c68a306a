//! Slave blocks' contents: every distinct copy's signatures once, each copy's decoding, party
//! and signatures, each block's list against the consensus block's order, and its root.

use super::*;

/// Names the fields in which `a` and `b` differ, as `field: a -> b`.
pub fn field_diff(a: &Contract, b: &Contract) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! shown {
        ($($f:ident),*) => {$(
            if a.$f != b.$f {
                out.push(format!("{}: {} -> {}", stringify!($f), a.$f, b.$f));
            }
        )*};
    }
    macro_rules! debugged {
        ($($f:ident),*) => {$(
            if a.$f != b.$f {
                out.push(format!("{}: {:?} -> {:?}", stringify!($f), a.$f, b.$f));
            }
        )*};
    }
    debugged!(category);
    shown!(
        seller,
        purchaser,
        transmission,
        price,
        energy,
        transmission_rate,
        damages_rate,
        delivery_time,
        seller_seq,
        purchaser_seq,
        transmission_seq
    );
    debugged!(aux);
    out
}

/// A copy of a contract in a slave block: payload offset, bytes, record digest, decoded with
/// its id.
pub(super) type Copy<'r> = (
    usize,
    &'r [u8],
    Hash,
    Result<(SignedContract, Hash), String>,
);

/// Every stored copy of a contract in a period, by record digest (same bytes, same digest),
/// with whether its signatures verify (checked once per distinct record, in parallel).
pub(super) struct Copies<'c> {
    pub(super) distinct: HashMap<Hash, &'c SignedContract>,
    pub(super) by_id: HashMap<Hash, Vec<Hash>>,
    pub(super) verified: HashMap<Hash, bool>,
}

impl<'c> Copies<'c> {
    fn verify(slaves: &'c [SlaveView<'_>], registry: &KeyRegistry, stats: &mut BatchStats) -> Self {
        let mut distinct: HashMap<Hash, &SignedContract> = HashMap::new();
        let mut by_id: HashMap<Hash, Vec<Hash>> = HashMap::new();
        for s in slaves {
            for (_, _, digest, c) in s.contracts.iter().flatten() {
                if let Ok((c, id)) = c
                    && distinct.insert(*digest, c).is_none()
                {
                    by_id.entry(*id).or_default().push(*digest);
                }
            }
        }
        let mut records: Vec<(Hash, &SignedContract)> =
            distinct.iter().map(|(d, c)| (*d, *c)).collect();
        records.sort_unstable_by_key(|r| r.0);
        let (verified, batch_stats) = verify_records(&records, registry);
        stats.add(&batch_stats);
        Self {
            distinct,
            by_id,
            verified,
        }
    }

    fn signatures_ok(&self, digest: &Hash) -> bool {
        self.verified.get(digest).copied().unwrap_or(false)
    }

    /// The reference copy of an id: the first whose signatures verify.
    fn reference(&self, id: &Hash) -> Option<(Hash, &'c SignedContract)> {
        let digests = self.by_id.get(id)?;
        let d = digests.iter().find(|d| self.signatures_ok(d))?;
        self.distinct.get(d).map(|c| (*d, *c))
    }

    fn any_copy(&self, id: &Hash) -> Option<&'c SignedContract> {
        self.by_id
            .get(id)
            .and_then(|v| v.first())
            .and_then(|d| self.distinct.get(d).copied())
    }
}

/// The slave blocks' contents the viewer may see: decoding, party, signatures, each list
/// against the consensus block's order for that party, each root; as the supervisor, every
/// committed contract on some chain.
pub(super) fn check_slave_contents(
    state: &mut State,
    slaves: &[SlaveView<'_>],
    consensus: Option<&ConsensusBlock>,
    period: u64,
    report: &mut AuditReport,
) {
    let copies = Copies::verify(slaves, &state.registry, &mut report.signatures);
    report.contracts_signature_checked += copies.distinct.len() as u64;
    if state.baseline
        && let Some(b) = consensus
    {
        baseline_checks(state, &copies, slaves, b);
    }
    let committed: Vec<Hash> = consensus
        .map(|b| b.entries.iter().map(|e| e.id).collect())
        .unwrap_or_default();
    // What each party should hold: the committed contracts it is party to, in block order.
    let mut expected_of: HashMap<Address, Vec<Hash>> = HashMap::new();
    for id in &committed {
        if let Some(c) = copies.any_copy(id) {
            for (a, _) in parties(c) {
                // A party in two roles of one contract keeps it once.
                let list = expected_of.entry(a).or_default();
                if list.last() != Some(id) {
                    list.push(*id);
                }
            }
        }
    }
    let mut on_some_chain: HashSet<Hash> = HashSet::new();
    for s in slaves {
        let ChainId::Slave(address) = s.header.chain else {
            continue;
        };
        let Some(contracts) = &s.contracts else {
            continue;
        };
        report.slave_blocks_opened += 1;
        let (stored, stored_leaves) =
            check_copies(state.viewer, s, contracts, &copies, period, report);
        on_some_chain.extend(stored.iter().copied());
        // What this slave should hold: the committed contracts it is party to, block order.
        let expected: Vec<Hash> = if consensus.is_some() {
            expected_of.remove(&address).unwrap_or_default()
        } else {
            stored.clone()
        };
        let lists = Lists {
            stored: &stored,
            stored_leaves: &stored_leaves,
            expected: &expected,
        };
        check_slave_list(s, &lists, &copies, period, &mut report.findings);
    }
    if state.viewer == Viewer::Supervisor {
        committed_on_no_chain(&committed, &on_some_chain, period, &mut report.findings);
    }
}

/// As the supervisor: every committed contract is on one of its parties' slave chains.
pub(super) fn committed_on_no_chain(
    committed: &[Hash],
    on_some_chain: &HashSet<Hash>,
    period: u64,
    findings: &mut Vec<Finding>,
) {
    for (k, id) in committed.iter().enumerate() {
        if !on_some_chain.contains(id) {
            findings.push(
                Finding {
                    contract: Some(hex::encode(id)),
                    position: Some(k),
                    ..Finding::new(
                        "consensus block",
                        "a committed contract is on none of its parties' slave chains",
                    )
                }
                .in_block(period, Some(period)),
            );
        }
    }
}

/// Signatures per batch in the audit: distinct records are many and mostly valid, so batches
/// are large; a damaged record costs a bisection.
pub const AUDIT_BATCH: usize = 256;

/// Verifies distinct records (sorted by digest, so batches are the same on every run) in batches
/// of [`AUDIT_BATCH`] signatures, batches in parallel; each record's verdict is its single
/// check's.
fn verify_records(
    records: &[(Hash, &SignedContract)],
    registry: &KeyRegistry,
) -> (HashMap<Hash, bool>, BatchStats) {
    let per_batch = AUDIT_BATCH / 3;
    let pieces: Vec<(Vec<(Hash, bool)>, BatchStats)> = records
        .par_chunks(per_batch)
        .map(|piece| {
            let contracts: Vec<&SignedContract> = piece.iter().map(|r| r.1).collect();
            let mut stats = BatchStats::default();
            let results = verify_signatures_batched(&contracts, registry, AUDIT_BATCH, &mut stats);
            let verdicts = piece
                .iter()
                .zip(results)
                .map(|(r, ok)| (r.0, ok.is_ok()))
                .collect();
            (verdicts, stats)
        })
        .collect();
    let mut stats = BatchStats::default();
    let mut verified = HashMap::with_capacity(records.len());
    for (verdicts, s) in pieces {
        verified.extend(verdicts);
        stats.add(&s);
    }
    (verified, stats)
}

/// `--baseline`: the same work from memory, timed: every distinct record's signatures, every
/// slave root over its records' digests, the consensus root over the ids.
pub(super) fn baseline_checks(
    state: &mut State,
    copies: &Copies<'_>,
    slaves: &[SlaveView<'_>],
    b: &ConsensusBlock,
) {
    let mut records: Vec<(Hash, &SignedContract)> =
        copies.distinct.iter().map(|(d, c)| (*d, *c)).collect();
    records.sort_unstable_by_key(|r| r.0);
    let t = Instant::now();
    let ok = verify_records(&records, &state.registry)
        .0
        .values()
        .filter(|&&ok| ok)
        .count();
    let roots: Vec<Hash> = slaves
        .par_iter()
        .map(|s| {
            let leaves: Vec<Hash> = s
                .contracts
                .iter()
                .flatten()
                .map(|(_, bytes, _, _)| crate::chain::record_digest(bytes))
                .collect();
            root_32(&leaves)
        })
        .collect();
    std::hint::black_box((ok, roots, b.id_root()));
    state.baseline_seconds += t.elapsed().as_secs_f64();
}

/// One slave block's copies: each decodes, names the slave as a party and verifies. Returns the
/// stored ids (zero for one that does not decode) and leaves, in block order.
pub(super) fn check_copies(
    viewer: Viewer,
    s: &SlaveView<'_>,
    contracts: &[Copy<'_>],
    copies: &Copies<'_>,
    period: u64,
    report: &mut AuditReport,
) -> (Vec<Hash>, Vec<Hash>) {
    let ChainId::Slave(address) = s.header.chain else {
        return (Vec::new(), Vec::new());
    };
    let chain = s.header.chain.to_string();
    let here = |f: Finding| f.at(s.record).in_block(period, Some(s.header.height));
    let mut stored: Vec<Hash> = Vec::with_capacity(contracts.len());
    let mut stored_leaves: Vec<Hash> = Vec::with_capacity(contracts.len());
    for (pos, (at, _, digest, c)) in contracts.iter().enumerate() {
        report.contract_copies_checked += 1;
        stored_leaves.push(*digest);
        let (c, id) = match c {
            Ok((c, id)) => (c, *id),
            Err(e) => {
                report.findings.push(here(Finding {
                    position: Some(pos),
                    offset: Some(s.record.payload_offset() + *at as u64),
                    ..Finding::new(&chain, format!("contract does not decode: {e}"))
                }));
                stored.push([0; 32]);
                continue;
            }
        };
        stored.push(id);
        if viewer != Viewer::Supervisor {
            report.contracts_seen.push(hex::encode(id));
        }
        if !parties(c).iter().any(|(a, _)| *a == address) {
            report.findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                ..Finding::new(&chain, format!("{address} is not a party to this contract"))
            }));
        }
        if !copies.signatures_ok(digest) {
            report.findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                field: Some("signatures".into()),
                ..Finding::new(&chain, "the contract's signatures do not verify")
            }));
        }
    }
    (stored, stored_leaves)
}

/// A slave block's stored list and leaves beside the list the consensus block gives it.
pub(super) struct Lists<'l> {
    pub(super) stored: &'l [Hash],
    pub(super) stored_leaves: &'l [Hash],
    pub(super) expected: &'l [Hash],
}

/// A slave block's list against the consensus block's order, and its root against its leaves
/// (naming the changed tree nodes where the committed copies give the header's root).
pub(super) fn check_slave_list(
    s: &SlaveView<'_>,
    lists: &Lists<'_>,
    copies: &Copies<'_>,
    period: u64,
    findings: &mut Vec<Finding>,
) {
    let chain = s.header.chain.to_string();
    let here = |f: Finding| f.at(s.record).in_block(period, Some(s.header.height));
    if lists.stored != lists.expected {
        diagnose_list(
            &chain,
            lists.stored,
            lists.expected,
            &|id| copies.reference(id).map(|(_, c)| c),
            &|id| copies.any_copy(id),
            findings,
            &here,
        );
    }
    let stored_root = root_32(lists.stored_leaves);
    if stored_root == s.header.root && lists.stored_leaves.len() as u64 == s.header.leaf_count {
        return;
    }
    // The leaves the committed contracts give (their verified copies), for the path.
    let expected_leaves: Option<Vec<Hash>> = lists
        .expected
        .iter()
        .map(|id| copies.reference(id).map(|(d, _)| d))
        .collect();
    let path = match expected_leaves {
        Some(e) if e.len() == lists.stored_leaves.len() && root_32(&e) == s.header.root => {
            changed_path(&e, lists.stored_leaves)
        }
        _ => Vec::new(),
    };
    findings.push(here(Finding {
        field: Some("root".into()),
        path,
        ..Finding::new(
            &chain,
            format!(
                "header commits {} contracts under root {}; the stored contracts give {} under {}",
                s.header.leaf_count,
                short(&s.header.root),
                lists.stored_leaves.len(),
                short(&stored_root)
            ),
        )
    }));
}
