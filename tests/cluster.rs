//! Validators across processes (`ipow run --processes N`, `--hosts FILE`) through the real
//! binary: the same decisions and store bytes as one process, a lost process reported
//! promptly and by name, `--resume` to the uninterrupted store, and set-up failures that end
//! in an error, not a hang.
//!
//! Cluster tests share the 2 cores, so they never overlap ([`ONE_AT_A_TIME`]); every process
//! has a deadline, is polled, and is killed through its handle on failure, with its stderr in
//! the message.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::{self, Proc, scratch, start};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`util::finish`]'s outcome as (success, stdout, stderr).
fn finish(p: Proc, deadline: Instant) -> (bool, String, String) {
    let out = util::finish(p, deadline);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

fn secret_file(tag: &str) -> PathBuf {
    let path = scratch(tag).with_extension("secret");
    std::fs::write(&path, format!("{}\n", "3c".repeat(32))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// A grid with cuts, crashed and slow validators (rounds beyond the first), a store.
fn run_args(store: &Path, secret: &Path, decisions: &Path) -> Vec<String> {
    let mut a = strings(&[
        "run",
        "--contracts",
        "1500",
        "--period-txs",
        "400",
        "--seed",
        "11",
        "--validators",
        "30",
        "--byzantine",
        "0.2",
        "--behaviour",
        "crash",
        "--slow",
        "6",
        "--slow-miss",
        "0.4",
        "--grid",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/datasets/grids/pglib_opf_case118_ieee.m"
        ),
        "--congestion",
        "1.5",
        "--threads",
        "1",
        "--json",
    ]);
    a.extend(strings(&["--store", store.to_str().unwrap()]));
    a.extend(strings(&["--secret", secret.to_str().unwrap()]));
    a.extend(strings(&["--decisions", decisions.to_str().unwrap()]));
    a
}

/// The report less what a clock measures and what only a cluster adds.
fn decided(json: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    let m = v.as_object_mut().unwrap();
    for k in [
        "wall_seconds",
        "committed_per_s",
        "validations_per_s",
        "latency_commit",
        "latency_decide",
        "stages_seconds",
        "cpu_seconds",
        "cpu_seconds_per_committed",
    ] {
        m.remove(k);
    }
    m["variant_report"].as_object_mut().unwrap().remove("tier");
    v
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn one_two_and_three_processes_decide_and_store_alike() {
    let _one = serial();
    let secret = secret_file("cluster-alike-secret");
    let deadline = || Instant::now() + Duration::from_secs(120);
    let mut results = Vec::new();
    for (n, ship) in [(1, "bytes"), (2, "bytes"), (3, "index"), (2, "index")] {
        let dir = scratch(&format!("cluster-alike-{n}-{ship}"));
        let store = dir.join("store");
        let decisions = dir.join("decisions.csv");
        let mut args = run_args(&store, &secret, &decisions);
        args.extend(strings(&["--processes", &n.to_string(), "--ship", ship]));
        let (ok, out, err) = finish(start(&format!("{n} processes"), &args), deadline());
        assert!(ok, "{n} processes ({ship}): {err}");
        results.push((n, ship, out, store, decisions));
    }
    let (_, _, reference, store, decisions) = &results[0];
    let expected = decided(reference);
    assert!(
        expected["curtailed"].as_u64().unwrap() > 0,
        "no cuts to publish"
    );
    for (n, ship, out, s, d) in &results[1..] {
        let got = decided(out);
        let differing: Vec<&String> = expected
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| got.get(k.as_str()) != Some(v))
            .map(|(k, _)| k)
            .collect();
        assert!(
            differing.is_empty(),
            "{n} processes ({ship}): the report differs in {differing:?}"
        );
        assert_eq!(
            read(d),
            read(decisions),
            "{n} processes ({ship}): decisions"
        );
        for file in ["ledger.log", "commits.idx"] {
            assert!(
                read(&s.join(file)) == read(&store.join(file)),
                "{n} processes ({ship}): {file} differs"
            );
        }
        // Real messages crossed: rounds beyond the first, the cuts, the asks.
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        let tier = &v["variant_report"]["tier"];
        assert_eq!(tier["processes"], *n as u64, "{tier}");
        let periods = v["blocks"].as_array().map_or(0, Vec::len) as u64;
        assert!(tier["rounds"].as_u64().unwrap() > periods, "{tier}");
        let channel = |name: &str| {
            tier["channels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .map_or(0, |c| c["bytes"].as_u64().unwrap())
        };
        assert!(
            channel("context") > 10_000,
            "cuts were not broadcast: {tier}"
        );
        assert!(channel("asks") > 0 && channel("answers") > 0, "{tier}");
    }
    let audit = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(["audit", "--store"])
        .arg(&results[2].3)
        .arg("--secret")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
}

/// Ports free a moment ago, for a hosts file.
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn hosts_file(tag: &str, ports: &[u16]) -> PathBuf {
    let path = scratch(tag).with_extension("hosts");
    let lines: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn a_lost_host_fails_the_run_by_name_and_resume_finishes_the_same_store() {
    let _one = serial();
    let secret = secret_file("cluster-lost-secret");
    let dir = scratch("cluster-lost");
    // The run every process of this test makes (the reference, the cluster, the resume).
    let common = strings(&[
        "run",
        "--contracts",
        "40000",
        "--period-txs",
        "2000",
        "--seed",
        "4",
        "--threads",
        "1",
        "--secret",
        secret.to_str().unwrap(),
    ]);
    let mut base = common.clone();
    // The uninterrupted reference, in one process.
    let reference = dir.join("reference");
    let mut args = base.clone();
    args.extend(strings(&["--store", reference.to_str().unwrap()]));
    let (ok, _, err) = finish(
        start("reference", &args),
        Instant::now() + Duration::from_secs(300),
    );
    assert!(ok, "{err}");
    // Three hosts on loopback, each started here; the third killed after the first commit.
    let hosts = hosts_file("cluster-lost-hosts", &free_ports(3));
    base.extend(strings(&[
        "--hosts",
        hosts.to_str().unwrap(),
        "--cluster-timeout",
        "120",
    ]));
    let store = dir.join("store");
    let with_index = |i: usize| {
        let mut a = base.clone();
        a.extend(strings(&["--process-index", &i.to_string()]));
        a
    };
    let mut supervisor_args = with_index(0);
    supervisor_args.extend(strings(&[
        "--store",
        store.to_str().unwrap(),
        "--announce-commits",
    ]));
    let peers: Vec<Proc> = (1..3)
        .map(|i| start(&format!("process {i}"), &with_index(i)))
        .collect();
    let mut supervisor = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(&supervisor_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = supervisor.stdout.take().unwrap();
    let mut stderr = supervisor.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut peers = peers.into_iter();
    let first = peers.next().unwrap();
    let mut lost = peers.next().unwrap();
    let announced = rx.recv_timeout(Duration::from_secs(120));
    lost.child.kill().unwrap();
    let killed = Instant::now();
    let _ = lost.child.wait();
    let status = loop {
        if let Some(s) = supervisor.try_wait().unwrap() {
            break s;
        }
        if killed.elapsed() > Duration::from_secs(30) {
            let _ = supervisor.kill();
            let _ = supervisor.wait();
            panic!(
                "the supervision node did not fail within 30 s: {}",
                errors.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let err = errors.join().unwrap();
    assert!(
        announced.is_ok(),
        "nothing committed before the kill: {err}"
    );
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("validator process 2 was lost during period"),
        "{err}"
    );
    let (survivor_ok, _, survivor_err) = finish(first, Instant::now() + Duration::from_secs(30));
    assert!(
        !survivor_ok,
        "the surviving validator process went on: {survivor_err}"
    );
    // The store audits clean at its last committed period...
    let audit = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(["audit", "--store", store.to_str().unwrap()])
        .arg("--secret")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
    // ...and --resume (here over two processes on this machine) ends with the reference bytes.
    let mut resume = common;
    resume.extend(strings(&[
        "--store",
        store.to_str().unwrap(),
        "--resume",
        "--processes",
        "2",
        "--ship",
        "index",
    ]));
    let (ok, _, err) = finish(
        start("resume", &resume),
        Instant::now() + Duration::from_secs(300),
    );
    assert!(ok, "{err}");
    assert!(err.contains("committed period"), "{err}");
    for file in ["ledger.log", "commits.idx"] {
        assert!(
            read(&store.join(file)) == read(&reference.join(file)),
            "{file}: the resumed store differs from the uninterrupted one"
        );
    }
}

#[test]
fn set_up_failures_are_errors_not_hangs() {
    let _one = serial();
    let small = strings(&[
        "run",
        "--contracts",
        "200",
        "--period-txs",
        "100",
        "--threads",
        "1",
    ]);
    // An occupied port: process 0's own line.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let free = free_ports(1)[0];
    let hosts = hosts_file("cluster-occupied", &[port, free]);
    let mut args = small.clone();
    args.extend(strings(&[
        "--hosts",
        hosts.to_str().unwrap(),
        "--process-index",
        "0",
    ]));
    let (ok, _, err) = finish(
        start("occupied", &args),
        Instant::now() + Duration::from_secs(30),
    );
    assert!(
        !ok && err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    drop(taken);
    // A host that never comes: process 1 is listed, nobody starts it.
    let hosts = hosts_file("cluster-unreachable", &free_ports(2));
    let mut args = small.clone();
    args.extend(strings(&[
        "--hosts",
        hosts.to_str().unwrap(),
        "--process-index",
        "0",
        "--cluster-timeout",
        "2",
    ]));
    let started = Instant::now();
    let (ok, _, err) = finish(
        start("unreachable", &args),
        Instant::now() + Duration::from_secs(60),
    );
    assert!(
        !ok && err.contains("process 1 at 127.0.0.1:") && err.contains("never connected"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // A process of another run (other flags) is refused at the handshake, by name.
    let ports = free_ports(2);
    let hosts = hosts_file("cluster-other-run", &ports);
    let with = |i: &str, seed: &str| {
        let mut a = small.clone();
        a.extend(strings(&[
            "--hosts",
            hosts.to_str().unwrap(),
            "--process-index",
            i,
            "--seed",
            seed,
            "--cluster-timeout",
            "20",
        ]));
        a
    };
    let other = start("other run", &with("1", "2"));
    let (ok, _, err) = finish(
        start("this run", &with("0", "1")),
        Instant::now() + Duration::from_secs(60),
    );
    assert!(!ok && err.contains("fingerprint differs"), "{err}");
    let (ok, _, other_err) = finish(other, Instant::now() + Duration::from_secs(60));
    assert!(!ok, "{other_err}");
    // PoW has no validators to spread.
    let mut args = small;
    args.extend(strings(&["--consensus", "pow", "--processes", "2"]));
    let (ok, _, err) = finish(
        start("pow", &args),
        Instant::now() + Duration::from_secs(30),
    );
    assert!(!ok && err.contains("PoW has one miner"), "{err}");
}

/// The wire fuzz target's seeds reach past the message framing: the context seed decodes as a
/// published context on case14 (one slot, one cut), and every seed re-encodes to itself.
#[test]
fn the_wire_seeds_decode_and_reencode() {
    use ipow::cluster::wire::Message;
    use ipow::validate::congestion::PeriodCongestion;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/wire");
    let mut kinds = 0;
    for name in [
        "keys.bin",
        "context.bin",
        "asks-index.bin",
        "asks-bytes.bin",
        "answers.bin",
    ] {
        let bytes = read(&dir.join(name));
        let m = Message::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.encode(), bytes, "{name}");
        if let Message::Context { context, .. } = &m {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/datasets/grids/pglib_opf_case14_ieee.m"
            );
            let model =
                ipow::grid::DcModel::new(ipow::grid::Grid::load(Path::new(path)).unwrap()).unwrap();
            let grid = ipow::grid::placement::GridMarket::place(model, 5, 9).unwrap();
            let terms = ipow::market::rules::MarketRules::empty().terms();
            let pc = PeriodCongestion::published(&grid, terms, context).unwrap();
            assert_eq!(pc.curtailment.slots.len(), 1);
            assert_eq!(pc.curtailment.slots[0].curtailment.cuts.len(), 1);
        }
        kinds += 1;
    }
    assert_eq!(kinds, 5);
    // A message cut anywhere is refused with a typed error, never a panic.
    let bytes = read(&dir.join("asks-bytes.bin"));
    for n in 0..bytes.len() {
        assert!(Message::decode(&bytes[..n]).is_err(), "cut at {n}");
    }
}

/// `ipow compare` with a `processes` sweep: each IPOW case over 2 processes decides every
/// transaction as the in-process case (outcome, verdict, validators asked), PoW runs once.
#[test]
fn a_compare_sweep_over_processes_decides_alike() {
    let _one = serial();
    let dir = scratch("cluster-compare");
    let scenario = dir.join("s.json");
    std::fs::write(
        &scenario,
        serde_json::json!({
            "format": "ipow-scenario/1", "name": "processes",
            "grid": concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/grids/pglib_opf_case57_ieee.m"),
            "market": { "participants": 200, "contracts": 1500, "seed": 3, "invalid": 0.05 },
            "variants": [
                { "consensus": "ipow", "validators": 24, "quorum": 3, "extra": 4,
                  "byzantine": 0.2, "behaviour": "crash" },
                { "consensus": "pow", "difficulty": 6 } ],
            "period_txs": 500, "repetitions": 1, "processes": [1, 2], "threads": 1
        })
        .to_string(),
    )
    .unwrap();
    let out = dir.join("report");
    let args = strings(&[
        "compare",
        "--scenario",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (ok, _, err) = finish(
        start("compare", &args),
        Instant::now() + Duration::from_secs(120),
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value =
        serde_json::from_slice(&read(&out.join("summary.json"))).unwrap();
    let labels: Vec<&str> = summary["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "ipow q=3 n=24 f=0.2 crash p=1",
            "pow d=6",
            "ipow q=3 n=24 f=0.2 crash p=2"
        ]
    );
    // Per transaction: outcome, verdict, reason, validators asked (columns 8-10 and 13).
    let csv = String::from_utf8(read(&out.join("transactions.csv"))).unwrap();
    let decisions = |case: &str| -> Vec<String> {
        csv.lines()
            .skip(1)
            .filter(|l| l.split(',').next() == Some(case))
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{} {} {} {} {}", f[3], f[8], f[9], f[10], f[13])
            })
            .collect()
    };
    // The report says what crossed the wire, for the case over 2 processes only.
    let md = String::from_utf8(read(&out.join("report.md"))).unwrap();
    let tier: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("## Validators across processes"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| ipow") || l.starts_with("| pow"))
        .collect();
    assert_eq!(tier.len(), 1, "{md}");
    assert!(tier[0].contains("| 2 (bytes) |"), "{}", tier[0]);
    let (one, two) = (decisions("0"), decisions("2"));
    assert_eq!(one.len(), 1500);
    assert!(one == two, "the case over 2 processes decided otherwise");
}
