#!/usr/bin/env bash
# Records the labelled captures in samples/: one per scenario of the fault catalog and
# two healthy baselines, each a fresh 3-node demo cluster (release build) under load.
#
#   scripts/record-samples.sh [OUT_DIR]      (default: samples)
#
# Each run: 10 s of healthy traffic, the fault for 15 s (a baseline: 15 s more of the
# same), healed, 10 s of recovery; every process exports to an embedded receiver.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-samples}"
cargo build --release --quiet
bin=target/release/faultline
mkdir -p "$out"
scenarios=$("$bin" demo scenario list | awk 'NR > 1 { print $1 }')
run() {
  local name=$1; shift
  rm -f "$out/$name.jsonl.zst" "$out/$name.labels.json"
  "$bin" demo record --out "$out" --name "$name" --duration 15s --settle 10s "$@" 2>&1 \
    | grep -v '^faultline record: listening'
}
run baseline-1 --scenario baseline --seed 1
run baseline-2 --scenario baseline --seed 2
seed=10
for s in $scenarios; do
  run "$s" --scenario "$s" --seed "$seed"
  seed=$((seed + 1))
done
ls -la "$out"
