#!/usr/bin/env bash
# Records the end-to-end period and dataset I/O benchmarks into perf/runs/<date>-<machine>-period/:
# one whole period on case57 (congestion context, validation, tally, seal) for IPOW q=3 and PoW
# 8 bits beside one ring verification of the period's signatures, and the dataset reader and
# writer beside a bare read of the same file (criterion, raw.csv and summary.md with the ratios).
# Usage: perf/run-period.sh   (from the repository root; about 3 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(perf/start-run.sh period "perf/run-period.sh")
cargo bench --bench bench_main -- "end_to_end_period_case57|dataset_io" 2>&1 | tee "$run/criterion.txt"
python3 perf/summarize.py "$run" "end_to_end_period_case57" "dataset_io" > /dev/null
cat "$run/env.txt" "$run/summary.md"
