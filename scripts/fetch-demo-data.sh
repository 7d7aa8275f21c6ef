#!/usr/bin/env bash
# Fetches real DICOM files for the demo: the test files that pydicom's wheel ships (MIT-licensed package;
# see pydicom/data/test_files/README.txt inside it for each file's origin). They are unpacked under
# DEST (default .voxflow/demo-data) and never committed.
set -euo pipefail
dest=${1:-.voxflow/demo-data}
version=3.0.2
if [ -d "$dest/pydicom-test-files" ]; then
  echo "demo data already in $dest/pydicom-test-files"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: "pydicom==$version" -d "$tmp"
mkdir -p "$dest"
python3 - "$tmp"/pydicom-"$version"-*.whl "$dest/pydicom-test-files" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "pydicom/data/test_files/"
partial = out.with_name(out.name + ".partial")
count = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = partial / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
            count += 1
partial.rename(out)
print(f"unpacked {count} files from pydicom {wheel.split('-')[1]} into {out}")
PY
