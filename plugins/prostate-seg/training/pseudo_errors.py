"""Where the fused pseudo labels are wrong, on the training volumes' unannotated slices against the true
masks. Gland taught as background, as a share of the gland: on slices the fused set leaves empty (beyond
the two sources' common extent, or within it where their masks do not overlap), within a band along the
fused mask's in-plane boundary, farther inside; and the gland left out as disagreement (ignored, not
taught). Background taught as gland, as a share of the fused mask: on slices without gland, in a 2D
component that does not touch the gland, within the band, farther out. The shares and precision (or
recall) add up to 1. Research code: it says which fault of the pseudo labels is worth fixing first.

usage: python pseudo_errors.py [--data DIR] [--runs DIR] [--labels DIR] [--band PIXELS]
  --labels: the folder whose fused/ to read (default --runs; e.g. runs/tracked)
  --band: the boundary band's half-width in pixels of the network's 128x128 grid (default 2)
"""
import json
import os
import sys

import numpy as np
from scipy import ndimage

import data


def boundary_distance(mask2d):
    """Distance in source pixels of every pixel to the boundary of a 2D mask (inside and outside)."""
    if not mask2d.any():
        return np.full(mask2d.shape, np.inf)
    return np.where(mask2d, ndimage.distance_transform_edt(mask2d), ndimage.distance_transform_edt(~mask2d))


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--labels", default=None, help="the folder whose fused/ and pseudo-raw/ to read (default --runs)")
    parser.add_argument("--band", type=float, default=2.0,
                        help="the boundary band's half-width in pixels of the network's grid")
    args = data.parse(parser)
    root = data.data_dir(args.data)
    training, _ = data.split(root, args.fold)
    folder = args.labels or args.runs
    path = os.path.join(folder, "pseudo-raw", "extents.json")
    if not os.path.exists(path):
        sys.exit(f"pseudo_errors.py: no {path}; run pseudolabels.py (and the fusion workflow) for {folder} first")
    with open(path) as f:
        extents = json.load(f)
    fn = dict(empty_slice_beyond_extents=0, empty_slice_within_extents=0, band=0, far=0)
    fp = dict(no_gland_slice=0, stray_component=0, band=0, far=0)
    tp = truth_total = ignored_truth = ignored = 0
    for case in training:
        _, label = data.load_case(root, case)
        target = data.fused_target(folder, case)
        first = max(extents[case]["semi"][0], extents[case]["self"][0])  # where both sources may say gland
        last = min(extents[case]["semi"][1], extents[case]["self"][1])
        centre = data.central_slice(label)
        # network pixels -> source pixels: the crop's width over the network's grid
        band = data.source_pixels(args.band, label.shape[2])
        for z in range(label.shape[0]):
            if z == centre:
                continue
            truth, fused = label[z] > 0, target[z] == 1
            tp += np.logical_and(truth, fused).sum()
            truth_total += truth.sum()
            ignored += (target[z] == data.IGNORE).sum()
            ignored_truth += np.logical_and(truth, target[z] == data.IGNORE).sum()
            near = boundary_distance(fused) <= band
            missed = truth & ~fused & (target[z] != data.IGNORE)
            if not fused.any():
                fn["empty_slice_within_extents" if first <= z <= last else "empty_slice_beyond_extents"] += missed.sum()
            else:
                fn["band"] += (missed & near).sum()
                fn["far"] += (missed & ~near).sum()
            wrong = fused & ~truth
            if not truth.any():
                fp["no_gland_slice"] += wrong.sum()
                continue
            components, _ = ndimage.label(fused)
            overlapping = np.unique(components[fused & truth])
            stray = fused & ~np.isin(components, overlapping)
            fp["stray_component"] += (wrong & stray).sum()
            fp["band"] += (wrong & ~stray & near).sum()
            fp["far"] += (wrong & ~stray & ~near).sum()
    predicted = tp + sum(fp.values())
    report = {
        "precision": tp / predicted, "recall": tp / truth_total,
        "false_negatives_of_truth": {k: v / truth_total for k, v in fn.items()},
        "false_positives_of_predicted": {k: v / predicted for k, v in fp.items()},
        "gland_ignored_of_truth": ignored_truth / truth_total,
        "ignored_voxels": int(ignored), "ignored_that_are_gland": ignored_truth / max(ignored, 1),
        "band_pixels_on_network_grid": args.band,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
