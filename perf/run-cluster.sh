#!/usr/bin/env bash
# Records IPOW's validators across processes on loopback (issue 24) into
# perf/runs/<date>-<machine>-cluster/: committed tx/s at q = 3 in one process and over 2 and 3
# processes, asks as contracts (bytes) and as indices (index), REPS interleaved repetitions of
# every configuration (ratios taken within a repetition, medians reported); what crossed the wire;
# the supervision node's serial cost per assignment and the scale-out model it implies; peak
# resident memory per process.
#
# Usage: perf/run-cluster.sh [CONTRACTS] [REPS]   (default 100000 and 5: about 8 minutes)
#        perf/run-cluster.sh big                  (10^7 contracts over 2 processes, index mode,
#                                                  peak RSS per process: about an hour)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = big ]; then
  run=$(perf/start-run.sh cluster-big "perf/run-cluster.sh big: target/release/ipow run --contracts 10000000 --processes 2 --ship index --json")
  cargo build --release --quiet
  /usr/bin/time -v target/release/ipow run --contracts 10000000 --processes 2 --ship index --json \
    > "$run/run.json" 2> "$run/time.txt"
  python3 perf/cluster-summary.py big "$run"
  exit 0
fi
contracts=${1:-100000}
reps=${2:-5}
run=$(perf/start-run.sh cluster "perf/run-cluster.sh $contracts $reps: target/release/ipow run --contracts $contracts --seed 7 --json [--processes N --ship MODE], $reps interleaved repetitions")
cargo build --release --quiet
configs=("1 none" "2 bytes" "2 index" "3 bytes" "3 index")
for r in $(seq 1 "$reps"); do
  for c in "${configs[@]}"; do
    set -- $c
    out="$run/rep$r-p$1-$2.json"
    if [ "$1" = 1 ]; then
      target/release/ipow run --contracts "$contracts" --seed 7 --json > "$out" 2>/dev/null
    else
      target/release/ipow run --contracts "$contracts" --seed 7 --json --processes "$1" --ship "$2" > "$out" 2>/dev/null
    fi
    echo "rep $r: $1 process(es) $2: $(python3 -c "import json,sys; print(round(json.load(open('$out'))['committed_per_s']))") committed/s"
  done
done
python3 perf/cluster-summary.py small "$run" "$reps"
