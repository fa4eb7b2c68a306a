//! The paper's Section 4 reproduced: Table 3's contracts, the hash tree and the f15 tamper
//! ([`PaperReport`]), and the paper's settlement ([`SettlementReport`]), as text and JSON.

use crate::base::amount::{AmountError, Energy};
use crate::base::domain::{Address, BusinessCategory, Participant};
use crate::contract::SignedContract;
use crate::contract::block::contract_tree;
use crate::crypto::merkle::{Hash, MerkleTree, TreeDiff};
use crate::market::paper::{PaperMarket, TAMPER_CONTRACT, TAMPER_ENERGY};
use crate::pipeline::settle::SettleError;
use serde::Serialize;
use std::fmt::Write as _;

/// One contract as `ipow paper` shows it (the form of Table 3).
#[derive(Clone, Debug, Serialize)]
pub struct ContractRow {
    /// `f15` and so on.
    pub name: String,
    /// Contract id, hex.
    pub id: String,
    /// Business category.
    pub category: BusinessCategory,
    /// Seller address.
    pub seller: String,
    /// Purchaser address.
    pub purchaser: String,
    /// Transmission company address.
    pub transmission: String,
    /// Unit price, two places.
    pub price: String,
    /// Energy, two places.
    pub energy: String,
    /// Transmission cost.
    pub transmission_cost: String,
    /// Purchase cost.
    pub purchase_cost: String,
    /// Liquidated damages for a full default.
    pub liquidated_damages: String,
    /// Delivery time.
    pub time: String,
    /// Whether all three signatures verify.
    pub signatures_valid: bool,
    /// The contract's leaf index in the period's tree.
    pub leaf_index: usize,
    /// The RFC 6962 leaf hash, hex.
    pub leaf_hash: String,
}

/// A node whose hash the tamper changed.
#[derive(Clone, Debug, Serialize)]
pub struct ChangedNode {
    /// 0 for leaves.
    pub level: usize,
    /// Position within the level.
    pub index: usize,
    /// First leaf covered.
    pub first_leaf: usize,
    /// One past the last leaf covered.
    pub end_leaf: usize,
    /// Hash before, hex.
    pub before: String,
    /// Hash after, hex.
    pub after: String,
}

/// Figure 6: what rewriting f15's energy does.
#[derive(Clone, Debug, Serialize)]
pub struct TamperReport {
    /// The contract tampered with.
    pub contract: String,
    /// Energy before.
    pub energy_before: String,
    /// Energy after.
    pub energy_after: String,
    /// Contract id before.
    pub id_before: String,
    /// Contract id after.
    pub id_after: String,
    /// Root before.
    pub merkle_root_before: String,
    /// Root after.
    pub merkle_root_after: String,
    /// Leaf whose hash changed (the tampered contract's).
    pub changed_leaf_index: usize,
    /// Every node whose hash changed, leaf first, root last.
    pub changed_nodes: Vec<ChangedNode>,
    /// Whether the tampered contract's old signatures still verify (they must not).
    pub signatures_valid_after: bool,
}

/// Everything `ipow paper` shows.
#[derive(Clone, Debug, Serialize)]
pub struct PaperReport {
    /// The 9 contracts.
    pub contracts: Vec<ContractRow>,
    /// Root over the contract ids, hex.
    pub merkle_root: String,
    /// Number of leaves.
    pub leaf_count: usize,
    /// True when every contract's three signatures verify.
    pub all_signatures_valid: bool,
    /// True when the market is the paper's own (its root is the embedded market's): only then
    /// is Section 4 reproduced.
    pub papers_market: bool,
    /// The tamper.
    pub tamper: TamperReport,
    #[serde(skip)]
    tree: MerkleTree,
    #[serde(skip)]
    tampered_tree: MerkleTree,
    #[serde(skip)]
    diff: TreeDiff,
}

/// Why the report could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// An amount overflowed.
    #[error("contract {contract}: {source}")]
    Amount {
        /// The contract.
        contract: String,
        /// The amount error.
        source: AmountError,
    },
    /// The tamper target is missing from the market.
    #[error("the market has no contract {0}")]
    MissingContract(String),
}

/// The Merkle root of the paper's own market (the embedded one).
fn papers_root() -> Option<crate::crypto::merkle::Hash> {
    let paper = PaperMarket::embedded().ok()?;
    let own: Vec<SignedContract> = paper.contracts.iter().map(|c| c.signed.clone()).collect();
    Some(crate::contract::block::contract_root(&own))
}

impl PaperReport {
    /// Computes the report for `market`.
    pub fn build(market: &PaperMarket) -> Result<Self, ReportError> {
        let registry = market.registry();
        let signed: Vec<SignedContract> =
            market.contracts.iter().map(|c| c.signed.clone()).collect();
        let tree = contract_tree(&signed);
        let mut contracts = Vec::new();
        for (leaf_index, named) in market.contracts.iter().enumerate() {
            let c = &named.signed.contract;
            let costs = c.costs().map_err(|source| ReportError::Amount {
                contract: named.name.clone(),
                source,
            })?;
            contracts.push(ContractRow {
                name: named.name.clone(),
                id: named.signed.id().to_string(),
                category: c.category,
                seller: c.seller.to_string(),
                purchaser: c.purchaser.to_string(),
                transmission: c.transmission.to_string(),
                price: c.price.display_places(2),
                energy: c.energy.display_places(2),
                transmission_cost: costs.transmission_cost.to_string(),
                purchase_cost: costs.purchase_cost.to_string(),
                liquidated_damages: costs.liquidated_damages.to_string(),
                time: c.delivery_time.to_string(),
                signatures_valid: named.signed.verify_signatures(&registry).is_ok(),
                leaf_index,
                leaf_hash: tree.leaf(leaf_index).map(hex::encode).unwrap_or_default(),
            });
        }
        let position = market
            .contracts
            .iter()
            .position(|c| c.name == TAMPER_CONTRACT)
            .ok_or_else(|| ReportError::MissingContract(TAMPER_CONTRACT.to_owned()))?;
        let mut tampered = signed.clone();
        let before = tampered[position].contract.energy;
        let after = Energy::parse(TAMPER_ENERGY).map_err(|source| ReportError::Amount {
            contract: TAMPER_CONTRACT.to_owned(),
            source,
        })?;
        tampered[position].contract.energy = after;
        let tampered_tree = contract_tree(&tampered);
        // Both trees have the same number of leaves by construction.
        let diff = tree.diff(&tampered_tree).unwrap_or_default();
        let changed_nodes = diff
            .changed_nodes
            .iter()
            .map(|c| ChangedNode {
                level: c.node.level,
                index: c.node.index,
                first_leaf: c.node.first_leaf,
                end_leaf: c.node.end_leaf,
                before: hex::encode(c.before),
                after: hex::encode(c.after),
            })
            .collect();
        let tamper = TamperReport {
            contract: TAMPER_CONTRACT.to_owned(),
            energy_before: before.display_places(2),
            energy_after: after.display_places(2),
            id_before: signed[position].id().to_string(),
            id_after: tampered[position].id().to_string(),
            merkle_root_before: hex::encode(tree.root()),
            merkle_root_after: hex::encode(tampered_tree.root()),
            changed_leaf_index: diff.changed_leaves.first().copied().unwrap_or(position),
            changed_nodes,
            signatures_valid_after: tampered[position].verify_signatures(&registry).is_ok(),
        };
        Ok(Self {
            papers_market: papers_root() == Some(tree.root()),
            all_signatures_valid: contracts.iter().all(|c| c.signatures_valid),
            contracts,
            merkle_root: hex::encode(tree.root()),
            leaf_count: tree.len(),
            tamper,
            tree,
            tampered_tree,
            diff,
        })
    }

    /// The first line: "reproduced" only for the paper's own market.
    fn title(&self) -> &'static str {
        if self.papers_market {
            "ipow paper: Liu et al. (2020), Section 4, reproduced"
        } else {
            "ipow paper: Section 4's procedure on another market than the paper's (its contracts \
             differ), so nothing of the paper is reproduced here"
        }
    }

    /// The report as text for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}\n", self.title());
        let _ = writeln!(
            out,
            "Contracts of the transaction matrix F (Eq. 1), in the form of Table 3:\n"
        );
        for c in &self.contracts {
            let _ = writeln!(out, "{}  id {}", c.name, c.id);
            let _ = writeln!(
                out,
                "  seller {:<6} purchaser {:<6} transmission {:<6} price {:>6}  energy {:>6}",
                c.seller, c.purchaser, c.transmission, c.price, c.energy
            );
            let _ = writeln!(
                out,
                "  transmission cost {:>7}  purchase cost {:>8}  liquidated damages {:>8}  time {}",
                c.transmission_cost, c.purchase_cost, c.liquidated_damages, c.time
            );
            let _ = writeln!(
                out,
                "  signatures (seller, purchaser, transmission): {}\n",
                if c.signatures_valid {
                    "all 3 verify"
                } else {
                    "FAIL"
                }
            );
        }
        let _ = writeln!(
            out,
            "Every contract's three signatures verify: {}\n",
            if self.all_signatures_valid {
                "yes"
            } else {
                "NO"
            }
        );
        let names: Vec<&str> = self.contracts.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(
            out,
            "Hash tree of the period (Figure 5), RFC 6962 over contract ids:"
        );
        let _ = writeln!(
            out,
            "Merkle root {}  ({} leaves)\n",
            self.merkle_root, self.leaf_count
        );
        out.push_str(&draw_tree(&self.tree, &names, &[]));
        let t = &self.tamper;
        let _ = writeln!(
            out,
            "\nTamper (Figure 6): {} energy {} -> {}, signatures left as they were",
            t.contract, t.energy_before, t.energy_after
        );
        let _ = writeln!(out, "contract id  {} -> {}", t.id_before, t.id_after);
        let _ = writeln!(
            out,
            "Merkle root  {} -> {}",
            t.merkle_root_before, t.merkle_root_after
        );
        let _ = writeln!(
            out,
            "changed leaf {} ({}), {} nodes changed on its path to the root (marked *):\n",
            t.changed_leaf_index,
            t.contract,
            t.changed_nodes.len()
        );
        out.push_str(&draw_tree(
            &self.tampered_tree,
            &names,
            &self
                .diff
                .changed_nodes
                .iter()
                .map(|c| (c.node.level, c.node.index))
                .collect::<Vec<_>>(),
        ));
        let _ = writeln!(
            out,
            "\nThe tampered {}'s signatures verify: {}",
            t.contract,
            if t.signatures_valid_after {
                "yes (tamper NOT detected)"
            } else {
                "no: tamper detected"
            }
        );
        out
    }
}

/// Draws a tree with `├─`/`└─` guides, one RFC node a line: leaf ranges, short hashes, leaf
/// names; nodes listed in `marked` get a `*`. Carried nodes are drawn once.
pub fn draw_tree(tree: &MerkleTree, leaf_names: &[&str], marked: &[(usize, usize)]) -> String {
    let mut out = String::new();
    if tree.is_empty() {
        let _ = writeln!(out, "(empty tree) root {}", hex::encode(tree.root()));
        return out;
    }
    fn short(hash: &Hash) -> String {
        hex::encode(&hash[..6])
    }
    #[allow(clippy::too_many_arguments)]
    fn walk(
        tree: &MerkleTree,
        names: &[&str],
        marked: &[(usize, usize)],
        mut level: usize,
        mut index: usize,
        prefix: &str,
        guide: &str,
        out: &mut String,
    ) {
        // A carried node is its child: descend to the real one.
        while tree.is_carried(level, index) {
            level -= 1;
            index *= 2;
        }
        let Some(node) = tree.node(level, index) else {
            return;
        };
        let hash = tree.hash_at(level, index).map(short).unwrap_or_default();
        let mark = if marked.contains(&(level, index)) {
            "*"
        } else {
            " "
        };
        if level == 0 {
            let name = names.get(index).copied().unwrap_or("");
            let _ = writeln!(out, "{prefix}{guide}{mark}leaf {index} {name:<4} {hash}");
            return;
        }
        let label = if prefix.is_empty() && guide.is_empty() {
            "root "
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{prefix}{guide}{mark}{label}[{}..{}) {hash}",
            node.first_leaf, node.end_leaf
        );
        let child_prefix = format!(
            "{prefix}{}",
            match guide {
                "├─" => "│ ",
                "└─" => "  ",
                _ => "",
            }
        );
        let width = tree.levels()[level - 1].len();
        let children: Vec<usize> = [2 * index, 2 * index + 1]
            .into_iter()
            .filter(|&c| c < width)
            .collect();
        for (k, &child) in children.iter().enumerate() {
            let g = if k + 1 == children.len() {
                "└─"
            } else {
                "├─"
            };
            walk(tree, names, marked, level - 1, child, &child_prefix, g, out);
        }
    }
    walk(
        tree,
        leaf_names,
        marked,
        tree.levels().len() - 1,
        0,
        "",
        "",
        &mut out,
    );
    out
}

/// One contract's settlement as `ipow settle` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SettledRow {
    /// `f15` and so on.
    pub name: String,
    /// Whether it settled (false: it failed for lack of funds and nothing of it was applied).
    pub settled: bool,
    /// Its transfers.
    pub transfers: Vec<crate::ledger::Transfer>,
}

/// Everything `ipow settle` shows for the paper's market.
#[derive(Clone, Debug, Serialize)]
pub struct SettlementReport {
    /// Per participant, in the shape of Table 4: transmission company, sellers, purchasers.
    pub statements: Vec<crate::ledger::Statement>,
    /// True when the balance changes sum to zero (checked by the ledger as well).
    pub conserved: bool,
    /// Per contract.
    pub contracts: Vec<SettledRow>,
    /// Opening balance of every account.
    pub opening_balance: crate::base::amount::Money,
    /// The purchaser's share of the transmission cost, in basis points.
    pub purchaser_share_bps: u32,
}

impl SettlementReport {
    /// Settles the market's contracts with `readings` (one per contract, in contract order),
    /// every account opening at `opening_balance`.
    pub fn build(
        market: &PaperMarket,
        readings: &[crate::ledger::Reading],
        params: &crate::ledger::SettlementParams,
        opening_balance: crate::base::amount::Money,
    ) -> Result<Self, SettleError> {
        // Table 4's order: the transmission company, then sellers, then purchasers.
        let mut order: Vec<&Participant> = market.participants.values().collect();
        order.sort_by_key(|p| (crate::pipeline::settle::table4_rank(p.role), p.name.clone()));
        let participants: Vec<(Address, String)> =
            order.iter().map(|p| (p.address, p.name.clone())).collect();
        let contracts: Vec<_> = market
            .contracts
            .iter()
            .zip(readings)
            .map(|(named, &reading)| (named.signed.id(), &named.signed.contract, reading))
            .collect();
        let settled = crate::pipeline::settle::settle_once(
            &participants,
            opening_balance,
            &contracts,
            params,
            &|k| market.contracts[k].name.clone(),
        )?;
        let rows = market
            .contracts
            .iter()
            .zip(settled.settlements)
            .enumerate()
            .map(|(k, (named, s))| SettledRow {
                name: named.name.clone(),
                settled: settled.result.is_applied(k),
                transfers: s.transfers,
            })
            .collect();
        Ok(Self {
            statements: settled.statements,
            conserved: settled.conserved,
            contracts: rows,
            opening_balance,
            purchaser_share_bps: params.purchaser_share_bps,
        })
    }

    /// The statements as a table for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Settlement (the shape of Table 4), every account opening at {}:\n",
            self.opening_balance
        );
        out += &crate::ledger::render_statements(&self.statements, "participant", usize::MAX);
        let failed: Vec<&str> = self
            .contracts
            .iter()
            .filter(|c| !c.settled)
            .map(|c| c.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "\nbalance changes sum to zero: {}",
            if self.conserved { "yes" } else { "NO" }
        );
        if !failed.is_empty() {
            let _ = writeln!(
                out,
                "failed for lack of funds (nothing applied): {}",
                failed.join(", ")
            );
        }
        out
    }
}
