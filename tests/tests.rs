//! ipow's one integration-test binary. Each module says what belongs in it.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::expect_used,
    clippy::needless_range_loop,
    missing_docs
)]

/// Parsing, formatting, rounding and overflow of `Energy`, `Price` and `Money`.
mod amounts;
/// The tamperer who recomputes: attacks on a store rebuilt with the library's own encoders.
mod attacks;
/// The bad-input corpus in tests/data/bad/ through the CLI: non-zero exits naming file, place
/// and field; nothing half-written.
mod badinput;
/// The `ipow` binary end to end: exit codes, JSON shape, error messages naming file and field.
mod cli;
// Validators across processes through the binary; one test at a time.
mod cluster;
/// `ipow compare`: sweeps, the report's files adding up and agreeing, repeated decisions, the
/// HTML rendered in headless Chromium.
mod compare;
/// The congestion rule: no overload left, priority order, per-trade verdicts equal the rounds,
/// determinism, and IPOW on a grid.
mod congestion;
/// Consensus: IPOW's Table 1 rules, PoW, Byzantine safety against theory, determinism.
mod consensus;
/// Canonical encoding, ids, signatures, key admission and Ed25519 edge cases.
mod contracts;
/// Dataset files: byte-identical on any thread count, binary-JSON round trip, corrupt files.
mod datasets;
/// MATPOWER parsing, DC power flow against a dense reference, malformed grid files.
mod grids;
/// Hostile input through the CLI: devices, FIFOs, oversize files, values that cannot work.
mod hostile;
/// Generated markets: planted reasons, thread-count independence, skew, readings.
mod markets;
/// RFC 6962 vectors, parallel build against the sequential reference, proofs, diffs, headers.
mod merkle;
/// The paper's example: Table 3 figures, the tamper, and market-file validation.
mod paper;
/// One test per bug found so far, named after the bug.
mod regression;
/// Settlement: the rules on hand-computed examples, the ledger against a sequential model,
/// conservation, overdraft and overflow.
mod settlement;
/// The signature rule: edge-case vectors (speccheck, CCTV), holder-built edges, batches at every
/// position, bisection, and the differential against ed25519-zebra.
mod signatures;
/// The seeded fault simulator: 200 seeds with every invariant, replay, the model of wrong
/// decisions against the protocol model.
mod simulate;
/// The multi-chain store: audits clean and tampered, visibility, proofs, torn tails, kills.
mod store;
/// The tidy check on the source text: no unwrap, expect or panic outside tests and documented
/// invariants, no floating point in money and contract modules, no todo or dbg, module docs.
mod tidy;
/// Helpers the modules share: the binary, pools, scratch directories, an honest IPOW config,
/// the CLI's error check.
mod util;
