#!/usr/bin/env python3
"""Reference inputs and outputs for voxflow's ONNX step tests, from ONNX Runtime's own Python API.

usage: onnx_reference.py DATA_DIR OUT_DIR

Writes into OUT_DIR:
  - digit_<d>.nii.gz: the digits 0-9 drawn at 28x28 (white on black, 0..255), for the MNIST model zoo model;
  - brain_slice.nii.gz: the middle axial slice of nibabel's anatomical.nii (a real brain MR), scaled to
    0..255 and resized to 224x224, for the brain-MRI tumour classifier (NHWC, RGB replicated);
  - mnist_int8.onnx: the MNIST model with int8 weights (onnxruntime.quantization.quantize_dynamic), the
    quantized variant of a model plugin that lists both;
  - threshold2d.onnx / softmax2d.onnx: two small 2D networks built here with the onnx package (symbolic
    batch and image size), so that tests can apply a network slice-wise to a real volume and know the answer;
  - view_<view>_train01.nii.gz: the prostate probability of voxflow's sagittal and coronal view networks
    (plugins/prostate-seg-<view>/) on PROMISE12's train01, rendered in numpy as their manifests describe the
    grid tiling (scripts/prostate_rendering.py), voxels in voxflow's order (i, j, k);
  - reference.json: what onnxruntime.InferenceSession.run returns on each input.
The tests compare voxflow's outputs with these (tolerance 1e-5).
"""
import gzip
import hashlib
import json
import logging
import os
import sys

import nibabel as nib
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from PIL import Image, ImageDraw, ImageFont

from prostate_rendering import normalized, view_probability

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def save_slice(path, pixels):
    """A 2D picture (rows, columns) as a one-slice NIfTI: i runs along columns, j along rows."""
    data = np.asarray(pixels, dtype=np.float32).T[:, :, None]
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)


def draw_digit(d):
    img = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=22)
    box = draw.textbbox((0, 0), str(d), font=font)
    w, h = box[2] - box[0], box[3] - box[1]
    draw.text(((28 - w) / 2 - box[0], (28 - h) / 2 - box[1]), str(d), fill=255, font=font)
    return np.asarray(img, dtype=np.float32)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def build_threshold_model(path):
    """y = sigmoid(8 * (x - 0.5)) on [N, 1, H, W]: above 0.5 where x > 0.5."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])
    y = helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1, "H", "W"])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    gain = helper.make_tensor("gain", TensorProto.FLOAT, [], [8.0])
    nodes = [
        helper.make_node("Sub", ["image", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["probability"]),
    ]
    graph = helper.make_graph(nodes, "threshold2d", [x], [y], initializer=[half, gain])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def build_softmax_model(path):
    """Two-class logits [N, 2, H, W] = (0, x - 0.5): class 1 wins where x > 0.5 (softmax and argmax by the host)."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2, "H", "W"])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [
        helper.make_node("Sub", ["image", "half"], ["fg"]),
        helper.make_node("Mul", ["fg", "zero"], ["bg"]),
        helper.make_node("Concat", ["bg", "fg"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(nodes, "softmax2d", [x], [y], initializer=[half, zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    data, out = sys.argv[1], sys.argv[2]
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's advice on pre-processing
    os.makedirs(out, exist_ok=True)
    reference = {"onnxruntime": ort.__version__}

    mnist_path = os.path.join(data, "onnx", "mnist-8_model_zoo.onnx")
    if os.path.exists(mnist_path):
        mnist = session(mnist_path)
        int8_path = os.path.join(out, "mnist_int8.onnx")
        quantize_dynamic(mnist_path, int8_path, weight_type=QuantType.QInt8)
        mnist_int8 = session(int8_path)
        digits = []
        for d in range(10):
            pixels = draw_digit(d)
            save_slice(os.path.join(out, f"digit_{d}.nii.gz"), pixels)
            logits = mnist.run(None, {"Input3": pixels[None, None]})[0][0]
            logits_int8 = mnist_int8.run(None, {"Input3": pixels[None, None]})[0][0]
            digits.append({"file": f"digit_{d}.nii.gz", "digit": d, "logits": logits.tolist(),
                           "logits_int8": logits_int8.tolist()})
        reference["mnist"] = digits

    brain_model = os.path.join(data, "onnx", "brain_tumor_mri_classifier.onnx")
    anatomical = os.path.join(data, "nifti", "nibabel", "anatomical.nii")
    if os.path.exists(brain_model) and os.path.exists(anatomical):
        volume = np.asarray(nib.load(anatomical).dataobj, dtype=np.float32)
        axial = volume[:, :, volume.shape[2] // 2].T  # rows = j, columns = i
        scaled = (axial - axial.min()) / max(float(axial.max() - axial.min()), 1e-6) * 255.0
        resized = Image.fromarray(scaled.astype(np.float32), mode="F").resize((224, 224), Image.BILINEAR)
        pixels = np.asarray(resized, dtype=np.float32)
        save_slice(os.path.join(out, "brain_slice.nii.gz"), pixels)
        rgb = np.repeat(pixels[None, :, :, None], 3, axis=3)
        brain = session(brain_model)
        probabilities = brain.run(None, {brain.get_inputs()[0].name: rgb})[0][0]
        reference["brain"] = {"file": "brain_slice.nii.gz", "output": probabilities.tolist()}

    train01 = os.path.join(data, "prostate", "promise12", "labelled", "image_train01.npy.gz")
    if os.path.exists(train01):
        with gzip.open(train01) as f:
            volume = np.load(f).astype(np.float32)
        views = {}
        for view in ("sagittal", "coronal"):
            model = os.path.join(REPO, "plugins", f"prostate-seg-{view}", f"prostate_seg_{view}.onnx")
            if not os.path.exists(model):
                continue
            probability = view_probability(session(model), normalized(volume), view)
            name = f"view_{view}_train01.nii.gz"
            nib.save(nib.Nifti1Image(np.transpose(probability, (2, 1, 0)).astype(np.float32), np.eye(4)),
                     os.path.join(out, name))
            with open(model, "rb") as f:
                sha256 = hashlib.sha256(f.read()).hexdigest()
            views[view] = {"file": name, "model": model, "model_sha256": sha256,
                           "gland_voxels": int((probability > 0.5).sum())}
        reference["views"] = views

    build_threshold_model(os.path.join(out, "threshold2d.onnx"))
    build_softmax_model(os.path.join(out, "softmax2d.onnx"))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
    print(f"wrote ONNX reference inputs and outputs to {out}")


if __name__ == "__main__":
    main()
