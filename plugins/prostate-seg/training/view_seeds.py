"""Draws of the view networks combined with the axial network: whether averaging two draws of each view
network (a seed ensemble) bounds the loss that the average of three views causes on a case they fail on,
and whether letting the views judge only the gland's ends does (measured, not shipped: "Seed ensembles of
the view networks, and views at the ends only" in EXPERIMENTS.md).

A second seed of both view networks on the fixed split made the average of three views lose 0.065 on
train01; every draw of either view misses that gland across its middle (a failure of the view networks
on it, not a bad draw; EXPERIMENTS.md). This script reads view networks trained before by views.py under one --runs (at least one
sagittal and one coronal, listed in the same seed order: the i-th of each is draw i), computes each
network's probability once per validation case, and scores:
  axial                      the axial network (as views.py's --axial)
  three_draw<i>              the average of the axial network and draw i of each view (views.py's
                             three_average)
  three_pair<i><j>           the average of the axial network, the mean of draws i and j of the sagittal
                             network and the mean of draws i and j of the coronal one (each view weighs a
                             third, whatever its number of draws)
  three_all                  the same with every draw
  ends<k>_draw<i>            three_draw<i> only outside the axial mask's extent along z less k slices at
                             each end, the axial network inside it (k = 1, 2: views judging the ends only)
  <name>                     each view network alone

usage: python view_seeds.py [--data DIR] [--runs DIR] [--fold K] [--axial onnx|STAGE]
                            --sagittal NAME NAME ... --coronal NAME NAME ... [--threads N] [--out FILE]
                            [--z-per-slice PIXELS]
--z-per-slice runs the view networks (trained with z stretched to 128 rows) on planes with z at a constant
scale instead (views.z_pixels): a test of whether the squashed look of volumes with many slices explains
their failures ("Views at the ends on folds 2, 3 and 4" in EXPERIMENTS.md: it does not).
Writes FILE (default runs/view-seeds.json): per case and per combination the Dice, plain and largest
component, and by third of the gland's extent along z, the mean of each combination, and against the axial
network (largest component): the mean gain, its standard error, the cases higher and the largest loss.
"""
import itertools
import json
import os
import sys

import numpy as np
import torch

import data
import views


def draws(runs, names, view):
    """(name, net) of view networks trained before, each checked to be of `view`."""
    loaded = []
    for name in names:
        _, recorded_view, net = views.trained_view(runs, name)
        if recorded_view != view:
            sys.exit(f"view_seeds.py: {runs}/{name} is a {recorded_view} network, listed as {view}")
        loaded.append((name, net))
    return loaded


def at_the_ends(p_axial, p_views, inset):
    """The axial probability on the slices of the axial mask's extent along z less `inset` at each end,
    `p_views` on every other slice (all of them where the axial mask is empty)."""
    z = data.occupied_slices(p_axial > 0.5)
    combined = p_views.copy()
    if len(z) and z.max() - z.min() >= 2 * inset:
        inside = slice(z.min() + inset, z.max() + 1 - inset)
        combined[inside] = p_axial[inside]
    return combined


def combinations(p_axial, sagittal, coronal):
    """{combination: probability} from the axial probability and the lists of draw probabilities per view
    (as many sagittal as coronal draws)."""
    combined = {"axial": p_axial}
    for i, (s, c) in enumerate(zip(sagittal, coronal), start=1):
        combined[f"three_draw{i}"] = (p_axial + s + c) / 3
        for inset in (1, 2):
            combined[f"ends{inset}_draw{i}"] = at_the_ends(p_axial, combined[f"three_draw{i}"], inset)
    for i, j in itertools.combinations(range(len(sagittal)), 2):
        combined[f"three_pair{i + 1}{j + 1}"] = (p_axial + (sagittal[i] + sagittal[j]) / 2 + (coronal[i] + coronal[j]) / 2) / 3
    combined["three_all"] = (p_axial + np.mean(sagittal, axis=0) + np.mean(coronal, axis=0)) / 3
    return combined


def against_axial(cases, measure="dice_largest_component"):
    """Per combination: the mean gain over the axial network, its standard error, the cases higher, and the
    largest loss with its case."""
    summary = {}
    for k in next(iter(cases.values())):
        gains = {case: c[k][measure] - c["axial"][measure] for case, c in cases.items()}
        values = np.array(list(gains.values()))
        worst = min(gains, key=gains.get)
        summary[k] = {"gain": float(values.mean()), "standard_error": float(values.std(ddof=1) / np.sqrt(len(values))),
                      "higher": int((values > 0).sum()), "cases": len(values),
                      "largest_loss": float(gains[worst]), "largest_loss_case": worst}
    return summary


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--axial", default=None, help="as views.py --axial")
    parser.add_argument("--sagittal", nargs="+", required=True, metavar="NAME")
    parser.add_argument("--coronal", nargs="+", required=True, metavar="NAME")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    parser.add_argument("--z-per-slice", type=float, default=None, metavar="PIXELS",
                        help="run the view networks (trained with z stretched to 128) on planes with z at PIXELS a "
                             "slice instead (views.z_pixels; 5.333 = 128/24): a test-time rescaling")
    args = data.parse(parser)
    if args.z_per_slice is not None and args.z_per_slice <= 0:
        parser.error("--z-per-slice takes a number of pixels > 0")
    if len(args.sagittal) != len(args.coronal):
        parser.error("--sagittal and --coronal take the same number of draws (the i-th of each is draw i)")
    args.axial = views.axial_choice(parser, args)
    torch.set_num_threads(args.threads)
    root = data.data_dir(args.data)
    _, validation = data.split(root, args.fold)
    axial = views.Axial(args.runs, args.axial)
    sagittal = draws(args.runs, args.sagittal, "sagittal")
    coronal = draws(args.runs, args.coronal, "coronal")
    cases = {}
    for case in validation:
        image, label = data.load_case(root, case)
        p_sagittal = [views.view_probability(net, image, "sagittal", args.z_per_slice) for _, net in sagittal]
        p_coronal = [views.view_probability(net, image, "coronal", args.z_per_slice) for _, net in coronal]
        combined = combinations(axial.probability(image), p_sagittal, p_coronal)
        for (name, _), p in zip(sagittal + coronal, p_sagittal + p_coronal):
            combined[name] = p
        cases[case] = {k: views.scores(p, label) for k, p in combined.items()}
        print(case, " ".join(f"{k} {v['dice_largest_component']:.3f}" for k, v in cases[case].items()), flush=True)
    mean = views.means(cases)
    summary = against_axial(cases)
    out = args.out or os.path.join(args.runs, "view-seeds.json")
    with open(out, "w") as f:
        json.dump({"axial": args.axial, "fold": args.fold, "sagittal": args.sagittal, "coronal": args.coronal,
                   "z_per_slice": args.z_per_slice, "validation_cases": validation, "mean": mean, "against_axial": summary, "cases": cases}, f, indent=1)
    for k, v in summary.items():
        print(f"{k:22s} {mean[k]['dice_largest_component']:.3f} gain {v['gain']:+.3f} (SE {v['standard_error']:.3f}) "
              f"higher {v['higher']}/{v['cases']} largest loss {v['largest_loss']:+.3f} ({v['largest_loss_case']})")


if __name__ == "__main__":
    main()
