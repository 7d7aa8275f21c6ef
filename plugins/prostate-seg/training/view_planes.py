"""Whether the view networks' failures are plane by plane: each view network alone, and the 0.6.0 fusion
(ends2), with the view logits averaged over W neighbouring planes along the view's axis (views.along_planes)
against W = 1 (as shipped). A diagnostic ("The view networks' failure on train01, looked at" in
EXPERIMENTS.md), not a shipped rule.

usage: python view_planes.py [--data DIR] [--runs DIR] [--fold K] [--windows 1 3 5 9] [--out FILE]
  without --fold: the fixed split with the shipped ONNX files (axial mirrored, both views); with --fold K:
  the view networks `sagittal` and `coronal` and the rings trained under --runs (views.py, rings.py).
"""
import json
import os

import numpy as np
import onnxruntime as ort
import torch

import data
import views
from evaluate import largest_component
from evaluate_onnx import ENDS_INSET, PLUGIN, VARIANTS
from export import OnnxNetwork, onnx_predict
from unet import load_trained
from view_seeds import at_the_ends


def networks(args):
    """(axial probability function, {view: network}) for the fixed split's shipped files or a fold's runs."""
    if args.fold is None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        axial = ort.InferenceSession(os.path.join(PLUGIN, VARIANTS["fp32"]), options, providers=["CPUExecutionProvider"])
        nets = {view: OnnxNetwork(ort.InferenceSession(
            os.path.join(PLUGIN, "..", f"prostate-seg-{view}", f"prostate_seg_{view}.onnx"), options,
            providers=["CPUExecutionProvider"])) for view in ("sagittal", "coronal")}
        return (lambda image: onnx_predict(axial, image, mirror=True)), nets
    rings = load_trained(args.runs, "rings")
    return (lambda image: data.predict_volume(rings, image, mirror=True)), {
        view: load_trained(args.runs, view) for view in ("sagittal", "coronal")}


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 3, 5, 9])
    parser.add_argument("--out", default=None)
    args = data.parse(parser)
    torch.set_num_threads(2)
    root = data.data_dir(args.data)
    _, validation = data.split(root, args.fold)
    axial_of, nets = networks(args)
    cases = {}
    for case in validation:
        image, label = data.load_case(root, case)
        axial = axial_of(image)
        score = lambda p: float(data.dice(largest_component(p > 0.5), label))
        row = {"axial": score(axial)}
        for w in args.windows:
            p = {view: views.view_probability(net, image, view, plane_window=w) for view, net in nets.items()}
            for view in nets:
                row[f"{view} w{w}"] = score(p[view])
            row[f"ends2 w{w}"] = score(at_the_ends(axial, (axial + sum(p.values())) / 3, ENDS_INSET))
        cases[case] = row
        print(case, " ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    mean = {k: float(np.mean([c[k] for c in cases.values()])) for k in next(iter(cases.values()))}
    print("mean", " ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    out = args.out or os.path.join(args.runs, "view-planes.json")
    with open(out, "w") as f:
        json.dump({"fold": args.fold, "windows": args.windows, "mean": mean, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
