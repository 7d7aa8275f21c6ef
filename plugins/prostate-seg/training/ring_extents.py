"""Where the rings' extents end against the true masks, side by side, and where the high-z end would have
ended had it been mirrored about the annotated slice (EXPERIMENTS.md, "The rings' high-z end mirrored").

Reads rings.py's log (runs/.../rings/log.json, or its copies in results/*/cv-fold-K-rings.json): each training
volume's extent [low-z end, central slice, high-z end] (an end that never closed, null, counts as the slice
--max-rings out or the volume's edge). The true extents come from the full masks, which only this measurement
reads. Per log: each side's mean signed and absolute error in slices (positive: the labels run on past the
gland), how many volumes' ends are two or more slices over or under, and the high-z end's absolute error had
it been taken as far as the low-z side reached (mirrored) or capped there (capped: never further than its
own rule went).

usage: python ring_extents.py LOG.json [LOG.json ...] [--data DIR] [--max-rings N] [--volumes]
"""
import argparse
import json
import os

import numpy as np

import data


def true_extent(root, case, cache):
    """(first, central, last, slices) of the case's true mask along z."""
    if case not in cache:
        _, label = data.load_case(root, case)
        z = data.occupied_slices(label)
        cache[case] = (int(z.min()), data.central_slice(label), int(z.max()), label.shape[0])
    return cache[case]


def errors(log, root, max_rings, cache):
    """{case: (low error, high error, mirrored high error, capped high error)} in slices; positive: too far."""
    out = {}
    for case, (low, centre, high) in log["extents"].items():
        first, central, last, slices = true_extent(root, case, cache)
        if central != centre:
            raise SystemExit(f"ring_extents.py: {case}: the log's central slice {centre} is not the mask's {central}")
        low = max(centre - max_rings, 0) if low is None else low
        high = min(centre + max_rings, slices - 1) if high is None else high
        reach_low, reach_high, true_low, true_high = centre - low, high - centre, centre - first, last - centre
        out[case] = (reach_low - true_low, reach_high - true_high, reach_low - true_high,
                     min(reach_high, reach_low) - true_high)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", help="rings.py logs (log.json or results/*/cv-fold-K-rings.json)")
    parser.add_argument("--data", default=None, help="the promise12 folder (default $VOXFLOW_TESTDATA/prostate/promise12)")
    parser.add_argument("--max-rings", type=int, default=15, help="where an end that never closed is counted")
    parser.add_argument("--volumes", action="store_true", help="print each volume's errors too")
    args = parser.parse_args()
    root, cache, rows = data.data_dir(args.data), {}, []
    for path in args.logs:
        with open(path) as f:
            by_case = errors(json.load(f), root, args.max_rings, cache)
        e = np.array(list(by_case.values()))
        row = {"log": path, "volumes": len(e),
               "low_mean": round(float(e[:, 0].mean()), 2), "low_abs": round(float(np.abs(e[:, 0]).mean()), 2),
               "high_mean": round(float(e[:, 1].mean()), 2), "high_abs": round(float(np.abs(e[:, 1]).mean()), 2),
               "high_over_2": int((e[:, 1] >= 2).sum()), "high_under_2": int((e[:, 1] <= -2).sum()),
               "high_abs_mirrored": round(float(np.abs(e[:, 2]).mean()), 2),
               "high_abs_capped": round(float(np.abs(e[:, 3]).mean()), 2)}
        if args.volumes:
            row["by_case"] = {case: list(map(int, v)) for case, v in by_case.items()}
        rows.append(row)
        print(json.dumps(row))
    better = sum(r["high_abs_mirrored"] < r["high_abs"] for r in rows)
    print(f"mirrored high-z end closer on average in {better} of {len(rows)} logs")


if __name__ == "__main__":
    main()
