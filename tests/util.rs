//! Helpers every test module shares: the binary (and its JSON), named pools, scratch directories, an honest
//! IPOW configuration, and one check for the CLI's error cases.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipow::consensus::ipow::IpowParams;
use ipow::pipeline::{Load, RunConfig, VariantConfig};

/// A started `ipow` process whose stdout and stderr are collected by threads (a full pipe never
/// blocks it).
pub struct Proc {
    name: String,
    /// The process, for a test that kills it.
    pub child: Child,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

/// Starts `ipow args`, named `name` in failures.
pub fn start(name: &str, args: &[String]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let collect = |mut from: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = from.read_to_end(&mut b);
            b
        })
    };
    let out = collect(Box::new(child.stdout.take().unwrap()));
    let err = collect(Box::new(child.stderr.take().unwrap()));
    Proc {
        name: name.to_owned(),
        child,
        out,
        err,
    }
}

/// Waits for `p` until `deadline`, polling; past it, kills it through its handle and fails
/// with its stderr (it would have hung).
pub fn finish(mut p: Proc, deadline: Instant) -> Output {
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            return Output {
                status,
                stdout: p.out.join().unwrap(),
                stderr: p.err.join().unwrap(),
            };
        }
        if Instant::now() >= deadline {
            let _ = p.child.kill();
            let _ = p.child.wait();
            let err = p.err.join().unwrap();
            panic!(
                "{} did not end by its deadline; stderr:\n{}",
                p.name,
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the `ipow` binary with `args`.
pub fn ipow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipow"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the `ipow` binary with `args`, which must succeed (else its stderr is the failure), and
/// parses its stdout as one JSON document.
pub fn ipow_json<T: serde::de::DeserializeOwned>(args: &[&str]) -> T {
    let out = ipow(args);
    assert!(
        out.status.success(),
        "ipow {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A rayon pool of `threads` named workers.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ipow-test-{i}"))
        .build()
        .unwrap()
}

/// An empty directory under the temporary directory, unique to this process and `tag`.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ipow-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Closed-loop IPOW with honest validators, `period_txs` to a period.
pub fn honest_ipow(validators: u32, quorum: u32, seed: u64, period_txs: usize) -> RunConfig {
    RunConfig {
        variant: VariantConfig::Ipow(IpowParams::honest(validators, quorum, 4, seed)),
        period_txs,
        load: Load::ClosedLoop,
    }
}

/// `ipow args` fails: a non-zero exit, nothing on stdout, and stderr naming each of `names`.
pub fn check_error(args: &[&str], names: &[&str]) {
    let out = ipow(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        out.stdout.is_empty(),
        "{args:?} printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    for n in names {
        assert!(err.contains(n), "{args:?}: {err:?} should name {n:?}");
    }
}
