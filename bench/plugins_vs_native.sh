#!/usr/bin/env bash
# The first WebAssembly plugins through voxflow's host against the same Rust functions native, on the
# ProstateX T2 series (384x384x19), plus the per-call overhead on a 1-voxel input. Release builds of both.
# usage: bench/plugins_vs_native.sh [DATA_DIR] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${VOXFLOW_TESTDATA:-../shared/data}}
cargo build --release --quiet -p voxflow-cli
for p in label-fusion mask-cleanup intensity-normalize; do ./target/release/voxflow plugin build "plugins/$p" >/dev/null; done
cargo run --release --quiet -p voxflow-plugin --example plugins_vs_native -- plugins \
  "$data/prostate/prostatex/ProstateX-0000_t2_tse_tra" "${2:-11}"
