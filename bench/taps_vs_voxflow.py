#!/usr/bin/env python3
"""The TAPS prostate model through voxflow (plugins/taps-prostate) against `taps segment` itself, on the same
NIfTI files, same thread count, in one run: wall time of each command (process start, reading, model, writing)
and the Dice between the two masks (and, for PROMISE12 cases, each one's Dice against the true mask).

usage: TAPS=/path/to/venv/bin/taps python3 bench/taps_vs_voxflow.py [DATA_DIR] [PROMISE12_CASES] [THREADS]

Needs: `taps` (pip install lavlab-taps==1.1.2 into a virtual environment: it pulls torch and MONAI), the model
(scripts/fetch-taps-model.sh), ONNX Runtime (scripts/fetch-onnxruntime.sh), nibabel and scipy.
PROMISE12 files carry no spacing: the stated assumption is 0.625 mm in-plane for 256x256 slices, 1.25 mm for
160x160 (and 320 -> 0.5, 384 -> 0.4167), 3.6 mm between slices, axes as ITK's LPS identity.
"""
import gzip
import io
import os
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np
from scipy import ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOXFLOW = os.path.join(ROOT, "target", "release", "voxflow")


def largest_component(mask):
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (np.argmax(sizes) + 1)


def dice(a, b):
    total = a.sum() + b.sum()
    return 2.0 * (a & b).sum() / total if total else 1.0


def promise12_nifti(data, case, out):
    """A PROMISE12 case as NIfTI with the assumed spacing; returns the true mask in NIfTI axis order."""
    load = lambda p: np.load(io.BytesIO(gzip.open(p).read()))
    image = load(os.path.join(data, "prostate/promise12/labelled", f"image_{case}.npy.gz"))
    label = load(os.path.join(data, "prostate/promise12/labelled", f"label_{case}.npy.gz"))
    inplane = {160: 1.25, 256: 0.625, 320: 0.5, 384: 0.4167, 512: 0.3125}.get(image.shape[2], 0.625)
    # (z, y, x) arrays, ITK LPS identity axes -> NIfTI (x, y, z) with an RAS affine.
    affine = np.diag([-inplane, -inplane, 3.6, 1.0])
    nib.save(nib.Nifti1Image(np.transpose(image, (2, 1, 0)).astype(np.int16), affine), out)
    return np.transpose(label, (2, 1, 0)) > 0


def timed(command, env=None):
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def main():
    data = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("VOXFLOW_TESTDATA", os.path.join(ROOT, "../shared/data")))
    promise_cases = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
    taps = os.environ.get("TAPS", "taps")
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "voxflow-cli"], cwd=ROOT, check=True)
    subprocess.run([os.path.join(ROOT, "scripts/fetch-taps-model.sh")], check=True, capture_output=True)
    subprocess.run([os.path.join(ROOT, "scripts/fetch-onnxruntime.sh")], check=True, capture_output=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    work = tempfile.mkdtemp(prefix="taps-bench-")
    cases = []
    prostatex = os.path.join(data, "prostate/prostatex/ProstateX-0000_t2_tse_tra")
    if os.path.isdir(prostatex):
        path = os.path.join(work, "prostatex.nii.gz")
        subprocess.run([VOXFLOW, "convert", prostatex, path], check=True, capture_output=True)
        cases.append(("ProstateX-0000 T2", path, None))
    listing = sorted(os.listdir(os.path.join(data, "prostate/promise12/labelled")))
    names = [f[len("image_"):-len(".npy.gz")] for f in listing if f.startswith("image_")]
    for case in names[:promise_cases]:
        path = os.path.join(work, f"{case}.nii.gz")
        truth = promise12_nifti(data, case, path)
        cases.append((f"PROMISE12 {case}", path, truth))

    print(f"{threads} threads; wall seconds per case, each a whole command (process, reading, model, writing)")
    print(f"{'case':22} {'taps s':>8} {'voxflow s':>10} {'speed-up':>9} {'Dice(v,t)':>10} {'taps Dice':>10} {'voxflow Dice':>13} {'mL':>6}")
    ratios, agreements = [], []
    for name, path, truth in cases:
        taps_out = os.path.join(work, os.path.basename(path).replace(".nii.gz", "_taps.nii.gz"))
        vox_dir = os.path.join(work, os.path.basename(path).replace(".nii.gz", "_voxflow"))
        t_taps = timed([taps, "segment", path, taps_out, "--device", "cpu", "--exact"], env)
        t_vox = timed([VOXFLOW, "plugin", "test", os.path.join(ROOT, "plugins/taps-prostate"),
                       "-i", f"volume={path}", "-p", f"threads={threads}", "--out", vox_dir], env)
        ours = largest_component(np.asarray(nib.load(os.path.join(vox_dir, "mask.nii.gz")).dataobj) > 0)
        img = nib.load(taps_out)
        theirs = np.asarray(img.dataobj) > 0
        agree = dice(ours, theirs)
        ml = ours.sum() * abs(np.linalg.det(img.affine[:3, :3])) / 1000
        d_t = f"{dice(theirs, truth):.3f}" if truth is not None else "-"
        d_v = f"{dice(ours, truth):.3f}" if truth is not None else "-"
        ratios.append(t_taps / t_vox)
        agreements.append(agree)
        print(f"{name:22} {t_taps:8.1f} {t_vox:10.1f} {t_taps / t_vox:8.2f}x {agree:10.4f} {d_t:>10} {d_v:>13} {ml:6.1f}")
    print(f"median speed-up {np.median(ratios):.2f}x; lowest Dice between voxflow and taps {min(agreements):.4f}")


if __name__ == "__main__":
    main()
