//! Records the rustc version and git revision this binary is built from, for the setup section
//! of `ipow compare` reports (`compare::Machine`). Neither is ever fatal: outside a git checkout
//! the revision is "unknown".

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    // GIT_OPTIONAL_LOCKS=0: `git describe --dirty` must not refresh (rewrite) .git/index, which
    // is watched below.
    let out = Command::new(cmd)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=IPOW_RUSTC_VERSION={version}");
    let revision = output("git", &["describe", "--always", "--dirty", "--abbrev=12"])
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=IPOW_GIT_REVISION={revision}");
    // A commit, a checkout or an edit changes the revision (or its -dirty mark).
    for path in [
        ".git/HEAD",
        ".git/index",
        ".git/refs",
        ".git/packed-refs",
        "src",
        "Cargo.toml",
    ] {
        // Only paths that exist: cargo counts a missing one as changed on every build (a fresh
        // clone has no .git/packed-refs), which rebuilt the crate every time.
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
