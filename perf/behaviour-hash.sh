#!/usr/bin/env bash
# The behaviour check: hashes what a fixed set of commands decides, writes and reports (timings,
# thread counts and the machine left out), one line per command. A change that must not change
# behaviour (a refactor, a faster path) leaves every line as it was.
#
#   perf/behaviour-hash.sh [IPOW_BINARY]          print the hashes
#   perf/behaviour-hash.sh --check [IPOW_BINARY]  compare with perf/behaviour.sha256; exit 1 on
#                                                 any difference, naming the command
#
# The binary defaults to target/debug/ipow (what `cargo test` builds); a release build gives the
# same hashes (no fast-math: floats are the same on every profile). A change that is meant to
# change behaviour updates perf/behaviour.sha256 in the same commit and says why.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
bin=${1:-target/debug/ipow}
[ -x "$bin" ] || { echo "behaviour-hash: no binary at $bin (cargo build first)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grid=datasets/grids/pglib_opf_case14_ieee.m

# Keeps what a run decides; drops what a clock or the machine decides.
strip() {
    python3 -c '
import csv, json, re, sys
TIMED = re.compile(r"(latency|wall|throughput|cpu|seconds|_per_s|_ratio|^threads$|^machine$|_ns$|^store$|^source$|^grid$|hashes|hash_rate|^curve_backend$)")
def clean(v):
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if not TIMED.search(k)}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v
kind, path = sys.argv[1], sys.argv[2]
if kind == "json":
    text = open(path).read()
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        docs = [json.loads(l) for l in text.splitlines() if l.strip()]
    for d in docs:
        print(json.dumps(clean(d), sort_keys=True))
else:
    rows = csv.DictReader(open(path))
    for r in rows:
        print(json.dumps({k: x for k, x in r.items() if not TIMED.search(k)}, sort_keys=True))
' "$@"
}
digest() { sha256sum | cut -c1-64; }
line() { printf '%s  %s\n' "$1" "$2"; }

out=$work/out.txt
{
    "$bin" paper --json >"$work/paper.json"
    line "$(strip json "$work/paper.json" | digest)" "ipow paper --json"

    "$bin" run --json --contracts 3000 --seed 7 --grid "$grid" --period-txs 500 --byzantine 0.2 \
        >"$work/run-ipow.json"
    line "$(strip json "$work/run-ipow.json" | digest)" "ipow run --json (ipow, case14, byzantine 0.2)"

    "$bin" run --json --contracts 1000 --seed 8 --consensus pow --difficulty 10 --period-txs 300 \
        >"$work/run-pow.json"
    line "$(strip json "$work/run-pow.json" | digest)" "ipow run --json (pow, no grid)"

    "$bin" generate --grid "$grid" --participants 60 --contracts 3000 --seed 11 \
        --out "$work/market.ipowm" --json >/dev/null
    line "$(digest <"$work/market.ipowm")" "ipow generate (binary dataset bytes)"
    "$bin" dataset convert --dataset "$work/market.ipowm" --out "$work/market.json" >/dev/null
    line "$(digest <"$work/market.json")" "ipow dataset convert (JSON dataset bytes)"

    # A fixed node secret (public: it keys this check's store only), so the store's bytes repeat.
    printf '%s\n' 0707070707070707070707070707070707070707070707070707070707070707 >"$work/secret"
    chmod 600 "$work/secret"
    "$bin" run --contracts 2000 --seed 5 --grid "$grid" --period-txs 400 --byzantine 0.25 \
        --store "$work/store" --secret "$work/secret" --json >"$work/run-store.json"
    line "$(strip json "$work/run-store.json" | digest)" "ipow run --store (report)"
    line "$(digest <"$work/store/ledger.log")" "ipow run --store (ledger.log bytes)"
    line "$(digest <"$work/store/commits.idx")" "ipow run --store (commits.idx bytes)"
    # Byzantine validators sealed forgeries: the audit names them and exits 1.
    status=0
    "$bin" audit --store "$work/store" --secret "$work/secret" --json >"$work/audit.json" \
        2>/dev/null || status=$?
    [ "$status" -le 1 ] || { echo "behaviour-hash: audit failed with $status" >&2; exit 2; }
    line "$(strip json "$work/audit.json" | digest)" "ipow audit --json"

    "$bin" compare --scenario datasets/scenarios/paper-market.json --out "$work/report" >/dev/null 2>&1
    line "$(strip json "$work/report/summary.json" | digest)" "ipow compare paper-market (summary.json)"
    line "$(strip csv "$work/report/transactions.csv" | digest)" "ipow compare paper-market (transactions.csv)"
} >"$out"

if [ "$check" = 1 ]; then
    if diff -u perf/behaviour.sha256 "$out"; then
        echo "behaviour-hash: $(wc -l <"$out") outputs as recorded in perf/behaviour.sha256"
    else
        echo "behaviour-hash: outputs differ from perf/behaviour.sha256 (above: - recorded, + now)" >&2
        exit 1
    fi
else
    cat "$out"
fi
