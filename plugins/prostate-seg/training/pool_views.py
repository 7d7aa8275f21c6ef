"""Pools view_seeds.py's results over folds: the cross-validation's estimate of the view combinations
(ends2, the plain average of three views, each view alone) against the axial network of each fold, over
every validation case measured, with the mean per fold beside it.

usage: python pool_views.py FILE [FILE ...] [--out FILE]
  each FILE is a view_seeds.py JSON of one fold (results/2026-12-01-*/cv-fold-K-view-seeds.json); the
  combinations pooled are those every file has (draw 1 of each view: three_draw1, ends1_draw1, ends2_draw1,
  and each view alone under its network's name).
"""
import argparse
import json

from view_seeds import against_axial
from views import means

ALONE = ("sagittal", "coronal")


def comparable(result):
    """The fold's cases with only the combinations every fold's file has (the view networks alone under their
    view's name, whatever their runs folder called them)."""
    renamed = dict(zip(result["sagittal"][:1] + result["coronal"][:1], ALONE))
    keep = ("axial", "three_draw1", "ends1_draw1", "ends2_draw1", *ALONE)
    return {case: {k: v for k, v in ((renamed.get(name, name), scores) for name, scores in c.items()) if k in keep}
            for case, c in result["cases"].items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cases, folds = {}, {}
    for path in args.files:
        result = json.load(open(path))
        fold_cases = comparable(result)
        overlap = set(fold_cases) & set(cases)
        if overlap:
            parser.error(f"{path}: cases {sorted(overlap)} are already in an earlier file (one file per fold)")
        cases.update(fold_cases)
        folds[f"fold {result['fold']}"] = {"cases": len(fold_cases), "mean": means(fold_cases),
                                           "against_axial": against_axial(fold_cases)}
    mean, summary = means(cases), against_axial(cases)
    for name, fold in folds.items():
        print(name, f"({fold['cases']} cases):", " ".join(
            f"{k} {v['dice_largest_component']:.3f}" for k, v in fold["mean"].items()))
    print(f"pooled over {len(cases)} cases (largest component):")
    for k, v in summary.items():
        print(f"  {k:12s} {mean[k]['dice_largest_component']:.3f} gain {v['gain']:+.3f} (SE {v['standard_error']:.3f}) "
              f"higher {v['higher']}/{v['cases']} largest loss {v['largest_loss']:+.3f} ({v['largest_loss_case']})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"files": args.files, "cases": len(cases), "mean": mean, "against_axial": summary,
                       "folds": folds}, f, indent=1)


if __name__ == "__main__":
    main()
