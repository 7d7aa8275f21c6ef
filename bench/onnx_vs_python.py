#!/usr/bin/env python3
"""An ONNX model through a whole voxflow step call (preprocessing, tiling, network runs, assembly, outputs; in
process, engine/onnx/examples/onnx_step_timing.rs) against the bare network runs through
onnxruntime.InferenceSession.run in Python on the same tensors, same thread count, in one run. Ratio = voxflow /
Python (the goal is at most 1.05: the step adds little to the network's own time). Also the slice-wise
throughput on a real MR series.

usage: python3 bench/onnx_vs_python.py [DATA_DIR] [REPEAT] [THREADS]
Needs: onnxruntime, numpy, nibabel (scripts/requirements-reference.txt) and ONNX Runtime's library
(scripts/fetch-onnxruntime.sh).
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMER = os.path.join(ROOT, "target", "release", "examples", "onnx_step_timing")


def plugin(folder, name, model, section, outputs):
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
    with open(os.path.join(folder, name, "plugin.yaml"), "w") as f:
        f.write(f"name: {name}\nversion: 0.1.0\nkind: onnx\ninputs:\n  - {{name: volume, type: volume}}\n"
                f"outputs:\n{outputs}model:\n  file: {model}\n  sha256: {sha}\n{section}")
    return os.path.join(folder, name)


def voxflow_ms(plugin_dir, source, repeat, threads):
    out = subprocess.run([TIMER, plugin_dir, source, str(repeat), str(threads)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr)
    return json.loads(out.stdout)


def python_ms(model, feeds, repeat, threads):
    """Median over `repeat` of the time to run every tensor in `feeds` (one call's worth) through the model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for tensor in feeds:
        session.run(None, {name: tensor})
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for tensor in feeds:
            session.run(None, {name: tensor})
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def main():
    data = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("VOXFLOW_TESTDATA", os.path.join(ROOT, "../shared/data")))
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "voxflow-onnx", "--example", "onnx_step_timing"],
                   cwd=ROOT, check=True)
    subprocess.run([os.path.join(ROOT, "scripts/fetch-onnxruntime.sh")], check=True, capture_output=True)
    reference = os.path.join(ROOT, "target", "onnx-reference")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts/onnx_reference.py"), data, reference],
                   check=True, capture_output=True)
    work = tempfile.mkdtemp(prefix="onnx-bench-")
    rows = []

    # 1. A classifier on one image: the brain-MRI model on a 224x224 brain slice (RGB, channels last).
    brain_model = os.path.join(data, "onnx", "brain_tumor_mri_classifier.onnx")
    brain = plugin(work, "brain", brain_model,
                   "  input: {tensor: input_layer, layout: nhwc, channels: 3, tiling: {mode: image}}\n"
                   "  outputs:\n    finding: {tensor: \"Identity:0\", classes: [no, yes]}\n",
                   "  - {name: finding, type: json}\n")
    slice_file = os.path.join(reference, "brain_slice.nii.gz")
    pixels = np.asarray(nib.load(slice_file).dataobj, dtype=np.float32)[:, :, 0].T
    feeds = [np.repeat(pixels[None, :, :, None], 3, axis=3)]
    v = voxflow_ms(brain, slice_file, repeat, threads)
    rows.append(("brain classifier, 1 image 224x224x3", v["median_ms"], python_ms(brain_model, feeds, repeat, threads), 1))

    # 2. A 2D network slice-wise over a real series: ProstateX T2, 19 slices of 384x384, batches of 8.
    series = os.path.join(data, "prostate/prostatex/ProstateX-0000_t2_tse_tra")
    nifti = os.path.join(work, "t2.nii.gz")
    subprocess.run([os.path.join(ROOT, "target/release/voxflow"), "convert", series, nifti], check=True, capture_output=True)
    net = os.path.join(reference, "softmax2d.onnx")
    seg = plugin(work, "slices", net,
                 "  input: {tensor: image, tiling: {mode: slices, batch: 8}, normalize: {method: minmax}}\n"
                 "  outputs:\n    mask: {tensor: logits, activation: softmax}\n",
                 "  - {name: mask, type: mask}\n")
    volume = np.asarray(nib.load(nifti).dataobj, dtype=np.float32)
    volume = (volume - volume.min()) / (volume.max() - volume.min())
    planes = np.transpose(volume, (2, 1, 0))[:, None]  # [k, 1, j, i]
    feeds = [np.ascontiguousarray(planes[s:s + 8]) for s in range(0, planes.shape[0], 8)]
    v = voxflow_ms(seg, nifti, repeat, threads)
    rows.append((f"2D net slice-wise, {planes.shape[0]} slices 384x384", v["median_ms"],
                 python_ms(net, feeds, repeat, threads), planes.shape[0]))

    # 3. A real 3D network: TAPS on the same series (9 patches of 128x128x32 after resampling and cropping);
    # Python runs the same number of patches of the same size, bare. One timed call each (they are long).
    taps_dir = os.path.join(ROOT, "plugins", "taps-prostate")
    if os.path.exists(os.path.join(taps_dir, "model_v1.onnx")):
        v = voxflow_ms(taps_dir, nifti, 1, threads)
        rng = np.random.default_rng(0)
        patches = [rng.standard_normal((1, 1, 128, 128, 32), dtype=np.float32) for _ in range(v["runs_per_call"])]
        rows.append((f"TAPS 3D, {v['runs_per_call']} patches 128x128x32 (1 call)", v["median_ms"],
                     python_ms(os.path.join(taps_dir, "model_v1.onnx"), patches, 1, threads), planes.shape[0]))

    print(f"{threads} threads, median of {repeat}; voxflow = the whole step call, Python = the bare session.run calls")
    print(f"{'case':40} {'voxflow ms':>11} {'python ms':>10} {'ratio':>7} {'voxflow slices/s':>17}")
    for name, ours, theirs, slices in rows:
        print(f"{name:40} {ours:11.2f} {theirs:10.2f} {ours / theirs:6.2f}x {slices / ours * 1000:17.1f}")


if __name__ == "__main__":
    main()
