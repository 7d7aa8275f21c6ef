"""The pseudo labels at the ends of the gland, where the sparse model fails. Two reports on the 26 training
volumes, against their true masks (used here for measurement only):

1. How far each estimate of the gland's extent along z lies from the true ends, per end: each source's
   own extent (pseudolabels.py), their common extent (where the AND can say gland), their reach (either),
   and the extent mirrored about the central slice (data.mirrored_extent).
2. For each candidate training target, the precision and recall of the gland it teaches and the share of
   the gland it teaches as background, by slice position counted from each true end (the last gland
   slice, the second, the third, the inner slices), at the low-z and the high-z end apart, and the wrong
   gland it teaches on slices beyond the gland. The central slice is left out (training replaces it with
   the annotation).

Targets (1 gland, 0 background, IGNORE not taught):
  fused         stage 5's: data.fused_target of <runs>/fused (the AND, disagreement ignored)
  semi, self    each source alone within its own extent (<runs>/pseudo)
  reg           the annotation carried by registration within the sources' reach (<runs>/reg/pseudo;
                pseudolabels.py --register)
  reg-ignore    fused, with its background ignored where registration says gland, within the sources'
                reach and 2 slices past it (train.py final --registration ignore)
  reg-agree     gland where registration and either source agree (train.py final --registration agree)
  mirrored      the AND of both sources within the mirrored extent (pseudolabels.py --extent mirrored)
  mirrored-reg  mirrored with registration's veto 1 slice past the extent (train.py final --labels
                runs/mirrored --registration ignore --beyond 1)

usage: python pseudo_ends.py [--data DIR] [--runs DIR] -> runs/pseudo-ends.json and two tables
  needs runs/pseudo, runs/fused and runs/pseudo-raw (pseudolabels.py and the fusion workflow), runs/reg
  (pseudolabels.py --register) and runs/mirrored with its fused/ and a reg link (EXPERIMENTS.md, Commands)
"""
import json
import os
import sys

import numpy as np

import data
from train import fused_targets

POSITIONS = ("last", "second", "third", "inner", "beyond")


def read_mask(folder, case, role):
    return data.read_nifti_zyx(os.path.join(folder, f"{case}_{role}.nii.gz")) > 0


def extent_estimates(extent):
    """{name: (first, last)} of each estimate of the gland's extent, from a case's extents.json entry."""
    (semi_first, semi_last), (self_first, self_last) = extent["semi"], extent["self"]
    return {"semi": (semi_first, semi_last), "self": (self_first, self_last),
            "common": (max(semi_first, self_first), min(semi_last, self_last)),
            "reach": data.sources_reach(extent),
            "mirrored": data.mirrored_extent(extent, extent["central_slice"], extent["slices"])}


def target_makers(runs):
    """{name: targets(case, label)} of each candidate target: train.py's own fused_targets, so that what is
    measured here is what a training is taught, plus each source alone."""
    binary = lambda folder, role: lambda case, label: read_mask(folder, case, role).astype(np.uint8)
    mirrored = os.path.join(runs, "mirrored")
    return {"fused": fused_targets(runs),
            "semi": binary(os.path.join(runs, "pseudo"), "semi"),
            "self": binary(os.path.join(runs, "pseudo"), "self"),
            "reg": binary(os.path.join(runs, "reg", "pseudo"), "reg"),
            "reg-ignore": fused_targets(runs, registration="ignore", beyond=2),
            "reg-agree": fused_targets(runs, registration="agree"),
            "mirrored": fused_targets(mirrored),
            "mirrored-reg": fused_targets(mirrored, registration="ignore", beyond=1)}


def position(z, first, last):
    """(end, position) of slice z against the true gland's extent [first, last]."""
    if z < first or z > last:
        return ("low" if z < first else "high"), "beyond"
    below, above = z - first, last - z
    end, distance = ("low", below) if below <= above else ("high", above)
    return end, POSITIONS[min(distance, 3)]


def extent_report(errors):
    """Mean error, mean absolute error and share within one slice of each estimate, per end."""
    report = {}
    for (name, end), values in sorted(errors.items()):
        v = np.array(values)
        report.setdefault(name, {})[end] = {"mean_error": float(v.mean()), "mean_absolute_error": float(np.abs(v).mean()),
                                            "exact": float(np.mean(v == 0)), "within_one": float(np.mean(np.abs(v) <= 1))}
    return report


def main():
    parser = data.arguments(__doc__)
    args = data.parse(parser)
    root = data.data_dir(args.data)
    training, _ = data.split(root, args.fold)
    path = os.path.join(args.runs, "pseudo-raw", "extents.json")
    needed = [path] + [os.path.join(args.runs, *sub) for sub in (
        ("fused", "agreement"), ("reg", "pseudo"), ("reg", "pseudo-raw"), ("mirrored", "fused", "agreement"),
        ("mirrored", "reg"))]
    missing = [p for p in needed if not os.path.exists(p)]
    if missing:
        sys.exit(f"pseudo_ends.py: no {', '.join(missing)}: run pseudolabels.py, pseudolabels.py --register, "
                 f"pseudolabels.py --extent mirrored, the fusion workflow into {args.runs}/fused and "
                 f"{args.runs}/mirrored/fused, and link {args.runs}/mirrored/reg to ../reg first (EXPERIMENTS.md)")
    with open(path) as f:
        extents = json.load(f)
    makers = target_makers(args.runs)
    counts = {}  # (target, end, position) -> [true positives, taught gland, truth, truth taught as background]
    errors = {}  # (estimate, end) -> estimated minus true end slice, per case
    for case in training:
        _, label = data.load_case(root, case)
        truth_slices = data.occupied_slices(label)
        first, last, centre = truth_slices.min(), truth_slices.max(), data.central_slice(label)
        for name, (lo, hi) in extent_estimates(extents[case]).items():
            errors.setdefault((name, "low"), []).append(int(lo - first))
            errors.setdefault((name, "high"), []).append(int(hi - last))
        for name, make in makers.items():
            target = make(case, label)
            for z in range(label.shape[0]):
                if z == centre:
                    continue
                truth = label[z] > 0
                c = counts.setdefault((name,) + position(z, first, last), np.zeros(4))
                c += [(truth & (target[z] == 1)).sum(), (target[z] == 1).sum(), truth.sum(),
                      (truth & (target[z] == 0)).sum()]
    report = {}
    for (name, end, where), (tp, taught, truth, as_background) in sorted(counts.items()):
        entry = {"taught_gland": int(taught), "precision": tp / taught if taught else None}
        if where != "beyond":
            entry.update(recall=tp / truth, taught_as_background=as_background / truth)
        report.setdefault(name, {}).setdefault(end, {})[where] = entry
    for name in report:  # overall, as in the README's pseudo-label table
        total = sum((counts[k] for k in counts if k[0] == name), np.zeros(4))
        report[name]["all"] = {"precision": total[0] / total[1], "recall": total[0] / total[2]}
    extents_out = extent_report(errors)
    with open(os.path.join(args.runs, "pseudo-ends.json"), "w") as f:
        json.dump({"extent_errors": extents_out, "targets": report}, f, indent=1)
    print("extent estimate: error in slices at each end (estimated minus true; mean, mean absolute, share within one)")
    for name, ends in extents_out.items():
        print(f"  {name:9s} " + "   ".join(f"{end}: {e['mean_error']:+.2f} {e['mean_absolute_error']:.2f} {e['within_one']:.2f}"
                                           for end, e in ends.items()))
    print(f"{'target':12s} {'end':5s} " + " ".join(f"{p:>14s}" for p in POSITIONS)
          + "   (precision/recall/taught as background; beyond: wrong gland voxels)")
    for name, ends in report.items():
        for end in ("low", "high"):
            cells = []
            for p in POSITIONS:
                e = ends[end].get(p, {})
                if p == "beyond":
                    cells.append(f"{e.get('taught_gland', 0):>14d}")  # no gland there: all of it is wrong
                else:
                    precision = e["precision"] if e["precision"] is not None else float("nan")
                    cells.append(f"{precision:.2f}/{e['recall']:.2f}/{e['taught_as_background']:.2f}")
            print(f"{name:12s} {end:5s} " + " ".join(f"{c:>14s}" for c in cells))
        print(f"{name:12s} all   precision {ends['all']['precision']:.3f} recall {ends['all']['recall']:.3f}")


if __name__ == "__main__":
    main()
