#!/usr/bin/env bash
# Rebuilds every market in manifest.json (or only those named) and checks its SHA-256.
# Usage: datasets/markets/regenerate.sh [FILE...]   (from anywhere; builds ipow in release)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
cargo build --release --quiet
bin="$PWD/target/release/ipow"
cd "$here"
python3 - "$bin" "$@" <<'PY'
import hashlib, json, subprocess, sys
bin, wanted = sys.argv[1], set(sys.argv[2:])
bad = 0
for m in json.load(open("manifest.json"))["markets"]:
    if wanted and m["file"] not in wanted:
        continue
    subprocess.run([bin, *m["args"]], check=True)
    digest = hashlib.sha256(open(m["file"], "rb").read()).hexdigest()
    ok = digest == m["sha256"]
    bad += not ok
    print(f'{m["file"]}: {"ok" if ok else "MISMATCH " + digest}')
sys.exit(1 if bad else 0)
PY
