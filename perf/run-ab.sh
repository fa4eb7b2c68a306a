#!/usr/bin/env bash
# Same bench, two revisions, alternating on this machine: the check that a change which should
# not change speed (a refactor, a layout move) did not. Builds REV in a git worktree under
# target/ab-REV (its own target dir), then runs GROUP from REV and from the working tree in turn,
# ROUNDS times, and writes perf/runs/<date>-<machine>-ab-GROUP/ with every criterion line and the
# medians per side.
# Usage: perf/run-ab.sh REV [GROUP] [ROUNDS]
#   e.g. perf/run-ab.sh 66cba4d end_to_end_period_case57 2   (about 12 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: perf/run-ab.sh REV [GROUP] [ROUNDS]}
group=${2:-end_to_end_period_case57}
rounds=${3:-2}
old=target/ab-$rev
if [ ! -d "$old" ]; then
    git worktree add -f "$old" "$rev" >/dev/null
fi
(cd "$old" && CARGO_TARGET_DIR=target cargo bench --bench bench_main --no-run >/dev/null 2>&1)
cargo bench --bench bench_main --no-run >/dev/null 2>&1
find_bench() { realpath "$(ls -t "$1"/target/release/deps/bench_main-* | grep -v '\.d$' | head -1)"; }
old_bin=$(find_bench "$old")
new_bin=$(find_bench .)
run=$(perf/start-run.sh "ab-$group" "perf/run-ab.sh $rev $group $rounds")
log="$run/criterion.txt"
for round in $(seq 1 "$rounds"); do
    for side in old new; do
        if [ "$side" = old ]; then dir=$old; bin=$old_bin; else dir=.; bin=$new_bin; fi
        echo "=== $side ($([ "$side" = old ] && echo "$rev" || git rev-parse --short HEAD)) round $round" >>"$log"
        (cd "$dir" && "$bin" --bench "$group" 2>&1 | grep -E "^$group|^ +time:" | grep -v "%" ) >>"$log"
    done
done
python3 - "$log" >"$run/summary.md" <<'PY'
import re, sys, statistics
side = None
times = {}
name = None
for line in open(sys.argv[1]):
    m = re.match(r"=== (old|new)", line)
    if m:
        side = m.group(1)
        continue
    if not line.startswith(" "):
        name = line.strip()
        continue
    m = re.search(r"\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
    if m:
        v = float(m.group(1)) * {"ms": 1e-3, "s": 1.0, "µs": 1e-6, "us": 1e-6}[m.group(2)]
        times.setdefault(name, {}).setdefault(side, []).append(v)
print("| bench | old (median s) | new (median s) | new / old time |")
print("|---|---:|---:|---:|")
for n, s in times.items():
    o, w = statistics.median(s.get("old", [0])), statistics.median(s.get("new", [0]))
    print(f"| {n} | {o:.4f} | {w:.4f} | {w / o if o else 0:.3f} |")
PY
cat "$run/env.txt" "$run/summary.md"
