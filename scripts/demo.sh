#!/usr/bin/env bash
# The main job on a fresh machine: build voxflow, fetch real DICOM files (pydicom's test files, from PyPI),
# and run the bundled inventory workflow on them, recorded in the embedded SQLite database (.voxflow/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-build-deps.sh
scripts/fetch-demo-data.sh .voxflow/demo-data
cargo build --release --quiet -p voxflow-cli
voxflow=./target/release/voxflow
$voxflow validate workflows/dicom-inventory.yaml
$voxflow run workflows/dicom-inventory.yaml \
  --input studies=.voxflow/demo-data/pydicom-test-files \
  --out .voxflow/demo-out
python3 - <<'PY'
import json, collections
report = json.load(open(".voxflow/demo-out/report.json"))
formats = collections.Counter(e["format"] if e else "failed" for e in report)
print(f"inventory of {len(report)} files:", ", ".join(f"{n} {f}" for f, n in formats.most_common()))
PY
echo "recorded runs (voxflow runs list):"
$voxflow runs list --limit 3
