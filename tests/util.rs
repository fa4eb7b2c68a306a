//! Helpers every test module shares: the binary (and its JSON), named pools, scratch directories, an honest
//! IPOW configuration, and one check for the CLI's error cases.

use std::path::PathBuf;
use std::process::{Command, Output};

use ipow::consensus::ipow::IpowParams;
use ipow::pipeline::{Load, RunConfig, VariantConfig};

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
