use std::collections::{HashMap, HashSet};

use ipow::consensus::ipow::{Behaviour, Ipow, IpowParams};
use ipow::consensus::model::dishonest_majority_probability;
use ipow::consensus::pool::{Answer, Ask, PoolError, RayonPool, Round, ValidatorPool};
use ipow::consensus::pow::{PowParams, leading_zero_bits, mine, verify_pow};
use ipow::consensus::{Consensus, Outcome, PeriodInput};
use ipow::contract::block::SealKind;
use ipow::crypto::verify::BatchStats;
use ipow::market::rules::{Truth, Workload, WorkloadParams};
use ipow::pipeline::{Pipeline, RunConfig, RunReport, VariantConfig};
use ipow::validate::{Checks, NoCongestionStage, Verdict};

use crate::util::pool;

fn ipow_params(
    validators: u32,
    quorum: u32,
    byzantine: f64,
    behaviour: Behaviour,
    seed: u64,
) -> IpowParams {
    IpowParams::honest(validators, quorum, 4, seed).with_byzantine(byzantine, behaviour)
}

fn workload(contracts: usize, seed: u64, invalid_ppm: u32) -> Workload {
    let mut params = WorkloadParams::scaled_paper(seed, contracts);
    params.invalid_ppm = invalid_ppm;
    Workload::generate(params)
}

/// One run without a grid, store or ledger.
fn run(config: &RunConfig, w: &Workload) -> RunReport {
    Pipeline::new(config, w).run(&mut |_, _| {}).unwrap()
}

fn run_on(threads: usize, variant: VariantConfig, w: &Workload, period_txs: usize) -> RunReport {
    pool(threads).install(|| {
        run(
            &RunConfig {
                variant,
                period_txs,
                load: ipow::pipeline::Load::ClosedLoop,
            },
            w,
        )
    })
}

fn accounting_adds_up(r: &RunReport) {
    assert_eq!(
        r.accepted + r.rejected + r.undecided,
        r.submitted,
        "accounting: {r:?}"
    );
    assert_eq!(
        r.blocks.iter().map(|b| b.transactions).sum::<u64>(),
        r.accepted,
        "blocks hold the accepted"
    );
}

#[test]
fn workload_plants_every_kind_and_honest_checks_find_exactly_them() {
    let w = workload(3000, 5, 100_000);
    let kinds: HashSet<_> = w
        .truth
        .iter()
        .filter_map(|t| match t {
            Truth::Invalid(r) => Some(*r),
            Truth::Valid => None,
        })
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    let checks = Checks {
        rules: &w.rules,
        congestion: &NoCongestionStage,
    };
    for (i, (tx, truth)) in w.transactions.iter().zip(&w.truth).enumerate() {
        let i = i as u32;
        assert_eq!(
            checks.validate(i, tx).is_valid(),
            *truth == Truth::Valid,
            "{truth:?}: {:?}",
            checks.validate(i, tx)
        );
    }
    // Same seed, same bytes, on any thread count.
    let a = pool(1).install(|| workload(300, 9, 100_000));
    let b = pool(7).install(|| workload(300, 9, 100_000));
    assert!(
        a.transactions
            .iter()
            .zip(&b.transactions)
            .all(|(x, y)| x.encode() == y.encode())
    );
}

/// Runs one IPOW period directly and returns the variant's output with its proofs.
fn one_period(w: &Workload, params: IpowParams) -> ipow::consensus::PeriodOutput {
    periods_on(w, &mut Ipow::new(params), 1).remove(0)
}

/// Runs `count` IPOW periods of `w` on `ipow` directly (each period takes up what the last left
/// undecided, then the next tenth of the workload), on 2 threads.
fn periods_on<P: ValidatorPool + Send>(
    w: &Workload,
    ipow: &mut Ipow<P>,
    count: u64,
) -> Vec<ipow::consensus::PeriodOutput> {
    let checks = Checks {
        rules: &w.rules,
        congestion: &NoCongestionStage,
    };
    let n = w.transactions.len() as u32;
    let mut carried: Vec<u32> = Vec::new();
    let mut outs = Vec::new();
    for period in 0..count {
        let (a, b) = if count == 1 {
            (0, n)
        } else {
            (
                (period as u32 * n / 10).min(n),
                ((period as u32 + 1) * n / 10).min(n),
            )
        };
        let pending: Vec<u32> = carried.drain(..).chain(a..b).collect();
        let out = pool(2)
            .install(|| {
                ipow.run_period(&PeriodInput {
                    period,
                    height: period,
                    prev_hash: [0; 32],
                    pending: &pending,
                    workload: w,
                    checks: &checks,
                })
            })
            .expect("the in-process pool never fails");
        carried = out
            .decisions
            .iter()
            .filter(|d| d.outcome == Outcome::Undecided)
            .map(|d| d.tx)
            .collect();
        outs.push(out);
    }
    outs
}

/// A validator tier that answers through the in-process pool one ask at a time, last ask
/// first (another schedule, the same answers), or that loses the answers of every fifth ask
/// and answers one in seven for another transaction than asked (a faulty tier).
struct Shuffled {
    inner: RayonPool,
    faulty: bool,
}

impl ValidatorPool for Shuffled {
    fn validate(
        &mut self,
        input: &PeriodInput<'_>,
        asks: &[Ask],
        stats: &mut BatchStats,
    ) -> Result<Vec<Answer>, PoolError> {
        let mut answers: Vec<Answer> = asks
            .iter()
            .rev()
            .map(|a| {
                self.inner
                    .answer_round(&Round::of(input), std::slice::from_ref(a), stats)[0]
            })
            .collect();
        answers.reverse();
        if self.faulty {
            for (k, a) in answers.iter_mut().enumerate() {
                if k % 7 == 3
                    && let Some(p) = a.proof.as_mut()
                {
                    p.tx = p.tx.wrapping_add(1);
                }
            }
            answers.truncate(asks.len() - asks.len() / 5);
        }
        Ok(answers)
    }
}

/// The validators' records forget decided transactions (never assigned again): after any
/// period they hold at most q + extra entries per carried transaction, not q per contract seen.
#[test]
fn validators_remember_only_what_is_carried() {
    let w = workload(2_000, 7, 100_000);
    let params = ipow_params(16, 3, 0.4, Behaviour::Crash, 5);
    let mut engine = Ipow::new(params);
    let outs = periods_on(&w, &mut engine, 10);
    let carried = outs[9]
        .decisions
        .iter()
        .filter(|d| d.outcome == Outcome::Undecided)
        .count();
    let validations: u64 = outs.iter().map(|o| o.work.validations).sum();
    assert!(
        carried > 0 && validations > 5_000,
        "{carried} {validations}"
    );
    assert!(
        engine.remembered() <= carried * (3 + 4),
        "{} for {carried}",
        engine.remembered()
    );
}

/// The validator tier is a boundary: any pool that gives the in-process pool's answers ask for
/// ask gives the same decisions, proofs, blocks and priorities; answers it loses or sends for
/// the wrong transaction are no proofs (asked again next round), never a panic.
#[test]
fn any_validator_pool_with_the_same_answers_gives_the_same_periods() {
    let w = workload(600, 5, 100_000);
    let params = ipow_params(16, 3, 0.25, Behaviour::Liar, 3);
    let outcome = |outs: &[ipow::consensus::PeriodOutput]| -> Vec<String> {
        outs.iter()
            .map(|o| {
                let decisions: Vec<_> = o
                    .decisions
                    .iter()
                    .map(|d| (d.tx, d.outcome, d.verdict, d.validators_asked))
                    .collect();
                // Signature batches are the schedule's (one ask at a time: batches of one).
                let work = (o.work.validations, o.work.timeouts);
                format!("{decisions:?} {:?} {:?} {work:?}", o.proofs, o.block.header)
            })
            .collect()
    };
    let mut engine = Ipow::new(params.clone());
    let reference = outcome(&periods_on(&w, &mut engine, 4));
    let other = Shuffled {
        inner: RayonPool::new(params.clone()),
        faulty: false,
    };
    let mut shuffled = Ipow::with_pool(params.clone(), Box::new(other));
    let got = outcome(&periods_on(&w, &mut shuffled, 4));
    assert_eq!(got.len(), reference.len());
    for (k, (a, b)) in got.iter().zip(&reference).enumerate() {
        assert!(a == b, "period {k} differs");
    }
    // A faulty tier: fewer proofs arrive, transactions are asked again or left undecided, and
    // no proof for a transaction other than the one asked is counted.
    let faulty = Shuffled {
        inner: RayonPool::new(params.clone()),
        faulty: true,
    };
    let mut faulty = Ipow::with_pool(params, Box::new(faulty));
    let outs = periods_on(&w, &mut faulty, 4);
    assert_ne!(outcome(&outs), reference);
    for o in &outs {
        assert!(o.work.timeouts > 0, "{:?}", o.work);
        for d in &o.decisions {
            let proofs = o.proofs.iter().filter(|p| p.tx == d.tx).count() as u32;
            assert!(proofs <= d.validators_asked, "{d:?}");
        }
    }
}

#[test]
fn table_1_rules_hold_for_every_decision() {
    let w = workload(600, 3, 100_000);
    for (quorum, byz, behaviour) in [
        (3, 0.0, Behaviour::Liar),
        (4, 0.3, Behaviour::Liar),
        (5, 0.25, Behaviour::Crash),
        (2, 0.4, Behaviour::Lazy),
    ] {
        let out = one_period(&w, ipow_params(12, quorum, byz, behaviour, 11));
        // No validator validates the same transaction twice.
        let mut seen = HashSet::new();
        for p in &out.proofs {
            assert!(
                seen.insert((p.validator, p.tx)),
                "validator {} twice on tx {}",
                p.validator,
                p.tx
            );
        }
        let mut by_tx: HashMap<u32, Vec<Verdict>> = HashMap::new();
        for p in &out.proofs {
            by_tx.entry(p.tx).or_default().push(p.verdict);
        }
        for d in &out.decisions {
            let votes = by_tx.get(&d.tx).cloned().unwrap_or_default();
            let valid = votes.iter().filter(|v| v.is_valid()).count();
            let invalid = votes.len() - valid;
            match d.outcome {
                Outcome::Accepted => assert!(
                    votes.len() >= quorum as usize && 2 * valid > votes.len(),
                    "q {quorum}: {votes:?}"
                ),
                Outcome::Rejected => assert!(
                    votes.len() >= quorum as usize && 2 * invalid > votes.len(),
                    "q {quorum}: {votes:?}"
                ),
                Outcome::Undecided => assert!(
                    votes.len() < quorum as usize
                        || 2 * valid.max(invalid) <= votes.len()
                        || d.validators_asked >= quorum + 4
                ),
            }
            assert!(
                d.validators_asked <= quorum + 4,
                "bound on validators asked"
            );
        }
        // The block holds exactly the accepted, and its header commits them.
        let accepted: HashSet<u32> = out
            .decisions
            .iter()
            .filter(|d| d.outcome == Outcome::Accepted)
            .map(|d| d.tx)
            .collect();
        assert_eq!(
            out.block
                .transactions
                .iter()
                .copied()
                .collect::<HashSet<_>>(),
            accepted
        );
        let contracts: Vec<_> = out
            .block
            .transactions
            .iter()
            .map(|&i| w.transactions[i as usize].clone())
            .collect();
        out.block.header.check_contracts(&contracts).unwrap();
    }
}

#[test]
fn without_byzantine_validators_every_decision_is_right() {
    let w = workload(1500, 21, 80_000);
    for quorum in [1, 3, 4] {
        let r = run_on(
            2,
            VariantConfig::Ipow(ipow_params(16, quorum, 0.0, Behaviour::Liar, 21)),
            &w,
            500,
        );
        accounting_adds_up(&r);
        assert_eq!(
            (r.wrong_accepts, r.wrong_rejects, r.undecided),
            (0, 0, 0),
            "q {quorum}"
        );
        assert_eq!(r.rejected, r.planted_invalid);
        assert!(r.planted_invalid > 0);
        // A second copy of a replayed contract is refused at admission, never validated.
        let refused = r.records.iter().filter(|x| x.validators_asked == 0).count() as u64;
        assert!(refused < 10, "{refused}");
        assert_eq!(r.work.validations, (1500 - refused) * u64::from(quorum));
    }
}

#[test]
fn liars_wrong_accept_at_the_binomial_tail() {
    // 1000 validators make draws nearly independent; q = 3, f = 0.2: tail = 0.104.
    let (q, f) = (3, 0.2);
    let tail = dishonest_majority_probability(q, f);
    assert!((tail - 0.104).abs() < 1e-12);
    let (mut wrong_accepts, mut invalid, mut wrong_rejects, mut valid) = (0u64, 0u64, 0u64, 0u64);
    for seed in 0..3 {
        let w = workload(2000, 100 + seed, 500_000);
        let r = run_on(
            2,
            VariantConfig::Ipow(ipow_params(1000, q, f, Behaviour::Liar, 200 + seed)),
            &w,
            1000,
        );
        accounting_adds_up(&r);
        assert_eq!(r.undecided, 0, "odd quorum, no crashes: always a majority");
        wrong_accepts += r.wrong_accepts;
        invalid += r.planted_invalid;
        wrong_rejects += r.wrong_rejects;
        valid += r.submitted - r.planted_invalid;
    }
    for (measured, n) in [(wrong_accepts, invalid), (wrong_rejects, valid)] {
        let expected = tail * n as f64;
        let sigma = (n as f64 * tail * (1.0 - tail)).sqrt();
        assert!(
            (measured as f64 - expected).abs() < 4.0 * sigma,
            "measured {measured} of {n}, expected {expected:.1} +- {sigma:.1}"
        );
    }
}

#[test]
fn the_protocol_model_matches_hand_counts_and_small_committees() {
    use ipow::consensus::model::protocol_wrong_probability;
    // 12 validators, 4 liars, q = 4, one more asked after a 2-2 tie (bound 5):
    // P(3 or 4 liars of 4) = 33/495; P(2-2) = 168/495, then the 5th is a liar with 2/8.
    let by_hand = 33.0 / 495.0 + 168.0 / 495.0 * 2.0 / 8.0;
    assert!((protocol_wrong_probability(12, 4, 4, 5) - by_hand).abs() < 1e-12);
    // Many validators, odd q: the binomial tail.
    assert!((protocol_wrong_probability(1_000_000, 200_000, 3, 3) - 0.104).abs() < 1e-4);
    // And a run agrees with it where the binomial tail does not.
    let w = workload(3000, 81, 0);
    let r = run_on(
        2,
        VariantConfig::Ipow(IpowParams {
            extra_max: 1,
            ..ipow_params(12, 4, 1.0 / 3.0, Behaviour::Liar, 82)
        }),
        &w,
        3000,
    );
    accounting_adds_up(&r);
    let n = r.submitted as f64;
    let p = r.expected.protocol_probability;
    let sigma = (n * p * (1.0 - p)).sqrt();
    assert!(
        (r.wrong_rejects as f64 - n * p).abs() < 4.0 * sigma,
        "{} vs {:.1} +- {sigma:.1}",
        r.wrong_rejects,
        n * p
    );
    // Ties add wrong decisions the binomial tail does not count (0.111 against 0.152 here).
    assert!(
        p - r.expected.dishonest_majority_probability > 0.03,
        "the binomial tail is a different model here"
    );
}

#[test]
fn colluders_and_lazy_validators_only_wrong_accept_and_near_the_tail() {
    for behaviour in [Behaviour::Colluder, Behaviour::Lazy] {
        let w = workload(2000, 7, 500_000);
        let r = run_on(
            2,
            VariantConfig::Ipow(ipow_params(500, 3, 0.3, behaviour, 8)),
            &w,
            2000,
        );
        accounting_adds_up(&r);
        assert_eq!(
            r.wrong_rejects, 0,
            "{behaviour:?} never rejects a valid transaction"
        );
        let n = r.planted_invalid as f64;
        let tail = r.expected.dishonest_majority_probability;
        let sigma = (n * tail * (1.0 - tail)).sqrt();
        assert!(
            (r.wrong_accepts as f64 - r.expected.wrong_accepts).abs() < 4.0 * sigma,
            "{behaviour:?}: {} vs {:.1}",
            r.wrong_accepts,
            r.expected.wrong_accepts
        );
    }
}

#[test]
fn crashed_validators_work_is_reassigned_and_nothing_is_lost() {
    let w = workload(1200, 31, 50_000);
    let r = run_on(
        2,
        VariantConfig::Ipow(ipow_params(20, 3, 0.25, Behaviour::Crash, 32)),
        &w,
        400,
    );
    accounting_adds_up(&r);
    assert!(r.work.timeouts > 0, "crashed validators were asked");
    assert_eq!((r.undecided, r.wrong_accepts, r.wrong_rejects), (0, 0, 0));
    assert_eq!(r.rejected, r.planted_invalid);
}

#[test]
fn undecided_transactions_are_carried_and_counted() {
    // 4 validators, quorum 4, half of them liars: every transaction splits 2-2, no fresh
    // validator is left, so everything ends undecided, and the run stops instead of spinning.
    let w = workload(50, 41, 0);
    let r = run_on(
        1,
        VariantConfig::Ipow(IpowParams {
            extra_max: 0,
            ..ipow_params(4, 4, 0.5, Behaviour::Liar, 42)
        }),
        &w,
        50,
    );
    accounting_adds_up(&r);
    assert_eq!(r.undecided, 50);
    assert!(r.blocks.iter().all(|b| b.transactions == 0));
}

#[test]
fn same_seed_same_decisions_and_roots_on_1_2_and_7_threads() {
    let w = workload(900, 51, 100_000);
    for variant in [
        VariantConfig::Ipow(ipow_params(24, 3, 0.2, Behaviour::Liar, 52)),
        VariantConfig::Ipow(ipow_params(24, 4, 0.25, Behaviour::Crash, 53)),
        VariantConfig::Pow(PowParams::new(10).unwrap()),
    ] {
        let runs: Vec<RunReport> = [1, 2, 7]
            .iter()
            .map(|&t| run_on(t, variant.clone(), &w, 300))
            .collect();
        for r in &runs[1..] {
            let key = |r: &RunReport| {
                r.records
                    .iter()
                    .map(|x| (x.outcome, x.verdict, x.validators_asked))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(r), key(&runs[0]), "{variant:?}");
            let roots = |r: &RunReport| {
                r.blocks
                    .iter()
                    .map(|b| {
                        (
                            b.merkle_root.clone(),
                            b.consensus_root.clone(),
                            b.hash.clone(),
                            b.nonce,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(roots(r), roots(&runs[0]), "{variant:?}");
        }
    }
}

#[test]
fn closed_loop_commits_once_per_block() {
    let w = workload(400, 1, 50_000);
    let r = run_on(
        2,
        VariantConfig::Ipow(ipow_params(8, 3, 0.0, Behaviour::Liar, 1)),
        &w,
        100,
    );
    let mut commits: Vec<u64> = r.records.iter().filter_map(|x| x.committed_ns).collect();
    commits.sort_unstable();
    commits.dedup();
    assert_eq!(commits.len(), r.blocks.len());
    assert!(r.latency_commit.p50_us <= r.latency_commit.max_us);
}

#[test]
fn pow_blocks_verify_and_any_change_breaks_them() {
    let w = workload(300, 61, 100_000);
    let r = run_on(2, VariantConfig::Pow(PowParams::new(12).unwrap()), &w, 300);
    accounting_adds_up(&r);
    assert_eq!((r.wrong_accepts, r.wrong_rejects), (0, 0));
    assert!(r.work.hashes > 0);
    // Rebuild the header the miner sealed and check it, then tamper with each field.
    let contracts: Vec<_> = w
        .transactions
        .iter()
        .zip(&w.truth)
        .filter(|(_, t)| **t == Truth::Valid)
        .map(|(c, _)| c.clone())
        .collect();
    let mut header = ipow::contract::block::BlockHeader::seal(0, 0, [0; 32], &contracts);
    header.kind = SealKind::Pow;
    header.difficulty_bits = 12;
    header.nonce = r.blocks[0].nonce;
    assert_eq!(hex::encode(header.hash()), r.blocks[0].hash);
    verify_pow(&header).unwrap();
    assert!(leading_zero_bits(&header.hash()) >= 12);
    // The nonce is the smallest that works.
    let again = pool(3).install(|| mine(&header.encode(), 12));
    assert_eq!(again.nonce, header.nonce);
    for n in 0..header.nonce {
        assert!(verify_pow(&ipow::contract::block::BlockHeader { nonce: n, ..header }).is_err());
    }
    for bad in [
        ipow::contract::block::BlockHeader {
            nonce: header.nonce + 1,
            ..header
        },
        ipow::contract::block::BlockHeader {
            height: 1,
            ..header
        },
        ipow::contract::block::BlockHeader {
            period: 1,
            ..header
        },
        ipow::contract::block::BlockHeader {
            prev_hash: [1; 32],
            ..header
        },
        ipow::contract::block::BlockHeader {
            merkle_root: [1; 32],
            ..header
        },
        ipow::contract::block::BlockHeader {
            leaf_count: header.leaf_count + 1,
            ..header
        },
        ipow::contract::block::BlockHeader {
            consensus_root: [1; 32],
            ..header
        },
    ] {
        assert!(verify_pow(&bad).is_err(), "{bad:?}");
    }
    // A tampered contract no longer matches the header's root.
    let mut tampered = contracts.clone();
    tampered[0].contract.energy =
        ipow::base::amount::Energy::from_raw(tampered[0].contract.energy.raw() + 1);
    assert!(header.check_contracts(&tampered).is_err());
    // An IPOW header is not a PoW header.
    assert!(
        verify_pow(&ipow::contract::block::BlockHeader {
            kind: SealKind::Ipow,
            ..header
        })
        .is_err()
    );
}

#[test]
fn open_loop_measures_from_the_intended_send_time() {
    let w = workload(300, 71, 50_000);
    let r = pool(2).install(|| {
        run(
            &RunConfig {
                variant: VariantConfig::Ipow(ipow_params(8, 1, 0.0, Behaviour::Liar, 72)),
                period_txs: 1000,
                load: ipow::pipeline::Load::OpenLoop { rate: 2000.0 },
            },
            &w,
        )
    });
    accounting_adds_up(&r);
    // 300 transactions at 2000/s arrive over 150 ms; the run cannot end before the last arrives.
    assert!(r.wall_seconds >= 0.149, "{}", r.wall_seconds);
    for x in &r.records {
        assert_eq!(
            x.submitted_ns,
            (x.tx as u64) * 500_000,
            "intended time of tx {}",
            x.tx
        );
        if let Some(c) = x.committed_ns {
            assert!(c >= x.submitted_ns);
        }
    }
}

#[test]
fn each_validator_earns_its_workload_as_priority() {
    let w = workload(600, 91, 50_000);
    let r = run_on(
        2,
        VariantConfig::Ipow(ipow_params(10, 3, 0.2, Behaviour::Lazy, 92)),
        &w,
        600,
    );
    let validators = r.variant_report["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 10);
    let mut total = 0;
    for v in validators {
        let work = v["validations"].as_u64().unwrap();
        // One period: the priority earned for the next one is this period's workload.
        assert_eq!(v["priority_earned_last_period"].as_u64().unwrap(), work);
        if v["behaviour"] == "lazy" {
            assert_eq!(
                work, 0,
                "a lazy validator does no work and earns no priority"
            );
        }
        total += work;
    }
    assert_eq!(total, r.work.validations);
    assert!(validators.iter().any(|v| v["behaviour"] == "lazy"));
}

#[test]
fn a_contract_submitted_twice_is_committed_once() {
    // Regression: the replay check compares sequence numbers with the watermark of contracts
    // committed before the run, so a copy submitted during the run passed validation and was
    // committed twice. The supervision node now refuses an id it has already seen.
    let mut w = workload(200, 95, 0);
    let copy = w.transactions[10].clone();
    w.transactions.push(copy.clone());
    w.truth.push(ipow::market::rules::Truth::Invalid(
        ipow::market::rules::PlantedReason::ReplayedContract,
    ));
    w.transactions.push(copy);
    w.truth.push(ipow::market::rules::Truth::Invalid(
        ipow::market::rules::PlantedReason::ReplayedContract,
    ));
    for variant in [
        VariantConfig::Ipow(ipow_params(8, 3, 0.0, Behaviour::Liar, 96)),
        VariantConfig::Pow(PowParams::new(4).unwrap()),
    ] {
        let r = run_on(2, variant, &w, 50);
        accounting_adds_up(&r);
        assert_eq!(r.accepted, 200, "the original once");
        assert_eq!(r.rejected, 2, "both copies refused");
        assert_eq!((r.wrong_accepts, r.wrong_rejects), (0, 0));
        let ids: HashSet<_> = r
            .records
            .iter()
            .filter(|x| x.outcome == Outcome::Accepted)
            .map(|x| w.transactions[x.tx as usize].id())
            .collect();
        assert_eq!(ids.len(), 200);
    }
}

#[test]
fn signature_batches_and_threads_change_no_decision_verdict_or_root() {
    use ipow::contract::Signer;
    use ipow::market::rules::PlantedReason;
    use ipow::validate::Reason;
    let w = workload(600, 71, 100_000);
    let variants = |b: usize| {
        [
            VariantConfig::Ipow(
                ipow_params(16, 3, 0.0, Behaviour::Liar, 72).with_signature_batch(b),
            ),
            VariantConfig::Pow(PowParams::new(6).unwrap().with_signature_batch(b).unwrap()),
        ]
    };
    let key = |r: &RunReport| {
        let records: Vec<_> = r
            .records
            .iter()
            .map(|x| (x.outcome, x.verdict, x.validators_asked))
            .collect();
        let roots: Vec<_> = r
            .blocks
            .iter()
            .map(|b| {
                (
                    b.merkle_root.clone(),
                    b.consensus_root.clone(),
                    b.hash.clone(),
                )
            })
            .collect();
        (records, roots)
    };
    for (v, _) in variants(1).iter().enumerate() {
        let mut first: Option<RunReport> = None;
        for b in [1usize, 4, 32, 1024] {
            for threads in [1, 2, 7] {
                let r = run_on(threads, variants(b)[v].clone(), &w, 200);
                assert!(r.work.signatures.batches > 0);
                match &first {
                    None => first = Some(r),
                    Some(f) => assert_eq!(key(&r), key(f), "variant {v}, B {b}, {threads} threads"),
                }
            }
        }
        // Tampered amounts fail the seller's signature, forged ones the purchaser's, as before.
        let f = first.unwrap();
        let mut seen = [0; 2];
        for x in &f.records {
            let want = match x.truth {
                Truth::Invalid(PlantedReason::TamperedAmount) => Reason::Signature(Signer::Seller),
                Truth::Invalid(PlantedReason::ForgedSignature) => {
                    Reason::Signature(Signer::Purchaser)
                }
                _ => continue,
            };
            seen[usize::from(want == Reason::Signature(Signer::Purchaser))] += 1;
            assert_eq!(x.verdict, Some(Verdict::Invalid(want)), "{x:?}");
        }
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }
}

#[test]
fn a_batch_size_outside_its_range_is_refused() {
    assert!(PowParams::new(4).unwrap().with_signature_batch(0).is_err());
    let p = ipow_params(8, 3, 0.0, Behaviour::Liar, 1);
    assert!(p.clone().with_signature_batch(0).check().is_err());
    assert!(p.clone().with_signature_batch(1 << 17).check().is_err());
    assert!(p.with_signature_batch(1 << 16).check().is_ok());
}
