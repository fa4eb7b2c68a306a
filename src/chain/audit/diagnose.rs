//! Naming what changed: the Merkle nodes between a stored and a committed list of leaves, and
//! which contracts a slave's list dropped, added, reordered or altered (and in which field).

use super::*;

pub(super) fn changed_path(expected: &[Hash], stored: &[Hash]) -> Vec<PathNode> {
    let a = MerkleTree::from_leaves_32(expected);
    let b = MerkleTree::from_leaves_32(stored);
    match a.diff(&b) {
        Ok(d) => d
            .changed_nodes
            .iter()
            .map(|c| PathNode {
                level: c.node.level,
                index: c.node.index,
                leaves: (c.node.first_leaf, c.node.end_leaf),
                expected: hex::encode(c.before),
                stored: hex::encode(c.after),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub(super) fn diagnose_list<'c>(
    chain: &str,
    stored: &[Hash],
    expected: &[Hash],
    reference: &dyn Fn(&Hash) -> Option<&'c SignedContract>,
    any_copy: &dyn Fn(&Hash) -> Option<&'c SignedContract>,
    findings: &mut Vec<Finding>,
    here: &dyn Fn(Finding) -> Finding,
) {
    let expected_set: HashSet<&Hash> = expected.iter().collect();
    let stored_set: HashSet<&Hash> = stored.iter().collect();
    let mut counted: HashMap<&Hash, usize> = HashMap::new();
    for (pos, id) in stored.iter().enumerate() {
        let n = counted.entry(id).or_default();
        *n += 1;
        if *n == 2 {
            findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                ..Finding::new(chain, "duplicated: the contract appears twice in the block")
            }));
        }
        if !expected_set.contains(id) {
            // Tampered (or injected): name the field against the committed contract at this
            // position, taken from a party's copy whose signatures verify.
            let original = expected
                .get(pos)
                .filter(|e| !stored_set.contains(e))
                .and_then(|e| reference(e).map(|o| (e, o)));
            let tampered = any_copy(id);
            let (field, message) = match (original, tampered) {
                (Some((oid, o)), Some(t)) => {
                    let diff = field_diff(&o.contract, &t.contract);
                    let message = if diff.is_empty() {
                        format!(
                            "tampered: differs from the committed contract {} (another party's \
                             copy) in its signatures",
                            short(oid)
                        )
                    } else {
                        format!(
                            "tampered: differs from the committed contract {} (another party's \
                             copy, signatures valid) in {}",
                            short(oid),
                            diff.join("; ")
                        )
                    };
                    let field = diff
                        .iter()
                        .map(|d| d.split(':').next().unwrap_or("").to_owned())
                        .collect::<Vec<_>>()
                        .join(", ");
                    (
                        Some(if field.is_empty() {
                            "signatures".into()
                        } else {
                            field
                        }),
                        message,
                    )
                }
                _ => (
                    None,
                    "not in the consensus block: tampered or injected (no intact copy to compare)"
                        .to_owned(),
                ),
            };
            findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                field,
                ..Finding::new(chain, message)
            }));
        }
    }
    for (pos, id) in expected.iter().enumerate() {
        // A position whose stored contract is a tampered one is reported as tampered above.
        let replaced = stored.len() == expected.len()
            && stored.get(pos).is_some_and(|s| !expected_set.contains(s));
        if !stored_set.contains(id) && !replaced {
            findings.push(here(Finding {
                contract: Some(hex::encode(id)),
                position: Some(pos),
                ..Finding::new(
                    chain,
                    "dropped: a committed contract of this party is missing",
                )
            }));
        }
    }
    // Same contracts, another order.
    let mut a = stored.to_vec();
    let mut b = expected.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    if a == b
        && let Some(pos) = stored.iter().zip(expected).position(|(s, e)| s != e)
    {
        {
            let want = expected
                .iter()
                .position(|e| *e == stored[pos])
                .unwrap_or(pos);
            findings.push(here(Finding {
                contract: Some(hex::encode(stored[pos])),
                position: Some(pos),
                ..Finding::new(
                    chain,
                    format!("reordered: at position {pos}, the consensus block's order puts it at {want}"),
                )
            }));
        }
    }
}
