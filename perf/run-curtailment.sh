#!/usr/bin/env bash
# Records how much of a generated market the congestion rule curtails at the generator's default
# settings (deliveries over a day of hourly slots, 0.15 of the grid's load traded per hour), on
# every shipped grid, into perf/runs/<date>-<machine>-curtailment/: one `ipow run --grid G
# --json` per grid (20,000 contracts; 100,000 on case2869pegase, periods of 10,000), and a table
# of scheme trades, curtailed share, slots, residual branches and the committed base's share.
# Usage: perf/run-curtailment.sh [CONGESTION]   (from the repository root; about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
congestion="${1:-0.15}"
run=$(perf/start-run.sh curtailment "perf/run-curtailment.sh $congestion")
cargo build --release --quiet
for g in case14_ieee case30_ieee case57_ieee case118_ieee case300_ieee case2869_pegase; do
  n=20000
  [ "$g" = case2869_pegase ] && n=100000
  target/release/ipow run --grid "datasets/grids/pglib_opf_$g.m" --contracts "$n" \
    --congestion "$congestion" --json > "$run/$g.json"
done
python3 - "$run" "$congestion" <<'PY'
import json, sys, glob, os
run, congestion = sys.argv[1], sys.argv[2]
out = [f"# Curtailment of generated markets at congestion {congestion}", "",
       "| grid | contracts | scheme trades | curtailed | share | slots | residual (by base alone) | base share of overloaded flow, mean / max |",
       "|---|---:|---:|---:|---:|---:|---:|---:|"]
for g in ["case14_ieee", "case30_ieee", "case57_ieee", "case118_ieee", "case300_ieee", "case2869_pegase"]:
    r = json.load(open(f"{run}/{g}.json"))
    c = r["congestion"]
    share = c["curtailed_trades"] / max(1, c["scheme_trades"])
    out.append(f'| {g} | {r["submitted"]} | {c["scheme_trades"]} | {c["curtailed_trades"]} | {share:.2%} | {len(c["slots"])} | '
               f'{c["residual_overloads"]} ({len(c["branches_overloaded_by_base"])}) | {c["base_share_mean"]:.0%} / {c["base_share_max"]:.0%} |')
open(f"{run}/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
