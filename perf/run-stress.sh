#!/usr/bin/env bash
# Records `ipow stress` into perf/runs/<date>-<machine>-stress/: a market grown from 10^3 to
# 10^7 contracts on case2869pegase through generate+sign, IPOW (q=3 of 64 validators) with the
# congestion check per delivery hour on the trades committed before (the generator's default
# market: a day of hourly slots, 0.15 of the grid's load traded), and settlement, in batches of 2^20; one JSON line per size (stages, latency,
# peak RSS reset per size, CPU seconds) and the whole process's peak RSS from GNU time.
# Usage: perf/run-stress.sh [SIZES]   (from the repository root; about 35 minutes on 2 cores
# for the default 1000,10000,100000,1000000,10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${1:-1000,10000,100000,1000000,10000000}"
cmd="target/release/ipow stress --grid datasets/grids/pglib_opf_case2869_pegase.m --sizes $sizes --json"
run=$(perf/start-run.sh stress "perf/run-stress.sh $sizes")
cargo build --release --quiet
/usr/bin/time -v $cmd > "$run/stress.jsonl" 2> "$run/time.txt"
python3 - "$run" <<'PY'
import json, sys
run = sys.argv[1]
rows = [json.loads(l) for l in open(f"{run}/stress.jsonl")]
peak = [l for l in open(f"{run}/time.txt") if "Maximum resident" in l or "Elapsed" in l]
out = ["# ipow stress on case2869pegase", "",
       "| contracts | setup+generate s | consensus s | settle s | wall s | contracts/s | committed | committed/s | p50 | p99 | max | peak RSS GiB | CPU s | money conserved | curtailed of scheme |",
       "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|"]
for r in rows:
    s, l = r["stages"], r["latency_commit"]
    out.append(f'| {r["contracts"]} | {s["setup"]+s["generate"]:.2f} | {s["consensus"]:.2f} | {s["settle"]:.2f} | {r["wall_seconds"]:.2f} | {r["contracts_per_s"]:.0f} | {r["accepted"]} | {r["committed_per_s"]:.0f} | {l["p50_us"]/1e6:.3f} s | {l["p99_us"]/1e6:.3f} s | {l["max_us"]/1e6:.3f} s | {r["peak_rss_bytes"]/2**30:.2f} | {r["cpu_seconds"]:.1f} | {r["conserved"]} | {r["curtailed"]} of {r["scheme_trades"]} ({100*r["curtailed"]/max(1,r["scheme_trades"]):.2f}%) |')
out += ["", "Whole process (GNU time):", ""] + ["    " + p.strip() for p in peak]
open(f"{run}/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
