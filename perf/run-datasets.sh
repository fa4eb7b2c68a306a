#!/usr/bin/env bash
# Records dataset generation and loading into perf/runs/<date>-<machine>-datasets/:
# 1. the criterion groups generate_signed_contracts (Market::batch beside bare ring signing of
#    the same three messages per contract, every core) and key_admission (a market's 10,000
#    member keys admitted as one list beside each key admitted alone);
# 2. a 1,000,000-contract market on case2869pegase written by `ipow generate`, then read back
#    nine times each, alternating, by `cat FILE > /dev/null` (page cache), by
#    `ipow dataset verify --dataset FILE` (every checksum checked, every record decoded, every member key
#    admitted) and by `ipow dataset info --dataset FILE` (the open alone: header, members, key admission),
#    so the fixed cost of opening is reported beside the whole.
# Usage: perf/run-datasets.sh   (from the repository root; about 3 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(perf/start-run.sh datasets "perf/run-datasets.sh")
cargo build --release --quiet
cargo bench --bench bench_main --no-run
bench=$(ls -t target/release/deps/bench_main-* | grep -v '\.d$' | head -1)
"$bench" --bench 'generate_signed_contracts|key_admission' 2>&1 | tee "$run/criterion.txt"
file=target/perf-1M.ipowm
target/release/ipow generate --grid datasets/grids/pglib_opf_case2869_pegase.m \
  --participants 10000 --contracts 1000000 --seed 1 --out "$file" --json | tee "$run/generate.json"
cat "$file" > /dev/null
python3 - "$run" "$file" <<'PY'
import json, os, statistics, subprocess, sys, time
run, path = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t
cat, verify, info = [], [], []
for _ in range(9):
    cat.append(timed(["sh", "-c", f"cat {path} > /dev/null"]))
    verify.append(timed(["target/release/ipow", "dataset", "verify", "--dataset", path]))
    info.append(timed(["target/release/ipow", "dataset", "info", "--dataset", path]))
c, v, o = statistics.median(cat), statistics.median(verify), statistics.median(info)
# Each round's own cat / verify: cat's time on a shared machine moves from round to round.
pairs = sorted(a / b for a, b in zip(cat, verify))
gen = json.load(open(f"{run}/generate.json"))
out = {"bytes": size, "contracts": 1_000_000, "cat_s": cat, "verify_s": verify, "info_s": info,
       "cat_gb_per_s": size / c / 1e9, "verify_gb_per_s": size / v / 1e9,
       "verify_contracts_per_s": 1e6 / v, "load_over_cat": c / v,
       "records_over_cat": c / (v - o), "open_share": o / v,
       "pair_ratios": pairs,
       "generate_contracts_per_s": gen["contracts_per_s"]}
json.dump(out, open(f"{run}/loading.json", "w"), indent=1)
lines = ["# Dataset generation and loading", "",
         f"- 1,000,000 contracts on case2869pegase: {size} bytes, generated at {gen['contracts_per_s']:.0f} contracts/s by `ipow generate` (grid placement and transfer limits included)",
         f"- page cache read (`cat`): median {c*1e3:.1f} ms = {size/c/1e9:.2f} GB/s",
         f"- `ipow dataset verify` (checksums, decode, key admission): median {v*1e3:.1f} ms = {size/v/1e9:.2f} GB/s = {1e6/v/1e6:.2f} M contracts/s",
         f"- loading / cat rate: **{c/v:.3f}** (target at least 0.5); round by round {pairs[0]:.3f} to {pairs[-1]:.3f}, cat itself {min(cat)*1e3:.1f} to {max(cat)*1e3:.1f} ms",
         f"- of which the open (`ipow dataset info`: process start, header, 10,000 member keys admitted): median {o*1e3:.1f} ms, {o/v:.0%} of verify",
         f"- the records alone (verify minus info, medians) against cat: {c/(v-o):.3f}", ""]
open(f"{run}/summary.md", "w").write("\n".join(lines))
print("\n".join(lines))
PY
grep -E "time:|thrpt:|^generate|^key_admission|^[a-z_]+/" "$run/criterion.txt" >> "$run/summary.md" || true
# Same-run ratios from criterion's middle estimates.
python3 - "$run" <<'PY' | tee -a "$run/summary.md"
import re, sys
text = open(f"{sys.argv[1]}/criterion.txt").read()
unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
def mid(name):
    m = re.search(re.escape(name) + r"\S*\s+time:\s+\[\S+ \S+ (\S+) (\S+)", text)
    return float(m.group(1)) * unit[m.group(2)]
print()
print(f"- generation: ipow rate / bare ring signing rate: **{mid('ring_bare_3_signatures') / mid('ipow_market_batch'):.2f}x** (target at least 0.8)")
print(f"- key admission of 10,000 keys: each key alone {mid('each_key_alone') * 1e3:.2f} ms, as one list {mid('ipow_admit_all') * 1e3:.2f} ms: **{mid('each_key_alone') / mid('ipow_admit_all'):.1f}x** faster")
PY
rm -f "$file"
