"""Inference across scales and along z (EXPERIMENTS.md, "Inference across scales and along z"; along z is
shipped since 0.7.0, the scales are not): the same trained network run four ways on the validation volumes,
each mirrored left-right as the step runs it, thresholded at 0.5 and scored plain and after the largest
connected component:
- plain: the step's one crop (the central data.CROP of the plane);
- scales: the logits at crops of SCALES of the plane (FACTORS times the step's crop), each mapped back
  to the source grid, averaged before the softmax (not shipped: +0.001 for three times the axial inference);
- along z: the probability smoothed along z with [w, 1 - 2w, w] (w = Z_WEIGHT, edges repeated;
  wasm/probability-fusion's `smooth_along_axis`);
- both.
Without --fold: the fixed split with the shipped ONNX files, and the views at the ends (0.6.1's fusion,
evaluate_onnx.shipped_fusion) with and without both; with --fold: a network trained under --runs
(--stage NAME, runs/NAME/model.pt).

usage: python inference_variants.py [--data DIR] [--runs DIR] [--fold K --stage NAME]
  -> runs/inference-variants.json (runs/inference-variants-NAME.json with --stage) and a Markdown table
"""
import json
import os

import numpy as np
import torch

import data
from evaluate import largest_component
from evaluate_onnx import PLUGIN, VARIANTS, VIEWS, Z_WEIGHT, along_z, cpu_session, shipped_fusion
from export import OnnxNetwork
from unet import context_of, load_trained
from views import view_probability

FACTORS = (0.9, 1.0, 1.1)  # of the crop
SCALES = tuple(data.CROP * f for f in FACTORS)  # 0.54, 0.6, 0.66 of the plane
WAYS = {"plain": ((data.CROP,), False), "scales": (SCALES, False), "along z": ((data.CROP,), True),
        "both": (SCALES, True)}


def probability_across(net, image, fractions, context=data.CONTEXT):
    """The prostate probability on the source grid from the mirrored logits at each crop fraction, mapped
    back and averaged before the softmax."""
    total = 0
    for fraction in fractions:
        x = torch.from_numpy(data.prepared(image, context, fraction))
        total = total + data.logits_on_source(data.network_logits(net, x, mirror=True), image.shape[1:], fraction)
    return torch.softmax(total / len(fractions), dim=1)[:, 1].numpy()


def scores(probability, label):
    mask = probability > 0.5
    return {"dice": float(data.dice(mask, label)), "dice_largest_component": float(data.dice(largest_component(mask), label))}


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--stage", default=None, help="with --fold: the trained network runs/STAGE/model.pt")
    args = data.parse(parser)
    if (args.fold is None) != (args.stage is None):
        parser.error("--fold and --stage go together: a fold's network, or (neither) the fixed split's shipped files")
    torch.set_num_threads(2)
    root = data.data_dir(args.data)
    _, validation = data.split(root, args.fold)
    if args.stage:
        net = load_trained(args.runs, args.stage)
        context, views = context_of(net), {}
    else:
        net, context = OnnxNetwork(cpu_session(os.path.join(PLUGIN, VARIANTS["fp32"]))), data.CONTEXT
        views = {view: OnnxNetwork(cpu_session(path)) for view, path in VIEWS["fp32"].items()}
    per_case = {}
    for case in validation:
        image, label = data.load_case(root, case)
        probabilities = {fractions: probability_across(net, image, fractions, context)
                         for fractions in dict.fromkeys(f for f, _ in WAYS.values())}
        for way, (fractions, smoothed) in WAYS.items():
            p = probabilities[fractions]
            per_case.setdefault(way, {})[case] = scores(along_z(p) if smoothed else p, label)
        if views:
            p_views = [view_probability(v, image, view) for view, v in views.items()]
            plain = shipped_fusion(probabilities[(data.CROP,)], p_views)
            per_case.setdefault("views at the ends", {})[case] = scores(plain, label)
            both = along_z(shipped_fusion(probabilities[SCALES], p_views))
            per_case.setdefault("views at the ends, both", {})[case] = scores(both, label)
        print(case, " ".join(f"{way} {r[case]['dice_largest_component']:.3f}" for way, r in per_case.items()), flush=True)
    summary = {}
    for way, cases in per_case.items():
        reference = "views at the ends" if way.startswith("views") else "plain"
        lc = np.array([r["dice_largest_component"] for r in cases.values()])
        base = np.array([r["dice_largest_component"] for r in per_case[reference].values()])
        summary[way] = {"mean_dice": float(np.mean([r["dice"] for r in cases.values()])),
                        "mean_dice_largest_component": float(lc.mean()), "against": reference,
                        "gain": float((lc - base).mean()), "gain_se": float((lc - base).std(ddof=1) / np.sqrt(len(lc))),
                        "higher": int((lc > base).sum()), "cases": len(lc)}
    out = os.path.join(args.runs, f"inference-variants{'-' + args.stage if args.stage else ''}.json")
    os.makedirs(args.runs, exist_ok=True)
    with open(out, "w") as f:
        json.dump({"fold": args.fold, "stage": args.stage or "shipped onnx", "scales": FACTORS, "z_weight": Z_WEIGHT,
                   "summary": summary, "per_case": per_case}, f, indent=1)
    print("| inference | mean Dice | largest component | against | gain (SE) | higher |\n|---|---|---|---|---|---|")
    for way, r in summary.items():
        print(f"| {way} | {r['mean_dice']:.3f} | {r['mean_dice_largest_component']:.3f} | {r['against']} | "
              f"{r['gain']:+.3f} ({r['gain_se']:.3f}) | {r['higher']} of {r['cases']} |")


if __name__ == "__main__":
    main()
