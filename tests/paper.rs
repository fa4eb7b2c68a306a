use ipow::market::paper::{EMBEDDED_MARKET, PaperMarket};
use ipow::report::paper::PaperReport;

/// Table 3's rule recomputed independently: every figure of the paper has two decimals, so
/// rate(hundredths) x energy(hundredths) is exact in ten-thousandths; round half to even to cents.
fn cents(rate: &str, energy: &str) -> String {
    let hundredths = |s: &str| -> i128 {
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        let f = format!("{f:0<2}");
        i.parse::<i128>().unwrap() * 100 + f[..2].parse::<i128>().unwrap()
    };
    let exact = hundredths(rate) * hundredths(energy);
    let (q, r) = (exact / 100, exact % 100);
    let c = if r > 50 || (r == 50 && q % 2 == 1) {
        q + 1
    } else {
        q
    };
    format!("{}.{:02}", c / 100, c % 100)
}

#[test]
fn f15_reads_as_table_3() {
    let report = PaperReport::build(&PaperMarket::embedded().unwrap()).unwrap();
    let f15 = &report.contracts[0];
    assert_eq!(f15.name, "f15");
    assert_eq!(
        (
            f15.seller.as_str(),
            f15.purchaser.as_str(),
            f15.transmission.as_str()
        ),
        ("0x20", "0x25", "0x28")
    );
    assert_eq!(
        (f15.price.as_str(), f15.energy.as_str()),
        ("17.09", "10.98")
    );
    assert_eq!(f15.transmission_cost, "16.47");
    assert_eq!(f15.purchase_cost, "187.65");
    assert_eq!(f15.liquidated_damages, "164.70");
    assert_eq!(f15.time, "18:00");
}

#[test]
fn every_contract_of_f_follows_the_same_rules() {
    let report = PaperReport::build(&PaperMarket::embedded().unwrap()).unwrap();
    let raw: serde_json::Value = serde_json::from_str(EMBEDDED_MARKET).unwrap();
    let f = raw["matrix_f"].as_array().unwrap();
    let mut expected = Vec::new();
    for i in 0..4 {
        for j in 4..8 {
            let e = f[i][j].as_str().unwrap();
            if e != "0" {
                expected.push((
                    format!("f{}{}", i + 1, j + 1),
                    e.to_owned(),
                    raw["prices"][(i + 1).to_string()]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ));
            }
        }
    }
    assert_eq!(expected.len(), 9, "F has 9 non-zero entries");
    assert_eq!(report.contracts.len(), 9);
    for (row, (name, energy, price)) in report.contracts.iter().zip(&expected) {
        assert_eq!(&row.name, name);
        assert_eq!(row.energy, *energy);
        assert_eq!(row.purchase_cost, cents(price, energy), "{name}");
        assert_eq!(row.transmission_cost, cents("1.50", energy), "{name}");
        assert_eq!(row.liquidated_damages, cents("15.00", energy), "{name}");
        assert_eq!(row.time, "18:00");
        assert_eq!(row.transmission, "0x28");
        assert!(row.signatures_valid, "{name}");
    }
    let ids: std::collections::BTreeSet<_> = report.contracts.iter().map(|c| &c.id).collect();
    assert_eq!(ids.len(), 9, "ids are distinct");
}

#[test]
fn the_tamper_changes_leaf_zero_its_path_and_breaks_the_signatures() {
    let report = PaperReport::build(&PaperMarket::embedded().unwrap()).unwrap();
    let t = &report.tamper;
    assert_eq!(
        (
            t.contract.as_str(),
            t.energy_before.as_str(),
            t.energy_after.as_str()
        ),
        ("f15", "10.98", "12.71")
    );
    assert_eq!(t.changed_leaf_index, 0);
    assert_ne!(t.merkle_root_after, report.merkle_root);
    assert_eq!(t.merkle_root_before, report.merkle_root);
    assert_ne!(t.id_before, t.id_after);
    // 9 leaves: leaf 0, [0..2), [0..4), [0..8), root [0..9).
    let ranges: Vec<(usize, usize)> = t
        .changed_nodes
        .iter()
        .map(|n| (n.first_leaf, n.end_leaf))
        .collect();
    assert_eq!(ranges, vec![(0, 1), (0, 2), (0, 4), (0, 8), (0, 9)]);
    assert_eq!(t.changed_nodes.last().unwrap().after, t.merkle_root_after);
    assert!(!t.signatures_valid_after);
    assert!(report.all_signatures_valid);
    let text = report.render_text();
    assert!(text.contains("*leaf 0 f15"), "{text}");
    assert!(text.contains("no: tamper detected"));
}

#[test]
fn the_report_is_deterministic() {
    let a = serde_json::to_string(&PaperReport::build(&PaperMarket::embedded().unwrap()).unwrap())
        .unwrap();
    let b = serde_json::to_string(&PaperReport::build(&PaperMarket::embedded().unwrap()).unwrap())
        .unwrap();
    assert_eq!(a, b);
}

/// Runs the loader on the embedded market with one edit and returns the error text.
fn error_after(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(EMBEDDED_MARKET).unwrap();
    edit(&mut v);
    PaperMarket::from_json(&v.to_string(), "m.json")
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_market_files_name_file_record_and_field() {
    let check = |msg: String, parts: &[&str]| {
        for p in parts {
            assert!(msg.contains(p), "{msg:?} lacks {p:?}");
        }
    };
    check(
        error_after(|v| v["matrix_f"][4][0] = "-10.99".into()),
        &["m.json", "matrix_f[4][0]", "energy", "mirror"],
    );
    check(
        error_after(|v| v["matrix_f"][0][4] = "10.981".into()),
        &["m.json", "matrix_f[4][0]"],
    );
    check(
        error_after(|v| v["matrix_f"][0][0] = "1".into()),
        &["matrix_f[0][0]", "must be 0"],
    );
    check(
        error_after(|v| v["matrix_f"][0][4] = "10.9812".into()),
        &["matrix_f[0][4]", "decimal places"],
    );
    check(
        error_after(|v| v["matrix_f"][2] = serde_json::json!(["0"])),
        &["matrix_f[2]", "columns"],
    );
    check(
        error_after(|v| v["prices"]["2"] = "-23.71".into()),
        &["prices", "2", "sign"],
    );
    check(
        error_after(|v| {
            v["prices"].as_object_mut().unwrap().remove("3");
        }),
        &["prices", "3", "no price"],
    );
    check(
        error_after(|v| v["transmission_rate"] = "1.5x".into()),
        &["transmission_rate", "invalid character"],
    );
    check(
        error_after(|v| v["delivery_time"] = "25:00".into()),
        &["delivery_time"],
    );
    check(
        error_after(|v| v["participants"][1]["address"] = "0x20".into()),
        &["participants[1]", "address", "twice"],
    );
    check(
        error_after(|v| v["participants"][1]["address"] = "twenty".into()),
        &["participants[1]", "address"],
    );
    check(
        error_after(|v| v["participants"][0]["role"] = "purchaser".into()),
        &["participants[0]", "role"],
    );
    check(
        error_after(|v| v["format"] = "other/9".into()),
        &["document", "format"],
    );
    check(
        error_after(|v| v["extra"] = 1.into()),
        &["m.json", "unknown field"],
    );
    let truncated = PaperMarket::from_json(&EMBEDDED_MARKET[..200], "t.json")
        .unwrap_err()
        .to_string();
    assert!(
        truncated.starts_with("t.json: document: line"),
        "{truncated}"
    );
}

fn settle(file: &str) -> ipow::report::paper::SettlementReport {
    let market = PaperMarket::embedded().unwrap();
    let text = std::fs::read_to_string(format!(
        "{}/datasets/paper/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let lookup = |n: &str| market.contracts.iter().position(|c| c.name == n);
    let readings =
        ipow::market::readings::parse(&text, file, market.contracts.len(), &lookup, &|i| {
            market.contracts[i].signed.contract.energy
        })
        .unwrap();
    ipow::report::paper::SettlementReport::build(
        &market,
        &readings,
        &Default::default(),
        ipow::base::amount::Money::parse("10000").unwrap(),
    )
    .unwrap()
}

#[test]
fn full_delivery_settles_at_table_3_figures() {
    use ipow::ledger::TransferKind::*;
    let report = PaperReport::build(&PaperMarket::embedded().unwrap()).unwrap();
    let s = settle("readings-full-delivery.json");
    assert!(s.conserved);
    for (row, table3) in s.contracts.iter().zip(&report.contracts) {
        assert!(row.settled);
        let purchase: Vec<_> = row
            .transfers
            .iter()
            .filter(|t| t.kind == Purchase)
            .collect();
        assert_eq!(purchase.len(), 1);
        assert_eq!(
            purchase[0].amount.to_string(),
            table3.purchase_cost,
            "{}",
            row.name
        );
        let transmission = row
            .transfers
            .iter()
            .filter(|t| matches!(t.kind, TransmissionPurchaserShare | TransmissionSellerShare))
            .fold(ipow::base::amount::Money::ZERO, |acc, t| {
                acc.checked_add(t.amount).unwrap()
            });
        assert_eq!(
            transmission.to_string(),
            table3.transmission_cost,
            "{}",
            row.name
        );
        assert!(row.transfers.iter().all(|t| !t.kind.is_penalty()));
    }
    assert!(
        s.statements
            .iter()
            .all(|l| l.penalties_paid.raw() == 0 && l.penalties_received.raw() == 0)
    );
}

#[test]
fn declared_defaults_pay_the_documented_damages() {
    let s = settle("readings-defaults.json");
    assert!(s.conserved);
    let line = |name: &str| s.statements.iter().find(|l| l.role == name).unwrap();
    assert_eq!(line("seller 1").penalties_paid.to_string(), "164.70"); // f15: full default
    assert_eq!(line("purchaser 7").penalties_paid.to_string(), "84.75"); // f27: 5.65 not taken
    assert_eq!(
        line("transmission company").penalties_paid.to_string(),
        "54.75"
    ); // f38
    assert_eq!(line("seller 4").penalties_paid.to_string(), "56.40"); // f46: 3.76 short
    assert_eq!(line("purchaser 5").penalties_received.to_string(), "164.70");
    let paid: i64 = s.statements.iter().map(|l| l.penalties_paid.raw()).sum();
    let received: i64 = s
        .statements
        .iter()
        .map(|l| l.penalties_received.raw())
        .sum();
    assert_eq!(paid, received, "every penalty paid is received");
    assert_eq!(
        s.statements[0].role, "transmission company",
        "Table 4's order"
    );
}

#[test]
fn bad_readings_name_file_record_and_field() {
    let market = PaperMarket::embedded().unwrap();
    let full = std::fs::read_to_string(format!(
        "{}/datasets/paper/readings-full-delivery.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let lookup = |n: &str| market.contracts.iter().position(|c| c.name == n);
    let check = |text: String, parts: &[&str]| {
        let e =
            ipow::market::readings::parse(&text, "r.json", market.contracts.len(), &lookup, &|i| {
                market.contracts[i].signed.contract.energy
            })
            .unwrap_err()
            .to_string();
        for p in parts {
            assert!(e.contains(p), "{e:?} lacks {p:?}");
        }
    };
    check(
        full.replace("\"f48\"", "\"f49\""),
        &["r.json", "readings[8]", "contract", "unknown"],
    );
    check(
        full.replace("\"f48\"", "\"f15\""),
        &["readings[8]", "contract", "second reading"],
    );
    check(full.replacen("{ \"contract\": \"f16\", \"delivered\": \"10.54\", \"received\": \"10.54\", \"carried\": true },", "", 1), &["readings", "no reading"]);
    check(
        full.replace("\"5.33\",  \"received\"", "\"-5.33\",  \"received\""),
        &["readings[2]", "delivered", "sign"],
    );
    check(
        full.replace("\"8.48\",  \"carried\"", "\"8.4801\",  \"carried\""),
        &["readings[8]", "received", "decimal places"],
    );
    check(
        full.replace("true }\n  ]", "\"yes\" }\n  ]"),
        &["r.json", "document", "line"],
    );
    check(
        full.replace("ipow-readings/1", "other/1"),
        &["document", "format"],
    );
    check(String::new(), &["r.json", "document"]);
    // Far above the contract: refused, naming the record and field (10% over is the limit).
    check(
        full.replace(
            "\"delivered\": \"10.98\"",
            "\"delivered\": \"1000000000000000\"",
        ),
        &[
            "r.json",
            "readings[0]",
            "delivered",
            "10% above the contract's 10.980",
        ],
    );
    check(
        full.replace("\"received\": \"10.98\"", "\"received\": \"12.079\""),
        &["readings[0]", "received", "more than 10%"],
    );
    // At the limit (10.98 + 1.098 = 12.078) it settles, paying at most the contract.
    let at_limit = full.replace("\"delivered\": \"10.98\"", "\"delivered\": \"12.078\"");
    ipow::market::readings::parse(&at_limit, "r.json", market.contracts.len(), &lookup, &|i| {
        market.contracts[i].signed.contract.energy
    })
    .unwrap();
}

/// `ipow paper` says "reproduced" only for the paper's own market: another market (one price
/// changed) runs Section 4's procedure and says it reproduces nothing.
#[test]
fn only_the_papers_own_market_is_called_reproduced() {
    let own = PaperReport::build(&PaperMarket::embedded().unwrap()).unwrap();
    assert!(own.papers_market);
    assert!(
        own.render_text()
            .starts_with("ipow paper: Liu et al. (2020), Section 4, reproduced")
    );
    let mut v: serde_json::Value = serde_json::from_str(EMBEDDED_MARKET).unwrap();
    v["prices"]["1"] = "17.10".into();
    let other = PaperMarket::from_json(&v.to_string(), "other.json").unwrap();
    let report = PaperReport::build(&other).unwrap();
    assert!(!report.papers_market);
    let text = report.render_text();
    assert!(!text.contains("reproduced\n"), "{text}");
    assert!(text.contains("another market than the paper's"), "{text}");
}
