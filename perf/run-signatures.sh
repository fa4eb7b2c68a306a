#!/usr/bin/env bash
# Records the signature rule's benchmarks (crypto::verify: single check, valid batches of 64,
# 256 and 1024, the contract path at B = 32 on valid contracts, ipow's mix and 5% bad) beside
# the bare ring loop and ed25519-dalek's batch, and IPOW's period (decided tx/s at q = 1, 3, 5
# against the bare ring rate), into perf/runs/<date>-<machine>-signatures/.
# Usage: perf/run-signatures.sh   (from the repository root; about 4 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
groups="signature_rule|verify_contract_signatures|ipow_period"
cmd="cargo bench --bench bench_main -- '$groups'"
run=$(perf/start-run.sh signatures "$cmd")
cargo bench --bench bench_main -- "$groups" 2>&1 | tee "$run/criterion.txt"
python3 perf/summarize.py "$run" signature_rule verify_contract_signatures ipow_period > /dev/null
cat "$run/env.txt" "$run/summary.md"
