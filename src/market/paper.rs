//! The paper's Section 4 example: loading `datasets/paper/market.json`, turning the matrix F into
//! signed contracts, and the report `ipow paper` prints (Table 3 per contract, the hash tree of
//! Figure 5, the tamper of Figure 6, and the signature checks).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::base::amount::{AmountError, Energy, Price};
use crate::base::domain::{Address, BusinessCategory, DeliveryTime, Participant, Role};
use crate::contract::{Contract, SignedContract};
use crate::crypto::keys::{KeyPair, KeyRegistry};

/// The paper's market as shipped in the repository.
pub const EMBEDDED_MARKET: &str = include_str!("../../datasets/paper/market.json");
/// The name errors use for the embedded market.
/// The most bytes a paper market file may hold (the example is 2 KB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Where the embedded market comes from.
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
pub type PaperError = crate::base::input::InputError;

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
        let raw: RawMarket = crate::base::input::json_document(file, text)?;
        crate::base::input::check_format(file, &raw.format, FORMAT)?;
        let amount = |field: &str, e: AmountError| err("document", field, e.to_string());
        let transmission_rate =
            Price::parse(&raw.transmission_rate).map_err(|e| amount("transmission_rate", e))?;
        let damages_rate =
            Price::parse(&raw.damages_rate).map_err(|e| amount("damages_rate", e))?;
        let delivery_time: DeliveryTime =
            raw.delivery_time
                .parse()
                .map_err(|e: crate::base::domain::DeliveryTimeError| {
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
    pub fn workload(&self) -> crate::market::rules::Workload {
        use crate::market::rules::{MarketRules, Truth, Workload, WorkloadParams};
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
            slot_minutes: crate::base::domain::HOUR_SLOT,
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
                .map(|c| crate::ledger::Reading::full(&c.signed.contract))
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
        let address: Address =
            p.address
                .parse()
                .map_err(|e: crate::base::domain::AddressError| {
                    err(&record, "address", e.to_string())
                })?;
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
