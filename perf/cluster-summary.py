#!/usr/bin/env python3
"""Summarizes perf/run-cluster.sh's runs into summary.md: the throughput ratios of the cluster
configurations to the in-process run of the same repetition, the wire's figures, the
supervision node's serial cost per assignment and the scale-out model it implies.

Usage: cluster-summary.py small RUN REPS | cluster-summary.py big RUN"""
import glob, json, statistics, sys

mode, run = sys.argv[1], sys.argv[2]


def load(path):
    return json.load(open(path))


def serial_cost(r):
    """Seconds the supervision node spends per assignment outside the validators: assign, tag
    check and tally (its stage times), encoding and sending asks, decoding answers."""
    t = r["variant_report"].get("tier", {})
    s = r["stages_seconds"]
    assignments = r["work"]["validations"] + r["work"]["timeouts"]
    serial = s["assign"] + s["tally"] + t.get("send_s", 0) + t.get("collect_s", 0)
    return serial / max(assignments, 1), assignments


out = []
if mode == "big":
    r = load(f"{run}/run.json")
    t = r["variant_report"]["tier"]
    time = {l.rsplit(": ", 1)[0].strip(): l.rsplit(": ", 1)[1].strip()
            for l in open(f"{run}/time.txt") if ": " in l}
    out += ["# 10^7 contracts over 2 processes (index mode)", "",
            f"committed {r['accepted']} of {r['submitted']} at {r['committed_per_s']:.0f} tx/s; "
            f"wall {r['wall_seconds']:.0f} s of consensus (GNU time, generation included: "
            f"{time.get('Elapsed (wall clock) time (h:mm:ss or m:ss)')}).", "",
            "| process | peak RSS (MiB) | CPU s |", "|---|---:|---:|",
            f"| 0 (supervision node, validators v mod 2 = 0) | {t['peak_rss_bytes'][0] / 2**20:.0f} | {t['cpu_s_process0']:.0f} |",
            f"| 1 (validators v mod 2 = 1) | {t['peak_rss_bytes'][1] / 2**20:.0f} | {t['cpu_s'][0]:.0f} |", "",
            f"Rounds {t['rounds']}, send-to-frontier {t['send_to_frontier_s']:.1f} s in all "
            f"(longest {t['send_to_frontier_max_s']:.2f} s). CPU s: from each process's first round to "
            "the report (its market's generation excluded); peak RSS: the process's whole life "
            "(VmHWM), generation included; GNU time's maximum over the processes: "
            f"{int(time.get('Maximum resident set size (kbytes)', 0)) / 1024:.0f} MiB."]
    cost, n = serial_cost(r)
    out += [f"Supervision node's serial cost: {cost * 1e6:.2f} us per assignment over {n} assignments."]
    open(f"{run}/summary.md", "w").write("\n".join(out) + "\n")
    print("\n".join(out))
    sys.exit(0)

reps = int(sys.argv[3])
configs = [("2", "bytes"), ("2", "index"), ("3", "bytes"), ("3", "index")]
base = [load(f"{run}/rep{k}-p1-none.json") for k in range(1, reps + 1)]
out += ["# Validators across processes on loopback, q = 3", "",
        f"{base[0]['submitted']} contracts, 64 validators, periods of "
        f"{base[0]['config']['period_txs']}; {reps} interleaved repetitions; "
        "ratio = committed tx/s over the in-process run of the same repetition.", "",
        "| configuration | committed tx/s, median [min, max] | ratio, median [min, max] | "
        "send-to-frontier s | asks bytes/ask | answers bytes/answer |",
        "|---|---:|---:|---:|---:|---:|"]
rates = [b["committed_per_s"] for b in base]
out.append(f"| 1 process | {statistics.median(rates):.0f} [{min(rates):.0f}, {max(rates):.0f}] | 1 | | | |")
serial = [serial_cost(b)[0] for b in base]
per_assignment_validate = []
for p, ship in configs:
    rs = [load(f"{run}/rep{k}-p{p}-{ship}.json") for k in range(1, reps + 1)]
    rate = [r["committed_per_s"] for r in rs]
    ratio = [r["committed_per_s"] / b["committed_per_s"] for r, b in zip(rs, base)]
    t = rs[0]["variant_report"]["tier"]
    ch = {c["name"]: c for c in t["channels"]}
    asks, answers = ch.get("asks", {}), ch.get("answers", {})
    per_ask = asks.get("bytes", 0) / max(t["asks_remote"], 1)
    per_answer = answers.get("bytes", 0) / max(t["asks_remote"], 1)
    wait = statistics.median(r["variant_report"]["tier"]["send_to_frontier_s"] for r in rs)
    out.append(f"| {p} processes, {ship} | {statistics.median(rate):.0f} [{min(rate):.0f}, {max(rate):.0f}] "
               f"| **{statistics.median(ratio):.3f}** [{min(ratio):.3f}, {max(ratio):.3f}] | {wait:.2f} "
               f"| {per_ask:.0f} | {per_answer:.0f} |")
    serial += [serial_cost(r)[0] for r in rs]
    if ship == "bytes" and p == "2":
        bytes_per_ask = per_ask + per_answer
# The model: one supervisor feeds 1 / serial assignments per second; a validator core verifies
# 1 / (validate seconds x cores / assignments) per second.
b = base[0]
cores = b["threads"]
validate_per_assignment = b["stages_seconds"]["validate"] * cores / (b["work"]["validations"] + b["work"]["timeouts"])
s = statistics.median(serial)
feed = 1 / s
core = 1 / validate_per_assignment
out += ["", "## The supervision node's serial cost and the scale-out it allows", "",
        f"- Serial cost per assignment (assign + tag check and tally + encoding and sending asks + "
        f"decoding answers), median over every run: **{s * 1e6:.2f} us**, so one supervision node "
        f"feeds at most **{feed / 1e3:.0f} k assignments/s**.",
        f"- A validator core spends {validate_per_assignment * 1e6:.1f} us per assignment "
        f"(the in-process runs' validate stage x {cores} cores / assignments): "
        f"{core / 1e3:.1f} k assignments/s per core.",
        f"- Ceiling: one supervision node keeps about **{feed / core:.0f} validator cores** busy; "
        f"at q = 3 that is {feed / 3 / 1e3:.0f} k transactions/s decided.",
        f"- `bytes` mode moves {bytes_per_ask:.0f} bytes per assignment (ask with its contract, "
        f"and the answer): a 1 Gb/s link carries {125e6 / bytes_per_ask / 1e3:.0f} k assignments/s "
        f"(about {125e6 / bytes_per_ask / core:.0f} validator cores), a 10 Gb/s link "
        f"{1250e6 / bytes_per_ask / 1e3:.0f} k/s, above the supervision node's own ceiling.",
        "", "Every run's JSON: rep*-p*-*.json in this folder."]
open(f"{run}/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
