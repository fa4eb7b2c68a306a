use std::collections::HashMap;

use ipow::contract::Signer;
use ipow::grid::DcModel;
use ipow::grid::placement::GridMarket;
use ipow::market::generator::Market;
use ipow::market::priority::PriorityRule;
use ipow::market::rules::{PlantedReason, Truth, Workload, WorkloadParams};
use ipow::validate::{Checks, NoCongestionStage, Reason, Verdict};

use crate::grids::load;

use crate::util::pool;

/// A 300-participant market with every kind planted often, skewed, with defaults.
pub fn params(seed: u64, contracts: usize) -> WorkloadParams {
    WorkloadParams {
        invalid_ppm: 120_000,
        default_ppm: 100_000,
        pareto_alpha_milli: 1_160,
        ..WorkloadParams::for_participants(seed, 300, contracts)
    }
}

pub fn grid_market(file: &str, p: &WorkloadParams) -> GridMarket {
    GridMarket::place(DcModel::new(load(file)).unwrap(), p.sellers, p.purchasers).unwrap()
}

fn expected(reason: PlantedReason) -> Reason {
    match reason {
        PlantedReason::ForgedSignature => Reason::Signature(Signer::Purchaser),
        PlantedReason::TamperedAmount => Reason::Signature(Signer::Seller),
        PlantedReason::EnergyOverCapacity => Reason::OverCapacity,
        PlantedReason::MalformedAuxService => Reason::AuxMalformed,
        PlantedReason::ReplayedContract => Reason::Replay,
        PlantedReason::CongestingTrade => Reason::Congestion,
    }
}

#[test]
fn every_planted_transaction_is_invalid_for_exactly_its_reason_and_no_valid_one_is_flagged() {
    // case57: some of its seller-purchaser pairs can carry a trade within the parties'
    // declared limits that overloads a line alone (see the test below).
    let p = params(11, 4000);
    let g = grid_market("pglib_opf_case57_ieee.m", &p);
    let w = Market::new(p, Some(&g)).batch(0..4000);
    let local = Checks {
        rules: &w.rules,
        congestion: &NoCongestionStage,
    };
    // An empty scheme: no curtailment, only the single-trade check of the grid.
    let alone = ipow::validate::congestion::period(
        &g,
        &w,
        &[],
        &local,
        PriorityRule::new(vec![0]),
        &ipow::validate::congestion::SlotBase::new(),
    );
    let checks = Checks {
        rules: &w.rules,
        congestion: &alone,
    };
    let mut kinds: HashMap<PlantedReason, usize> = HashMap::new();
    for (i, (tx, truth)) in w.transactions.iter().zip(&w.truth).enumerate() {
        let verdict = checks.validate(i as u32, tx);
        match truth {
            Truth::Valid => assert_eq!(verdict, Verdict::Valid, "transaction {i}"),
            Truth::Invalid(r) => {
                *kinds.entry(*r).or_default() += 1;
                assert_eq!(
                    verdict,
                    Verdict::Invalid(expected(*r)),
                    "transaction {i}: {r:?}"
                );
            }
        }
    }
    assert_eq!(kinds.len(), PlantedReason::ALL.len(), "{kinds:?}");
    // Without the grid there is no congesting kind.
    let free = Workload::generate(params(11, 2000));
    assert!(
        !free
            .truth
            .contains(&Truth::Invalid(PlantedReason::CongestingTrade))
    );
}

#[test]
fn the_same_seed_gives_the_same_market_on_1_2_and_7_threads() {
    let p = params(5, 600);
    let g = grid_market("pglib_opf_case57_ieee.m", &p);
    let bytes = |threads: usize| {
        pool(threads).install(|| {
            let w = Market::new(p.clone(), Some(&g)).batch(0..600);
            let mut out = Vec::new();
            for ((tx, t), r) in w.transactions.iter().zip(&w.truth).zip(&w.readings) {
                out.extend(tx.encode());
                out.extend(format!("{t:?}{r:?}").bytes());
            }
            out
        })
    };
    let one = bytes(1);
    assert_eq!(one, bytes(2));
    assert_eq!(one, bytes(7));
}

#[test]
fn pareto_skew_puts_most_contracts_on_a_few_participants() {
    let mut p = WorkloadParams::for_participants(3, 1000, 20_000);
    p.invalid_ppm = 0;
    let share_of_top_fifth = |p: WorkloadParams| {
        let sellers = p.sellers as usize;
        let w = Workload::generate(p);
        let mut counts = vec![0usize; sellers];
        for tx in &w.transactions {
            counts[(tx.contract.seller.0 - ipow::base::domain::SELLER_BASE) as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts[..sellers / 5].iter().sum::<usize>() as f64 / w.transactions.len() as f64
    };
    let uniform = share_of_top_fifth(p.clone());
    p.pareto_alpha_milli = 1_160;
    let skewed = share_of_top_fifth(p);
    assert!(uniform < 0.3, "{uniform}");
    assert!(skewed > 0.5, "{skewed}");
}

#[test]
fn readings_default_at_about_the_configured_rate_and_never_exceed_the_contract() {
    let mut p = WorkloadParams::for_participants(8, 200, 5000);
    p.default_ppm = 200_000;
    let w = Workload::generate(p);
    let defaults = w
        .readings
        .iter()
        .zip(&w.transactions)
        .filter(|(r, tx)| {
            assert!(r.delivered <= tx.contract.energy && r.received <= tx.contract.energy);
            r.delivered != tx.contract.energy || r.received != tx.contract.energy || !r.carried
        })
        .count();
    // 1000 expected, binomial standard deviation about 28; a short reading may round to the full
    // energy only when 0.99 x energy truncates back to it, which cannot happen above 0.1 MWh.
    assert!((850..1150).contains(&defaults), "{defaults}");
}

#[test]
fn stress_runs_every_size_through_the_pipeline_conserving_money_on_any_thread_count() {
    use ipow::lab::stress::{StressConfig, stress_size};

    let mut market = WorkloadParams::for_participants(4, 200, 0);
    market.default_ppm = 200_000;
    market.pareto_alpha_milli = 1_160;
    let config = StressConfig {
        sizes: ipow::lab::stress::sizes(100, 1500),
        market: market.clone(),
        run: crate::util::honest_ipow(16, 3, 4, 200),
        batch: 400,
        opening_balance: ipow::base::amount::Money::parse("1000.00").unwrap(),
    };
    assert_eq!(config.sizes, vec![100, 1000, 1500]);
    let g = grid_market("pglib_opf_case57_ieee.m", &market);
    let rows = |threads: usize| {
        pool(threads).install(|| {
            config
                .sizes
                .iter()
                .map(|&s| stress_size(&config, s, Some(&g), &mut |_, _, _| {}).unwrap())
                .collect::<Vec<_>>()
        })
    };
    let (a, b) = (rows(1), rows(2));
    for (x, y) in a.iter().zip(&b) {
        assert!(x.conserved && y.conserved);
        assert_eq!(x.accepted + x.rejected + x.undecided, x.contracts);
        assert_eq!(x.wrong_accepts, 0);
        // Hot accounts with small balances: some settlements fail, never half applied.
        assert_eq!(x.settled + x.settle_failed, x.accepted);
        let key =
            |r: &ipow::lab::stress::StressRow| (r.accepted, r.rejected, r.settled, r.settle_failed);
        assert_eq!(key(x), key(y));
        assert!(x.peak_rss_bytes > 0 || !std::path::Path::new("/proc/self/status").exists());
    }
    assert!(a.iter().any(|r| r.settle_failed > 0), "{a:?}");
}

#[test]
fn congesting_pairs_exist_on_case57_and_not_on_case14_or_case118() {
    let qualifying = |file: &str| {
        let p = WorkloadParams::for_participants(11, 300, 0);
        let g = grid_market(file, &p);
        let m = Market::new(p.clone(), Some(&g));
        let mut n = 0;
        for s in 0..p.sellers as usize {
            for q in 0..p.purchasers as usize {
                let limit =
                    g.transfer_limit_milli(g.seller_bus(s).unwrap(), g.purchaser_bus(q).unwrap());
                n += usize::from(limit < m.rules.capacity[s].min(m.rules.demand[q]).raw());
            }
        }
        n
    };
    assert_eq!(qualifying("pglib_opf_case14_ieee.m"), 0);
    assert_eq!(qualifying("pglib_opf_case118_ieee.m"), 0);
    assert!(qualifying("pglib_opf_case57_ieee.m") > 0);
}

#[test]
fn role_names_are_the_file_spelling() {
    use ipow::base::domain::Role;
    for role in [
        Role::Seller,
        Role::Purchaser,
        Role::TransmissionCompany,
        Role::GridOperator,
        Role::Source,
        Role::IntegratedEnergyServiceCompany,
        Role::GovernmentSupervisor,
    ] {
        assert_eq!(serde_json::to_value(role).unwrap(), role.name(), "{role:?}");
    }
}
