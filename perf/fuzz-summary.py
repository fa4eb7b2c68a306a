#!/usr/bin/env python3
"""Summarizes a perf/run-fuzz.sh run from libFuzzer's own logs (libfuzzer-<target>.txt):
executions, libFuzzer's fuzzing seconds and rate (the builds cargo-fuzz runs first are not
counted), edges covered, corpus entries at the end, and the exit. Usage: fuzz-summary.py RUN_DIR
"""
import glob, os, re, sys

run = sys.argv[1]
rows = ["| target | executions | fuzzing seconds | exec/s | edges covered | corpus at the end | outcome |",
        "|---|---:|---:|---:|---:|---:|---|"]
total = 0
for log in sorted(glob.glob(os.path.join(run, "libfuzzer-*.txt"))):
    target = os.path.basename(log)[len("libfuzzer-"):-len(".txt")]
    text = open(log, errors="replace").read()
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    done = re.search(r"Done (\d+) runs in (\d+) second", text)
    final = re.findall(r"#\d+\s+DONE\s+cov: (\d+) ft: \d+ corp: (\d+)/", text)
    crashed = re.search(r"(==\d+==ERROR|panicked at|deadly signal|out-of-memory|malloc\(.*\) exceeds)", text)
    n = int(execs.group(1)) if execs else 0
    total += n
    secs = int(done.group(2)) if done else None
    rate = f"{n / max(secs, 1):.0f}" if secs is not None else "-"
    cov, corp = final[-1] if final else ("-", "-")
    outcome = f"FAILED: {crashed.group(1)}" if crashed else ("clean" if done else "did not finish")
    rows.append(f"| {target} | {n} | {secs if secs is not None else '-'} | {rate} | {cov} | {corp} | {outcome} |")
rows.append("")
rows.append(f"{total} executions in all.")
print("\n".join(rows))
