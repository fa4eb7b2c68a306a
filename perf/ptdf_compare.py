#!/usr/bin/env python3
"""The full PTDF of a MATPOWER case, ipow beside pandapower's sparse makePTDF, in one run.

Usage: perf/ptdf_compare.py RUN_DIR CASE.m IPOW_BINARY [REPS]

Repetitions alternate (ipow, pandapower, ipow, pandapower, ...) so machine drift hits both.
ipow's time is the median of 3 calls in one process that `ipow grid ptdf --json --repeat 3`
reports for the PTDF alone, the first call (page faults, thread start) reported beside it (the
grid parsed and factorized before the clock starts, as pandapower's arrays are built before its clock starts;
pandapower's makeBdc is inside its clock, as ipow's per-call work is inside its own). Both
matrices are compared entry by entry; the ratio is pandapower's median over ipow's median.
"""
import json, os, re, subprocess, sys, time
import numpy as np
import pandapower
from pandapower.pypower.makePTDF import makePTDF

run_dir, case, ipow = sys.argv[1], sys.argv[2], sys.argv[3]
reps = int(sys.argv[4]) if len(sys.argv) > 4 else 7

def block(text, name):
    m = re.search(r"mpc\.%s\s*=\s*\[(.*?)\]" % name, text, re.S)
    rows = []
    for line in m.group(1).split("\n"):
        line = line.split("%")[0].strip().rstrip(";").strip()
        if line:
            rows.append([float(x) for x in line.split()])
    return rows

text = open(case).read()
base_mva = float(re.search(r"mpc\.baseMVA\s*=\s*([0-9.eE+-]+)", text).group(1))
bus = np.array(block(text, "bus"))
branch = np.array(block(text, "branch"))
numbers = bus[:, 0].astype(int)
index = {n: i for i, n in enumerate(numbers)}
bus[:, 0] = np.arange(len(bus))
branch[:, 0] = [index[int(n)] for n in branch[:, 0]]
branch[:, 1] = [index[int(n)] for n in branch[:, 1]]
# pandapower's branch arrays are wider than MATPOWER's; pad with zeros.
from pandapower.pypower import idx_brch
width = max(v for k, v in vars(idx_brch).items() if k.isupper() and isinstance(v, int)) + 1
branch = np.hstack([branch, np.zeros((branch.shape[0], max(0, width - branch.shape[1])))])
slack = int(np.flatnonzero(bus[:, 1] == 3)[0])

ours_bin = os.path.join(run_dir, "ptdf-ipow.f64")
ipow_times, ipow_first, pp_times = [], [], []
H = None
for r in range(reps):
    out = subprocess.run([ipow, "grid", "ptdf", "--grid", case, "--json", "--repeat", "3"] + (["--out", ours_bin] if r == 0 else []),
                         check=True, capture_output=True, text=True)
    each = json.loads(out.stdout)["seconds_each"]
    ipow_first.append(each[0])
    ipow_times.append(sorted(each)[1])
    H = None
    t = time.perf_counter()
    H = makePTDF(base_mva, bus, branch, slack=slack, using_sparse_solver=True)
    pp_times.append(time.perf_counter() - t)

ours = np.fromfile(ours_bin, dtype="<f8").reshape(H.shape)
os.remove(ours_bin)
diff = float(np.max(np.abs(ours - H)))
med = lambda xs: sorted(xs)[len(xs) // 2]
summary = {
    "case": os.path.basename(case), "buses": int(H.shape[1]), "branches": int(H.shape[0]),
    "repetitions": reps, "pandapower_version": pandapower.__version__,
    "ipow_seconds": ipow_times, "pandapower_seconds": pp_times,
    "ipow_first_call_seconds": ipow_first,
    "ipow_median_s": med(ipow_times), "ipow_first_call_median_s": med(ipow_first), "pandapower_median_s": med(pp_times),
    "speedup_pandapower_over_ipow": med(pp_times) / med(ipow_times),
    "speedup_over_ipow_first_call": med(pp_times) / med(ipow_first),
    "max_abs_difference": diff,
}
json.dump(summary, open(os.path.join(run_dir, "ptdf-compare.json"), "w"), indent=1)
print(json.dumps(summary, indent=1))
