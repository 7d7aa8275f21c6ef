"""Validation Dice of the shipped ONNX files as the voxflow step runs them (plugin.yaml): each variant
plain and with test-time mirroring (`mirror: [0]`: the network also sees each 2.5D input mirrored
left-right, along the tensor's last axis, and the two logit maps, the second mirrored back, are averaged),
raw and with the largest connected component kept; and, since 0.6.0, the segmentation workflow's fusion of
the mirrored axial network with the sagittal and coronal networks (plugins/prostate-seg-<view>/, as
view_seeds.at_the_ends with an inset of 2: wasm/probability-fusion's `ends_inset: 2`), with the fp32 files
and with the int8 files (the workflows' `variant` param switches all three networks), and each view network
alone in each variant; and, since 0.7.0, that fusion smoothed along z with [0.25, 0.5, 0.25] before the
threshold (wasm/probability-fusion's `smooth_along_axis: 0.25`; EXPERIMENTS.md, "Inference across scales and
along z"). Needs no trained PyTorch model, only the ONNX files.

usage: python evaluate_onnx.py [--data DIR] [--runs DIR]   -> runs/evaluation-onnx.json and a Markdown table
"""
import json
import os

import numpy as np
import onnxruntime as ort
from scipy import ndimage

import data
from evaluate import largest_component
from export import OnnxNetwork, onnx_predict
from view_seeds import at_the_ends
from views import view_probability

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
VARIANTS = {"fp32": "prostate_seg.onnx", "int8": "prostate_seg.int8.onnx"}
VIEWS = {variant: {view: os.path.join(PLUGIN, "..", f"prostate-seg-{view}", file.replace("prostate_seg", f"prostate_seg_{view}"))
                   for view in ("sagittal", "coronal")}
         for variant, file in VARIANTS.items()}
ENDS_INSET = 2  # the workflows' probability-fusion `ends_inset`
Z_WEIGHT = 0.25  # the workflows' probability-fusion `smooth_along_axis` (since 0.7.0)


def cpu_session(path, threads=2):
    """An ONNX Runtime session on the CPU with `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def shipped_fusion(p_axial, p_views):
    """The workflows' fusion (wasm/probability-fusion with `ends_inset`): the axial probability inside the
    axial mask's extent less ENDS_INSET slices at each end, the mean of the three networks elsewhere."""
    return at_the_ends(p_axial, (p_axial + sum(p_views)) / 3, ENDS_INSET)


def along_z(probability, weight=Z_WEIGHT):
    """The probability smoothed along z (axis 0) with the kernel [weight, 1 - 2 weight, weight], the end
    slices repeated (wasm/probability-fusion's `smooth_along_axis`, after the fusion)."""
    return ndimage.convolve1d(probability, [weight, 1 - 2 * weight, weight], axis=0, mode="nearest")


def scored(masks):
    """{"mean_dice", "std", "min", "mean_dice_largest_component", "per_case"} of {case: (mask, label)}."""
    rows = {case: {"dice": float(data.dice(mask, label)),
                   "dice_largest_component": float(data.dice(largest_component(mask), label))}
            for case, (mask, label) in masks.items()}
    dice = np.array([r["dice"] for r in rows.values()])
    return {"mean_dice": float(dice.mean()), "std": float(dice.std()), "min": float(dice.min()),
            "mean_dice_largest_component": float(np.mean([r["dice_largest_component"] for r in rows.values()])),
            "per_case": rows}


def main():
    parser = data.arguments(__doc__)
    args = data.parse(parser)
    if args.fold is not None:
        parser.error("--fold: the shipped files were trained on the fixed split's training cases, which a fold validates on")
    root = data.data_dir(args.data)
    _, validation = data.split(root)
    results = {}
    sessions = {variant: cpu_session(os.path.join(PLUGIN, file)) for variant, file in VARIANTS.items()}
    viewers = {variant: {view: OnnxNetwork(cpu_session(path)) for view, path in paths.items() if os.path.exists(path)}
               for variant, paths in VIEWS.items()}
    cases = {case: data.load_case(root, case) for case in validation}
    for variant, session in sessions.items():
        for mirror in (False, True):
            results[f"{variant}{' mirrored' if mirror else ''}"] = scored(
                {case: (onnx_predict(session, image, mirror) > 0.5, label) for case, (image, label) in cases.items()})
    for variant, session in sessions.items():
        if len(viewers[variant]) != len(VIEWS[variant]):
            print(f"the {variant} view networks are not all there ({', '.join(VIEWS[variant].values())}): "
                  "their fusion is not measured")
            continue
        views_of = {case: {view: view_probability(net, image, view) for view, net in viewers[variant].items()}
                    for case, (image, _) in cases.items()}
        for view in VIEWS[variant]:
            results[f"{variant} {view} alone"] = scored(
                {case: (views_of[case][view] > 0.5, label) for case, (_, label) in cases.items()})
        fused, smoothed = {}, {}
        for case, (image, label) in cases.items():
            p = shipped_fusion(onnx_predict(session, image, mirror=True), views_of[case].values())
            fused[case], smoothed[case] = (p > 0.5, label), (along_z(p) > 0.5, label)
        results[f"{variant} mirrored + views at the ends"] = scored(fused)
        results[f"{variant} mirrored + views at the ends, along z"] = scored(smoothed)
    os.makedirs(args.runs, exist_ok=True)
    with open(os.path.join(args.runs, "evaluation-onnx.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("| model | mean Dice | std | min | mean Dice, largest component |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['mean_dice']:.3f} | {r['std']:.3f} | {r['min']:.3f} | {r['mean_dice_largest_component']:.3f} |")
    for name, r in results.items():
        print(name, " ".join(f"{c} {v['dice']:.3f}/{v['dice_largest_component']:.3f}" for c, v in r["per_case"].items()))


if __name__ == "__main__":
    main()
