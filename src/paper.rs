//! The paper's Section 4 example: loading `datasets/paper/market.json`, turning the matrix F into
//! signed contracts, and the report `ipow paper` prints (Table 3 per contract, the hash tree of
//! Figure 5, the tamper of Figure 6, and the signature checks).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::amount::{AmountError, Energy, Price};
use crate::block::contract_tree;
use crate::contract::{Contract, SignedContract};
use crate::crypto::{KeyPair, KeyRegistry};
use crate::domain::{Address, BusinessCategory, DeliveryTime, Participant, Role};
use crate::merkle::{Hash, MerkleTree, TreeDiff};

/// The paper's market as shipped in the repository.
pub const EMBEDDED_MARKET: &str = include_str!("../datasets/paper/market.json");
/// The name errors use for the embedded market.
pub const EMBEDDED_MARKET_NAME: &str = "datasets/paper/market.json";

/// The format tag a market file must carry.
const FORMAT: &str = "ipow-paper-market/1";
/// Sellers in the paper's example (rows 1..4 of F).
const SELLERS: usize = 4;
/// Participants in F (4 sellers, 4 purchasers).
const MATRIX_SIZE: usize = 8;

/// The tamper Figure 6 shows: f15's energy rewritten from 10.98 to 12.71.
pub const TAMPER_CONTRACT: &str = "f15";
/// The energy written into the tampered contract.
pub const TAMPER_ENERGY: &str = "12.71";

/// A market file that cannot be used, naming the file, the record and the field.
pub type PaperError = crate::input::InputError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarket {
    format: String,
    #[allow(dead_code)]
    source: String,
    key_seed: u64,
    category: BusinessCategory,
    delivery_time: String,
    transmission_rate: String,
    damages_rate: String,
    participants: Vec<RawParticipant>,
    prices: BTreeMap<String, String>,
    matrix_f: Vec<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParticipant {
    number: usize,
    name: String,
    role: Role,
    address: String,
}

/// One contract of the example, named after its entry of F (`f15`).
#[derive(Clone, Debug)]
pub struct NamedContract {
    /// `f` followed by the seller's and the purchaser's numbers.
    pub name: String,
    /// The signed contract.
    pub signed: SignedContract,
}

/// The paper's example market, validated.
#[derive(Clone, Debug)]
pub struct PaperMarket {
    /// Seed of every participant's key.
    pub key_seed: u64,
    /// The 4 sellers, 4 purchasers and the transmission company, by their number (1..9).
    pub participants: BTreeMap<usize, Participant>,
    /// The contracts of F's non-zero entries in row order, signed by their three parties.
    pub contracts: Vec<NamedContract>,
}

impl PaperMarket {
    /// The market shipped with ipow.
    pub fn embedded() -> Result<Self, PaperError> {
        Self::from_json(EMBEDDED_MARKET, EMBEDDED_MARKET_NAME)
    }

    /// Reads and validates a market file; `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Self, PaperError> {
        let err = |record: &str, field: &str, message: String| {
            PaperError::new(file, record, field, message)
        };
        let raw: RawMarket = crate::input::json_document(file, text)?;
        crate::input::check_format(file, &raw.format, FORMAT)?;
        let amount = |field: &str, e: AmountError| err("document", field, e.to_string());
        let transmission_rate =
            Price::parse(&raw.transmission_rate).map_err(|e| amount("transmission_rate", e))?;
        let damages_rate =
            Price::parse(&raw.damages_rate).map_err(|e| amount("damages_rate", e))?;
        let delivery_time: DeliveryTime =
            raw.delivery_time
                .parse()
                .map_err(|e: crate::domain::DeliveryTimeError| {
                    err("document", "delivery_time", e.to_string())
                })?;

        let participants = read_participants(&raw.participants, &err)?;
        let transmission = participants
            .iter()
            .find(|(_, p)| p.role == Role::TransmissionCompany)
            .map(|(_, p)| p.address)
            .ok_or_else(|| err("participants", "role", "no transmission_company".to_owned()))?;

        let mut prices = BTreeMap::new();
        for seller in 1..=SELLERS {
            let key = seller.to_string();
            let text = raw
                .prices
                .get(&key)
                .ok_or_else(|| err("prices", &key, format!("no price for seller {seller}")))?;
            let price = Price::parse(text).map_err(|e| err("prices", &key, e.to_string()))?;
            prices.insert(seller, price);
        }
        if let Some(extra) = raw
            .prices
            .keys()
            .find(|k| !(1..=SELLERS).any(|s| s.to_string() == **k))
        {
            return Err(err("prices", extra, "not a seller number 1..4".to_owned()));
        }

        let energies = read_matrix(&raw.matrix_f, &err)?;
        let registry_keys: BTreeMap<usize, KeyPair> = participants
            .iter()
            .map(|(&n, p)| (n, KeyPair::derive(raw.key_seed, p.address)))
            .collect();
        let transmission_number = participants
            .iter()
            .find(|(_, p)| p.address == transmission)
            .map(|(&n, _)| n)
            .ok_or_else(|| {
                err(
                    "participants",
                    "address",
                    "transmission company missing".to_owned(),
                )
            })?;

        let mut seq: BTreeMap<usize, u64> = BTreeMap::new();
        let mut next_seq = |n: usize| {
            let s = seq.entry(n).or_insert(0);
            *s = s.saturating_add(1);
            *s
        };
        let mut contracts = Vec::new();
        for (i, j, energy) in energies {
            let contract = Contract {
                category: raw.category,
                seller: participants[&i].address,
                purchaser: participants[&j].address,
                transmission,
                price: prices[&i],
                energy,
                transmission_rate,
                damages_rate,
                delivery_time,
                seller_seq: next_seq(i),
                purchaser_seq: next_seq(j),
                transmission_seq: next_seq(transmission_number),
                aux: None,
            };
            let signed = contract.sign(
                &registry_keys[&i],
                &registry_keys[&j],
                &registry_keys[&transmission_number],
            );
            contracts.push(NamedContract {
                name: format!("f{i}{j}"),
                signed,
            });
        }
        Ok(Self {
            key_seed: raw.key_seed,
            participants,
            contracts,
        })
    }

    /// The admitted public keys of every participant.
    pub fn registry(&self) -> KeyRegistry {
        let mut registry = KeyRegistry::new();
        for p in self.participants.values() {
            let key = KeyPair::derive(self.key_seed, p.address).public_key();
            // A derived key is always admissible; registering it again cannot fail.
            let _ = registry.register(p.address, *key.as_bytes());
        }
        registry
    }

    /// The example as a workload the consensus engine can run (`ipow paper --store`): every
    /// contract valid with full delivery. The paper declares no capacities, so each seller
    /// declares what it sells in F and each purchaser what it buys (its row and column sums);
    /// prices are bounded by the example's own, and the delivery window is its one minute.
    pub fn workload(&self) -> crate::workload::Workload {
        use crate::workload::{MarketRules, Truth, Workload, WorkloadParams};
        let by_role = |role: Role| -> BTreeMap<Address, Energy> {
            let mut out = BTreeMap::new();
            for p in self.participants.values().filter(|p| p.role == role) {
                out.insert(p.address, Energy::ZERO);
            }
            for c in &self.contracts {
                let c = &c.signed.contract;
                let party = if role == Role::Seller {
                    c.seller
                } else {
                    c.purchaser
                };
                if let Some(total) = out.get_mut(&party) {
                    *total = total.checked_add(c.energy).unwrap_or(*total);
                }
            }
            out
        };
        // Dense vectors from the lowest address; addresses in between that are not of the role
        // declare zero.
        let dense = |m: &BTreeMap<Address, Energy>| -> (u32, Vec<Energy>) {
            let base = m.keys().next().map_or(0, |a| a.0);
            let top = m.keys().next_back().map_or(0, |a| a.0);
            let v = (base..=top)
                .map(|a| m.get(&Address(a)).copied().unwrap_or(Energy::ZERO))
                .collect();
            (base, v)
        };
        let (seller_base, capacity) = dense(&by_role(Role::Seller));
        let (purchaser_base, demand) = dense(&by_role(Role::Purchaser));
        let prices = self.contracts.iter().map(|c| c.signed.contract.price);
        let time = self
            .contracts
            .first()
            .map_or(DeliveryTime(0), |c| c.signed.contract.delivery_time);
        let rules = MarketRules {
            registry: self.registry(),
            capacity,
            demand,
            price_min: prices.clone().min().unwrap_or(Price::ZERO),
            price_max: prices.max().unwrap_or(Price::ZERO),
            aux_price_max: Price::ZERO,
            window: (time, DeliveryTime(time.0.saturating_add(1))),
            seq_watermark: 0,
            seller_base,
            purchaser_base,
        };
        let n = self.contracts.len();
        Workload {
            params: WorkloadParams::scaled_paper(self.key_seed, n),
            rules: std::sync::Arc::new(rules),
            transactions: self.contracts.iter().map(|c| c.signed.clone()).collect(),
            truth: vec![Truth::Valid; n],
            readings: self
                .contracts
                .iter()
                .map(|c| crate::settle::Reading::full(&c.signed.contract))
                .collect(),
        }
    }

    /// The participant at `address`, if any.
    pub fn participant(&self, address: Address) -> Option<&Participant> {
        self.participants.values().find(|p| p.address == address)
    }
}

type ErrFn<'a> = dyn Fn(&str, &str, String) -> PaperError + 'a;

fn read_participants(
    raw: &[RawParticipant],
    err: &ErrFn<'_>,
) -> Result<BTreeMap<usize, Participant>, PaperError> {
    let mut participants = BTreeMap::new();
    for (k, p) in raw.iter().enumerate() {
        let record = format!("participants[{k}]");
        let address: Address = p
            .address
            .parse()
            .map_err(|e: crate::domain::AddressError| err(&record, "address", e.to_string()))?;
        let expected = match p.number {
            1..=4 => Role::Seller,
            5..=8 => Role::Purchaser,
            9 => Role::TransmissionCompany,
            n => return Err(err(&record, "number", format!("{n} is not 1..9"))),
        };
        if p.role != expected {
            return Err(err(
                &record,
                "role",
                format!("participant {} must be {expected:?}", p.number),
            ));
        }
        if participants
            .values()
            .any(|q: &Participant| q.address == address)
        {
            return Err(err(&record, "address", format!("{address} is used twice")));
        }
        let participant = Participant {
            address,
            name: p.name.clone(),
            role: p.role,
        };
        if participants.insert(p.number, participant).is_some() {
            return Err(err(
                &record,
                "number",
                format!("{} is used twice", p.number),
            ));
        }
    }
    if participants.len() != MATRIX_SIZE + 1 {
        return Err(err(
            "participants",
            "number",
            format!("expected 9 participants, found {}", participants.len()),
        ));
    }
    Ok(participants)
}

/// Reads F and returns its trades (seller i, purchaser j, energy) in row order, after checking
/// the shape, the zero blocks and the mirror rows.
fn read_matrix(
    raw: &[Vec<String>],
    err: &ErrFn<'_>,
) -> Result<Vec<(usize, usize, Energy)>, PaperError> {
    if raw.len() != MATRIX_SIZE {
        return Err(err(
            "matrix_f",
            "rows",
            format!("expected 8 rows, found {}", raw.len()),
        ));
    }
    // Each entry as (negative, magnitude).
    let mut f = [[(false, Energy::ZERO); MATRIX_SIZE]; MATRIX_SIZE];
    for (r, row) in raw.iter().enumerate() {
        if row.len() != MATRIX_SIZE {
            return Err(err(
                &format!("matrix_f[{r}]"),
                "columns",
                format!("expected 8 entries, found {}", row.len()),
            ));
        }
        for (c, text) in row.iter().enumerate() {
            let (negative, magnitude) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.as_str()),
            };
            let energy = Energy::parse(magnitude)
                .map_err(|e| err(&format!("matrix_f[{r}][{c}]"), "energy", e.to_string()))?;
            f[r][c] = (negative && energy != Energy::ZERO, energy);
        }
    }
    let mut trades = Vec::new();
    for (r, row) in f.iter().enumerate() {
        for (c, &(negative, energy)) in row.iter().enumerate() {
            let record = format!("matrix_f[{r}][{c}]");
            let seller_block = r < SELLERS;
            let purchaser_col = c >= SELLERS;
            let must_be_zero = seller_block != purchaser_col;
            if must_be_zero && energy != Energy::ZERO {
                return Err(err(
                    &record,
                    "energy",
                    "seller-seller and purchaser-purchaser entries must be 0".to_owned(),
                ));
            }
            if seller_block && purchaser_col {
                if negative {
                    return Err(err(
                        &record,
                        "energy",
                        "a seller's row must not be negative".to_owned(),
                    ));
                }
                let mirror = f[c][r];
                if mirror != (energy != Energy::ZERO, energy) {
                    return Err(err(
                        &format!("matrix_f[{c}][{r}]"),
                        "energy",
                        format!("must mirror matrix_f[{r}][{c}] = {energy} with the opposite sign"),
                    ));
                }
                if energy != Energy::ZERO {
                    trades.push((r + 1, c + 1, energy));
                }
            }
        }
    }
    Ok(trades)
}

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

    /// The report as text for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ipow paper: Liu et al. (2020), Section 4, reproduced\n"
        );
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
    pub transfers: Vec<crate::settle::Transfer>,
}

/// Everything `ipow settle` shows for the paper's market.
#[derive(Clone, Debug, Serialize)]
pub struct SettlementReport {
    /// Per participant, in the shape of Table 4: transmission company, sellers, purchasers.
    pub statements: Vec<crate::settle::Statement>,
    /// True when the balance changes sum to zero (checked by the ledger as well).
    pub conserved: bool,
    /// Per contract.
    pub contracts: Vec<SettledRow>,
    /// Opening balance of every account.
    pub opening_balance: crate::amount::Money,
    /// The purchaser's share of the transmission cost, in basis points.
    pub purchaser_share_bps: u32,
}

pub use crate::settlement::SettleError;

impl SettlementReport {
    /// Settles the market's contracts with `readings` (one per contract, in contract order),
    /// every account opening at `opening_balance`.
    pub fn build(
        market: &PaperMarket,
        readings: &[crate::settle::Reading],
        params: &crate::settle::SettlementParams,
        opening_balance: crate::amount::Money,
    ) -> Result<Self, SettleError> {
        // Table 4's order: the transmission company, then sellers, then purchasers.
        let mut order: Vec<&Participant> = market.participants.values().collect();
        order.sort_by_key(|p| (crate::settlement::table4_rank(p.role), p.name.clone()));
        let participants: Vec<(Address, String)> =
            order.iter().map(|p| (p.address, p.name.clone())).collect();
        let contracts: Vec<_> = market
            .contracts
            .iter()
            .zip(readings)
            .map(|(named, &reading)| (named.signed.id(), &named.signed.contract, reading))
            .collect();
        let settled = crate::settlement::settle_once(
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
        out += &crate::settle::render_statements(&self.statements, "participant", usize::MAX);
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
