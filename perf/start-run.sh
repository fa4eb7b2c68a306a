#!/usr/bin/env bash
# Creates perf/runs/<date>-<machine>-TOPIC/, writes the environment a recorded run needs beside
# its numbers into env.txt there, and prints the folder. Usage: run=$(perf/start-run.sh TOPIC "COMMAND")
set -euo pipefail
machine=$(hostname -s 2>/dev/null || echo machine)
run="perf/runs/$(date +%Y-%m-%d)-${machine}-$1"
mkdir -p "$run"
{
  echo "command: $2"
  echo "git: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!perf/runs' || echo ' (uncommitted changes outside perf/runs)')"
  echo "rustc: $(rustc --version)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "cpu flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(sha_ni|avx2|avx512f|avx512ifma)$' | tr '\n' ' ')"
  if [ -n "${RUSTFLAGS:-}" ]; then
    echo "curve backend: RUSTFLAGS=$RUSTFLAGS replaces .cargo/config.toml's build.rustflags: the AVX-512 IFMA backend is NOT compiled in"
  else
    echo "curve backend: .cargo/config.toml's --cfg curve25519_dalek_backend=\"avx512\" in effect (RUSTFLAGS unset); runs on avx512ifma where the CPU flags above list it, else avx2"
  fi
  echo "threads: $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/{print $2" GiB"}')"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$run/env.txt"
echo "$run"
