"""Validation Dice of the shipped ONNX files as the voxflow step runs them (plugin.yaml): each variant
plain and with test-time mirroring (`mirror: [0]`: the network also sees each 2.5D input mirrored
left-right, along the tensor's last axis, and the two logit maps, the second mirrored back, are averaged),
raw and with the largest connected component kept. Needs no trained PyTorch model, only the ONNX files.

usage: python evaluate_onnx.py [--data DIR] [--runs DIR]   -> runs/evaluation-onnx.json and a Markdown table
"""
import json
import os

import numpy as np
import onnxruntime as ort

import data
from evaluate import largest_component
from export import onnx_predict

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
VARIANTS = {"fp32": "prostate_seg.onnx", "int8": "prostate_seg.int8.onnx"}


def main():
    parser = data.arguments(__doc__)
    args = data.parse(parser)
    if args.fold is not None:
        parser.error("--fold: the shipped files were trained on the fixed split's training cases, which a fold validates on")
    root = data.data_dir(args.data)
    _, validation = data.split(root)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    results = {}
    for variant, file in VARIANTS.items():
        session = ort.InferenceSession(os.path.join(PLUGIN, file), options, providers=["CPUExecutionProvider"])
        for mirror in (False, True):
            rows = {}
            for case in validation:
                image, label = data.load_case(root, case)
                mask = onnx_predict(session, image, mirror) > 0.5
                rows[case] = {"dice": float(data.dice(mask, label)),
                              "dice_largest_component": float(data.dice(largest_component(mask), label))}
            dice = np.array([r["dice"] for r in rows.values()])
            results[f"{variant}{' mirrored' if mirror else ''}"] = {
                "mean_dice": float(dice.mean()), "std": float(dice.std()), "min": float(dice.min()),
                "mean_dice_largest_component": float(np.mean([r["dice_largest_component"] for r in rows.values()])),
                "per_case": rows}
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
