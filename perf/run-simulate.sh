#!/usr/bin/env bash
# Records a long run of the seeded fault simulator into perf/runs/<date>-<machine>-simulate/:
# SEEDS seeds (default 5,000) from seed 0, every invariant checked per seed, with the totals
# (faults injected by kind, wrong decisions within and above the safety bound against the model)
# as text and JSON. The CI test runs seeds 0..200 of the same sequence.
# Usage: perf/run-simulate.sh [SEEDS]   (from the repository root; about 15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-5000}
run=$(perf/start-run.sh simulate "perf/run-simulate.sh $seeds")
cargo build --release 2>&1 | tail -1
set +e
/usr/bin/time -v target/release/ipow simulate --seeds "$seeds" --json > "$run/summary.json" 2> "$run/time.txt"
status=$?
set -e
python3 - "$run" "$status" <<'PY'
import json, sys
run, status = sys.argv[1], int(sys.argv[2])
s = json.load(open(f"{run}/summary.json"))
t = s["tail_above_bound"]
rss = [l for l in open(f"{run}/time.txt") if "Maximum resident" in l]
lines = [
    f"exit status {status}; git {s['revision']}",
    f"seeds {s['first_seed']}..{s['first_seed'] + s['seeds']}: {s['passed']} passed, {len(s['failures'])} failed, in {s['seconds']:.0f} s",
    f"{s['periods']} periods, {s['transactions']} transactions through validate, seal, settle and store",
    f"within the safety bound: {s['seeds_within_bound']} seeds, {s['wrong_within_bound']} wrong decisions",
    f"above it: {t['wrong']} wrong of {t['decided']} decided in their first period, {t['expected']:.1f} expected (sd {t['variance'] ** 0.5:.1f}, z = {s['tail_z']:.2f})",
    "",
    "| fault injected | count |",
    "|---|---:|",
] + [f"| {k} | {v} |" for k, v in s["faults"].items()] + [""] + [f"FAILED {f}" for f in s["failures"]] + [l.strip() for l in rss]
open(f"{run}/summary.md", "w").write("\n".join(lines) + "\n")
PY
cat "$run/env.txt" "$run/summary.md"
