#!/usr/bin/env bash
# Records the main job, `ipow compare` on its built-in scenario (datasets/scenarios/default-compare.json
# on case118: IPOW q=3 and q=5 with 10% liars against PoW at 18 and 22 bits, 3 interleaved
# repetitions), into perf/runs/<date>-<machine>-compare/: the terminal table, the report
# (report.md, report.html, summary.json, plots), runs.csv (every table row), and GNU time's wall
# time and peak RSS for the issue's "under two minutes on 2 cores".
# Usage: perf/run-compare.sh   (from the repository root; about a minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(perf/start-run.sh compare "perf/run-compare.sh: target/release/ipow compare --out RUN/report (the main job, report directed into the run)")
cargo build --release --quiet
rm -rf "$run/report"
# The main job exactly as `cargo run --release` runs it, with its report directed into the run.
/usr/bin/time -v target/release/ipow compare --out "$run/report" > "$run/table.txt" 2> "$run/time.txt"
# The per-transaction CSV (240,000 rows, some 10 MB compressed) is not kept in the repository;
# the command above writes it again. runs.csv below is the raw data of every table row.
rm -f "$run/report/transactions.csv"
python3 - "$run" <<'PY'
import json, sys
run = sys.argv[1]
s = json.load(open(f"{run}/report/summary.json"))
# GNU time's keys hold colons ("Elapsed (wall clock) time (h:mm:ss or m:ss): 0:45.20").
time = {l.rsplit(": ", 1)[0].strip(): l.rsplit(": ", 1)[1].strip() for l in open(f"{run}/time.txt") if ": " in l}
out = ["# The main job: built-in comparison on case118", "",
       f"Wall time (GNU time, generation and report included): {time.get('Elapsed (wall clock) time (h:mm:ss or m:ss)')}; "
       f"peak RSS {int(time.get('Maximum resident set size (kbytes)', 0)) / 1024:.0f} MiB.", "",
       "| case | throughput tx/s, median [min, max] | ratio to baseline | p99 ms | p99 ratio | CPU-us/tx | wrong-accept rate (model) |",
       "|---|---:|---:|---:|---:|---:|---:|"]
for c in s["summaries"]:
    t, r, p, pr = c["throughput_per_s"], c["throughput_ratio"], c["latency_p99_us"], c["latency_p99_ratio"]
    out.append(f'| {c["label"]} | {t["median"]:.0f} [{t["min"]:.0f}, {t["max"]:.0f}] | {r["median"]:.3f} [{r["min"]:.3f}, {r["max"]:.3f}] '
               f'| {p["median"]/1e3:.0f} | {pr["median"]:.3f} | {c["cpu_seconds_per_committed"]["median"]*1e6:.1f} '
               f'| {c["wrong_accept_rate"]*100:.3f}% ({c["expected_wrong_accept_rate"]*100:.3f}%) |')
import csv
with open(f"{run}/runs.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(s["runs"][0].keys()))
    w.writeheader()
    w.writerows(s["runs"])
out += ["", "Every run's row: runs.csv; the whole report: report/ (report.md, report.html, summary.json, plots/)."]
open(f"{run}/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
