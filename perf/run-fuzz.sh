#!/usr/bin/env bash
# Records a long fuzzing run into perf/runs/<date>-<machine>-fuzz/: every target of fuzz/ under
# libFuzzer (coverage-guided, AddressSanitizer) for RUNS executions (default 1,000,000), started
# from the committed corpus, with a 256 MiB malloc limit (an allocation sized by an untrusted
# length fails the run); then the stable mutator of tests/fuzz.rs for the same count.
# New corpus entries go to a scratch directory, so the committed corpus stays as it is.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Usage: perf/run-fuzz.sh [RUNS]   (from the repository root; about 15 minutes on 2 cores, a
# few of them the AddressSanitizer build)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
run=$(perf/start-run.sh fuzz "perf/run-fuzz.sh $runs")
cargo +nightly fuzz --version >> "$run/env.txt"
targets=$(cd fuzz && cargo +nightly fuzz list --fuzz-dir .)
(cd fuzz && cargo +nightly fuzz build -O --fuzz-dir .) 2>&1 | tail -1
scratch=$(mktemp -d)
for t in $targets; do
    mkdir -p "$scratch/$t"
    set +e
    (cd fuzz && cargo +nightly fuzz run -O --fuzz-dir . "$t" "$scratch/$t" "corpus/$t" -- \
        -runs="$runs" -seed=1 -malloc_limit_mb=256 -rss_limit_mb=2048 -print_final_stats=1) \
        > "$run/libfuzzer-$t.txt" 2>&1
    set -e
done
python3 perf/fuzz-summary.py "$run" > "$run/summary.md"
rm -rf "$scratch"
echo >> "$run/summary.md"
echo "Stable mutator (tests/fuzz.rs), $runs mutations per target:" >> "$run/summary.md"
echo >> "$run/summary.md"
IPOW_FUZZ_RUNS=$runs cargo test --release --test fuzz -- --nocapture 2>&1 \
    | grep -E '^[a-z_]+: [0-9]+ corpus files|test result' | sed 's/^/    /' >> "$run/summary.md"
cat "$run/env.txt" "$run/summary.md"
