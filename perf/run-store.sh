#!/usr/bin/env bash
# Records the durable store's cost into perf/runs/<date>-<machine>-store/:
# 1. criterion, side by side: an IPOW run (4096 tx, q=3, 4 periods) with and without the store,
#    and an audit of that store beside the same checks from memory (raw.csv, summary.md);
# 2. a 1,000,000-contract IPOW run (no planted invalid, so all are committed) with --store (run.json, run-time.txt), then
#    `ipow audit --baseline --secret` of it (block signatures and proof tags checked too): the
#    audit's rate beside the same contracts' signatures and Merkle roots checked again from
#    memory in the same process (audit.json, audit-time.txt);
# 3. the same 100,000-contract run with and without --store, alternating, twice each
#    (throughput.txt: committed tx/s of each and the ratio of the medians).
# Usage: perf/run-store.sh   (from the repository root; about 15 minutes on 2 cores, 2 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(perf/start-run.sh store "perf/run-store.sh")
cargo bench --bench bench_main -- "store_run|store_audit" 2>&1 | tee "$run/criterion.txt"
python3 perf/summarize.py "$run" "store_run" "store_audit" > /dev/null
cargo build --release
bin=target/release/ipow
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/time -v "$bin" run --contracts 1000000 --invalid 0 --store "$tmp/1m" --json > "$tmp/run.json" 2> "$run/run-time.txt"
python3 - "$tmp/run.json" > "$run/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
keep = ["variant", "threads", "seed", "submitted", "accepted", "rejected", "undecided", "wall_seconds",
        "committed_per_s", "stages_seconds", "cpu_seconds"]
print(json.dumps({k: r[k] for k in keep} | {"blocks": len(r["blocks"])}, indent=2))
PY
du -sb "$tmp/1m" > "$run/store-size.txt"
/usr/bin/time -v "$bin" audit --store "$tmp/1m" --secret "$tmp/1m.secret" --baseline --json \
    > "$run/audit.json" 2> "$run/audit-time.txt"
rm -rf "$tmp/1m" "$tmp/1m.secret"
: > "$run/throughput.txt"
for rep in 1 2; do
  for mode in without with; do
    extra=()
    [ "$mode" = with ] && extra=(--store "$tmp/s-$rep")
    "$bin" run --contracts 100000 --json "${extra[@]}" > "$tmp/t.json"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], round(r['committed_per_s'],1), round(r['stages_seconds']['record'],3))" \
      "$tmp/t.json" "$mode" "$rep" >> "$run/throughput.txt"
    rm -rf "$tmp/s-$rep" "$tmp/s-$rep.secret"
  done
done
python3 - "$run/throughput.txt" >> "$run/summary.md" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda m: statistics.median(float(r[2]) for r in rows if r[0] == m)
print("\n## 100,000-contract run with and without --store (alternating, 2 each)\n")
for r in rows:
    print(f"- {r[0]} store, repetition {r[1]}: {r[2]} committed tx/s (record stage {r[3]} s)")
print(f"- with / without, medians: **{med('with') / med('without'):.3f}** (target >= 0.80)")
a = json.load(open(sys.argv[1].replace("throughput.txt", "audit.json")))
b = a["baseline"]
print("\n## Audit of the 1,000,000-contract store (`ipow audit --baseline`)\n")
print(f"- {a['periods']} periods, {a['contracts_committed']} contracts, {a['contract_copies_checked']} copies, "
      f"{a['block_signatures_checked']} block signatures, {a['tags_checked']} proof tags ({a['tag_check']}), "
      f"clean: {a['clean']}")
print(f"- audit {a['contracts_per_s']:.0f} contracts/s over {a['seconds']:.1f} s; in memory "
      f"{b['contracts_per_s']:.0f} contracts/s over {b['seconds']:.1f} s: **{b['audit_ratio']:.3f}** (target >= 0.70)")
PY
cat "$run/env.txt" "$run/summary.md"
