#!/usr/bin/env bash
# Runs the whole test suite: fetches ONNX Runtime's library and computes the reference values the tests
# compare with, starts the local PostgreSQL server if it is not running (the tests use both SQLite and
# PostgreSQL), then `cargo test` over the workspace. Real test data is read from
# VOXFLOW_TESTDATA (default ../shared/data); tests whose data is absent say SKIPPED and pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-build-deps.sh
# The WebAssembly plugins the tests build (voxflow plugin build) need this target.
command -v rustup >/dev/null 2>&1 && rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
# ONNX Runtime's library (from its PyPI wheel) for the model steps, into target/onnxruntime/ where the
# binaries of this build tree (and the tests) look for it.
scripts/fetch-onnxruntime.sh >/dev/null
# The third-party TAPS prostate model (lavlab-taps on PyPI), which plugins/taps-prostate describes.
scripts/fetch-taps-model.sh >/dev/null
# Reference values from independent readers and from ONNX Runtime's Python API, on the real test data.
data=${VOXFLOW_TESTDATA:-../shared/data}
if [ -d "$data" ]; then
  python3 -m pip install -q -r scripts/requirements-reference.txt
  python3 scripts/reference_values.py "$data" target/reference-values.json
  python3 scripts/onnx_reference.py "$data" target/onnx-reference
else
  echo "SKIPPED: no test data at $data (reference values not computed)"
fi
export VOXFLOW_TEST_POSTGRES_URL=${VOXFLOW_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set -o pipefail
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
# One closing line over every test binary and doc-test run (cargo prints one result line per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?/) p += $i; if ($(i+1) ~ /^failed;?/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
