//! Bad input, end to end: every file of the corpus in `tests/data/bad/` (made by `make.py`
//! there from the good files in `datasets/`) run through the `ipow` binary. Each must exit
//! non-zero with nothing on stdout and a message naming the file, the record (or offset, or
//! line) and the field; commands asked to write must leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bad(name: &str) -> String {
    root()
        .join("tests/data/bad")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn good(rel: &str) -> String {
    root().join(rel).to_string_lossy().into_owned()
}

fn ipow(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(args)
        .output()
        .unwrap()
}

/// One corpus file: the command that reads it (`{}` is the file) and what its error must hold
/// besides the file's name.
struct Case {
    file: &'static str,
    command: &'static [&'static str],
    names: &'static [&'static str],
}

const READINGS: &[&str] = &["settle", "--readings", "{}"];
const MARKET: &[&str] = &[
    "settle",
    "--dataset",
    "{}",
    "--readings",
    "@datasets/paper/readings-full-delivery.json",
];
const DATASET: &[&str] = &["dataset", "verify", "--dataset", "{}"];
const GRID: &[&str] = &["grid", "info", "--grid", "{}"];
const TRADES: &[&str] = &[
    "grid",
    "flows",
    "--grid",
    "@datasets/grids/pglib_opf_case14_ieee.m",
    "--trades",
    "{}",
];
const SCENARIO: &[&str] = &["run", "--scenario", "{}"];

const CASES: &[Case] = &[
    Case {
        file: "readings-empty.json",
        command: READINGS,
        names: &["document", "line 1"],
    },
    Case {
        file: "readings-crlf-truncated.json",
        command: READINGS,
        names: &["document", "line 8"],
    },
    Case {
        file: "readings-nan.json",
        command: READINGS,
        names: &["document", "line 4 column"],
    },
    Case {
        file: "readings-infinity.json",
        command: READINGS,
        names: &["document", "line 6 column"],
    },
    Case {
        file: "readings-negative.json",
        command: READINGS,
        names: &["readings[3]", "delivered"],
    },
    Case {
        file: "readings-duplicate.json",
        command: READINGS,
        names: &["readings[1]", "contract"],
    },
    Case {
        file: "readings-unknown.json",
        command: READINGS,
        names: &["readings[6]", "contract"],
    },
    Case {
        file: "readings-wrong-version.json",
        command: READINGS,
        names: &["document", "format"],
    },
    Case {
        file: "market-unknown-account.json",
        command: MARKET,
        names: &["participants[1]", "address"],
    },
    Case {
        file: "market-negative-energy.json",
        command: MARKET,
        names: &["matrix_f[0][4]", "energy"],
    },
    Case {
        file: "market-wrong-version.json",
        command: MARKET,
        names: &["document", "format"],
    },
    Case {
        file: "dataset-empty.ipowm",
        command: DATASET,
        names: &["offset 0", "magic"],
    },
    Case {
        file: "dataset-foreign.ipowm",
        command: DATASET,
        names: &["offset 0", "magic"],
    },
    Case {
        file: "dataset-truncated.ipowm",
        command: DATASET,
        names: &["offset 28", "contracts"],
    },
    Case {
        file: "dataset-flipped.ipowm",
        command: DATASET,
        names: &["offset", "chunk.checksum"],
    },
    Case {
        file: "dataset-wrong-version.ipowm",
        command: DATASET,
        names: &["offset 8", "format"],
    },
    Case {
        file: "dataset-huge-count.ipowm",
        command: DATASET,
        names: &["offset", "header_checksum"],
    },
    Case {
        file: "grid-empty.m",
        command: GRID,
        names: &[":1:1", "mpc.baseMVA"],
    },
    Case {
        file: "grid-truncated.m",
        command: GRID,
        names: &[":70:1", "mpc.branch"],
    },
    Case {
        file: "grid-nonnumeric.m",
        command: GRID,
        names: &[":70:17", "not a number"],
    },
    Case {
        file: "grid-zero-reactance.m",
        command: GRID,
        names: &[":70:17", "mpc.branch row 0 (x)"],
    },
    Case {
        file: "trades-unknown-bus.json",
        command: TRADES,
        names: &["trades[0]", "buyer_bus"],
    },
    Case {
        file: "trades-nan.json",
        command: TRADES,
        names: &["document", "line 1 column"],
    },
    Case {
        file: "scenario-empty.json",
        command: SCENARIO,
        names: &["document", "line 1"],
    },
    Case {
        file: "scenario-unknown-field.json",
        command: SCENARIO,
        names: &["document", "surprise"],
    },
];

fn args(command: &[&str], file: &str) -> Vec<String> {
    command
        .iter()
        .map(|a| match *a {
            "{}" => bad(file),
            a if a.starts_with('@') => good(&a[1..]),
            a => a.to_owned(),
        })
        .collect()
}

#[test]
fn every_bad_file_exits_non_zero_naming_file_place_and_field() {
    let mut listed: Vec<&str> = CASES.iter().map(|c| c.file).collect();
    listed.extend(["readings-bom.json", "grid-bom-crlf.m", "make.py"]);
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("tests/data/bad"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    listed.sort_unstable();
    assert_eq!(on_disk, listed, "every corpus file has a case");
    let mut failures = Vec::new();
    for case in CASES {
        let out = ipow(&args(case.command, case.file));
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("");
        let ok = !out.status.success()
            && out.stdout.is_empty()
            && last.contains(case.file)
            && case.names.iter().all(|n| last.contains(n))
            && !err.contains("panicked");
        if !ok {
            failures.push(format!(
                "{}: exit {:?}, stdout {} bytes, stderr {last:?}",
                case.file,
                out.status.code(),
                out.stdout.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn commands_asked_to_write_leave_nothing_on_bad_input() {
    let dir: PathBuf = std::env::temp_dir().join(format!("ipow-badinput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_json = dir.join("converted.json");
    let out_bin = dir.join("generated.ipowm");
    let report = dir.join("report");
    let store = dir.join("store");
    let runs: Vec<(Vec<String>, &PathBuf)> = vec![
        (
            vec![
                "dataset".into(),
                "convert".into(),
                "--dataset".into(),
                bad("dataset-flipped.ipowm"),
                "--out".into(),
                out_json.to_string_lossy().into_owned(),
            ],
            &out_json,
        ),
        (
            vec![
                "generate".into(),
                "--grid".into(),
                bad("grid-zero-reactance.m"),
                "--participants".into(),
                "40".into(),
                "--contracts".into(),
                "100".into(),
                "--seed".into(),
                "1".into(),
                "--out".into(),
                out_bin.to_string_lossy().into_owned(),
            ],
            &out_bin,
        ),
        (
            vec![
                "compare".into(),
                "--scenario".into(),
                bad("scenario-unknown-field.json"),
                "--out".into(),
                report.to_string_lossy().into_owned(),
            ],
            &report,
        ),
        (
            vec![
                "run".into(),
                "--contracts".into(),
                "100".into(),
                "--grid".into(),
                bad("grid-truncated.m"),
                "--store".into(),
                store.to_string_lossy().into_owned(),
            ],
            &store,
        ),
    ];
    for (a, target) in runs {
        let out = ipow(&a);
        assert!(!out.status.success(), "{a:?}");
        let input = a.iter().find(|x| x.contains("tests/data/bad/")).unwrap();
        let name = Path::new(input).file_name().unwrap().to_string_lossy();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name.as_ref()),
            "{a:?}: the error names the input: {err}"
        );
        assert!(!target.exists(), "{a:?} left {}", target.display());
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "{a:?} left {left:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
