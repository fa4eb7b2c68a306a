#!/usr/bin/env bash
# Records settlement at scale into perf/runs/<date>-<machine>-settlement/: ten million contracts
# among 100,000 accounts, the ledger beside a bare sequential Vec<i64> loop, atomics and
# dashmap, and the bench process's peak RSS (fixture included) from GNU time.
# Usage: perf/run-settlement.sh   (from the repository root; about 2 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(perf/start-run.sh settlement "perf/run-settlement.sh")
cargo bench --bench bench_main --no-run
bin=$(ls -t target/release/deps/bench_main-* | grep -v '\.d$' | head -1)
/usr/bin/time -v "$bin" --bench settle_10M 2>&1 | tee "$run/criterion.txt"
grep -E "Maximum resident set size|Elapsed" "$run/criterion.txt" > "$run/peak-memory.txt"
python3 perf/summarize.py "$run" "settle_10M" > /dev/null
cat "$run/peak-memory.txt" >> "$run/summary.md"
cat "$run/env.txt" "$run/summary.md"
