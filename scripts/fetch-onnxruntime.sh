#!/usr/bin/env bash
# Fetches ONNX Runtime's shared library (CPU build) from its PyPI wheel: the `ort` crate loads it at run time
# (load-dynamic), so nothing is downloaded while building and an offline hospital can ship the file itself.
# usage: scripts/fetch-onnxruntime.sh [DEST_DIR]   (default target/onnxruntime; prints the library's path)
# voxflow finds it through --onnxruntime / VOXFLOW_ONNXRUNTIME, or beside the voxflow binary; binaries built
# in this repository (and the tests) also look in target/onnxruntime/.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.31.1
dest=${1:-target/onnxruntime}
lib=$dest/libonnxruntime.so
if [ -f "$lib" ]; then
  echo "$lib"
  exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --platform "manylinux_2_28_$(uname -m)" \
  --python-version 3.11 "onnxruntime==$version" -d "$tmp" >&2
python3 - "$tmp" "$lib" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/onnxruntime-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so."))
    with z.open(name) as src, open(sys.argv[2] + ".partial", "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
mv "$lib.partial" "$lib"
echo "$lib"
