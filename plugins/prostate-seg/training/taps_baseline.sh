#!/usr/bin/env bash
# The off-the-shelf baseline beside the ablation table: TAPS (onnx/taps-prostate, fetched with
# scripts/fetch-taps-model.sh) through workflows/prostate-evaluate.yaml on the validation cases of
# data.split, in two groups by in-plane size because PROMISE12 records no spacing: the stated assumption
# is 0.625 mm for 256x256 slices and 1.25 mm for 160x160, 3.6 mm between slices (see
# bench/taps_vs_voxflow.py); other sizes are left out. Writes runs/taps/<group>/{metrics.csv,summary.json}.
#
# usage: taps_baseline.sh [VOXFLOW_BINARY]   (default: the repository's release build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
voxflow=${1:-$repo/target/release/voxflow}
data=${VOXFLOW_TESTDATA:-$repo/../shared/data}/prostate/promise12/labelled
runs=${RUNS:-$here/runs}/taps
mkdir -p "$runs"
workflow="$runs/taps-evaluate.yaml"
# The evaluation workflow with TAPS in place of voxflow's axial network, and without the view networks and
# their fusion (TAPS's mask goes straight to mask-cleanup).
sed -E -e 's#onnx/prostate-seg@[0-9.]+#onnx/taps-prostate@1.1.2#' -e '/with: \{ variant: /d' \
  -e '/- id: sagittal/,/with: \{ ends_inset/d' -e 's#steps\.fuse\.outputs\.mask#steps.segment.outputs.mask#' \
  "$repo/workflows/prostate-evaluate.yaml" > "$workflow"
validation=$(cd "$here" && ${PYTHON:-python3} -c "import data; print(' '.join(data.split(data.data_dir('${data%/labelled}'))[1]))")
for group in "256 0.625" "160 1.25"; do
  set -- $group
  cases="$runs/cases-$1"
  rm -rf "$cases" && mkdir -p "$cases"
  for case in $validation; do
    size=$(${PYTHON:-python3} -c "import gzip, numpy as np; print(np.load(gzip.open('$data/image_$case.npy.gz')).shape[2])")
    if [ "$size" = "$1" ]; then
      ln -s "$data/image_$case.npy.gz" "$data/label_$case.npy.gz" "$cases/"
    fi
  done
  [ -n "$(ls "$cases")" ] || continue
  "$voxflow" --data-dir "$runs/.voxflow" --plugins "$repo/plugins" run "$workflow" --plain \
    --input "cases=$cases" --param "spacing=$2 $2 3.6" --out "$runs/$1" >/dev/null
  echo "== $1x$1 cases at $2 mm:"; cat "$runs/$1/metrics.csv"
done
