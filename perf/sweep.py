#!/usr/bin/env python3
"""The consensus sweep: IPOW at q = 1, 3, 5, 7 against PoW at 16, 20, 24, 28 bits, each
`ipow run --json` on the same generated workload (same seed, same contracts), one after the
other in one invocation. Writes sweep.csv and sweep.md into the run folder given."""
import csv, json, os, subprocess, sys

run_dir, contracts = sys.argv[1], sys.argv[2]
binary = "target/release/ipow"
common = ["run", "--contracts", contracts, "--seed", "7", "--json"]
variants = [("ipow", ["--consensus", "ipow", "--validators", "64", "--quorum", str(q)]) for q in (1, 3, 5, 7)]
variants += [("pow", ["--consensus", "pow", "--difficulty", str(d)]) for d in (16, 20, 24, 28)]
rows = []
for name, args in variants:
    cmd = [binary] + common + args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    v = r["config"]["variant"]
    param = f"q={v['quorum']}" if name == "ipow" else f"{v['difficulty_bits']} bits"
    assert r["accepted"] + r["rejected"] + r["undecided"] == r["submitted"]
    rows.append(dict(variant=name, parameter=param, submitted=r["submitted"], accepted=r["accepted"],
                     rejected=r["rejected"], undecided=r["undecided"], wrong_accepts=r["wrong_accepts"],
                     wrong_rejects=r["wrong_rejects"], committed_per_s=round(r["committed_per_s"], 1),
                     latency_p99_ms=r["latency_commit"]["p99_us"] / 1000, wall_s=round(r["wall_seconds"], 3),
                     cpu_s_per_committed_us=round(r["cpu_seconds_per_committed"] * 1e6, 1),
                     validations=r["work"]["validations"], hashes=r["work"]["hashes"],
                     blocks=len(r["blocks"]), command=" ".join(cmd)))
    print(name, param, rows[-1]["committed_per_s"], "tx/s", file=sys.stderr)
with open(os.path.join(run_dir, "sweep.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
base = next(r for r in rows if r["variant"] == "pow" and r["parameter"] == "20 bits")
lines = ["| variant | parameter | committed tx/s | vs PoW 20 bits | p99 latency | CPU-us per committed tx | validations | hashes | accepted / rejected / undecided |",
         "|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['variant']} | {r['parameter']} | {r['committed_per_s']:.0f} | {r['committed_per_s'] / base['committed_per_s']:.2f}x | "
                 f"{r['latency_p99_ms']:.0f} ms | {r['cpu_s_per_committed_us']:.0f} | {r['validations']} | {r['hashes']} | "
                 f"{r['accepted']} / {r['rejected']} / {r['undecided']} |")
with open(os.path.join(run_dir, "sweep.md"), "w") as f:
    f.write(f"# Sweep: {contracts} transactions, seed 7, closed loop, periods of 10,000\n\n" + "\n".join(lines) + "\n")
print(open(os.path.join(run_dir, "sweep.md")).read())
