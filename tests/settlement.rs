use std::collections::BTreeMap;

use ipow::base::amount::{Energy, Money, Price};
use ipow::base::domain::{Address, BusinessCategory, DeliveryTime};
use ipow::base::rng::Rng;
use ipow::contract::{Contract, ContractId};
use ipow::ledger::{
    ContractSettlement, Ledger, LedgerError, Reading, SettlementParams, Transfer, TransferKind,
    contract_transfers,
};
use ipow::market::paper::PaperMarket;

fn f15() -> Contract {
    PaperMarket::embedded().unwrap().contracts[0]
        .signed
        .contract
}

fn e(s: &str) -> Energy {
    Energy::parse(s).unwrap()
}

fn amounts(t: &[Transfer]) -> Vec<(TransferKind, String)> {
    t.iter().map(|x| (x.kind, x.amount.to_string())).collect()
}

#[test]
fn each_rule_on_hand_computed_examples() {
    let c = f15();
    let p = SettlementParams::default();
    use TransferKind::*;
    // Full delivery: 17.09 x 10.98 = 187.6482 -> 187.65; 1.5 x 10.98 = 16.47, split 8.235 -> 8.24
    // (half to even) for the purchaser and the remaining 8.23 for the seller.
    let full = contract_transfers(&c, &Reading::full(&c), &p).unwrap();
    assert_eq!(
        amounts(&full),
        vec![
            (Purchase, "187.65".into()),
            (TransmissionPurchaserShare, "8.24".into()),
            (TransmissionSellerShare, "8.23".into())
        ]
    );
    assert_eq!(full[0].from, c.purchaser);
    assert_eq!(full[0].to, c.seller);
    assert!(full[1..].iter().all(|t| t.to == c.transmission));
    // Seller's full default: damages 15 x 10.98 = 164.70 to the purchaser, nothing else.
    let default = contract_transfers(
        &c,
        &Reading {
            delivered: Energy::ZERO,
            received: Energy::ZERO,
            carried: true,
        },
        &p,
    )
    .unwrap();
    assert_eq!(
        amounts(&default),
        vec![(SellerShortfallDamages, "164.70".into())]
    );
    assert_eq!((default[0].from, default[0].to), (c.seller, c.purchaser));
    // Seller short by 2.98: pays for 8.00 taken, transmission on 8.00, damages on 2.98.
    let short = contract_transfers(
        &c,
        &Reading {
            delivered: e("8"),
            received: e("8"),
            carried: true,
        },
        &p,
    )
    .unwrap();
    assert_eq!(
        amounts(&short),
        vec![
            (Purchase, "136.72".into()),
            (TransmissionPurchaserShare, "6.00".into()),
            (TransmissionSellerShare, "6.00".into()),
            (SellerShortfallDamages, "44.70".into())
        ]
    );
    // Purchaser takes 5.00 of 10.98: pays 85.45, transmission on all 10.98, damages 15 x 5.98 = 89.70.
    let took_less = contract_transfers(
        &c,
        &Reading {
            delivered: c.energy,
            received: e("5"),
            carried: true,
        },
        &p,
    )
    .unwrap();
    assert_eq!(
        amounts(&took_less),
        vec![
            (Purchase, "85.45".into()),
            (TransmissionPurchaserShare, "8.24".into()),
            (TransmissionSellerShare, "8.23".into()),
            (PurchaserShortfallDamages, "89.70".into())
        ]
    );
    assert_eq!(
        (took_less[3].from, took_less[3].to),
        (c.purchaser, c.seller)
    );
    // Transmission failure: the company pays the purchaser damages 164.70 and the seller 187.65.
    let lost = contract_transfers(
        &c,
        &Reading {
            delivered: c.energy,
            received: Energy::ZERO,
            carried: false,
        },
        &p,
    )
    .unwrap();
    assert_eq!(
        amounts(&lost),
        vec![
            (TransmissionFailureDamages, "164.70".into()),
            (TransmissionLossCompensation, "187.65".into())
        ]
    );
    assert!(lost.iter().all(|t| t.from == c.transmission));
    // Over-delivery is not this contract's business: billed at most what was contracted.
    let over = contract_transfers(
        &c,
        &Reading {
            delivered: e("20"),
            received: e("20"),
            carried: true,
        },
        &p,
    )
    .unwrap();
    assert_eq!(over, full);
    // The share is a market parameter: all on the purchaser, or all on the seller.
    let all_p = contract_transfers(
        &c,
        &Reading::full(&c),
        &SettlementParams {
            purchaser_share_bps: 10_000,
        },
    )
    .unwrap();
    assert_eq!(
        amounts(&all_p)[1],
        (TransmissionPurchaserShare, "16.47".into())
    );
    assert_eq!(all_p.len(), 2);
}

#[test]
fn splits_round_once_and_add_up() {
    let m = |r: i64| Money::from_raw(r);
    assert_eq!(
        m(1647).split_round_half_even(5000).unwrap(),
        (m(824), m(823))
    );
    assert_eq!(m(1).split_round_half_even(5000).unwrap(), (m(0), m(1)));
    assert_eq!(m(3).split_round_half_even(5000).unwrap(), (m(2), m(1)));
    assert_eq!(m(100).split_round_half_even(3333).unwrap(), (m(33), m(67)));
    assert!(m(1).split_round_half_even(10_001).is_err());
    let mut r = Rng::stream(3, &[]);
    for _ in 0..10_000 {
        let total = m(r.between(0, 1_000_000_000));
        let (a, b) = total.split_round_half_even(r.below(10_001) as u32).unwrap();
        assert_eq!(a.checked_add(b).unwrap(), total);
    }
}

/// A random contract among `accounts` addresses, a few of them hot.
fn random_contract(r: &mut Rng, accounts: u32, i: u64) -> Contract {
    let pick = |r: &mut Rng| {
        if r.below(4) == 0 {
            Address(r.below(3) as u32)
        } else {
            Address(r.below(u64::from(accounts)) as u32)
        }
    };
    let seller = pick(r);
    let purchaser = pick(r);
    let transmission = Address(accounts + r.below(2) as u32);
    Contract {
        category: BusinessCategory::CommonSupply,
        seller,
        purchaser,
        transmission,
        price: Price::from_raw(r.between(0, 300_000)),
        energy: Energy::from_raw(r.between(0, 50_000)),
        transmission_rate: Price::from_raw(r.between(0, 30_000)),
        damages_rate: Price::from_raw(r.between(0, 200_000)),
        delivery_time: DeliveryTime(1080),
        seller_seq: i,
        purchaser_seq: i,
        transmission_seq: i,
        aux: None,
    }
}

fn random_reading(r: &mut Rng, c: &Contract) -> Reading {
    let part = |r: &mut Rng| {
        Energy::from_raw(match r.below(3) {
            0 => c.energy.raw(),
            1 => r.between(0, c.energy.raw()),
            _ => r.between(0, 60_000),
        })
    };
    Reading {
        delivered: part(r),
        received: part(r),
        carried: r.below(6) != 0,
    }
}

/// The sequential model: a BTreeMap ledger, the same overdraft policy written plainly.
fn model(
    opening: &BTreeMap<usize, i64>,
    period: &[Vec<(usize, usize, i64)>],
) -> (BTreeMap<usize, i64>, Vec<usize>) {
    let mut net: BTreeMap<usize, i128> = opening.keys().map(|&a| (a, 0)).collect();
    let effect = |net: &mut BTreeMap<usize, i128>, t: &[(usize, usize, i64)], sign: i128| {
        for &(f, to, amt) in t {
            *net.get_mut(&f).unwrap() -= sign * i128::from(amt);
            *net.get_mut(&to).unwrap() += sign * i128::from(amt);
        }
    };
    for t in period {
        effect(&mut net, t, 1);
    }
    let mut failed = vec![false; period.len()];
    loop {
        let short: Vec<usize> = net
            .iter()
            .filter(|(a, n)| i128::from(opening[a]) + **n < 0)
            .map(|(a, _)| *a)
            .collect();
        let mut progressed = false;
        for a in short {
            for k in (0..period.len()).rev() {
                if i128::from(opening[&a]) + net[&a] >= 0 {
                    break;
                }
                if !failed[k] && period[k].iter().any(|t| t.0 == a) {
                    failed[k] = true;
                    progressed = true;
                    effect(&mut net, &period[k], -1);
                }
            }
        }
        if !progressed {
            break;
        }
    }
    let balances = opening
        .iter()
        .map(|(&a, &b)| (a, (i128::from(b) + net[&a]) as i64))
        .collect();
    (balances, (0..period.len()).filter(|&k| failed[k]).collect())
}

#[test]
fn the_parallel_ledger_equals_a_sequential_model_on_1_2_and_7_threads() {
    let (mut failed_total, mut settled_total) = (0usize, 0usize);
    for case in 0..30u64 {
        let mut r = Rng::stream(77, &[case]);
        let accounts = 3 + r.below(40) as u32;
        let addresses: Vec<Address> = (0..accounts + 2).map(Address).collect();
        // Small opening balances so that overdrafts happen.
        let opening: Vec<(Address, Money)> = addresses
            .iter()
            .map(|&a| (a, Money::from_raw(r.between(0, 400_000))))
            .collect();
        let params = SettlementParams {
            purchaser_share_bps: r.below(10_001) as u32,
        };
        let mut ledgers: Vec<(usize, Ledger)> = [1, 2, 7]
            .iter()
            .map(|&t| (t, Ledger::new(&opening)))
            .collect();
        let mut model_balances: BTreeMap<usize, i64> = opening
            .iter()
            .enumerate()
            .map(|(i, (_, m))| (i, m.raw()))
            .collect();
        let total = ledgers[0].1.total();
        for period in 0..4u64 {
            let n = r.below(300) as usize;
            let contracts: Vec<ContractSettlement> = (0..n)
                .map(|i| {
                    let c = random_contract(&mut r, accounts, period * 1000 + i as u64);
                    let reading = random_reading(&mut r, &c);
                    ContractSettlement {
                        id: c.id(),
                        transfers: contract_transfers(&c, &reading, &params).unwrap(),
                    }
                })
                .collect();
            let indexed: Vec<Vec<(usize, usize, i64)>> = contracts
                .iter()
                .map(|c| {
                    c.transfers
                        .iter()
                        .map(|t| (t.from.0 as usize, t.to.0 as usize, t.amount.raw()))
                        .collect()
                })
                .collect();
            let (expected, expected_failed) = model(&model_balances, &indexed);
            model_balances = expected.clone();
            failed_total += expected_failed.len();
            settled_total += n - expected_failed.len();
            for (threads, ledger) in &mut ledgers {
                let result = rayon::ThreadPoolBuilder::new()
                    .num_threads(*threads)
                    .build()
                    .unwrap()
                    .install(|| ledger.settle_period(period, &contracts))
                    .unwrap();
                assert_eq!(
                    result.failed, expected_failed,
                    "case {case} period {period} threads {threads}"
                );
                for (i, a) in addresses.iter().enumerate() {
                    assert_eq!(
                        ledger.balance(*a).unwrap().raw(),
                        expected[&i],
                        "case {case} period {period} threads {threads} account {i}"
                    );
                }
                assert_eq!(
                    ledger.total(),
                    total,
                    "money is conserved after every period"
                );
                assert!(
                    ledger.accounts().all(|(_, b)| b >= Money::ZERO),
                    "no overdraft"
                );
            }
        }
    }
    // The overdraft policy was exercised, and most contracts still settled.
    assert!(
        failed_total > 50 && settled_total > failed_total,
        "{failed_total} failed, {settled_total} settled"
    );
}

#[test]
fn opposite_transfers_in_flight_together_settle_without_deadlock() {
    let (a, b, t) = (Address(1), Address(2), Address(3));
    let mut ledger = Ledger::new(&[
        (a, Money::from_raw(1_000_000)),
        (b, Money::from_raw(1_000_000)),
        (t, Money::ZERO),
    ]);
    let contracts: Vec<ContractSettlement> = (0..20_000u64)
        .map(|i| {
            let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
            ContractSettlement {
                id: ContractId(*blake(i)),
                transfers: vec![Transfer {
                    from,
                    to,
                    amount: Money::from_raw(7),
                    kind: TransferKind::Purchase,
                }],
            }
        })
        .collect();
    let before = ledger.total();
    let result = rayon::ThreadPoolBuilder::new()
        .num_threads(7)
        .build()
        .unwrap()
        .install(|| ledger.settle_period(0, &contracts))
        .unwrap();
    assert!(result.failed.is_empty());
    assert_eq!(ledger.total(), before);
    assert_eq!(ledger.balance(a).unwrap().raw(), 1_000_000);
}

fn blake(i: u64) -> Box<[u8; 32]> {
    use sha2::Digest;
    Box::new(sha2::Sha256::digest(i.to_le_bytes()).into())
}

#[test]
fn overflow_and_overdraft_give_typed_results_and_leave_state_unchanged() {
    let (a, b) = (Address(1), Address(2));
    let mut ledger = Ledger::new(&[
        (a, Money::from_raw(i64::MAX - 5)),
        (b, Money::from_raw(100)),
    ]);
    let pay = |i: u64, from, to, amount| ContractSettlement {
        id: ContractId(*blake(i)),
        transfers: vec![Transfer {
            from,
            to,
            amount: Money::from_raw(amount),
            kind: TransferKind::Purchase,
        }],
    };
    let snapshot: Vec<_> = ledger.accounts().collect();
    assert!(
        matches!(ledger.settle_period(0, &[pay(1, b, a, 10)]), Err(LedgerError::Overflow { period: 0, address }) if address == a)
    );
    assert_eq!(ledger.accounts().collect::<Vec<_>>(), snapshot);
    // b has 100: the contract asking 150 fails, the one asking 60 (earlier in order) stands.
    let result = ledger.settle_period(1, &[pay(2, b, a, 5), pay(3, b, a, 150)]);
    assert!(matches!(
        ledger.settle_period(9, &[pay(9, Address(99), a, 1)]),
        Err(LedgerError::UnknownAccount { .. })
    ));
    let result = result.unwrap_or_else(|e| panic!("{e}"));
    // a is at i64::MAX - 5: receiving 5 fits, but the 150 would overflow it; the policy fails
    // the 150 for b's lack of funds first, and what remains fits.
    assert_eq!(result.failed, vec![1]);
    assert_eq!(ledger.balance(b).unwrap().raw(), 95);
    assert_eq!(ledger.balance(a).unwrap().raw(), i64::MAX);
    // Settled at most once.
    assert_eq!(
        ledger.settle_period(2, &[pay(2, b, a, 5)]).unwrap_err(),
        LedgerError::AlreadySettled(ContractId(*blake(2)))
    );
    assert!(matches!(
        ledger.settle_period(2, &[pay(7, a, b, 1), pay(7, a, b, 1)]),
        Err(LedgerError::AlreadySettled(_))
    ));
    // A failed contract was not settled, so it may be presented again.
    assert!(
        ledger
            .settle_period(3, &[pay(3, b, a, 150)])
            .unwrap()
            .failed
            == vec![0]
    );
}

#[test]
fn flat_batches_are_checked_and_errors_record_no_id() {
    use ipow::ledger::{IndexedTransfer, TransferBatch};
    let (a, b) = (Address(1), Address(2));
    let mut ledger = Ledger::new(&[
        (a, Money::from_raw(i64::MAX - 5)),
        (b, Money::from_raw(100)),
    ]);
    let id = ContractId(*blake(50));
    let batch = |to: u32, amount: i64| TransferBatch {
        ids: vec![id],
        offsets: vec![0, 1],
        transfers: vec![IndexedTransfer {
            from: 1,
            to,
            amount,
        }],
    };
    assert!(matches!(
        ledger.settle_batch(0, &batch(7, 1)),
        Err(LedgerError::UnknownAccountIndex { index: 7, .. })
    ));
    let mut bad = batch(0, 1);
    bad.offsets = vec![0];
    assert_eq!(
        ledger.settle_batch(0, &bad).unwrap_err(),
        LedgerError::MalformedBatch
    );
    // An overflow records nothing: the same id settles afterwards.
    assert!(matches!(
        ledger.settle_batch(0, &batch(0, 50)),
        Err(LedgerError::Overflow { .. })
    ));
    assert_eq!(
        ledger
            .settle_batch(1, &batch(0, 5))
            .unwrap()
            .applied()
            .collect::<Vec<_>>(),
        vec![0]
    );
    assert_eq!(ledger.balance(a).unwrap().raw(), i64::MAX);
    assert_eq!(
        ledger.settle_batch(2, &batch(0, 1)).unwrap_err(),
        LedgerError::AlreadySettled(id)
    );
    // The flat form and the per-contract form agree.
    let c = f15();
    let transfers =
        contract_transfers(&c, &Reading::full(&c), &SettlementParams::default()).unwrap();
    let accounts = [
        (c.seller, Money::from_raw(0)),
        (c.purchaser, Money::from_raw(100_000)),
        (c.transmission, Money::ZERO),
    ];
    let (mut l1, l2) = (Ledger::new(&accounts), Ledger::new(&accounts));
    let settlement = [ContractSettlement {
        id: c.id(),
        transfers,
    }];
    let flat = l2.index_batch(&settlement).unwrap();
    let mut l2 = l2;
    l1.settle_period(0, &settlement).unwrap();
    l2.settle_batch(0, &flat).unwrap();
    assert_eq!(
        l1.accounts().collect::<Vec<_>>(),
        l2.accounts().collect::<Vec<_>>()
    );
    assert_eq!(
        l1.balance(c.seller).unwrap().to_string(),
        "179.42",
        "187.65 received, 8.23 of transmission paid"
    );
}

#[test]
fn a_period_whose_flow_exceeds_i64_is_netted_exactly() {
    use ipow::ledger::{IndexedTransfer, TransferBatch};
    let big = i64::MAX - 10;
    let mut ledger = Ledger::new(&[
        (Address(1), Money::from_raw(big)),
        (Address(2), Money::from_raw(big)),
        (Address(3), Money::ZERO),
    ]);
    // A -> B and B -> A of nearly i64::MAX each: the flow is about 2^64, every net is zero.
    let batch = TransferBatch {
        ids: vec![ContractId(*blake(60)), ContractId(*blake(61))],
        offsets: vec![0, 1, 2],
        transfers: vec![
            IndexedTransfer {
                from: 0,
                to: 1,
                amount: big,
            },
            IndexedTransfer {
                from: 1,
                to: 0,
                amount: big,
            },
        ],
    };
    assert_eq!(
        ledger.settle_batch(0, &batch).unwrap().failed,
        Vec::<usize>::new()
    );
    assert_eq!(ledger.balance(Address(1)).unwrap().raw(), big);
    assert_eq!(ledger.balance(Address(2)).unwrap().raw(), big);
    // Two large payments into one account: its net leaves i64, refused as an overflow.
    let into_c = TransferBatch {
        ids: vec![ContractId(*blake(62)), ContractId(*blake(63))],
        offsets: vec![0, 1, 2],
        transfers: vec![
            IndexedTransfer {
                from: 0,
                to: 2,
                amount: big,
            },
            IndexedTransfer {
                from: 1,
                to: 2,
                amount: big,
            },
        ],
    };
    assert!(matches!(
        ledger.settle_batch(1, &into_c),
        Err(LedgerError::Overflow { .. })
    ));
    assert_eq!(
        ledger.balance(Address(3)).unwrap().raw(),
        0,
        "nothing applied"
    );
}

#[test]
fn settled_ids_stay_exact_when_their_table_keys_collide() {
    // The ledger keys its settled-id tables by bytes 8..16 of an id; ids that share those bytes
    // (a 2^-64 chance, or crafted) must still be told apart, on 1, 2 and 7 threads.
    for threads in [1, 2, 7] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (a, b) = (Address(1), Address(2));
            let mut ledger = Ledger::new(&[(a, Money::from_raw(1_000)), (b, Money::from_raw(0))]);
            // Same partition (bytes 0..2) and key (bytes 8..16), different elsewhere.
            let id = |tag: u8, twin: u8| {
                let mut x = [tag; 32];
                x[20] = twin;
                ContractId(x)
            };
            let pay = |id: ContractId, amount: i64| ContractSettlement {
                id,
                transfers: vec![Transfer {
                    from: a,
                    to: b,
                    amount: Money::from_raw(amount),
                    kind: TransferKind::Purchase,
                }],
            };
            let (p, q) = (id(1, 0), id(1, 1));
            let r = ledger.settle_period(0, &[pay(p, 1), pay(q, 1)]).unwrap();
            assert_eq!(r.applied().collect::<Vec<_>>(), vec![0, 1]);
            assert!(ledger.is_settled(&p) && ledger.is_settled(&q));
            for x in [p, q] {
                assert_eq!(
                    ledger.settle_period(1, &[pay(x, 1)]).unwrap_err(),
                    LedgerError::AlreadySettled(x)
                );
            }
            // The first of two twins fails for funds and is forgotten; the second stays settled.
            let (c, d) = (id(2, 0), id(2, 1));
            let r = ledger
                .settle_period(2, &[pay(d, 1), pay(c, 5_000)])
                .unwrap();
            assert_eq!(r.failed, vec![1]);
            assert!(!ledger.is_settled(&c) && ledger.is_settled(&d));
            assert_eq!(
                ledger.settle_period(3, &[pay(d, 1)]).unwrap_err(),
                LedgerError::AlreadySettled(d)
            );
            assert_eq!(
                ledger
                    .settle_period(3, &[pay(c, 1)])
                    .unwrap()
                    .applied()
                    .collect::<Vec<_>>(),
                vec![0]
            );
            // The same with the failing twin first: it held the table's key, the other twin is
            // found beside the table.
            let (g, h) = (id(4, 0), id(4, 1));
            let back = |id: ContractId| ContractSettlement {
                id,
                transfers: vec![Transfer {
                    from: b,
                    to: a,
                    amount: Money::from_raw(1),
                    kind: TransferKind::Purchase,
                }],
            };
            let r = ledger.settle_period(6, &[pay(g, 5_000), back(h)]).unwrap();
            assert_eq!(r.failed, vec![0]);
            assert!(!ledger.is_settled(&g) && ledger.is_settled(&h));
            assert_eq!(
                ledger.settle_period(7, &[pay(h, 1)]).unwrap_err(),
                LedgerError::AlreadySettled(h)
            );
            assert_eq!(
                ledger
                    .settle_period(7, &[pay(g, 1)])
                    .unwrap()
                    .applied()
                    .collect::<Vec<_>>(),
                vec![0]
            );
            // A period refused for a duplicate records none of its ids, twins included.
            let (e, f) = (id(3, 0), id(3, 1));
            assert_eq!(
                ledger
                    .settle_period(4, &[pay(e, 1), pay(f, 1), pay(p, 1)])
                    .unwrap_err(),
                LedgerError::AlreadySettled(p)
            );
            assert!(!ledger.is_settled(&e) && !ledger.is_settled(&f));
            assert_eq!(
                ledger
                    .settle_period(4, &[pay(f, 1)])
                    .unwrap()
                    .applied()
                    .collect::<Vec<_>>(),
                vec![0]
            );
            assert_eq!(
                ledger
                    .settle_period(5, &[pay(e, 1), pay(e, 1)])
                    .unwrap_err(),
                LedgerError::AlreadySettled(e)
            );
            assert_eq!(
                ledger
                    .settle_period(5, &[pay(e, 1)])
                    .unwrap()
                    .applied()
                    .collect::<Vec<_>>(),
                vec![0]
            );
            assert_eq!(ledger.total(), 1_000);
        });
    }
}
