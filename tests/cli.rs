use std::process::Command;

use crate::util::{check_error, ipow};

#[test]
fn paper_json_has_the_documented_shape() {
    let out = ipow(&["paper", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let contracts = v["contracts"].as_array().unwrap();
    assert_eq!(contracts.len(), 9);
    for key in [
        "name",
        "id",
        "seller",
        "purchaser",
        "transmission",
        "price",
        "energy",
        "transmission_cost",
        "purchase_cost",
        "liquidated_damages",
        "time",
    ] {
        assert!(contracts.iter().all(|c| c[key].is_string()), "{key}");
    }
    let f15 = &contracts[0];
    assert_eq!(f15["name"], "f15");
    assert_eq!(f15["transmission_cost"], "16.47");
    assert_eq!(f15["purchase_cost"], "187.65");
    assert_eq!(f15["liquidated_damages"], "164.70");
    assert_eq!(f15["time"], "18:00");
    assert_eq!(v["merkle_root"].as_str().unwrap().len(), 64);
    let t = &v["tamper"];
    assert_eq!(t["contract"], "f15");
    assert_eq!(t["energy_before"], "10.98");
    assert_eq!(t["energy_after"], "12.71");
    assert_eq!(t["changed_leaf_index"], 0);
    assert_eq!(t["signatures_valid_after"], false);
    assert_eq!(t["changed_nodes"].as_array().unwrap().len(), 5);
    assert_ne!(t["merkle_root_after"], v["merkle_root"]);
}

#[test]
fn paper_text_is_the_paper_on_the_embedded_market() {
    let out = ipow(&["paper"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("purchase cost   187.65"), "{text}");
    assert!(text.contains("Merkle root"));
}

/// The main job (`cargo run --release` with no arguments) is the built-in comparison: it runs
/// from any directory with nothing on disk (scenario and grid are embedded), prints the table
/// and writes the whole report under target/ipow-report, saying where.
#[test]
fn the_default_job_is_the_embedded_comparison_and_writes_its_report() {
    let dir = std::env::temp_dir().join(format!("ipow-main-job-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let report = dir.join("target/ipow-report");
    assert!(
        text.contains(&format!(
            "report written to {}",
            report.canonicalize().unwrap().display()
        )),
        "{text}"
    );
    for case in [
        "ipow q=3 n=64 f=0.1 liar",
        "ipow q=5 n=64 f=0.1 liar",
        "pow d=18",
        "pow d=22",
    ] {
        assert_eq!(
            text.lines().filter(|l| l.starts_with(case)).count(),
            3 + 1,
            "{case}: 3 repetitions and a ratio row"
        );
    }
    for f in [
        "report.md",
        "report.html",
        "summary.json",
        "transactions.csv",
    ] {
        assert!(report.join(f).is_file(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_market_file_exits_non_zero_naming_file_record_and_field() {
    let dir = std::env::temp_dir().join(format!("ipow-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad-market.json");
    let text = ipow::market::paper::EMBEDDED_MARKET.replace("\"10.98\"", "\"10.98.1\"");
    std::fs::write(&path, text).unwrap();
    check_error(
        &["paper", "--market", path.to_str().unwrap()],
        &["bad-market.json", "matrix_f[0][4]", "energy"],
    );
    let absent = dir.join("absent.json");
    check_error(
        &["paper", "--market", absent.to_str().unwrap()],
        &["absent.json"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn settle_prints_statements_and_json_with_the_documented_shape() {
    let readings = format!(
        "{}/datasets/paper/readings-defaults.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = ipow(&["settle", "--readings", &readings, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["conserved"], true);
    let statements = v["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 9);
    for s in statements {
        for key in [
            "participant",
            "role",
            "balance_change",
            "penalties_paid",
            "penalties_received",
        ] {
            assert!(s[key].is_string(), "{key} in {s}");
        }
    }
    let text = ipow(&["settle", "--readings", &readings]);
    assert!(
        String::from_utf8(text.stdout)
            .unwrap()
            .contains("balance changes sum to zero: yes")
    );
}

#[test]
fn settle_refuses_bad_input_with_file_record_and_field() {
    let dir = std::env::temp_dir().join(format!("ipow-settle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let full = std::fs::read_to_string(format!(
        "{}/datasets/paper/readings-full-delivery.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let bad = dir.join("bad-readings.json");
    std::fs::write(&bad, full.replace("\"f27\"", "\"f99\"")).unwrap();
    check_error(
        &["settle", "--readings", bad.to_str().unwrap()],
        &["bad-readings.json", "readings[3]", "contract"],
    );
    let good = format!(
        "{}/datasets/paper/readings-full-delivery.json",
        env!("CARGO_MANIFEST_DIR")
    );
    for (flag, value) in [
        ("--share", "1.5"),
        ("--share", "half"),
        ("--opening-balance", "1.001"),
    ] {
        check_error(&["settle", "--readings", &good, flag, value], &[flag]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn grid_file(name: &str) -> String {
    format!("{}/datasets/grids/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn grid_info_and_flows_have_the_documented_shape() {
    let out = ipow(&[
        "grid",
        "info",
        "--grid",
        &grid_file("pglib_opf_case300_ieee.m"),
        "--json",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["buses"], 300);
    assert_eq!(v["branches"], 411);
    assert_eq!(v["slack_bus"], 7049);
    let dir = std::env::temp_dir().join(format!("ipow-grid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trades = dir.join("trades.json");
    std::fs::write(
        &trades,
        r#"{"comment": "two trades", "trades": [
            {"seller_bus": 2, "buyer_bus": 3, "mw": 300, "id": "a"},
            {"seller_bus": 1, "buyer_bus": 14, "mw": 80.5}]}"#,
    )
    .unwrap();
    let case14 = grid_file("pglib_opf_case14_ieee.m");
    let out = ipow(&[
        "grid",
        "flows",
        "--grid",
        &case14,
        "--trades",
        trades.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flows = v["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 20);
    for (k, f) in flows.iter().enumerate() {
        assert_eq!(f["branch_index"], k);
        for key in ["from_bus", "to_bus", "mw", "rate_a"] {
            assert!(f[key].is_number(), "{key}");
        }
    }
    let over = v["overloaded"].as_array().unwrap();
    assert!(!over.is_empty());
    for o in over {
        let mw = o["mw"].as_f64().unwrap();
        let rate = o["rate_a"].as_f64().unwrap();
        assert!(mw.abs() > rate);
        assert!((o["loading"].as_f64().unwrap() - mw.abs() / rate).abs() < 1e-12);
    }
    // Text form too.
    let out = ipow(&[
        "grid",
        "flows",
        "--grid",
        &case14,
        "--trades",
        trades.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("overloaded"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A store recorded on a grid gives back a slot's committed trades: their flows alone, and new
/// trades on top of them (DC flows add up); another grid or a store without one is refused.
#[test]
fn grid_flows_reads_a_slots_committed_base_from_a_store() {
    let dir = crate::util::scratch("grid-flows-store");
    let case14 = grid_file("pglib_opf_case14_ieee.m");
    let store = dir.join("store");
    let store_s = store.to_str().unwrap();
    let run = ipow(&[
        "run",
        "--grid",
        &case14,
        "--contracts",
        "1500",
        "--period-txs",
        "500",
        "--seed",
        "3",
        "--store",
        store_s,
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let flows = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "grid", "flows", "--grid", &case14, "--store", store_s, "--json",
        ];
        args.extend_from_slice(extra);
        crate::util::ipow_json(&args)
    };
    let mws = |v: &serde_json::Value, key: &str| -> Vec<f64> {
        let a = v[key].as_array().unwrap();
        a.iter()
            .map(|f| f["mw"].as_f64().or(f.as_f64()).unwrap())
            .collect()
    };
    let base = flows(&["--at", "18:30"]);
    assert!(base["base_trades"].as_u64().unwrap() > 5, "{base}");
    assert_eq!(mws(&base, "flows"), mws(&base, "base_flows"));
    assert!(mws(&base, "flows").iter().any(|f| f.abs() > 1.0));
    // Another hour's base is another set of trades.
    assert_ne!(
        mws(&flows(&["--at", "03:00"]), "flows"),
        mws(&base, "flows")
    );
    let trades = dir.join("trades.json");
    std::fs::write(
        &trades,
        r#"{"trades": [{"seller_bus": 2, "buyer_bus": 3, "mw": 40}]}"#,
    )
    .unwrap();
    let trades_s = trades.to_str().unwrap();
    let alone: serde_json::Value = crate::util::ipow_json(&[
        "grid", "flows", "--grid", &case14, "--trades", trades_s, "--json",
    ]);
    let both = flows(&["--at", "18:00", "--trades", trades_s]);
    for ((b, a), t) in mws(&base, "flows")
        .iter()
        .zip(mws(&alone, "flows"))
        .zip(mws(&both, "flows"))
    {
        assert!((b + a - t).abs() < 1e-6, "{b} + {a} != {t}");
    }
    let other = ipow(&[
        "grid",
        "flows",
        "--grid",
        &grid_file("pglib_opf_case30_ieee.m"),
        "--store",
        store_s,
        "--at",
        "18:00",
    ]);
    assert_eq!(other.status.code(), Some(1));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        err.contains("ledger.log") && err.contains("another grid"),
        "{err}"
    );
    let pow_store = dir.join("pow");
    let run = ipow(&[
        "run",
        "--contracts",
        "200",
        "--consensus",
        "pow",
        "--difficulty",
        "4",
        "--store",
        pow_store.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let none = ipow(&[
        "grid",
        "flows",
        "--grid",
        &case14,
        "--store",
        pow_store.to_str().unwrap(),
        "--at",
        "18:00",
    ]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("runs on no grid"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn grid_commands_refuse_bad_files_naming_the_place() {
    let dir = std::env::temp_dir().join(format!("ipow-grid-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(grid_file("pglib_opf_case14_ieee.m")).unwrap();
    let bad = dir.join("bad.m");
    std::fs::write(&bad, text.replacen("94.2", "9q.2", 1)).unwrap();
    let out = ipow(&["grid", "info", "--grid", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().position(|l| l.contains("94.2")).unwrap() + 1;
    assert!(err.contains(&format!("bad.m:{line}:")), "{err}");
    assert!(err.contains("\"9q.2\" is not a number"), "{err}");

    let trades = dir.join("trades.json");
    for (body, record, field) in [
        (
            r#"{"trades": [{"seller_bus": 1, "buyer_bus": 2, "mw": 5}, {"seller_bus": 1, "buyer_bus": 2}]}"#,
            "trades[1]",
            "mw",
        ),
        (
            r#"{"trades": [{"seller_bus": -1, "buyer_bus": 2, "mw": 5}]}"#,
            "trades[0]",
            "seller_bus",
        ),
        (
            r#"{"trades": [{"seller_bus": 1, "buyer_bus": 2, "mw": "5"}]}"#,
            "trades[0]",
            "mw",
        ),
        (r#"{"trade": []}"#, "document", "trades"),
    ] {
        std::fs::write(&trades, body).unwrap();
        let out = ipow(&[
            "grid",
            "flows",
            "--grid",
            &grid_file("pglib_opf_case14_ieee.m"),
            "--trades",
            trades.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{body}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("trades.json") && err.contains(record) && err.contains(field),
            "{body}: {err}"
        );
    }
    std::fs::write(
        &trades,
        r#"{"trades": [{"seller_bus": 1, "buyer_bus": 99, "mw": 5}]}"#,
    )
    .unwrap();
    let out = ipow(&[
        "grid",
        "flows",
        "--grid",
        &grid_file("pglib_opf_case14_ieee.m"),
        "--trades",
        trades.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("trades.json") && err.contains("trades[0]: buyer_bus: bus 99"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn committed_markets_regenerate_bit_for_bit_from_their_manifest() {
    use sha2::Digest as _;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/markets");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let out_dir = std::env::temp_dir().join(format!("ipow-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut checked = 0;
    for m in manifest["markets"].as_array().unwrap() {
        if !m["committed"].as_bool().unwrap() {
            continue;
        }
        let file = m["file"].as_str().unwrap();
        let committed = std::fs::read(root.join(file)).unwrap();
        let digest = hex::encode(sha2::Sha256::digest(&committed));
        assert_eq!(
            digest,
            m["sha256"].as_str().unwrap(),
            "{file} is not what the manifest says"
        );
        // Rerun the recorded command, writing beside the temp dir instead of over the file.
        let mut args: Vec<String> = m["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let out = args.iter().position(|a| a == "--out").unwrap() + 1;
        args[out] = out_dir.join(file).display().to_string();
        let run = Command::new(env!("CARGO_BIN_EXE_ipow"))
            .current_dir(&root)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            std::fs::read(out_dir.join(file)).unwrap(),
            committed,
            "{file}"
        );
        let verify = ipow(&[
            "dataset",
            "verify",
            "--json",
            "--dataset",
            &root.join(file).display().to_string(),
        ]);
        assert!(verify.status.success());
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn a_corrupt_dataset_exits_non_zero_naming_file_offset_and_field() {
    let dir = std::env::temp_dir().join(format!("ipow-ds-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/markets");
    let mut bytes = std::fs::read(root.join("case57-2k.ipowm")).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 4;
    let bad = dir.join("flipped.ipowm");
    std::fs::write(&bad, &bytes).unwrap();
    check_error(
        &["dataset", "verify", "--dataset", &bad.display().to_string()],
        &["flipped.ipowm: offset ", "chunk"],
    );
    // Converting it writes nothing under the output name.
    let target = dir.join("out.json");
    let out = ipow(&[
        "dataset",
        "convert",
        "--dataset",
        &bad.display().to_string(),
        "--out",
        &target.display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(!target.exists());
}

#[test]
fn a_scenario_runs_every_variant_interleaved_and_bad_ones_name_the_field() {
    let dir = std::env::temp_dir().join(format!("ipow-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let grids = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/grids");
    let markets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/markets");
    let text = serde_json::json!({
        "format": "ipow-scenario/1",
        "name": "tiny",
        "grid": grids.join("pglib_opf_case57_ieee.m"),
        "market": { "dataset": markets.join("case57-2k.ipowm") },
        "variants": [
            { "consensus": "ipow", "validators": 8, "quorum": 3 },
            { "consensus": "pow", "difficulty": 4 }
        ],
        "load": { "kind": "curve", "steps": [{ "from_s": 0, "rate": 20000 }, { "from_s": 0.05, "rate": 50000 }] },
        "period_txs": 300,
        "repetitions": 2
    })
    .to_string();
    let path = dir.join("tiny.json");
    std::fs::write(&path, &text).unwrap();
    let out = ipow(&["run", "--scenario", &path.display().to_string(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r["report"]["variant"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4);
    assert_eq!(names[0], names[2]);
    assert_eq!(names[1], names[3]);
    assert_ne!(names[0], names[1]);
    for r in runs {
        assert_eq!(r["report"]["submitted"], 2000);
        assert_eq!(r["report"]["config"]["load"]["kind"], "curve");
    }
    // Bad scenarios: the error names the file, the record and the field.
    for (edit, record, field) in [
        (
            text.replace("\"quorum\":3", "\"quorum\":99"),
            "variants[0]",
            "parameters",
        ),
        (
            text.replace("\"repetitions\":2", "\"repetitions\":0"),
            "document",
            "repetitions",
        ),
        (text.replace("\"rate\":50000", "\"rate\":0"), "load", "kind"),
        (
            text.replace("ipow-scenario/1", "ipow-scenario/9"),
            "document",
            "format",
        ),
        (
            text.replace("\"difficulty\":4", "\"difficulty\":99"),
            "variants[1]",
            "difficulty",
        ),
    ] {
        assert_ne!(
            edit, text,
            "{record} {field}: the edit must change the scenario"
        );
        std::fs::write(&path, &edit).unwrap();
        check_error(
            &["run", "--scenario", &path.display().to_string()],
            &[&format!("tiny.json: {record}: {field}")],
        );
    }
}

#[test]
fn settle_a_dataset_with_its_own_or_a_files_readings() {
    let root = env!("CARGO_MANIFEST_DIR");
    let market = format!("{root}/datasets/markets/case14-24.json");
    let json = |out: std::process::Output| -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The paper's market through --dataset is the paper's settlement.
    let readings = format!("{root}/datasets/paper/readings-defaults.json");
    let paper_market = format!("{root}/datasets/paper/market.json");
    assert_eq!(
        json(ipow(&["settle", "--readings", &readings, "--json"])),
        json(ipow(&[
            "settle",
            "--dataset",
            &paper_market,
            "--readings",
            &readings,
            "--json"
        ]))
    );

    let own = json(ipow(&["settle", "--dataset", &market, "--json"]));
    let d = ipow::market::dataset::read_any(std::path::Path::new(&market)).unwrap();
    assert_eq!(own["conserved"], true);
    assert_eq!(own["readings"], "dataset");
    assert_eq!(own["statements"].as_array().unwrap().len(), d.members.len());
    let excluded = own["excluded"].as_array().unwrap();
    assert_eq!(
        own["settled"].as_u64().unwrap() + excluded.len() as u64,
        d.workload.transactions.len() as u64
    );
    assert!(
        !excluded.is_empty(),
        "the committed market plants invalid contracts"
    );
    let sum: i64 = own["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            ipow::base::amount::Money::parse(
                s["balance_change"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('-'),
            )
            .unwrap()
            .raw()
                * if s["balance_change"].as_str().unwrap().starts_with('-') {
                    -1
                } else {
                    1
                }
        })
        .sum();
    assert_eq!(sum, 0, "the statements' balance changes sum to zero");

    // The same readings written to a file (contracts by hex id, the first by position) settle
    // to the same statements.
    let dir = std::env::temp_dir().join(format!("ipow-settle-ds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let entries: Vec<serde_json::Value> = d
        .workload
        .transactions
        .iter()
        .zip(&d.workload.readings)
        .enumerate()
        .map(|(i, (tx, r))| {
            serde_json::json!({
                "contract": if i == 0 { "0".to_owned() } else { tx.id().to_string() },
                "delivered": r.delivered.to_string(),
                "received": r.received.to_string(),
                "carried": r.carried,
            })
        })
        .collect();
    let write = |name: &str, entries: &[serde_json::Value]| {
        let path = dir.join(name);
        let doc = serde_json::json!({"format": "ipow-readings/1", "readings": entries});
        std::fs::write(&path, doc.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let file = write("same.json", &entries);
    let from_file = json(ipow(&[
        "settle",
        "--dataset",
        &market,
        "--readings",
        &file,
        "--json",
    ]));
    assert_eq!(from_file["statements"], own["statements"]);
    assert_eq!(from_file["excluded"], own["excluded"]);

    // A contract that passes the checks without a reading is an error naming the file.
    let accepted = (0..entries.len())
        .find(|&i| excluded.iter().all(|e| e["position"] != i as u64))
        .unwrap();
    let mut missing = entries.clone();
    missing.remove(accepted);
    let file = write("missing.json", &missing);
    check_error(
        &["settle", "--dataset", &market, "--readings", &file],
        &["missing.json", "readings", "contract"],
    );
    // An unknown contract names its record.
    let mut unknown = entries.clone();
    unknown[2]["contract"] = serde_json::json!("ff".repeat(32));
    let file = write("unknown.json", &unknown);
    check_error(
        &["settle", "--dataset", &market, "--readings", &file],
        &["unknown.json", "readings[2]"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_settles_each_committed_period_the_same_on_any_thread_count() {
    let run = |threads: &str| -> serde_json::Value {
        let out = ipow(&[
            "run",
            "--contracts",
            "3000",
            "--period-txs",
            "1000",
            "--defaults",
            "0.2",
            "--opening-balance",
            "300.00",
            "--threads",
            threads,
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let one = run("1");
    let s = &one["settlement"];
    assert_eq!(s["conserved"], true);
    assert_eq!(
        s["settled"].as_u64().unwrap() + s["failed_funds"].as_u64().unwrap(),
        one["accepted"].as_u64().unwrap(),
        "every accepted contract settles or fails for funds, once"
    );
    assert!(s["failed_funds"].as_u64().unwrap() > 0, "{s}");
    assert!(s["penalties_paid"].as_str().unwrap() != "0.00", "{s}");
    assert!(one["stages_seconds"]["settle"].as_f64().unwrap() > 0.0);
    let two = run("2");
    assert_eq!(two["settlement"], one["settlement"]);
}
