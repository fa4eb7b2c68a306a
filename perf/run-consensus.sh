#!/usr/bin/env bash
# Records the consensus engine's figures into perf/runs/<date>-<machine>-consensus/: the PoW
# nonce search against compress256, IPOW against the bare ring verify rate / q (criterion), and
# the sweep IPOW q = 1, 3, 5, 7 against PoW 16, 20, 24, 28 bits on 100,000 transactions.
# Usage: perf/run-consensus.sh   (from the repository root; about 6 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(perf/start-run.sh consensus "perf/run-consensus.sh")
cargo bench --bench bench_main -- "pow_nonce_search|ipow_period" 2>&1 | tee "$run/criterion.txt"
python3 perf/summarize.py "$run" "pow_nonce_search" "ipow_period" > /dev/null
cargo build --release
python3 perf/sweep.py "$run" 100000
cat "$run/env.txt" "$run/summary.md"
