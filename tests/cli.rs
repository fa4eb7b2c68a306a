use std::process::Command;

fn ipow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(args)
        .output()
        .unwrap()
}

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
fn default_job_is_the_paper_on_the_embedded_market() {
    let out = ipow(&[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("purchase cost   187.65"), "{text}");
    assert!(text.contains("Merkle root"));
}

#[test]
fn a_bad_market_file_exits_non_zero_naming_file_record_and_field() {
    let dir = std::env::temp_dir().join(format!("ipow-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad-market.json");
    let text = ipow::paper::EMBEDDED_MARKET.replace("\"10.98\"", "\"10.98.1\"");
    std::fs::write(&path, text).unwrap();
    let out = ipow(&["paper", "--market", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no partial output");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad-market.json") && err.contains("matrix_f[0][4]") && err.contains("energy"),
        "{err}"
    );
    let missing = ipow(&[
        "paper",
        "--market",
        dir.join("absent.json").to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("absent.json"));
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
    let out = ipow(&["settle", "--readings", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no partial output");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad-readings.json")
            && err.contains("readings[3]")
            && err.contains("contract"),
        "{err}"
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
        let out = ipow(&["settle", "--readings", &good, flag, value]);
        assert!(!out.status.success(), "{flag} {value}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(flag),
            "{flag} named in the error"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
