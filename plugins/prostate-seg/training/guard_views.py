"""A guarded fusion of the three shipped networks (measured, not shipped: "A guarded three-view fusion" in
EXPERIMENTS.md): the view networks fail outright on a few volumes by missing the gland on wide stretches
of planes (train01), which the plain average of three views inherits. Here a view joins the average on an
axial slice only where its mask covers at least --coverage of the mirrored axial network's mask on that
slice; slices where the axial mask is empty take the mean of all three (the gland's ends, where the axial
network is the one that fails). Scored beside the axial network, the plain average and ends2 (the
shipped fusion, view_seeds.at_the_ends with an inset of 2), with the fixed split's shipped fp32 ONNX files.

usage: python guard_views.py [--data DIR] [--runs DIR] [--coverage F ...]   -> runs/guard-views.json
"""
import json
import os

import numpy as np

import data
from evaluate_onnx import PLUGIN, VARIANTS, VIEWS, cpu_session, scored, shipped_fusion
from export import OnnxNetwork, onnx_predict
from views import view_probability


def guarded(p_axial, p_views, coverage):
    """Per axial slice: the mean of the axial probability and the views covering >= `coverage` of the axial
    mask there; all three where the axial mask is empty."""
    axial_mask = p_axial > 0.5
    total, count = p_axial.copy(), np.ones(len(p_axial))
    for p in p_views:
        inside = axial_mask.sum(axis=(1, 2))
        covered = (axial_mask & (p > 0.5)).sum(axis=(1, 2))
        joins = (inside == 0) | (covered >= coverage * inside)
        total += np.where(joins[:, None, None], p, 0)
        count += joins
    return total / count[:, None, None]


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--coverage", type=float, nargs="+", default=[0.7])
    args = data.parse(parser)
    if args.fold is not None:
        parser.error("--fold: the shipped files were trained on the fixed split's training cases")
    root = data.data_dir(args.data)
    _, validation = data.split(root)
    axial_net = cpu_session(os.path.join(PLUGIN, VARIANTS["fp32"]))
    views = {view: OnnxNetwork(cpu_session(path)) for view, path in VIEWS["fp32"].items()}
    masks = {}
    for case in validation:
        image, label = data.load_case(root, case)
        p_axial = onnx_predict(axial_net, image, mirror=True)
        p_views = [view_probability(net, image, view) for view, net in views.items()]
        combined = {"axial": p_axial, "three": (p_axial + sum(p_views)) / 3, "ends2": shipped_fusion(p_axial, p_views)}
        for c in args.coverage:
            combined[f"guard{round(c * 100)}"] = guarded(p_axial, p_views, c)
        for name, p in combined.items():
            masks.setdefault(name, {})[case] = (p > 0.5, label)
        print(case, " ".join(f"{name} {float(data.dice(p > 0.5, label)):.3f}" for name, p in combined.items()), flush=True)
    results = {name: scored(m) for name, m in masks.items()}
    os.makedirs(args.runs, exist_ok=True)
    with open(os.path.join(args.runs, "guard-views.json"), "w") as f:
        json.dump({"coverage": args.coverage, "validation_cases": validation, **results}, f, indent=1)
    for name, r in results.items():
        print(f"{name:8s} {r['mean_dice_largest_component']:.3f}  "
              + " ".join(f"{c} {v['dice_largest_component']:.3f}" for c, v in r["per_case"].items()))


if __name__ == "__main__":
    main()
