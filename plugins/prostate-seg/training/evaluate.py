"""The ablation table: 3D Dice of every trained stage on the validation volumes (full masks), with and
without keeping the largest connected component (what workflows/prostate-segmentation.yaml does with
mask-cleanup), and the pseudo labels' precision and recall against the true masks of the training volumes
(each source before and after its extent along z, and the fused set, whose misses are also counted by
third of the gland's extent along z), for runs/ and, where they exist, runs/round2/, runs/tracked/ and
runs/reg/ (three sources, workflows/prostate-pseudolabels-three.yaml).

usage: python evaluate.py [--data DIR] [--runs DIR] [--extra NAME ...] [--ensemble NAME ...] [--mirror]
  -> runs/evaluation.json (runs/evaluation-mirrored.json with --mirror) and a Markdown table
  --extra: further models to evaluate, trained with `train.py ... --name NAME`
  --ensemble: also the ensemble of these models, their logits averaged (measured, not shipped)
  --mirror: each model as the ONNX step runs it since prostate-seg 0.3.0, its logits averaged with
            those of the left-right mirrored input
"""
import json
import os

import numpy as np
import torch
from scipy import ndimage

import data
from unet import load_trained

STAGES = [("baseline", "1. central slices only"), ("semi", "2. semi-supervised (mean teacher)"),
          ("selfsup", "3. self-supervised (context restoration)"), ("final", "5. central + fused pseudo labels"),
          ("round2", "5b. second round (stage 5 as the semi-supervised source)"),
          ("rings", "5r. ring-by-ring self-labelling from stage 3's network (rings.py)"),
          ("full", "6. fully supervised (every slice)")]


def largest_component(mask):
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def pseudo_label_quality(root, runs, training):
    """Precision of each pseudo-label source and of the fused set on the slices nobody annotated."""
    names = ("semi_raw", "self_raw", "reg_raw", "semi", "self", "reg", "fused")
    totals = {k: np.zeros(3) for k in names}  # true positives, predicted, truth
    ignored = covered = 0
    thirds = np.zeros((3, 2))  # gland voxels the fused set misses, and all, by third of the extent along z
    for case in training:
        _, label = data.load_case(root, case)
        keep = np.ones(label.shape[0], bool)
        keep[data.central_slice(label)] = False
        truth = label[keep].astype(bool)
        read = lambda path: data.read_nifti_zyx(path)[keep]
        sources = {}
        for name in ("semi", "self", "reg"):  # within the extent along z, and before it was applied
            for key, path in ((name, os.path.join(runs, "pseudo", f"{case}_{name}.nii.gz")),
                              (f"{name}_raw", os.path.join(runs, "pseudo-raw", f"{case}_{name}.nii.gz"))):
                if os.path.exists(path):
                    sources[key] = read(path) > 0
        target = data.fused_target(runs, case)[keep]
        sources["fused"] = target == 1
        for name, mask in sources.items():
            totals[name] += [np.logical_and(mask, truth).sum(), mask.sum(), truth.sum()]
        ignored += (target == data.IGNORE).sum()
        covered += target.size
        z = data.occupied_slices(label)
        for k, fused in zip(np.where(keep)[0], sources["fused"]):
            if label[k].any():
                third = min(2, int(3 * (k - z.min()) / (z.max() - z.min() + 1)))
                thirds[third] += [np.logical_and(label[k] > 0, ~fused).sum(), (label[k] > 0).sum()]
    out = {name: {"precision": t[0] / max(t[1], 1), "recall": t[0] / max(t[2], 1)} for name, t in totals.items() if t[1] > 0}
    out.setdefault("fused", {"precision": 0.0, "recall": 0.0})["ignored_fraction"] = ignored / max(covered, 1)
    out["fused"]["missed_by_third_of_extent"] = [m / max(t, 1) for m, t in thirds]
    return out


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--extra", nargs="*", default=[], help="models trained with --name, evaluated too")
    parser.add_argument("--ensemble", nargs="*", default=[], help="models whose averaged logits are evaluated too")
    parser.add_argument("--mirror", action="store_true", help="left-right test-time mirroring, as the step")
    args = data.parse(parser)
    torch.set_num_threads(2)
    root = data.data_dir(args.data)
    training, validation = data.split(root, args.fold)
    cases = {c: data.load_case(root, c) for c in validation}
    results = {"validation_cases": validation, "mirrored": args.mirror, "stages": {}}
    extra = [(name, name) for name in dict.fromkeys(args.extra) if name not in dict(STAGES)]
    models = [(stage, title, [stage]) for stage, title in STAGES + extra]
    if len(args.ensemble) == 1:
        parser.error("--ensemble takes two or more model names")
    if args.ensemble:
        models.append(("ensemble:" + "+".join(args.ensemble), "ensemble of " + ", ".join(args.ensemble), args.ensemble))
    for stage, title, members in models:
        missing = [p for p in (os.path.join(args.runs, m, "model.pt") for m in members) if not os.path.exists(p)]
        if missing:
            print(f"{stage}: no {', '.join(missing)}, left out")
            continue
        net = [load_trained(args.runs, m) for m in members]
        raw, cleaned = {}, {}
        for case, (image, label) in cases.items():
            mask = data.predict_volume(net, image, mirror=args.mirror) > 0.5
            raw[case] = float(data.dice(mask, label))
            cleaned[case] = float(data.dice(largest_component(mask), label))
        results["stages"][stage] = {"title": title, "dice": raw, "dice_largest_component": cleaned}
        print(f"{title}: Dice {np.mean(list(raw.values())):.3f} +- {np.std(list(raw.values())):.3f}, "
              f"largest component {np.mean(list(cleaned.values())):.3f} +- {np.std(list(cleaned.values())):.3f}", flush=True)
    for key, folder in (("pseudo_labels", args.runs), ("pseudo_labels_round2", os.path.join(args.runs, "round2")),
                        ("pseudo_labels_tracked", os.path.join(args.runs, "tracked")),
                        ("pseudo_labels_three", os.path.join(args.runs, "reg"))):
        if os.path.isdir(os.path.join(folder, "fused", "agreement")):
            results[key] = pseudo_label_quality(root, folder, training)
            print(key, json.dumps(results[key], indent=1))
    with open(os.path.join(args.runs, "evaluation-mirrored.json" if args.mirror else "evaluation.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("| stage | mean Dice | std | min | mean Dice, largest component |")
    print("|---|---|---|---|---|")
    for stage, r in results["stages"].items():
        d, c = np.array(list(r["dice"].values())), np.array(list(r["dice_largest_component"].values()))
        print(f"| {r['title']} | {d.mean():.3f} | {d.std():.3f} | {d.min():.3f} | {c.mean():.3f} |")


if __name__ == "__main__":
    main()
