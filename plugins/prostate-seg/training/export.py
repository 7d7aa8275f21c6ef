"""Exports a trained stage to ONNX for the voxflow step (plugins/prostate-seg/plugin.yaml), with an int8
variant (static QDQ quantization, per-channel weights, calibrated on training slices), checks both against
PyTorch on validation volumes, and writes their sha256 into the manifest. With --view, exports a view
network (views.py) instead, float32, to plugins/prostate-seg-<view>/ and checks it the same way through
the view's grid (views.view_probability). With --view and --int8, quantizes that plugin's float32 file as the
axial one is (static QDQ, per-channel weights, calibrated on the view planes of training volumes), measures
both files on the validation volumes through the view's grid, and writes the int8 file's sha256 into the
manifest (no PyTorch checkpoint needed: the shipped float32 file is the source).

usage: python export.py [--stage final] [--data DIR] [--runs DIR]
       python export.py --view sagittal|coronal [--stage NAME (default: the view)] [--data DIR] [--runs DIR]
       python export.py --view sagittal|coronal --int8 [--data DIR] [--runs DIR]
"""
import hashlib
import json
import os
import re
import sys

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

import data
from evaluate import largest_component
from unet import context_of, load_trained

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FP32 = "prostate_seg.onnx"
INT8 = "prostate_seg.int8.onnx"


class Batches(CalibrationDataReader):
    """Calibration inputs: the given network inputs (N, 3, H, W) of a few training volumes, 8 at a time."""

    def __init__(self, inputs):
        self.iterator = iter([x[s:s + 8] for x in inputs for s in range(0, len(x), 8)])

    def get_next(self):
        batch = next(self.iterator, None)
        return None if batch is None else {"image": batch}


def quantize_int8(fp32, int8, calibration, runs):
    """`fp32` as static QDQ int8 at `int8` (per-channel int8 weights, uint8 activations), calibrated on the
    network inputs `calibration`; the pre-processed model is kept under `runs`."""
    os.makedirs(runs, exist_ok=True)
    prepared = os.path.join(runs, os.path.basename(fp32).replace(".onnx", ".pre.onnx"))
    quant_pre_process(fp32, prepared)
    quantize_static(prepared, int8, Batches(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def pin_sha256(manifest, files):
    """Writes each variant's file hash into `manifest` ({variant name: file path})."""
    text = open(manifest).read()
    for variant, path in files.items():
        text = re.sub(rf"(name: {variant}, file: \S+, sha256: )[0-9a-f]{{64}}", lambda m: m.group(1) + sha256(path), text)
    open(manifest, "w").write(text)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class OnnxNetwork:
    """An ONNX session where the training code expects a network: called on a batch of inputs, it returns
    their logits as a tensor."""

    def __init__(self, session):
        self.session = session

    def eval(self):
        return self

    def __call__(self, x):
        return torch.from_numpy(self.session.run(None, {"image": x.numpy()})[0])


def onnx_predict(session, image, mirror=False):
    """The ONNX model on every slice, 8 at a time (the manifest's batch), mapped back as
    data.predict_volume does; with `mirror`, the logits averaged with those of the left-right mirrored
    input, mirrored back (the manifest's `mirror: [0]`)."""
    x = data.prepared(image)
    run = lambda v: np.concatenate([session.run(None, {"image": v[s:s + 8]})[0] for s in range(0, len(v), 8)])
    logits = run(x)
    if mirror:
        logits = (logits + run(np.ascontiguousarray(x[..., ::-1]))[..., ::-1]) / 2
    return data.probability_on_source(torch.from_numpy(np.ascontiguousarray(logits)), image.shape[1:])


def export_network(net, path):
    """The 2.5D U-Net as ONNX at `path`: input `image` (N, 3, H, W), output `logits` (N, 2, H, W). Only
    three-channel networks: the manifests say `context: 1` (a network trained with train.py --context 2
    would need its manifest's tiling changed with it; none is shipped)."""
    if context_of(net) != data.CONTEXT:
        sys.exit(f"export.py: the network has context {context_of(net)} ({2 * context_of(net) + 1} input channels); "
                 f"the manifests this writes into say context {data.CONTEXT}")
    example = torch.zeros(1, 3, data.SIZE, data.SIZE)
    torch.onnx.export(net, example, path, input_names=["image"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}}, dynamo=False)


def export_view(args, root, validation):
    """A view network to plugins/prostate-seg-<view>/, checked against PyTorch through the view's grid on
    the validation volumes; its sha256 written into that plugin's manifest."""
    import views  # views.py imports this module

    name = args.stage or args.view
    net = load_trained(args.runs, name)
    folder = os.path.join(PLUGIN, "..", f"prostate-seg-{args.view}")
    path = os.path.join(folder, f"prostate_seg_{args.view}.onnx")
    export_network(net, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = OnnxNetwork(ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]))
    check = {"torch": {}, "fp32": {}}
    for case in validation:
        image, label = data.load_case(root, case)
        reference = views.view_probability(net, image, args.view)
        probability = views.view_probability(session, image, args.view)
        check["torch"][case] = float(data.dice(reference > 0.5, label))
        check["fp32"][case] = float(data.dice(probability > 0.5, label))
        assert np.abs(probability - reference).max() < 1e-3, f"{case}: ONNX differs from PyTorch"
    summary = {k: float(np.mean(list(v.values()))) for k, v in check.items()}
    print(json.dumps({"mean_dice": summary, "bytes": os.path.getsize(path)}, indent=1))
    with open(os.path.join(args.runs, name, "export.json"), "w") as f:
        json.dump({"view": args.view, "stage": name, "per_case": check, "mean_dice": summary,
                   "sha256": sha256(path)}, f, indent=1)
    manifest = os.path.join(folder, "plugin.yaml")
    pin_sha256(manifest, {"fp32": path})
    print(f"wrote {path} and its sha256 into {manifest}")


def quantize_view(args, root, training, validation):
    """The shipped float32 view network as int8 beside it, both measured through the view's grid on the
    validation volumes; the int8 file's sha256 written into the view plugin's manifest."""
    import views  # views.py imports this module

    folder = os.path.join(PLUGIN, "..", f"prostate-seg-{args.view}")
    fp32 = os.path.join(folder, f"prostate_seg_{args.view}.onnx")
    int8 = os.path.join(folder, f"prostate_seg_{args.view}.int8.onnx")
    calibration = [views.view_inputs(data.load_case(root, case)[0], args.view).astype(np.float32)
                   for case in training[:6]]
    quantize_int8(fp32, int8, calibration, args.runs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sessions = {name: OnnxNetwork(ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]))
                for name, path in (("fp32", fp32), ("int8", int8))}
    check = {"fp32": {}, "int8": {}}
    largest = {"fp32": {}, "int8": {}}
    difference = {}
    for case in validation:
        image, label = data.load_case(root, case)
        probability = {name: views.view_probability(session, image, args.view) for name, session in sessions.items()}
        for name, p in probability.items():
            check[name][case] = float(data.dice(p > 0.5, label))
            largest[name][case] = float(data.dice(largest_component(p > 0.5), label))
        difference[case] = float(np.abs(probability["int8"] - probability["fp32"]).max())
    summary = {name: float(np.mean(list(v.values()))) for name, v in check.items()}
    summary_largest = {name: float(np.mean(list(v.values()))) for name, v in largest.items()}
    result = {"view": args.view, "per_case": check, "per_case_largest_component": largest,
              "mean_dice": summary, "mean_dice_largest_component": summary_largest,
              "max_probability_difference": difference,
              "bytes": {"fp32": os.path.getsize(fp32), "int8": os.path.getsize(int8)},
              "sha256": {"fp32": sha256(fp32), "int8": sha256(int8)}}
    print(json.dumps({k: result[k] for k in ("mean_dice", "mean_dice_largest_component", "bytes")}, indent=1))
    with open(os.path.join(args.runs, f"export-{args.view}-int8.json"), "w") as f:
        json.dump(result, f, indent=1)
    manifest = os.path.join(folder, "plugin.yaml")
    pin_sha256(manifest, {"int8": int8})
    print(f"wrote {int8} and its sha256 into {manifest}")


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--stage", default=None, help="the trained network under --runs (default: final, or the view)")
    parser.add_argument("--view", choices=("sagittal", "coronal"), default=None,
                        help="export a view network (views.py) to plugins/prostate-seg-<view>/")
    parser.add_argument("--int8", action="store_true",
                        help="with --view: quantize the view plugin's float32 file to int8 beside it")
    args = data.parse(parser)
    if args.fold is not None:
        parser.error("--fold: the shipped model is trained on the fixed split; a fold's model is for measurement only")
    torch.set_num_threads(2)
    root = data.data_dir(args.data)
    training, validation = data.split(root)
    if args.int8 and not args.view:
        parser.error("--int8 goes with --view (the axial export always writes its int8 variant)")
    if args.view and args.int8:
        quantize_view(args, root, training, validation)
        return
    if args.view:
        export_view(args, root, validation)
        return
    args.stage = args.stage or "final"
    net = load_trained(args.runs, args.stage)
    fp32 = os.path.join(PLUGIN, FP32)
    export_network(net, fp32)
    int8 = os.path.join(PLUGIN, INT8)
    quantize_int8(fp32, int8, [data.prepared(data.load_case(root, case)[0]) for case in training[:6]], args.runs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sessions = {name: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                for name, path in (("fp32", fp32), ("int8", int8))}
    check = {"torch": {}, "fp32": {}, "int8": {}}
    for case in validation:
        image, label = data.load_case(root, case)
        reference = data.predict_volume(net, image)
        check["torch"][case] = float(data.dice(reference > 0.5, label))
        for name, session in sessions.items():
            probability = onnx_predict(session, image)
            check[name][case] = float(data.dice(probability > 0.5, label))
            if name == "fp32":
                assert np.abs(probability - reference).max() < 1e-3, f"{case}: ONNX differs from PyTorch"
    summary = {name: float(np.mean(list(v.values()))) for name, v in check.items()}
    print(json.dumps({"mean_dice": summary, "bytes": {"fp32": os.path.getsize(fp32), "int8": os.path.getsize(int8)}}, indent=1))
    with open(os.path.join(args.runs, "export.json"), "w") as f:
        json.dump({"stage": args.stage, "per_case": check, "mean_dice": summary,
                   "sha256": {"fp32": sha256(fp32), "int8": sha256(int8)}}, f, indent=1)
    manifest = os.path.join(PLUGIN, "plugin.yaml")
    pin_sha256(manifest, {"fp32": fp32, "int8": int8})
    print(f"wrote {fp32}, {int8} and their sha256 into {manifest}")


if __name__ == "__main__":
    main()
