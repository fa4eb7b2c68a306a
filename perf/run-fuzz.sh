#!/usr/bin/env bash
# Records a long fuzzing run into perf/runs/<date>-<machine>-fuzz/: every target of fuzz/ under
# libFuzzer (coverage-guided, AddressSanitizer) for RUNS executions (default 100,000), started
# from the committed corpus, with a 256 MiB malloc limit (an allocation sized by an untrusted
# length fails the run); then the stable mutator of tests/fuzz.rs for the same count.
# New corpus entries go to a scratch directory, so the committed corpus stays as it is.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Usage: perf/run-fuzz.sh [RUNS]   (from the repository root; about 20 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100000}
run=$(perf/start-run.sh fuzz "perf/run-fuzz.sh $runs")
cargo +nightly fuzz --version >> "$run/env.txt"
targets=$(cd fuzz && cargo +nightly fuzz list --fuzz-dir .)
(cd fuzz && cargo +nightly fuzz build -O --fuzz-dir .) 2>&1 | tail -1
scratch=$(mktemp -d)
echo "| target | executions | seconds | exec/s | coverage (edges) | corpus after | crashes |" > "$run/summary.md"
echo "|---|---:|---:|---:|---:|---:|---:|" >> "$run/summary.md"
for t in $targets; do
    mkdir -p "$scratch/$t"
    log="$run/libfuzzer-$t.txt"
    start=$(date +%s.%N)
    set +e
    (cd fuzz && cargo +nightly fuzz run -O --fuzz-dir . "$t" "$scratch/$t" "corpus/$t" -- \
        -runs="$runs" -seed=1 -malloc_limit_mb=256 -rss_limit_mb=2048 -print_final_stats=1) \
        > "$log" 2>&1
    status=$?
    set -e
    end=$(date +%s.%N)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
    corpus=$(ls "$scratch/$t" | wc -l)
    crashes=$([ "$status" -eq 0 ] && echo 0 || echo "1 (exit $status, see libfuzzer-$t.txt)")
    secs=$(python3 -c "print(f'{$end - $start:.1f}')")
    rate=$(python3 -c "print(f'{$execs / ($end - $start):.0f}')")
    echo "| $t | $execs | $secs | $rate | $cov | $corpus | $crashes |" >> "$run/summary.md"
done
rm -rf "$scratch"
echo >> "$run/summary.md"
echo "Stable mutator (tests/fuzz.rs), $runs mutations per target:" >> "$run/summary.md"
echo >> "$run/summary.md"
IPOW_FUZZ_RUNS=$runs cargo test --release --test fuzz -- --nocapture 2>&1 \
    | grep -E '^[a-z_]+: [0-9]+ corpus files|test result' | sed 's/^/    /' >> "$run/summary.md"
cat "$run/env.txt" "$run/summary.md"
