#!/usr/bin/env python3
"""Segmentation of N prostate volumes: one voxflow run (list-cases -> foreach: load-volume -> onnx/prostate-seg ->
wasm/mask-cleanup -> write-nifti) against the equivalent Python pipeline (numpy + onnxruntime + scipy: the
same normalization, the centred 60 % of each slice resized to 128x128 with its neighbours (2.5D), the same
model file run on each input and on it mirrored left-right (the manifest's `mirror: [0]`), the two logit maps
averaged, logits back on the crop and edge-padded, largest component and holes filled,
NIfTI out), same intra-op threads, in one run. Prints studies per second, the ratio and the Dice between the
two pipelines' masks.

usage: python3 bench/prostate_seg_vs_python.py [N] [THREADS]
  (reads VOXFLOW_TESTDATA/prostate/promise12/labelled; needs a release build: cargo build --release -p voxflow-cli,
   the built plugins, and onnxruntime==1.31.1, nibabel, scipy in this Python)
"""
import glob
import gzip
import os
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np
import onnxruntime as ort
from scipy import ndimage

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.path.abspath(os.environ.get("VOXFLOW_TESTDATA", os.path.join(REPO, "..", "shared", "data")))
MODEL = os.path.join(REPO, "plugins", "prostate-seg", "prostate_seg.onnx")

WORKFLOW = """apiVersion: voxflow/v1
name: prostate-batch
inputs:
  cases: { type: path }
steps:
  - id: list
    uses: builtin/list-cases
    inputs: { folder: "${{ inputs.cases }}" }
    with: { roles: image }
  - id: per_case
    foreach: "${{ steps.list.outputs.cases }}"
    max_parallel: 1
    steps:
      - id: load
        uses: builtin/load-volume
        inputs: { source: "${{ item.image }}" }
      - id: segment
        uses: onnx/prostate-seg@0.5.0
        inputs: { volume: "${{ steps.load.outputs.volume }}" }
      - id: clean
        uses: wasm/mask-cleanup@0.1.0
        inputs: { mask: "${{ steps.segment.outputs.mask }}" }
        with: { connectivity: 26, keep_largest: true, fill_holes: both }
      - id: write
        uses: builtin/write-nifti
        inputs: { volume: "${{ steps.clean.outputs.mask }}" }
        with: { name: "${{ item.case }}_mask" }
    outputs: { mask: "${{ steps.write.outputs.file }}" }
outputs:
  masks: "${{ steps.per_case.outputs.mask }}"
"""


def resize(slices, h, w):
    """Bilinear, pixel centres aligned (PyTorch's align_corners=False), edges clamped: (n, c, H, W) -> (n, c, h, w)."""
    def axis(src, dst):
        s = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
        lo = np.floor(s).astype(int)
        hi = np.minimum(lo + 1, src - 1)
        return lo, hi, (s - lo).astype(np.float32)
    (y0, y1, fy), (x0, x1, fx) = axis(slices.shape[2], h), axis(slices.shape[3], w)
    rows = slices[:, :, y0] * (1 - fy)[:, None] + slices[:, :, y1] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


def crop_box(n, fraction=0.6):
    """(start, length) of the centred crop the manifest asks for (tiling.crop), as voxflow computes it."""
    length = max(1, int(np.floor(n * fraction + 0.5)))
    return (n - length) // 2, length


def python_pipeline(session, image_path, out_path):
    with gzip.open(image_path) as f:
        volume = np.load(f).astype(np.float32)  # z, y, x
    lo, hi = np.percentile(volume, [0.5, 99.5])
    volume = np.clip((volume - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    z, height, width = volume.shape
    (top, ch), (left, cw) = crop_box(height), crop_box(width)
    small = resize(volume[:, None, top:top + ch, left:left + cw], 128, 128)[:, 0]
    index = np.clip(np.arange(z)[:, None] + np.arange(-1, 2)[None, :], 0, z - 1)
    x = small[index].astype(np.float32)
    run = lambda v: np.concatenate([session.run(None, {"image": v[s:s + 8]})[0] for s in range(0, z, 8)])
    logits = (run(x) + run(np.ascontiguousarray(x[..., ::-1]))[..., ::-1]) / 2
    logits = resize(logits, ch, cw)
    logits = np.pad(logits, ((0, 0), (0, 0), (top, height - top - ch), (left, width - left - cw)), mode="edge")
    mask = logits[:, 1] > logits[:, 0]
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n:
        mask = labels == 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, n + 1))))
    mask = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    mask = ndimage.binary_fill_holes(mask)
    nib.save(nib.Nifti1Image(np.transpose(mask, (2, 1, 0)).astype(np.uint8), np.eye(4)), out_path)
    return mask


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    images = sorted(glob.glob(os.path.join(DATA, "prostate", "promise12", "labelled", "image_*.npy.gz")))[:n]
    voxflow = os.path.join(REPO, "target", "release", "voxflow")
    with tempfile.TemporaryDirectory() as tmp:
        cases = os.path.join(tmp, "cases")
        os.makedirs(cases)
        for path in images:
            os.symlink(path, os.path.join(cases, os.path.basename(path)))
        workflow = os.path.join(tmp, "batch.yaml")
        open(workflow, "w").write(WORKFLOW)
        env = dict(os.environ, VOXFLOW_ONNX_THREADS=str(threads))
        started = time.perf_counter()
        subprocess.run([voxflow, "--data-dir", os.path.join(tmp, "data"), "--plugins", os.path.join(REPO, "plugins"),
                        "run", workflow, "--plain", "--input", f"cases={cases}", "--out", os.path.join(tmp, "out")],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        voxflow_s = time.perf_counter() - started

        started = time.perf_counter()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
        masks = {}
        for path in images:
            case = os.path.basename(path)[len("image_"):-len(".npy.gz")]
            masks[case] = python_pipeline(session, path, os.path.join(tmp, f"{case}_python.nii.gz"))
        python_s = time.perf_counter() - started

        dices = []
        for case, theirs in masks.items():
            ours = np.transpose(np.asarray(nib.load(os.path.join(tmp, "out", "masks", f"{case}_mask.nii.gz")).dataobj), (2, 1, 0)) > 0
            total = ours.sum() + theirs.sum()
            dices.append(1.0 if total == 0 else 2 * np.logical_and(ours, theirs).sum() / total)
    print(f"{len(images)} PROMISE12 volumes, {threads} threads (whole commands, including start-up and writing)")
    print(f"voxflow: {voxflow_s:.2f} s ({len(images) / voxflow_s:.2f} studies/s)")
    print(f"python : {python_s:.2f} s ({len(images) / python_s:.2f} studies/s)")
    print(f"speed-up voxflow vs python: {python_s / voxflow_s:.2f}x; Dice between the two pipelines' masks: "
          f"min {min(dices):.4f}, mean {np.mean(dices):.4f}")


if __name__ == "__main__":
    main()
