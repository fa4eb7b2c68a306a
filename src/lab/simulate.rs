//! The seeded fault simulator (`ipow simulate`): each seed draws a market, a consensus
//! configuration and faults, runs several periods through validate, seal, settle and store, and
//! checks every invariant. A failure names the seed and the git revision; `--seed S` replays it.
//!
//! What a seed draws: market size, participants, Pareto skew, planted-invalid and default
//! rates; validators, quorum, extra validators per period; a mix of Byzantine behaviours
//! (liar, colluder, lazy), crashed validators, slow validators and how often they are late;
//! the grid and how tight its line ratings are (no grid, or case14/case30 with ratings scaled
//! from 10% to 10x); the delivery horizon (1 hour to 2 days), the slot length (15, 30 or 60
//! minutes) and the traded share of the grid's load; transactions per period; the opening balance (small ones make contracts
//! fail for funds) and the purchaser's share of transmission; the thread count; and one kind
//! of damage done to the store after the run.
//!
//! What a seed checks:
//! 1. accounting: accepted + rejected + undecided = submitted, the honest-verdict tallies add
//!    up, the blocks hold exactly the accepted transactions;
//! 2. safety: with at most floor(q/2) validators that can vote dishonestly (liars, colluders,
//!    lazy ones), no decision is wrong, since a decision needs a strict majority of at least q
//!    proofs from distinct validators;
//! 3. above that bound, the wrong decisions of transactions decided in their first period are
//!    near what the protocol model gives ([`first_period`]: distinct validators drawn at random,
//!    silent ones re-asked, a tie asking one more, up to the bound), within 6 standard
//!    deviations plus 3;
//! 4. money: the ledger's total equals the opening total, settled + failed for funds =
//!    accepted, no contract id settles twice;
//! 5. the store audits clean as the supervisor, with every period and accepted contract;
//! 6. the damage done to the store is found at the record it hit (a torn tail is ignored);
//! 7. the same seed on another thread count gives the same digest (every decision, block hash
//!    and balance);
//! 8. on a grid, no committed trade overloads a line it did not find overloaded: after each
//!    period, a branch that the committed trades of a slot overload, and that the slot's earlier
//!    committed trades did not, is explained by a wrong accept in that slot or by a trade the
//!    rule kept, pulling against the branch, that was not committed (a forged signature, a
//!    carried transaction): the rule counts on every kept trade; and the committed base read
//!    back from the store (`chain::committed::read_base`) is the one the run kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::base::amount::Money;
use crate::base::rng::Rng;
use crate::chain::audit::{AuditOptions, audit};
use crate::chain::store::{LogReader, StoreWriter};
use crate::consensus::Outcome;
use crate::consensus::ipow::{Behaviour, FaultMix, IpowParams};
use crate::grid::placement::{GridMarket, SchemeTrade};
use crate::grid::{DcModel, Grid};
use crate::ledger::SettlementParams;
use crate::market::generator::Market;
use crate::market::rules::{PlantedReason, Truth, WorkloadParams};
use crate::pipeline::settle::PeriodSettler;
use crate::pipeline::{Committed, Load, Pipeline, RunConfig, RunReport, VariantConfig};
use crate::validate::congestion::SlotBase;
use crate::validate::{Checks, CongestionStage, NoCongestionStage};

/// The git revision this binary was built from.
pub const REVISION: &str = env!("IPOW_GIT_REVISION");

const CASE14: &str = include_str!("../../datasets/grids/pglib_opf_case14_ieee.m");
const CASE30: &str = include_str!("../../datasets/grids/pglib_opf_case30_ieee.m");

/// Damage done to the store after a seed's run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// None.
    None,
    /// Half of a period's first record appended: a crash during a write, to be ignored.
    TornTail,
    /// One bit flipped inside the committed log.
    FlippedBit,
    /// A region of up to 256 bytes zeroed.
    ZeroedRegion,
    /// A record overwritten with another record's bytes of the same length.
    OverwrittenRecord,
    /// The log cut inside its last committed period.
    CutCommitted,
}

impl Damage {
    /// Every kind, in the order seeds draw them.
    pub const ALL: [Damage; 6] = [
        Damage::None,
        Damage::TornTail,
        Damage::FlippedBit,
        Damage::ZeroedRegion,
        Damage::OverwrittenRecord,
        Damage::CutCommitted,
    ];

    /// Its name in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::TornTail => "torn_tail",
            Self::FlippedBit => "flipped_bit",
            Self::ZeroedRegion => "zeroed_region",
            Self::OverwrittenRecord => "overwritten_record",
            Self::CutCommitted => "cut_committed",
        }
    }
}

/// Uniform in `0..=n`.
fn upto(r: &mut Rng, n: u32) -> u32 {
    u32::try_from(r.below(u64::from(n) + 1)).unwrap_or(0)
}

/// What one seed drew.
#[derive(Clone, Debug, Serialize)]
pub struct Draw {
    /// The seed.
    pub seed: u64,
    /// Contracts.
    pub contracts: usize,
    /// Participants of every role.
    pub participants: u32,
    /// Pareto alpha x 1000 (0: uniform).
    pub pareto_alpha_milli: u32,
    /// Planted invalid, per million.
    pub invalid_ppm: u32,
    /// Meter defaults, per million.
    pub default_ppm: u32,
    /// Validators.
    pub validators: u32,
    /// Quorum.
    pub quorum: u32,
    /// Extra validators per period.
    pub extra: u32,
    /// Liars.
    pub liars: u32,
    /// Colluders.
    pub colluders: u32,
    /// Lazy validators.
    pub lazy: u32,
    /// Crashed validators.
    pub crashed: u32,
    /// Slow validators.
    pub slow: u32,
    /// How often a slow validator's answer is late, per million.
    pub slow_miss_ppm: u32,
    /// The grid (`case14`, `case30`), if any.
    pub grid: Option<&'static str>,
    /// Line ratings scaled to this percentage.
    pub rating_pct: u32,
    /// Delivery horizon (hours).
    pub horizon_hours: u32,
    /// Delivery slot length (minutes).
    pub slot_minutes: u32,
    /// Traded share of the grid's load, per million.
    pub congestion_ppm: u32,
    /// Transactions per period.
    pub period_txs: usize,
    /// Every account's opening balance, in hundredths.
    pub opening_cents: i64,
    /// The purchaser's share of transmission, basis points.
    pub purchaser_share_bps: u32,
    /// Threads of the first run (the second runs on 2 if this is 1, else on 1).
    pub threads: usize,
    /// The damage done to the store.
    pub damage: Damage,
}

impl Draw {
    /// The draw of `seed`.
    pub fn of(seed: u64) -> Draw {
        let mut r = Rng::stream(seed, &[0x5131]);
        let pick = |r: &mut Rng, xs: &[u32]| xs[r.index(xs.len())];
        let contracts = 30 + r.index(221);
        let validators = 6 + upto(&mut r, 34);
        let quorum = 1 + upto(&mut r, validators.min(9) - 1);
        let extra = upto(&mut r, 4);
        // Half the seeds stay within the safety bound, half go above it.
        let dishonest = if r.below(2) == 0 {
            upto(&mut r, quorum / 2)
        } else {
            (quorum / 2 + 1 + upto(&mut r, validators * 3 / 5 - 1)).min(validators)
        };
        let liars = upto(&mut r, dishonest);
        let colluders = upto(&mut r, dishonest - liars);
        let lazy = dishonest - liars - colluders;
        let left = validators - dishonest;
        let crashed = upto(&mut r, left / 4);
        let slow = upto(&mut r, (left - crashed) / 4);
        let grid = match r.below(3) {
            0 => None,
            1 => Some("case14"),
            _ => Some("case30"),
        };
        Draw {
            seed,
            contracts,
            participants: 20 + upto(&mut r, 100),
            pareto_alpha_milli: pick(&mut r, &[0, 0, 1160, 1500, 2500]),
            invalid_ppm: pick(&mut r, &[0, 20_000, 100_000, 300_000]),
            default_ppm: pick(&mut r, &[0, 20_000, 200_000]),
            validators,
            quorum,
            extra,
            liars,
            colluders,
            lazy,
            crashed,
            slow,
            slow_miss_ppm: pick(&mut r, &[100_000, 500_000, 900_000]),
            grid,
            rating_pct: pick(&mut r, &[10, 30, 100, 1000]),
            period_txs: 8 + r.index(57),
            opening_cents: [100_000, 10_000_000, 10_000_000_000][r.index(3)],
            purchaser_share_bps: 500 * upto(&mut r, 20),
            threads: 1 + r.index(4),
            damage: Damage::ALL[r.index(Damage::ALL.len())],
            horizon_hours: pick(&mut r, &[1, 4, 24, 48]),
            slot_minutes: pick(&mut r, &[15, 30, 60]),
            congestion_ppm: pick(&mut r, &[150_000, 1_000_000, 5_000_000]),
        }
    }

    /// Validators that can vote dishonestly on some transaction.
    pub fn dishonest(&self) -> u32 {
        self.liars + self.colluders + self.lazy
    }

    fn ipow(&self) -> IpowParams {
        IpowParams {
            validators: self.validators,
            quorum: self.quorum,
            extra_max: self.extra,
            byzantine_fraction: 0.0,
            behaviour: Behaviour::Liar,
            seed: self.seed ^ 0x1b0f,
            secret: None,
            signature_batch: crate::crypto::verify::DEFAULT_BATCH,
            mix: FaultMix {
                byzantine: vec![
                    (Behaviour::Liar, self.liars),
                    (Behaviour::Colluder, self.colluders),
                    (Behaviour::Lazy, self.lazy),
                    (Behaviour::Crash, self.crashed),
                ],
                slow: self.slow,
                slow_miss_ppm: self.slow_miss_ppm,
            },
        }
    }

    fn market(&self) -> WorkloadParams {
        let mut p = WorkloadParams::for_participants(self.seed, self.participants, self.contracts);
        p.invalid_ppm = self.invalid_ppm;
        p.default_ppm = self.default_ppm;
        p.pareto_alpha_milli = self.pareto_alpha_milli;
        p.delivery = crate::market::rules::Delivery {
            slot_minutes: self.slot_minutes,
            horizon_hours: self.horizon_hours,
            congestion_ppm: self.congestion_ppm,
        };
        p
    }
}

/// The wrong decisions of transactions decided in their first period, against the model.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Tail {
    /// Transactions decided in their first period.
    pub decided: u64,
    /// Of them, decided against the honest verdict.
    pub wrong: u64,
    /// Expected wrong under the model.
    pub expected: f64,
    /// Its variance (a sum of Bernoulli variances).
    pub variance: f64,
}

impl Tail {
    fn add(&mut self, o: &Tail) {
        self.decided += o.decided;
        self.wrong += o.wrong;
        self.expected += o.expected;
        self.variance += o.variance;
    }

    /// (observed - expected) / standard deviation; 0 when nothing could go wrong.
    pub fn z(&self) -> f64 {
        if self.variance > 0.0 {
            (self.wrong as f64 - self.expected) / self.variance.sqrt()
        } else {
            0.0
        }
    }
}

/// What one seed did.
#[derive(Clone, Debug, Serialize)]
pub struct SeedReport {
    /// What it drew.
    pub draw: Draw,
    /// Periods run.
    pub periods: u64,
    /// Submitted.
    pub submitted: u64,
    /// Accepted.
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Undecided at the end.
    pub undecided: u64,
    /// Wrong accepts.
    pub wrong_accepts: u64,
    /// Wrong rejects.
    pub wrong_rejects: u64,
    /// Late or missing answers re-requested.
    pub timeouts: u64,
    /// Valid contracts curtailed for congestion.
    pub curtailed: u64,
    /// Contracts settled.
    pub settled: u64,
    /// Contracts that failed for lack of funds.
    pub failed_funds: u64,
    /// First-period wrong decisions against the model.
    pub tail: Tail,
    /// Planted invalid transactions.
    pub planted_invalid: u64,
    /// SHA-256 of every decision, block hash and balance, hex.
    pub digest: String,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The seed.
    pub seed: u64,
    /// Which invariant.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} (git {REVISION}): {}: {}; replay with `ipow simulate --seed {}`",
            self.seed, self.invariant, self.detail, self.seed
        )
    }
}

impl std::error::Error for Violation {}

/// Probability that a transaction is decided the wrong way in its first period, and that it is
/// decided at all, when `n` validators hold `wrong` that vote against the honest verdict,
/// `crashed` that never answer, `slow` that are late with probability `miss`, and honest ones;
/// distinct validators are drawn at random, each draw one ask, a decision needs at least `q`
/// proofs with a strict majority, and no more than `bound` are asked.
pub fn first_period(
    n: u32,
    wrong: u32,
    crashed: u32,
    slow: u32,
    miss: f64,
    q: u32,
    bound: u32,
) -> (f64, f64) {
    let bound = bound.min(n);
    // (wrong drawn, crashed drawn, slow drawn, slow answered) -> probability, still undecided.
    let mut states: HashMap<(u32, u32, u32, u32), f64> = HashMap::new();
    states.insert((0, 0, 0, 0), 1.0);
    let (mut p_wrong, mut p_decided) = (0.0, 0.0);
    for k in 0..bound {
        let left = f64::from(n - k);
        let mut next: HashMap<(u32, u32, u32, u32), f64> = HashMap::new();
        for (&(w, c, s, sa), &mass) in &states {
            let honest_drawn = k - w - c - s;
            let honest = n - wrong - crashed - slow;
            let mut go = |state: (u32, u32, u32, u32), p: f64| {
                if p > 0.0 {
                    *next.entry(state).or_insert(0.0) += mass * p;
                }
            };
            go((w + 1, c, s, sa), f64::from(wrong - w) / left);
            go((w, c + 1, s, sa), f64::from(crashed - c) / left);
            let p_slow = f64::from(slow - s) / left;
            go((w, c, s + 1, sa + 1), p_slow * (1.0 - miss));
            go((w, c, s + 1, sa), p_slow * miss);
            go((w, c, s, sa), f64::from(honest - honest_drawn) / left);
        }
        // The honest draw keeps (w, c, s, sa) but adds a proof: tell it apart by k.
        states = HashMap::new();
        for ((w, c, s, sa), mass) in next {
            let honest_drawn = k + 1 - w - c - s;
            let received = w + honest_drawn + sa;
            let right = received - w;
            if received >= q && 2 * w.max(right) > received {
                p_decided += mass;
                if w > right {
                    p_wrong += mass;
                }
            } else {
                *states.entry((w, c, s, sa)).or_insert(0.0) += mass;
            }
        }
    }
    (p_wrong, p_decided)
}

fn grid_market(name: &str, rating_pct: u32, p: &WorkloadParams) -> Result<GridMarket, String> {
    static GRIDS: OnceLock<Result<(Grid, Grid), String>> = OnceLock::new();
    let grids = GRIDS.get_or_init(|| {
        let a = Grid::parse("case14 (embedded)", CASE14).map_err(|e| e.to_string())?;
        let b = Grid::parse("case30 (embedded)", CASE30).map_err(|e| e.to_string())?;
        Ok((a, b))
    });
    let (a, b) = grids.as_ref().map_err(Clone::clone)?;
    let mut grid = if name == "case14" {
        a.clone()
    } else {
        b.clone()
    };
    for br in &mut grid.branches {
        br.rate_a *= f64::from(rating_pct) / 100.0;
    }
    let model = DcModel::new(grid).map_err(|e| e.to_string())?;
    GridMarket::place(model, p.sellers, p.purchasers).map_err(|e| e.to_string())
}

/// One run of a draw on `threads` threads into the store at `dir`.
struct Outcome1 {
    report: RunReport,
    /// Accepted contracts whose signatures do not verify (wrongly accepted forgeries and
    /// tampered amounts), hex ids: what the audit must find, and all it may find.
    bad_signatures: HashSet<String>,
    settler: PeriodSettler,
    settled_twice: Option<String>,
    /// The first line committed trades overloaded without a cause (invariant 8).
    overload: Option<String>,
    /// How the store's committed base differs from the run's (invariant 8).
    stored_base: Option<String>,
    digest: String,
}

fn run_once(d: &Draw, threads: usize, dir: &Path) -> Result<Outcome1, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    pool.install(|| {
        let params = d.market();
        let grid = d
            .grid
            .map(|g| grid_market(g, d.rating_pct, &params))
            .transpose()?;
        let market = Market::new(params.clone(), grid.as_ref());
        let workload = market.batch(0..params.contracts as u64);
        let variant = VariantConfig::Ipow(d.ipow());
        let secret = d.ipow().node_secret();
        let config = RunConfig {
            variant: variant.clone(),
            period_txs: d.period_txs,
            load: Load::ClosedLoop,
        };
        let (genesis, signer) = store_genesis(&market, &variant, &secret)?;
        let mut writer = StoreWriter::create(dir, &genesis, signer).map_err(|e| e.to_string())?;
        let addresses: Vec<_> = market.members.iter().map(|m| m.address).collect();
        let mut settler = PeriodSettler::new(
            &addresses,
            Money::from_raw(d.opening_cents),
            SettlementParams {
                purchaser_share_bps: d.purchaser_share_bps,
            },
        );
        let mut ids = HashSet::new();
        let mut settled_twice = None;
        let mut firm = grid.as_ref().map(FirmCheck::new);
        let mut observe = |c: &Committed<'_>| {
            if let Some(f) = firm.as_mut() {
                f.period(c);
            }
            for &tx in c.accepted {
                let id = c.workload.transactions[tx as usize].id();
                if !ids.insert(id) && settled_twice.is_none() {
                    settled_twice = Some(format!(
                        "contract {} in period {}",
                        hex::encode(id.0),
                        c.period
                    ));
                }
            }
        };
        let report = Pipeline::new(&config, &workload)
            .grid(grid.as_ref())
            .record(&mut writer)
            .settle(&mut settler)
            .on_period(&mut observe)
            .run(&mut |_, _| {})
            .map_err(|e| crate::base::error_chain(&e))?;
        Ok(Outcome1 {
            digest: outcome_digest(&report, &settler),
            bad_signatures: bad_signatures(&report, &workload),
            report,
            settler,
            settled_twice,
            stored_base: firm.as_ref().and_then(|f| f.stored_base_differs(dir)),
            overload: firm.and_then(|f| f.broken),
        })
    })
}

/// Accepted contracts whose signatures do not verify, as hex ids.
fn bad_signatures(
    report: &RunReport,
    workload: &crate::market::rules::Workload,
) -> HashSet<String> {
    report
        .records
        .iter()
        .filter(|t| {
            t.outcome == Outcome::Accepted
                && matches!(
                    t.truth,
                    Truth::Invalid(PlantedReason::ForgedSignature | PlantedReason::TamperedAmount)
                )
        })
        .map(|t| hex::encode(workload.transactions[t.tx as usize].id().0))
        .collect()
}

/// Invariant 8 as the run goes: the committed flows per slot as the simulator keeps them, and
/// the first branch a period's committed trades overloaded without a cause.
struct FirmCheck<'g> {
    grid: &'g GridMarket,
    base: SlotBase,
    broken: Option<String>,
}

impl<'g> FirmCheck<'g> {
    fn new(grid: &'g GridMarket) -> Self {
        Self {
            grid,
            base: SlotBase::new(),
            broken: None,
        }
    }

    fn period(&mut self, c: &Committed<'_>) {
        let Some(pc) = c.congestion else {
            return;
        };
        let w = c.workload;
        let signed = |tx: u32| &w.transactions[tx as usize];
        let accepted: HashSet<u32> = c.accepted.iter().copied().collect();
        let committed: Vec<SchemeTrade> = c
            .accepted
            .iter()
            .filter_map(|&tx| pc.trade(tx, signed(tx)))
            .collect();
        // Slots where an honest validator would have rejected an accepted trade.
        let wrong: HashSet<u32> = c
            .accepted
            .iter()
            .filter(|&&tx| w.truth[tx as usize] != Truth::Valid || !pc.allows(tx, signed(tx)))
            .filter_map(|&tx| pc.trade(tx, signed(tx)).map(|t| t.slot))
            .collect();
        // Trades the rule kept (past the local checks, not curtailed) but not committed.
        let local = Checks {
            rules: &w.rules,
            congestion: &NoCongestionStage,
        };
        let dropped: Vec<SchemeTrade> = c
            .pending
            .iter()
            .filter(|tx| !accepted.contains(tx))
            .filter(|&&tx| local.local_failure(signed(tx)).is_none() && pc.allows(tx, signed(tx)))
            .filter_map(|&tx| pc.trade(tx, signed(tx)))
            .collect();
        let nbus = self.grid.model().grid().buses.len();
        let slots: std::collections::BTreeSet<u32> = committed.iter().map(|t| t.slot).collect();
        for slot in slots {
            if self.broken.is_none() && !wrong.contains(&slot) {
                self.broken = self.slot(c.period, slot, &committed, &dropped);
            }
        }
        self.base.commit(&committed, nbus);
    }
}

impl FirmCheck<'_> {
    /// Whether the store in `dir` gives back another committed base than the run's.
    fn stored_base_differs(&self, dir: &Path) -> Option<String> {
        let grid = self.grid.model().grid();
        match crate::chain::committed::read_base(dir, grid, |_, _| false) {
            Err(e) => Some(format!("the store's committed base cannot be read: {e}")),
            Ok((read, _)) if read.base != self.base => Some(format!(
                "the store's committed base differs from the run's ({} slots read, {} kept)",
                read.base.slots().count(),
                self.base.slots().count()
            )),
            Ok(_) => None,
        }
    }

    /// A branch `committed` overloads in `slot` that its base did not, with no kept trade of
    /// `dropped` pulling against it.
    fn slot(
        &self,
        period: u64,
        slot: u32,
        committed: &[SchemeTrade],
        dropped: &[SchemeTrade],
    ) -> Option<String> {
        let model = self.grid.model();
        let nbus = model.grid().buses.len();
        let before = self
            .base
            .of(slot)
            .map_or_else(|| vec![0; nbus], <[i64]>::to_vec);
        let mut after = SlotBase::new();
        after.commit(committed.iter().filter(|t| t.slot == slot), nbus);
        let added = after.of(slot).unwrap_or(&[]);
        let sum: Vec<i64> = before.iter().zip(added).map(|(a, b)| a + b).collect();
        let (f0, f1) = (model.flows(&mw(&before)), model.flows(&mw(&sum)));
        model
            .grid()
            .branches
            .iter()
            .enumerate()
            .find_map(|(l, br)| {
                if !br.is_limited() || f1[l].abs() <= br.rate_a || f0[l].abs() > br.rate_a {
                    return None;
                }
                let (dir, row) = (f1[l].signum(), model.ptdf_row(l));
                let against = dropped.iter().any(|t| {
                    t.slot == slot && dir * (row[t.seller as usize] - row[t.buyer as usize]) < 0.0
                });
                (!against).then(|| {
                format!(
                    "period {period} slot {slot}: branch row {l} carries {:.3} MW over rateA {:.3} \
                     after the period's committed trades ({:.3} MW before), with no wrong accept \
                     and no kept trade against it left uncommitted",
                    f1[l].abs(),
                    br.rate_a,
                    f0[l].abs()
                )
            })
            })
    }
}

/// Injections in 0.001 MW as MW.
#[allow(clippy::cast_precision_loss)]
fn mw(inj: &[i64]) -> Vec<f64> {
    inj.iter().map(|&m| m as f64 / 1000.0).collect()
}

/// What a run decided, wrote and settled, as one hash: every transaction's outcome, verdict and
/// validators asked, every block hash, every balance.
fn outcome_digest(report: &RunReport, settler: &PeriodSettler) -> String {
    let mut h = Sha256::new();
    for r in &report.records {
        h.update(r.tx.to_be_bytes());
        h.update([
            match r.outcome {
                Outcome::Accepted => 1,
                Outcome::Rejected => 2,
                Outcome::Undecided => 3,
            },
            r.verdict.map_or(255, |v| v.code()),
        ]);
        h.update(r.validators_asked.to_be_bytes());
    }
    for b in &report.blocks {
        h.update(b.hash.as_bytes());
    }
    for (a, m) in settler.ledger().accounts() {
        h.update(a.0.to_be_bytes());
        h.update(m.raw().to_be_bytes());
    }
    hex::encode(h.finalize())
}

/// The genesis of a store of `market`'s run of `variant`, and its block signer.
fn store_genesis(
    market: &Market<'_>,
    variant: &VariantConfig,
    secret: &crate::crypto::secret::NodeSecret,
) -> Result<
    (
        crate::chain::store::Genesis,
        crate::chain::sign::BlockSigner,
    ),
    String,
> {
    let members = market.members.iter().map(Into::into).collect();
    let grid = market.grid().map(|g| g.model().grid());
    let stored = crate::chain::store::StoredMarket::new(market.rules.slot_minutes, grid)?;
    crate::pipeline::genesis(members, stored, variant, secret)
}

/// Invariant 8's name.
const OVERLOAD: &str = "no committed trade overloads a line it did not find overloaded";

/// Runs one seed, its store under `work` (removed after), and checks every invariant.
pub fn run_seed(seed: u64, work: &Path) -> Result<SeedReport, Violation> {
    let d = Draw::of(seed);
    let fail = |invariant: &'static str, detail: String| Violation {
        seed,
        invariant,
        detail,
    };
    let dir = work.join(format!("seed-{seed}"));
    let _ = std::fs::remove_dir_all(&dir);
    let result = check_seed(&d, &dir, &fail);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(dir.with_extension("again"));
    result
}

/// Invariant 1: accepted + rejected + undecided = submitted, the honest-verdict tallies add up,
/// the blocks hold exactly the accepted transactions.
fn accounting(
    d: &Draw,
    r: &RunReport,
    fail: &dyn Fn(&'static str, String) -> Violation,
) -> Result<(), Violation> {
    // 1. Accounting.
    let decided = r.accepted + r.rejected;
    if decided + r.undecided != r.submitted || r.submitted != d.contracts as u64 {
        return Err(fail(
            "accounting",
            format!(
                "{} accepted + {} rejected + {} undecided != {} submitted ({} contracts)",
                r.accepted, r.rejected, r.undecided, r.submitted, d.contracts
            ),
        ));
    }
    if r.honest_invalid + r.honest_valid != decided
        || r.wrong_accepts > r.honest_invalid
        || r.wrong_rejects > r.honest_valid
    {
        return Err(fail(
            "accounting",
            format!(
                "honest tallies {} invalid + {} valid vs {decided} decided; wrong {} / {}",
                r.honest_invalid, r.honest_valid, r.wrong_accepts, r.wrong_rejects
            ),
        ));
    }
    let in_blocks: u64 = r.blocks.iter().map(|b| b.transactions).sum();
    if in_blocks != r.accepted {
        return Err(fail(
            "accounting",
            format!(
                "blocks hold {in_blocks} transactions, {} accepted",
                r.accepted
            ),
        ));
    }
    Ok(())
}

fn check_seed(
    d: &Draw,
    dir: &Path,
    fail: &dyn Fn(&'static str, String) -> Violation,
) -> Result<SeedReport, Violation> {
    let one = run_once(d, d.threads, dir).map_err(|e| fail("the run completes", e))?;
    let r = &one.report;
    accounting(d, r, fail)?;
    // 2 and 3. Safety and the tail.
    let q = d.quorum;
    let bound = (q + d.extra).min(d.validators);
    if d.dishonest() <= q / 2 && (r.wrong_accepts > 0 || r.wrong_rejects > 0) {
        return Err(fail(
            "safety within the bound",
            format!(
                "{} dishonest validators <= floor({q}/2), yet {} wrong accepts and {} wrong rejects",
                d.dishonest(),
                r.wrong_accepts,
                r.wrong_rejects
            ),
        ));
    }
    let tail = first_period_tail(d, r, bound);
    let allowed = 6.0 * tail.variance.sqrt() + 3.0;
    if (tail.wrong as f64 - tail.expected).abs() > allowed {
        return Err(fail(
            "wrong decisions near the model",
            format!(
                "{} wrong of {} decided in their first period, {:.2} expected (sd {:.2})",
                tail.wrong,
                tail.decided,
                tail.expected,
                tail.variance.sqrt()
            ),
        ));
    }
    // 4. Money.
    let s = one.settler.summary();
    let opening = i128::from(d.opening_cents) * i128::from(s.accounts);
    if !s.conserved || one.settler.ledger().total() != opening {
        return Err(fail(
            "money is conserved",
            format!(
                "ledger total {} against {opening} opening",
                one.settler.ledger().total()
            ),
        ));
    }
    for (invariant, broken) in [
        (OVERLOAD, &one.overload),
        ("the store gives back the committed base", &one.stored_base),
        ("no contract settles twice", &one.settled_twice),
    ] {
        if let Some(b) = broken {
            return Err(fail(invariant, b.clone()));
        }
    }
    if s.settled + s.failed_funds != r.accepted {
        return Err(fail(
            "every accepted contract settles or fails for funds",
            format!(
                "{} settled + {} failed != {} accepted",
                s.settled, s.failed_funds, r.accepted
            ),
        ));
    }
    // 5. The store audits clean, its proof tags checked with the run's node secret.
    let supervisor = AuditOptions::supervisor().with_secret(d.ipow().node_secret());
    let a = audit(dir, supervisor.clone()).map_err(|e| fail("the store reopens", e.to_string()))?;
    // A forgery or tampered amount that Byzantine validators accepted is sealed; the audit,
    // which checks every signature again, must name exactly those contracts and nothing else.
    let named: HashSet<String> = a
        .findings
        .iter()
        .filter_map(|f| f.contract.clone())
        .collect();
    let other = a
        .findings
        .iter()
        .find(|f| f.contract.is_none() || f.field.as_deref() != Some("signatures"));
    if named != one.bad_signatures
        || other.is_some()
        || a.periods != r.blocks.len() as u64
        || a.contracts_committed != r.accepted
    {
        return Err(fail(
            "the store audits clean",
            format!(
                "{} periods of {}, {} contracts of {}; {} contracts named, {} wrongly accepted \
                 with bad signatures; {:?}",
                a.periods,
                r.blocks.len(),
                a.contracts_committed,
                r.accepted,
                named.len(),
                one.bad_signatures.len(),
                other.or(a.findings.first())
            ),
        ));
    }
    // 6. Damage is found where it was done.
    damage_found(d, dir, supervisor, &a.findings)
        .map_err(|e| fail("damage is found at its record", e))?;
    // 7. The same seed on another thread count.
    let other = if d.threads == 1 { 2 } else { 1 };
    let again = dir.with_extension("again");
    let two = run_once(d, other, &again).map_err(|e| fail("the rerun completes", e))?;
    if two.digest != one.digest {
        return Err(fail(
            "the same on any thread count",
            format!(
                "digest {} on {} threads, {} on {other}",
                one.digest, d.threads, two.digest
            ),
        ));
    }
    Ok(SeedReport {
        draw: d.clone(),
        periods: r.blocks.len() as u64,
        submitted: r.submitted,
        accepted: r.accepted,
        rejected: r.rejected,
        undecided: r.undecided,
        wrong_accepts: r.wrong_accepts,
        wrong_rejects: r.wrong_rejects,
        timeouts: r.work.timeouts,
        curtailed: r.curtailed,
        settled: s.settled,
        failed_funds: s.failed_funds,
        tail,
        planted_invalid: r.planted_invalid,
        digest: one.digest,
    })
}

/// The first-period wrong decisions of a run against [`first_period`], by class of honest
/// verdict (who votes against it differs).
fn first_period_tail(d: &Draw, r: &RunReport, bound: u32) -> Tail {
    let miss = f64::from(d.slow_miss_ppm) / 1e6;
    let model = |wrong: u32| {
        let (pw, pd) = first_period(
            d.validators,
            wrong,
            d.crashed,
            d.slow,
            miss,
            d.quorum,
            bound,
        );
        if pd > 0.0 { pw / pd } else { 0.0 }
    };
    // Planted invalid: liars, colluders and lazy ones approve. Curtailed valid: liars and lazy
    // ones. Honest-valid: liars reject.
    let p = [
        model(d.liars + d.colluders + d.lazy),
        model(d.liars + d.lazy),
        model(d.liars),
    ];
    let mut tail = Tail::default();
    for t in &r.records {
        // Decided by validators in its first period: a copy refused at admission (asked
        // nobody) is no draw of the model.
        let (Some(honest_valid), true) =
            (t.honest_valid, (1..=bound).contains(&t.validators_asked))
        else {
            continue;
        };
        let class = match (honest_valid, t.truth) {
            (false, Truth::Invalid(_)) => 0,
            (false, Truth::Valid) => 1,
            (true, _) => 2,
        };
        let accepted = t.outcome == Outcome::Accepted;
        tail.decided += 1;
        tail.wrong += u64::from(accepted != honest_valid);
        tail.expected += p[class];
        tail.variance += p[class] * (1.0 - p[class]);
    }
    tail
}

// Offsets index a log held in memory, so they fit in usize.
#[allow(clippy::cast_possible_truncation)]
/// Damages the store as drawn and audits it again: the new findings (beside `before`, the
/// undamaged store's) must locate the damage at the record it hit; a torn tail must add none.
fn damage_found(
    d: &Draw,
    dir: &Path,
    options: AuditOptions,
    before: &[crate::chain::audit::Finding],
) -> Result<(), String> {
    let log = dir.join(crate::chain::store::LOG_FILE);
    let original = std::fs::read(&log).map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    let mut reader = LogReader::from_bytes(original.clone());
    while let Ok(Some(rec)) = reader.next_record() {
        records.push((rec.offset, rec.end(), rec));
    }
    let mut r = Rng::stream(d.seed, &[0xda3a]);
    // Damage inside the committed log, after the genesis record.
    let first = records.get(1).map_or(0, |x| x.0);
    let end = original.len() as u64;
    if end <= first + 1 {
        return Ok(());
    }
    let mut bytes = original.clone();
    let at = first + r.below(end - first);
    let containing = records
        .iter()
        .find(|x| x.0 <= at && at < x.1)
        .map_or(first, |x| x.0);
    let expect_at = match d.damage {
        Damage::None => return Ok(()),
        Damage::TornTail => {
            let (_, _, rec) = &records[1];
            let mut framed = Vec::new();
            crate::chain::store::frame(&mut framed, rec.kind, &rec.payload)?;
            bytes.extend_from_slice(&framed[..framed.len() / 2]);
            None
        }
        Damage::FlippedBit => {
            bytes[at as usize] ^= 1 << r.below(8);
            Some(containing)
        }
        Damage::ZeroedRegion => {
            let n = (1 + r.below(256)).min(end - at) as usize;
            bytes[at as usize..at as usize + n].fill(0);
            if bytes == original {
                return Ok(());
            }
            // The first changed byte is what the audit must locate.
            let changed = (at as usize..at as usize + n)
                .find(|&i| original[i] != 0)
                .unwrap_or(at as usize) as u64;
            records
                .iter()
                .find(|x| x.0 <= changed && changed < x.1)
                .map(|x| x.0)
        }
        Damage::OverwrittenRecord => {
            let same = records[1..]
                .iter()
                .enumerate()
                .flat_map(|(i, a)| {
                    records[i + 2..]
                        .iter()
                        .filter(move |b| b.1 - b.0 == a.1 - a.0 && b.2.payload != a.2.payload)
                        .map(move |b| (a, b))
                })
                .next();
            let Some((a, b)) = same else { return Ok(()) };
            let src = original[a.0 as usize..a.1 as usize].to_vec();
            bytes[b.0 as usize..b.1 as usize].copy_from_slice(&src);
            Some(b.0)
        }
        Damage::CutCommitted => {
            let cut = end - 1 - r.below((end - first).min(64));
            bytes.truncate(cut as usize);
            None
        }
    };
    std::fs::write(&log, &bytes).map_err(|e| e.to_string())?;
    let report = audit(dir, options).map_err(|e| e.to_string())?;
    let new: Vec<_> = report
        .findings
        .iter()
        .filter(|f| !before.contains(f))
        .collect();
    let result = match (d.damage, expect_at) {
        (Damage::TornTail, _) if new.is_empty() && report.torn_tail_bytes > 0 => Ok(()),
        (Damage::TornTail, _) => Err(format!(
            "a torn tail was not ignored: {} new findings, {} torn bytes",
            new.len(),
            report.torn_tail_bytes
        )),
        (Damage::CutCommitted, _) if !new.is_empty() => Ok(()),
        (_, Some(at)) if new.iter().any(|f| f.offset == Some(at)) => Ok(()),
        (kind, at) => Err(format!(
            "{} at the record at byte {at:?}: new findings {:?}",
            kind.name(),
            new.iter()
                .map(|f| (f.offset, f.message.clone()))
                .take(3)
                .collect::<Vec<_>>()
        )),
    };
    std::fs::write(&log, &original).map_err(|e| e.to_string())?;
    result
}

/// Totals of a simulation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The revision.
    pub revision: String,
    /// First seed.
    pub first_seed: u64,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds whose every invariant held.
    pub passed: u64,
    /// The broken invariants, one line each with seed and revision.
    pub failures: Vec<String>,
    /// Periods run (first runs).
    pub periods: u64,
    /// Transactions submitted (first runs).
    pub transactions: u64,
    /// Faults injected, by kind: validators of each behaviour, late answers, planted invalid
    /// transactions, metered defaults settled, contracts failed for funds, damage to stores.
    pub faults: BTreeMap<String, u64>,
    /// Seeds within the safety bound (and their wrong decisions, which must be 0).
    pub seeds_within_bound: u64,
    /// Wrong decisions of the seeds within the bound.
    pub wrong_within_bound: u64,
    /// First-period wrong decisions above the bound against the model, summed over seeds.
    pub tail_above_bound: Tail,
    /// Its z-score.
    pub tail_z: f64,
    /// Wall seconds.
    pub seconds: f64,
}

/// Runs seeds `first..first + count` (stores under `work`), calling `progress` after each.
pub fn run_seeds(
    first: u64,
    count: u64,
    work: &Path,
    progress: &mut dyn FnMut(&Result<SeedReport, Violation>),
) -> Summary {
    let started = std::time::Instant::now();
    let mut s = Summary {
        revision: REVISION.to_owned(),
        first_seed: first,
        ..Summary::default()
    };
    for seed in first..first.saturating_add(count) {
        let result = run_seed(seed, work);
        progress(&result);
        s.seeds += 1;
        match &result {
            Ok(rep) => {
                s.passed += 1;
                s.periods += rep.periods;
                s.transactions += rep.submitted;
                let d = &rep.draw;
                let mut add = |k: &str, v: u64| *s.faults.entry(k.to_owned()).or_insert(0) += v;
                add("validators_liar", d.liars.into());
                add("validators_colluder", d.colluders.into());
                add("validators_lazy", d.lazy.into());
                add("validators_crashed", d.crashed.into());
                add("validators_slow", d.slow.into());
                add("answers_late_or_missing", rep.timeouts);
                add("contracts_planted_invalid", rep.planted_invalid);
                add("contracts_failed_for_funds", rep.failed_funds);
                add("contracts_curtailed", rep.curtailed);
                if d.damage != Damage::None {
                    add(&format!("store_{}", d.damage.name()), 1);
                }
                if d.dishonest() <= d.quorum / 2 {
                    s.seeds_within_bound += 1;
                    s.wrong_within_bound += rep.wrong_accepts + rep.wrong_rejects;
                } else {
                    s.tail_above_bound.add(&rep.tail);
                }
            }
            Err(v) => s.failures.push(v.to_string()),
        }
    }
    s.tail_z = s.tail_above_bound.z();
    s.seconds = started.elapsed().as_secs_f64();
    s
}

/// A scratch directory for the stores of a simulation.
pub fn work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ipow-simulate-{}", std::process::id()))
}
