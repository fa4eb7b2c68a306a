#!/usr/bin/env bash
# Records the consensus engine's figures into perf/runs/<date>-<machine>-consensus/: the PoW
# nonce search against compress256, IPOW against the bare ring verify rate / q (criterion), and
# the sweep IPOW q = 1, 3, 5, 7 against PoW 16, 20, 24, 28 bits on 100,000 transactions.
# Usage: perf/run-consensus.sh   (from the repository root; about 6 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
machine=$(hostname -s 2>/dev/null || echo machine)
run="perf/runs/$(date +%Y-%m-%d)-${machine}-consensus"
mkdir -p "$run"
{
  echo "command: perf/run-consensus.sh"
  echo "git: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!perf/runs' || echo ' (uncommitted changes outside perf/runs)')"
  echo "rustc: $(rustc --version)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "cpu flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(sha_ni|avx2|avx512f|avx512ifma)$' | tr '\n' ' ')"
  echo "threads: $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/{print $2" GiB"}')"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$run/env.txt"
cargo bench --bench bench_main -- "pow_nonce_search|ipow_period" 2>&1 | tee "$run/criterion.txt"
python3 perf/summarize.py "$run" "pow_nonce_search" "ipow_period" > /dev/null
cargo build --release
python3 perf/sweep.py "$run" 100000
cat "$run/env.txt" "$run/summary.md"
