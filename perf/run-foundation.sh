#!/usr/bin/env bash
# Records the foundation benchmarks (Merkle root of 2^20 leaves, contract signature
# verification) into perf/runs/<date>-<machine>/: command, environment, raw CSV, summary.
# Usage: perf/run-foundation.sh   (from the repository root; takes about 3 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="cargo bench --bench bench_main -- merkle_root|verify_contract_signatures"
run=$(perf/start-run.sh foundation "$cmd")
cargo bench --bench bench_main -- "merkle_root|verify_contract_signatures" 2>&1 | tee "$run/criterion.txt"
python3 perf/summarize.py "$run" "merkle_root_2^20" "verify_contract_signatures" > /dev/null
cat "$run/env.txt" "$run/summary.md"
