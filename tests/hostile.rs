//! Hostile input through the CLI: devices, FIFOs and oversize files refused while reading, rates
//! and thread counts that cannot work refused with a message, values that were accepted wrongly
//! now refused, and no `.partial` file left behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{check_error, finish, ipow, scratch, start};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `ipow compare` of the paper-market scenario into `out`, which must succeed.
fn compare_paper_market(out: &Path) -> std::process::Output {
    let scenario = root().join("datasets/scenarios/paper-market.json");
    let done = ipow(&[
        "compare",
        "--scenario",
        &scenario.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    done
}

fn grid14() -> String {
    root()
        .join("datasets/grids/pglib_opf_case14_ieee.m")
        .display()
        .to_string()
}

/// Runs `ipow args` with a deadline; a run still going then is killed through its handle and
/// the test fails (it would have hung).
fn within(deadline: Duration, args: &[&str]) -> std::process::Output {
    let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    finish(
        start(&format!("{args:?}"), &owned),
        Instant::now() + deadline,
    )
}

/// Every reader of outside text refuses a device before reading it (a device has no end).
#[test]
fn a_device_is_refused_by_every_reader_before_it_is_read() {
    let cases: [&[&str]; 6] = [
        &["grid", "info", "--grid", "/dev/zero"],
        &["settle", "--readings", "/dev/zero"],
        &["run", "--scenario", "/dev/urandom"],
        &["paper", "--market", "/dev/zero"],
        &["verify-proof", "--proof", "/dev/zero", "--head", "00"],
        &["dataset", "verify", "--dataset", "/dev/zero"],
    ];
    for args in cases {
        let out = within(Duration::from_secs(20), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("/dev/"), "{args:?}: {err}");
        assert!(err.contains("character device"), "{args:?}: {err}");
    }
}

/// A FIFO with no writer would block the reader forever in `open`; it is refused instead.
#[test]
fn a_fifo_with_no_writer_is_refused_not_waited_on() {
    let dir = scratch("hostile-fifo");
    let fifo = dir.join("readings.json");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: no mkfifo on this machine");
        return;
    }
    let f = fifo.display().to_string();
    for args in [
        vec!["settle", "--readings", f.as_str()],
        vec!["grid", "info", "--grid", f.as_str()],
        vec!["run", "--scenario", f.as_str()],
    ] {
        let out = within(Duration::from_secs(20), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("a FIFO"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file over its reader's limit is refused with the limit named; invalid UTF-8 is named by
/// its byte offset.
#[test]
fn an_oversize_file_names_the_limit_and_bad_utf8_its_offset() {
    let dir = scratch("hostile-size");
    let big = dir.join("big.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(ipow::lab::scenario::MAX_FILE_BYTES + 1).unwrap();
    drop(f);
    check_error(
        &["run", "--scenario", &big.display().to_string()],
        &[
            "big.json",
            &format!("{}-byte limit", ipow::lab::scenario::MAX_FILE_BYTES),
        ],
    );
    let bad = dir.join("bad.m");
    let mut text = std::fs::read(grid14()).unwrap();
    text.splice(100..100, [0xff, 0xfe]);
    std::fs::write(&bad, text).unwrap();
    check_error(
        &["grid", "info", "--grid", &bad.display().to_string()],
        &["bad.m", "offset 100"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rates, thread counts and sizes that cannot work are refused with a message, never a panic
/// or a stall.
#[test]
fn values_that_cannot_work_are_refused_with_a_message() {
    check_error(
        &["run", "--contracts", "10", "--rate", "1e-300"],
        &["--rate", "one a day"],
    );
    check_error(
        &["run", "--contracts", "10", "--threads", "10000"],
        &["--threads", "10000", "1..=1024"],
    );
    check_error(&["run", "--contracts", "0"], &["--contracts 0"]);
    check_error(&["run", "--period-txs", "0"], &["--period-txs 0"]);
    let dir = scratch("hostile-values");
    let out = dir.join("m.ipowm").display().to_string();
    check_error(
        &["generate", "--contracts", "0", "--out", &out],
        &["--contracts 0"],
    );
    check_error(
        &["generate", "--participants", "1", "--out", &out],
        &["--participants 1", "6"],
    );
    check_error(
        &[
            "generate",
            "--contracts",
            "10",
            "--threads",
            "0",
            "--out",
            &out,
        ],
        &["--threads"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A scenario asks the same of its values as the flags do.
#[test]
fn a_scenario_refuses_what_the_flags_refuse() {
    let dir = scratch("hostile-scenario");
    let grids = root().join("datasets/grids").display().to_string();
    let base = serde_json::json!({
        "format": "ipow-scenario/1",
        "name": "t",
        "grid": format!("{grids}/pglib_opf_case14_ieee.m"),
        "market": { "participants": 40, "contracts": 20, "seed": 1 },
        "variants": [{ "consensus": "ipow", "validators": 8, "quorum": 3 }],
        "load": { "kind": "closed_loop" },
        "period_txs": 10,
        "repetitions": 1
    });
    let path = dir.join("s.json");
    for (edit, record, field) in [
        (
            serde_json::json!({ "load": { "kind": "open_loop", "rate": 1e-300 } }),
            "load",
            "kind",
        ),
        (
            serde_json::json!({ "threads": [10000] }),
            "document",
            "threads",
        ),
        (
            serde_json::json!({ "market": { "participants": 2, "contracts": 20, "seed": 1 } }),
            "market",
            "participants",
        ),
    ] {
        let mut s = base.clone();
        for (k, v) in edit.as_object().unwrap() {
            s[k] = v.clone();
        }
        std::fs::write(&path, s.to_string()).unwrap();
        check_error(
            &["run", "--scenario", &path.display().to_string()],
            &[&format!("s.json: {record}: {field}")],
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `generate --out` an existing directory is refused before any work and leaves nothing.
#[test]
fn generate_into_a_directory_is_refused_and_leaves_no_partial_file() {
    let dir = scratch("hostile-generate");
    let target = dir.join("already-a-dir");
    std::fs::create_dir(&target).unwrap();
    check_error(
        &[
            "generate",
            "--contracts",
            "10",
            "--out",
            &target.display().to_string(),
        ],
        &["already-a-dir", "is a directory"],
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("already-a-dir")]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `audit --as` an address that is no participant is an error, not a clean audit of nothing.
#[test]
fn an_audit_as_a_stranger_is_refused() {
    let dir = scratch("hostile-audit");
    let store = dir.join("store");
    let s = store.display().to_string();
    let out = ipow(&["run", "--contracts", "50", "--store", &s, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_error(
        &["audit", "--store", &s, "--as", "0x7fffffff"],
        &["--as 0x7fffffff", "not a participant"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A trade's power must be a flow from seller to buyer a grid can hold: a negative one is not
/// silently the reverse trade, and 1e308 MW does not make every flow infinite.
#[test]
fn a_negative_or_absurd_trade_is_refused_naming_its_record() {
    let dir = scratch("hostile-trades");
    for (name, mw) in [("negative.json", "-5"), ("huge.json", "1e308")] {
        let path = dir.join(name);
        let text = format!(
            r#"{{"trades": [{{"seller_bus": 1, "buyer_bus": 2, "mw": 10}},
                {{"seller_bus": 2, "buyer_bus": 3, "mw": {mw}}}]}}"#
        );
        std::fs::write(&path, text).unwrap();
        check_error(
            &[
                "grid",
                "flows",
                "--grid",
                &grid14(),
                "--trades",
                &path.display().to_string(),
            ],
            &[name, "trades[1]", "mw"],
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dataset whose generator parameters disagree with what it holds is refused naming the
/// field: one contract short of its stated count (JSON), and a binary header resealed with
/// another market's counts.
#[test]
fn a_dataset_whose_parameters_disagree_with_its_counts_is_refused() {
    let dir = scratch("hostile-counts");
    let bin = dir.join("m.ipowm");
    let json = dir.join("m.json");
    let (b, j) = (bin.display().to_string(), json.display().to_string());
    let g = grid14();
    let out = ipow(&[
        "generate",
        "--grid",
        &g,
        "--participants",
        "20",
        "--contracts",
        "30",
        "--out",
        &b,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        ipow(&["dataset", "convert", "--dataset", &b, "--out", &j])
            .status
            .success()
    );
    assert!(
        ipow(&["dataset", "verify", "--dataset", &j])
            .status
            .success()
    );
    // `dataset info` names each form as itself (the binary header's format is not the JSON's).
    for (file, form) in [(&b, "binary format 2"), (&j, "JSON ipow-market/2")] {
        let out = ipow(&["dataset", "info", "--dataset", file]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("format        {form} (generator")),
            "{text}"
        );
    }
    // One contract short of its stated count.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    doc["contracts"].as_array_mut().unwrap().pop();
    let short = dir.join("short.json");
    std::fs::write(&short, serde_json::to_string(&doc).unwrap()).unwrap();
    check_error(
        &[
            "dataset",
            "verify",
            "--dataset",
            &short.display().to_string(),
        ],
        &[
            "short.json",
            "params.market.contracts",
            "says 30 contracts; the dataset holds 29",
        ],
    );
    // A binary file written with another market's parameters in a resealed header.
    let mut d = ipow::market::dataset::read_binary(&bin).unwrap();
    d.header.params.market.sellers += 1;
    let other = dir.join("other.ipowm");
    ipow::market::dataset::write_binary(&other, &d).unwrap();
    check_error(
        &[
            "dataset",
            "verify",
            "--dataset",
            &other.display().to_string(),
        ],
        &[
            "other.ipowm",
            "params.market",
            "add up to 21",
            "holds 20 members",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A PoW difficulty that would mine for hours says so before any work (the run is then killed
/// here; it would take about 15 hours).
#[test]
fn a_pow_difficulty_that_takes_hours_is_estimated_up_front() {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args([
            "run",
            "--consensus",
            "pow",
            "--difficulty",
            "40",
            "--contracts",
            "10",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let read = std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut first);
    let _ = child.kill();
    let _ = child.wait();
    read.unwrap();
    assert!(first.contains("--difficulty 40"), "{first:?}");
    assert!(first.contains("2^40 nonces per block"), "{first:?}");
    assert!(first.contains("the 1 blocks take about"), "{first:?}");
    // A quick difficulty says nothing.
    let out = within(
        Duration::from_secs(60),
        &[
            "run",
            "--consensus",
            "pow",
            "--difficulty",
            "8",
            "--contracts",
            "200",
        ],
    );
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    // A scenario's PoW case is estimated before any case runs, by `run --scenario` and compare.
    let dir = scratch("hostile-pow-scenario");
    let path = dir.join("pow.json");
    std::fs::write(
        &path,
        r#"{"format": "ipow-scenario/1", "name": "slow", "market": {"participants": 20,
  "contracts": 10, "seed": 1}, "variants": [{"consensus": "pow", "difficulty": [8, 40]}],
  "load": {"kind": "closed_loop"}, "period_txs": 10, "repetitions": 1}"#,
    )
    .unwrap();
    let p = path.display().to_string();
    let out_dir = dir.join("report").display().to_string();
    for args in [
        vec!["run", "--scenario", p.as_str()],
        vec![
            "compare",
            "--scenario",
            p.as_str(),
            "--out",
            out_dir.as_str(),
        ],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ipow"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        for _ in 0..3 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen += &line;
            if line.contains("warning") {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            seen.contains("warning: --difficulty 40"),
            "{args:?}: {seen:?}"
        );
        assert!(!seen.contains("--difficulty 8:"), "{args:?}: {seen:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A scenario value of the wrong kind names its field's path and what it should have been
/// (serde's untagged enums said only "did not match any variant").
#[test]
fn a_wrong_scenario_value_names_its_field() {
    let dir = scratch("hostile-scenario-values");
    let path = dir.join("v.json");
    let scenario = |market: &str, variant: &str| {
        format!(
            r#"{{"format": "ipow-scenario/1", "name": "t", "market": {market},
  "variants": [{variant}], "load": {{"kind": "closed_loop"}}, "period_txs": 10,
  "repetitions": 1}}"#
        )
    };
    let good_market = r#"{"participants": 40, "contracts": 20, "seed": 1}"#;
    for (text, names) in [
        (
            scenario(good_market, r#"{"consensus": "ipow", "quorum": 3.5}"#),
            &[
                "v.json: document: variants (line 2 column",
                "variants[0].quorum: invalid type: floating point `3.5`, expected u32, or a list of them",
            ][..],
        ),
        (
            scenario(
                good_market,
                r#"{"consensus": "ipow", "quorum": [3, "five"]}"#,
            ),
            &["variants[0].quorum: list item 1: invalid type: string \"five\", expected u32"][..],
        ),
        (
            scenario(
                r#"{"participants": 40, "contracts": 20, "seed": 100000000000000000000}"#,
                r#"{"consensus": "ipow"}"#,
            ),
            &["v.json", "market", "seed: invalid type", "expected u64"][..],
        ),
        (
            scenario(r#"{"dataset": 7}"#, r#"{"consensus": "ipow"}"#),
            &["market", "dataset: invalid type"][..],
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        check_error(&["run", "--scenario", &path.display().to_string()], names);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A negative number given to a flag gets the message any other bad value gets, not "unexpected
/// argument".
#[test]
fn a_negative_flag_value_gets_the_range_message() {
    for (args, names) in [
        (
            &["run", "--contracts", "-1"][..],
            &["invalid value '-1' for '--contracts <CONTRACTS>'"][..],
        ),
        (
            &["generate", "--contracts", "-5", "--out", "/tmp/x.ipowm"][..],
            &["invalid value '-5' for '--contracts <CONTRACTS>'"][..],
        ),
        (
            &["run", "--byzantine", "-0.5"][..],
            &["--byzantine -0.5 is outside 0..=1"][..],
        ),
        (
            &["stress", "--threads", "-2"][..],
            &["invalid value '-2' for '--threads <THREADS>'"][..],
        ),
    ] {
        check_error(args, names);
        let out = ipow(args);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("unexpected argument"),
            "{args:?}"
        );
    }
}

/// A grid whose susceptance matrix is singular in all but name: the error names the bus and the
/// branch that make it so.
#[test]
fn a_nearly_singular_grid_names_its_bus_and_branch() {
    let dir = scratch("hostile-singular");
    let text = std::fs::read_to_string(grid14()).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let row = lines
        .iter()
        .position(|l| l.split_whitespace().take(2).eq(["7", "8"]))
        .unwrap();
    // Branch 7-8 with its reactance (column 4) replaced.
    let with_x = |x: String| {
        let mut fields: Vec<String> = lines[row].split_whitespace().map(str::to_owned).collect();
        fields[3] = x;
        format!("\t{}", fields.join("\t"))
    };
    let x = lines[row].split_whitespace().nth(3).unwrap().to_owned();
    // Bus 8 hangs on branch 7-8 alone: a reactance of 1e300 leaves it no susceptance.
    let mut huge = lines.clone();
    huge[row] = with_x("1e300".into());
    // A second branch 7-8 whose reactance cancels the first's: no net susceptance at bus 8.
    let mut cancelling = lines.clone();
    cancelling.insert(row + 1, with_x(format!("-{x}")));
    let path = dir.join("singular.m");
    for (grid, shown) in [
        (huge, ["numerically singular", "x = 1.000e300"]),
        (cancelling, ["singular", "x = -1.762e-1"]),
    ] {
        std::fs::write(&path, grid.join("\n")).unwrap();
        let mut names = vec!["singular.m", "bus 8", "bus 7 to bus 8"];
        names.extend(shown);
        check_error(
            &[
                "run",
                "--contracts",
                "10",
                "--grid",
                &path.display().to_string(),
            ],
            &names,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `compare --out` is checked before any work: a place that cannot be written, a file, or a
/// directory holding something else is refused at once (the main job used to run for a minute
/// first), naming the directory given and not a temporary path.
#[test]
fn compare_checks_its_out_directory_before_any_work() {
    let dir = scratch("hostile-out");
    let file = dir.join("file");
    std::fs::write(&file, "x").unwrap();
    let (file, full) = (file.display().to_string(), dir.display().to_string());
    for (out, why) in [
        (
            "/proc/ipow-report",
            "cannot be written: creating an entry in /proc fails",
        ),
        (file.as_str(), "exists and is not a directory"),
        (full.as_str(), "holds something other than an ipow report"),
    ] {
        let done = within(Duration::from_secs(60), &["compare", "--out", out]);
        let err = String::from_utf8_lossy(&done.stderr);
        assert!(!done.status.success(), "{out}");
        assert!(
            err.contains(&format!("{out}: ")) && err.contains(why),
            "{err}"
        );
        assert!(!err.contains("cases x"), "the run started: {err}");
        assert!(!err.contains(".partial"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --scenario FILE` with another flag beside it (which the file overrides) is refused,
/// naming the flags, instead of dropping them without a word.
#[test]
fn a_flag_beside_a_scenario_is_refused() {
    let scenario = root().join("datasets/scenarios/paper-market.json");
    let s = scenario.display().to_string();
    check_error(
        &["run", "--scenario", &s, "--quorum", "99", "--threads", "1"],
        &["--quorum, --threads: not used with --scenario"],
    );
}

/// A reader that closes the pipe early (`ipow paper | head -1`) ends ipow quietly with the
/// SIGPIPE status, not a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(["paper", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Off a terminal (a log, CI), long work is not silent: `run`, `audit` and `compare` print plain
/// progress lines on stderr (one per finished run for compare); `--json` keeps stderr quiet.
#[test]
fn progress_off_a_terminal_is_plain_lines() {
    let dir = scratch("hostile-progress");
    let store = dir.join("s").display().to_string();
    let out = ipow(&[
        "run",
        "--contracts",
        "600",
        "--period-txs",
        "200",
        "--store",
        &store,
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("decided: 600/600 after "), "{err}");
    let out = ipow(&["audit", "--store", &store]);
    let err = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::metadata(dir.join("s/ledger.log")).unwrap().len();
    assert!(
        err.contains(&format!("audit: {log}/{log} (log bytes) after ")),
        "{err}"
    );
    let out = ipow(&["audit", "--store", &store, "--json"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = compare_paper_market(&dir.join("report"));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("runs: ")).collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(lines[0].starts_with("runs: 1/"), "{err}");
    // A long stress says so up front, and estimates the rest after its first size.
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(["stress", "--sizes", "1000,5000000", "--threads", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains("to come") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains("stress: 5001000 contracts over 2 sizes"),
        "{seen}"
    );
    assert!(
        seen.contains("stress: the size to come (5000000 contracts) takes about"),
        "{seen}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The run reports itself honestly: an open-loop run that cannot keep up with its offered rate
/// says so (and one that can, does not); a comparison records the load average before and after
/// and calls the machine busy exactly by its rule.
#[test]
fn a_run_that_falls_behind_or_a_busy_machine_is_reported() {
    let pace = |args: &[&str]| {
        let out = ipow(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["pace"].clone()
    };
    let behind = pace(&["run", "--contracts", "5000", "--rate", "1000000", "--json"]);
    assert_eq!(behind["fell_behind"], true, "{behind}");
    assert!(behind["decided_per_s"].as_f64().unwrap() < 950_000.0);
    let kept = pace(&["run", "--contracts", "300", "--rate", "300", "--json"]);
    assert_eq!(kept["fell_behind"], false, "{kept}");
    assert_eq!(kept["offered_per_s"], 300.0);
    let closed = pace(&["run", "--contracts", "100", "--json"]);
    assert!(closed.is_null(), "a closed loop has no pace: {closed}");
    let text =
        String::from_utf8_lossy(&ipow(&["run", "--contracts", "5000", "--rate", "1000000"]).stdout)
            .into_owned();
    assert!(text.contains("FELL BEHIND its offered load"), "{text}");

    let dir = scratch("hostile-busy");
    let report = dir.join("r");
    let out = compare_paper_market(&report);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    let m = &summary["setup"]["machine"];
    let cores = m["cores"].as_f64().unwrap();
    let (start, end) = (
        m["load_average_start"][0].as_f64().unwrap(),
        m["load_average_end"][0].as_f64().unwrap(),
    );
    assert_eq!(
        m["busy"].as_bool().unwrap(),
        start > 0.5 * cores || end > 1.5 * cores,
        "{m}"
    );
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("load average"), "the setup shows it");
    let warned = String::from_utf8_lossy(&out.stderr).contains("the machine was busy");
    assert_eq!(warned, m["busy"].as_bool().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
