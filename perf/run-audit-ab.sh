#!/usr/bin/env bash
# The audit's rate from two revisions on one store, alternating: builds REV's ipow in a git
# worktree under target/ab-REV (its own target dir) and this tree's, records one store of
# CONTRACTS contracts (no planted invalid: every contract committed) with this tree's binary
# (REV must read its format: ipow-store/3, the store whose genesis names the grid and slot length; `git log -S ipow-store/3` finds the first), then audits it as the supervisor with REV and
# with this tree in turn, twice each, and writes perf/runs/<date>-<machine>-audit-ab/ (each
# audit's JSON and GNU time, summary.md with the rates and the ratio of the medians).
# Usage: perf/run-audit-ab.sh REV [CONTRACTS]   (about 10 minutes for 1,000,000 on 2 cores, 1 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: perf/run-audit-ab.sh REV [CONTRACTS]}
contracts=${2:-1000000}
old=target/ab-$rev
if [ ! -d "$old" ]; then
    git worktree add -f "$old" "$rev" >/dev/null
fi
(cd "$old" && CARGO_TARGET_DIR=target cargo build --release --quiet)
cargo build --release --quiet
old_bin=$(realpath "$old/target/release/ipow")
new_bin=$(realpath target/release/ipow)
run=$(perf/start-run.sh audit-ab "perf/run-audit-ab.sh $rev $contracts")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$new_bin" run --contracts "$contracts" --invalid 0 --store "$tmp/s" --json > "$tmp/run.json"
for round in 1 2; do
    for side in old new; do
        bin=$old_bin
        [ "$side" = new ] && bin=$new_bin
        /usr/bin/time -v "$bin" audit --store "$tmp/s" --secret "$tmp/s.secret" --json \
            > "$run/audit-$side-$round.json" 2> "$run/time-$side-$round.txt"
    done
done
python3 - "$run" "$rev" "$(git rev-parse --short HEAD)" > "$run/summary.md" <<'PY'
import json, statistics, sys
run, rev, head = sys.argv[1:]
rate = {s: [] for s in ("old", "new")}
lines = [f"# Audit of one store, {rev} (old) against {head} (new), alternating", ""]
for r in (1, 2):
    for s in ("old", "new"):
        a = json.load(open(f"{run}/audit-{s}-{r}.json"))
        rss = [l for l in open(f"{run}/time-{s}-{r}.txt") if "Maximum resident" in l][0].split()[-1]
        rate[s].append(a["contracts_per_s"])
        lines.append(f"- round {r}, {s}: {a['contracts_committed']} contracts, {a['contract_copies_checked']} copies, "
                     f"clean {a['clean']}, {a['seconds']:.1f} s, **{a['contracts_per_s']:.0f} contracts/s**, peak RSS {int(rss) / 1024:.0f} MiB")
        assert a["clean"], "the audit must be clean"
ratio = statistics.median(rate["new"]) / statistics.median(rate["old"])
lines += ["", f"new / old, medians: **{ratio:.2f}x** (target >= 3x)"]
print("\n".join(lines))
PY
cat "$run/env.txt" "$run/summary.md"
