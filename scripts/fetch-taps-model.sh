#!/usr/bin/env bash
# Fetches the TAPS prostate whole-gland model (lavlab-taps 1.1.2 on PyPI, MIT licence) and puts its ONNX file
# next to plugins/taps-prostate/plugin.yaml, which pins its sha256. The model is never committed.
# usage: scripts/fetch-taps-model.sh   (prints the model's path)
set -euo pipefail
cd "$(dirname "$0")/.."
model=plugins/taps-prostate/model_v1.onnx
if [ -f "$model" ]; then
  echo "$model"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps lavlab-taps==1.1.2 -d "$tmp" >&2
python3 - "$tmp" "$model" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/lavlab_taps-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("taps/resources/model_v1.onnx") as src, \
        open(sys.argv[2] + ".partial", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
mv "$model.partial" "$model"
echo "$model"
