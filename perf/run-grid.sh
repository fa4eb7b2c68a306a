#!/usr/bin/env bash
# Records the grid figures into perf/runs/<date>-<machine>-grid/: the full PTDF of
# case2869pegase beside pandapower's sparse makePTDF (pinned 3.5.6, in a venv under
# target/, alternating repetitions in one run, matrices compared entry by entry), and flows and
# congestion verdicts of 1,000,000 trades beside a bare pass (criterion).
# Usage: perf/run-grid.sh   (from the repository root; needs PyPI once for the venv; ~3 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(perf/start-run.sh grid "perf/run-grid.sh")
venv=target/perf-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pandapower==3.5.6
fi
cargo build --release
"$venv/bin/python" perf/ptdf_compare.py "$run" datasets/grids/pglib_opf_case2869_pegase.m target/release/ipow 7 \
  | tee "$run/ptdf-compare.txt"
cargo bench --bench bench_main -- "grid_" 2>&1 | tee "$run/criterion.txt"
python3 perf/summarize.py "$run" grid_ptdf_case2869 grid_trades_1M > /dev/null
python3 - "$run" <<'PY' >> "$run/summary.md"
import json, sys
c = json.load(open(sys.argv[1] + "/ptdf-compare.json"))
print(f"- full PTDF of {c['case']} ({c['branches']} x {c['buses']}): pandapower {c['pandapower_version']} sparse makePTDF "
      f"median {c['pandapower_median_s']*1e3:.1f} ms, ipow median {c['ipow_median_s']*1e3:.1f} ms "
      f"(first call in a process {c['ipow_first_call_median_s']*1e3:.1f} ms): **{c['speedup_pandapower_over_ipow']:.2f}x** faster "
      f"(target >= 5x: {'met' if c['speedup_pandapower_over_ipow'] >= 5 else 'NOT met'}); "
      f"{c['speedup_over_ipow_first_call']:.2f}x against ipow's first call; max |difference| {c['max_abs_difference']:.1e}")
PY
grep -E "^grid: " "$run/criterion.txt" >> "$run/summary.md" || true
cat "$run/env.txt" "$run/summary.md"
