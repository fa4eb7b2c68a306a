use ipow::consensus::model::protocol_wrong_probability;
use ipow::lab::simulate::{Damage, Draw, first_period, run_seed, run_seeds, work_dir};

/// The CI run of the simulator: 200 seeds, every invariant, and the totals that show the seeds
/// did what they drew (faults of every kind, the safety bound met, the tail near the model).
#[test]
fn two_hundred_seeds_keep_every_invariant() {
    let work = work_dir().join("ci");
    let s = run_seeds(0, 200, &work, &mut |_| {});
    let _ = std::fs::remove_dir_all(&work);
    assert!(s.failures.is_empty(), "{}", s.failures.join("\n"));
    assert_eq!(s.passed, 200);
    assert!(s.seeds_within_bound >= 50, "{}", s.seeds_within_bound);
    assert_eq!(s.wrong_within_bound, 0);
    // Above the bound wrong decisions happen, about as often as the model says.
    let t = &s.tail_above_bound;
    assert!(t.wrong > 100, "{t:?}");
    assert!(s.tail_z.abs() < 5.0, "{t:?} z {}", s.tail_z);
    for kind in [
        "validators_liar",
        "validators_colluder",
        "validators_lazy",
        "validators_crashed",
        "validators_slow",
        "answers_late_or_missing",
        "contracts_planted_invalid",
        "contracts_failed_for_funds",
        "contracts_curtailed",
        "store_torn_tail",
        "store_flipped_bit",
        "store_zeroed_region",
        "store_overwritten_record",
        "store_cut_committed",
    ] {
        assert!(
            s.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {:?}",
            s.faults
        );
    }
}

/// A seed replays: the same draw and the same digest, so a failure's seed reproduces it.
#[test]
fn a_seed_replays_to_the_same_result() {
    let work = work_dir().join("replay");
    let a = run_seed(7, &work).unwrap();
    let b = run_seed(7, &work).unwrap();
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.draw.validators, Draw::of(7).validators);
    assert!(a.periods >= 2, "{}", a.periods);
}

/// The model without silent validators is the protocol model the run reports already use;
/// silent validators only lower the chance of deciding.
#[test]
fn the_first_period_model_agrees_with_the_protocol_model() {
    for (n, bad, q, bound) in [(20, 8, 5, 9), (16, 3, 3, 7), (40, 25, 7, 11), (9, 9, 3, 5)] {
        let (wrong, decided) = first_period(n, bad, 0, 0, 0.0, q, bound);
        let reference = protocol_wrong_probability(n, bad, q, bound);
        assert!(
            (wrong - reference).abs() < 1e-12,
            "{n} {bad} {q}: {wrong} vs {reference}"
        );
        assert!(decided <= 1.0 + 1e-12 && decided > 0.0);
        let (_, fewer) = first_period(n, bad.min(n - 4), 4, 0, 0.0, q, bound);
        let (_, all) = first_period(n, bad.min(n - 4), 0, 0, 0.0, q, bound);
        assert!(fewer <= all + 1e-12);
    }
    // A slow validator that is always late is a crashed one.
    let a = first_period(20, 5, 0, 4, 1.0, 5, 9);
    let b = first_period(20, 5, 4, 0, 0.0, 5, 9);
    assert!((a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12);
}

/// The safety check is not vacuous: every seed that went above the bound with enough liars
/// made wrong decisions, and the draws cover every kind of damage.
#[test]
fn draws_cover_the_space_and_the_bound_is_tight() {
    let draws: Vec<Draw> = (0..200).map(Draw::of).collect();
    for kind in Damage::ALL {
        assert!(draws.iter().any(|d| d.damage == kind), "{kind:?}");
    }
    assert!(draws.iter().any(|d| d.grid.is_none()) && draws.iter().any(|d| d.grid.is_some()));
    assert!(draws.iter().any(|d| d.threads == 1) && draws.iter().any(|d| d.threads > 2));
    let over = draws
        .iter()
        .find(|d| d.liars > d.quorum / 2 && d.liars * 2 > d.validators && d.quorum > 1)
        .expect("a draw with a liar majority");
    let work = work_dir().join("over");
    let r = run_seed(over.seed, &work).unwrap();
    let _ = std::fs::remove_dir_all(&work);
    assert!(r.wrong_accepts + r.wrong_rejects > 0, "{r:?}");
}
