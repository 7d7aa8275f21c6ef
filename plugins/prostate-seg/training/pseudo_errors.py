"""Where the fused pseudo labels are wrong: their false negatives and false positives on the training
volumes' unannotated slices, against the true masks, split by where they lie (a slice the fused set
leaves empty, a band along the fused mask's in-plane boundary, a 2D component that misses the gland,
elsewhere). Research code: it says which fault of the pseudo labels is worth fixing first.

usage: python pseudo_errors.py [--data DIR] [--runs DIR] [--labels DIR] [--band PIXELS]
  --labels: the folder whose fused/ to read (default --runs; e.g. runs/tracked)
  --band: the boundary band's half-width in pixels of the network's 128x128 grid (default 2)
"""
import json

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
    parser.add_argument("--labels", default=None)
    parser.add_argument("--band", type=float, default=2.0)
    args = parser.parse_args()
    root = data.data_dir(args.data)
    training, _ = data.split(root)
    fn = dict(empty_slice=0, band=0, far=0)
    fp = dict(no_gland_slice=0, missing_component=0, band=0, far=0)
    tp = truth_total = ignored_truth = ignored = 0
    for case in training:
        _, label = data.load_case(root, case)
        agreement = data.read_nifti_zyx(f"{args.labels or args.runs}/fused/agreement/{case}_agreement.nii.gz")
        centre = data.central_slice(label)
        # network pixels -> source pixels: the crop's width over the network's grid
        band = args.band * data.crop_box(label.shape[2])[1] / data.SIZE
        for z in range(label.shape[0]):
            if z == centre:
                continue
            truth, fused = label[z] > 0, agreement[z] == 1
            tp += np.logical_and(truth, fused).sum()
            truth_total += truth.sum()
            ignored += (agreement[z] == 255).sum()
            ignored_truth += np.logical_and(truth, agreement[z] == 255).sum()
            near = boundary_distance(fused) <= band
            missed = truth & ~fused & (agreement[z] != 255)
            if not fused.any():
                fn["empty_slice"] += missed.sum()
            else:
                fn["band"] += (missed & near).sum()
                fn["far"] += (missed & ~near).sum()
            wrong = fused & ~truth
            if not truth.any():
                fp["no_gland_slice"] += wrong.sum()
                continue
            components, n = ndimage.label(fused)
            overlapping = np.unique(components[fused & truth])
            stray = fused & ~np.isin(components, overlapping)
            fp["missing_component"] += (wrong & stray).sum()
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
