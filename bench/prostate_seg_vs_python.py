#!/usr/bin/env python3
"""Segmentation of N prostate volumes as workflows/prostate-segmentation.yaml does it (0.7.0): one voxflow run
(list-cases -> foreach: load-volume -> onnx/prostate-seg, onnx/prostate-seg-sagittal, onnx/prostate-seg-coronal
-> wasm/probability-fusion -> wasm/mask-cleanup -> write-nifti) against the equivalent Python pipeline (numpy +
onnxruntime + scipy: the same normalization; the axial network on the centred 60 % of each slice resized to
128x128 with its neighbours (2.5D), run on each input and on it mirrored left-right (the manifest's
`mirror: [0]`), the two logit maps averaged, logits back on the crop and edge-padded; each view network on
the planes of the crop resized trilinear to 128^3 with the planes two apart as channels, logits resized back
and edge-padded; the axial probability on the axial mask's extent along z less two slices at each end, the
mean of the three elsewhere, smoothed along z with [0.25, 0.5, 0.25]; largest component and holes filled,
NIfTI out), same intra-op threads, in one run (the networks' numpy rendering is
scripts/prostate_rendering.py, which the tests' reference values also use). Prints studies per second, CPU
seconds (user + system, all threads), the ratio, peak resident memory of each, the Dice between the two
pipelines' masks and voxflow's seconds per step summed over the volumes (from the run's records). MAX_PARALLEL (default 1) is how many volumes the
voxflow run takes at a time (workflows/prostate-evaluate.yaml runs 2); the Python pipeline takes one.

usage: python3 bench/prostate_seg_vs_python.py [N] [THREADS] [MAX_PARALLEL]
  (BENCH_PYTHON_SPINNING=0: the Python pipeline's ONNX Runtime threads sleep when idle, as voxflow's do;
   default 1, ONNX Runtime's own default, under which they spin)
  (reads VOXFLOW_TESTDATA/prostate/promise12/labelled; needs a release build: cargo build --release -p voxflow-cli,
   the built plugins, and onnxruntime==1.31.1, nibabel, scipy in this Python)
"""
import glob
import gzip
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np
import onnxruntime as ort
from scipy import ndimage

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "scripts"))
from prostate_rendering import axial_probability, normalized, view_probability  # noqa: E402  (the shared numpy rendering)
DATA = os.path.abspath(os.environ.get("VOXFLOW_TESTDATA", os.path.join(REPO, "..", "shared", "data")))
MODEL = os.path.join(REPO, "plugins", "prostate-seg", "prostate_seg.onnx")
SPINNING = os.environ.get("BENCH_PYTHON_SPINNING", "1")  # the Python pipeline's ORT intra-op spinning (its default: on)
VIEWS = {view: os.path.join(REPO, "plugins", f"prostate-seg-{view}", f"prostate_seg_{view}.onnx")
         for view in ("sagittal", "coronal")}

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
    max_parallel: {max_parallel}
    steps:
      - id: load
        uses: builtin/load-volume
        inputs: { source: "${{ item.image }}" }
      - id: segment
        uses: onnx/prostate-seg@0.5.0
        inputs: { volume: "${{ steps.load.outputs.volume }}" }
      - id: sagittal
        uses: onnx/prostate-seg-sagittal@0.6.1
        inputs: { volume: "${{ steps.load.outputs.volume }}" }
      - id: coronal
        uses: onnx/prostate-seg-coronal@0.6.1
        inputs: { volume: "${{ steps.load.outputs.volume }}" }
      - id: fuse
        uses: wasm/probability-fusion@0.2.0
        inputs:
          primary: "${{ steps.segment.outputs.probability }}"
          others: ["${{ steps.sagittal.outputs.probability }}", "${{ steps.coronal.outputs.probability }}"]
        with: { ends_inset: 2, axis: 2, smooth_along_axis: 0.25 }
      - id: clean
        uses: wasm/mask-cleanup@0.1.0
        inputs: { mask: "${{ steps.fuse.outputs.mask }}" }
        with: { connectivity: 26, keep_largest: true, fill_holes: both }
      - id: write
        uses: builtin/write-nifti
        inputs: { volume: "${{ steps.clean.outputs.mask }}" }
        with: { name: "${{ item.case }}_mask" }
    outputs: { mask: "${{ steps.write.outputs.file }}" }
outputs:
  masks: "${{ steps.per_case.outputs.mask }}"
"""


def python_pipeline(sessions, image_path, out_path):
    with gzip.open(image_path) as f:
        volume = np.load(f).astype(np.float32)  # z, y, x
    volume = normalized(volume)
    axial = axial_probability(sessions["axial"], volume)
    fused = (axial + sum(view_probability(sessions[view], volume, view) for view in VIEWS)) / 3
    gland = np.nonzero((axial > 0.5).any(axis=(1, 2)))[0]
    if len(gland) and gland[-1] - gland[0] >= 4:
        fused[gland[0] + 2:gland[-1] - 1] = axial[gland[0] + 2:gland[-1] - 1]
    fused = ndimage.convolve1d(fused, [0.25, 0.5, 0.25], axis=0, mode="nearest")
    mask = fused > 0.5
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n:
        mask = labels == 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, n + 1))))
    mask = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    mask = ndimage.binary_fill_holes(mask)
    nib.save(nib.Nifti1Image(np.transpose(mask, (2, 1, 0)).astype(np.uint8), np.eye(4)), out_path)
    return mask


def voxflow_step_seconds(database):
    """(step id, seconds summed over the fan-out) from the run's records, in the order the steps first started."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT step_id, SUM(finished_at - started_at), MIN(started_at) FROM step_runs "
                          "WHERE finished_at IS NOT NULL GROUP BY step_id ORDER BY 3").fetchall()
    return [(step.rsplit(".", 1)[-1], total / 1000) for step, total, _ in rows]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    max_parallel = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    images = sorted(glob.glob(os.path.join(DATA, "prostate", "promise12", "labelled", "image_*.npy.gz")))[:n]
    voxflow = os.path.join(REPO, "target", "release", "voxflow")
    with tempfile.TemporaryDirectory() as tmp:
        cases = os.path.join(tmp, "cases")
        os.makedirs(cases)
        for path in images:
            os.symlink(path, os.path.join(cases, os.path.basename(path)))
        workflow = os.path.join(tmp, "batch.yaml")
        open(workflow, "w").write(WORKFLOW.replace("{max_parallel}", str(max_parallel)))
        env = dict(os.environ, VOXFLOW_ONNX_THREADS=str(threads))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([voxflow, "--data-dir", os.path.join(tmp, "data"), "--plugins", os.path.join(REPO, "plugins"),
                        "run", workflow, "--plain", "--input", f"cases={cases}", "--out", os.path.join(tmp, "out")],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        voxflow_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        voxflow_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        voxflow_peak_mb = after.ru_maxrss / 1024  # the largest child's peak: the voxflow process (Linux: KiB)
        step_seconds = voxflow_step_seconds(os.path.join(tmp, "data", "voxflow.db"))

        started, cpu_started = time.perf_counter(), time.process_time()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # ONNX Runtime's default lets idle pool threads spin; voxflow turns that off (sessions of steps side by
        # side would spin on each other's cores). BENCH_PYTHON_SPINNING=0 runs the peer as voxflow does.
        options.add_session_config_entry("session.intra_op.allow_spinning", SPINNING)
        sessions = {name: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                    for name, path in [("axial", MODEL), *VIEWS.items()]}
        masks = {}
        for path in images:
            case = os.path.basename(path)[len("image_"):-len(".npy.gz")]
            masks[case] = python_pipeline(sessions, path, os.path.join(tmp, f"{case}_python.nii.gz"))
        python_s, python_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        python_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        dices = []
        for case, theirs in masks.items():
            ours = np.transpose(np.asarray(nib.load(os.path.join(tmp, "out", "masks", f"{case}_mask.nii.gz")).dataobj), (2, 1, 0)) > 0
            total = ours.sum() + theirs.sum()
            dices.append(1.0 if total == 0 else 2 * np.logical_and(ours, theirs).sum() / total)
    print(f"{len(images)} PROMISE12 volumes, {threads} threads, voxflow {max_parallel} volume(s) at a time, Python one "
          f"(whole commands, including start-up and writing; Python's ORT threads spinning: "
          f"{'off' if SPINNING == '0' else 'on'})")
    print(f"voxflow: {voxflow_s:.2f} s ({len(images) / voxflow_s:.2f} studies/s), CPU {voxflow_cpu:.2f} s "
          f"({voxflow_cpu / len(images):.2f} s a study)")
    print(f"python : {python_s:.2f} s ({len(images) / python_s:.2f} studies/s), CPU {python_cpu:.2f} s "
          f"({python_cpu / len(images):.2f} s a study)")
    print(f"peak resident memory: voxflow {voxflow_peak_mb:.0f} MB, python {python_peak_mb:.0f} MB "
          f"(this whole script, its imports and the masks it keeps for the comparison included)")
    print("voxflow steps, seconds summed over the volumes (the three networks run side by side): "
          + ", ".join(f"{step} {seconds:.2f}" for step, seconds in step_seconds))
    print(f"speed-up voxflow vs python: {python_s / voxflow_s:.2f}x; Dice between the two pipelines' masks: "
          f"min {min(dices):.4f}, mean {np.mean(dices):.4f}")


if __name__ == "__main__":
    main()
