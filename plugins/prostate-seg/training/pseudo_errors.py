"""Where the fused pseudo labels are wrong, on the training volumes' unannotated slices against the true
masks. Gland taught as background, as a share of the gland: on slices the fused set leaves empty (beyond
the two sources' common extent, or within it where their masks do not overlap), within a band along the
fused mask's in-plane boundary, farther inside; and the gland left out as disagreement (ignored, not
taught). Background taught as gland, as a share of the fused mask: on slices without gland, in a 2D
component that does not touch the gland, within the band, farther out. The shares and precision (or
recall) add up to 1. Research code: it says which fault of the pseudo labels is worth fixing first.
With --model, also how well a model trained on these labels finds their errors, as `train.py
--self-correct` would use it: of the taught voxels it contradicts (gives their class less than 0.1), the
share that is wrong, and of the wrong taught voxels, the share it contradicts; of the ignored voxels it is
sure of (0.9 either way), the share it gets right.

usage: python pseudo_errors.py [--data DIR] [--runs DIR] [--labels DIR] [--band PIXELS] [--model NAME]
  --labels: the folder whose fused/ to read (default --runs; e.g. runs/tracked)
  --band: the boundary band's half-width in pixels of the network's 128x128 grid (default 2)
  --model: a model under --runs (e.g. final), run unmirrored on each training volume
"""
import json
import os
import sys

import numpy as np
import torch
from scipy import ndimage

import data
from train import SURE  # the probability at which a model overrules a pseudo label (train.py --self-correct)
from unet import load_trained


class ModelView:
    """What a trained model says about the pseudo labels it was taught, against the true masks."""

    def __init__(self, net):
        self.net = net
        self.counts = dict(taught=0, taught_wrong=0, contradicted=0, contradicted_wrong=0,
                           ignored=0, ignored_sure=0, ignored_sure_right=0)

    def add(self, image, label, target, keep):
        """Count one volume's slices in `keep` (the unannotated ones)."""
        gland = data.predict_volume(self.net, image)[keep]
        target, truth = target[keep], label[keep] > 0
        taught, ignored = target != data.IGNORE, target == data.IGNORE
        wrong = taught & ((target == 1) != truth)
        contradicted = taught & (np.where(target == 1, gland, 1 - gland) < 1 - SURE)
        sure = ignored & ((gland >= SURE) | (gland <= 1 - SURE))
        c = self.counts
        c["taught"] += taught.sum()
        c["taught_wrong"] += wrong.sum()
        c["contradicted"] += contradicted.sum()
        c["contradicted_wrong"] += (contradicted & wrong).sum()
        c["ignored"] += ignored.sum()
        c["ignored_sure"] += sure.sum()
        c["ignored_sure_right"] += (sure & ((gland >= SURE) == truth)).sum()

    def report(self):
        c = {k: int(v) for k, v in self.counts.items()}
        return {"counts": c,
                "wrong_of_taught": c["taught_wrong"] / max(c["taught"], 1),
                "contradicted_of_taught": c["contradicted"] / max(c["taught"], 1),
                "wrong_of_contradicted": c["contradicted_wrong"] / max(c["contradicted"], 1),
                "contradicted_of_wrong": c["contradicted_wrong"] / max(c["taught_wrong"], 1),
                "sure_of_ignored": c["ignored_sure"] / max(c["ignored"], 1),
                "right_of_sure_ignored": c["ignored_sure_right"] / max(c["ignored_sure"], 1)}


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
    parser.add_argument("--model", default=None, help="a model under --runs whose view of the errors to count")
    args = data.parse(parser)
    root = data.data_dir(args.data)
    training, _ = data.split(root, args.fold)
    folder = args.labels or args.runs
    path = os.path.join(folder, "pseudo-raw", "extents.json")
    if not os.path.exists(path):
        sys.exit(f"pseudo_errors.py: no {path}; run pseudolabels.py (and the fusion workflow) for {folder} first")
    with open(path) as f:
        extents = json.load(f)
    if args.model:
        torch.set_num_threads(1)
        view = ModelView(load_trained(args.runs, args.model))
    fn = dict(empty_slice_beyond_extents=0, empty_slice_within_extents=0, band=0, far=0)
    fp = dict(no_gland_slice=0, stray_component=0, band=0, far=0)
    tp = truth_total = ignored_truth = ignored = 0
    for case in training:
        image, label = data.load_case(root, case)
        target = data.fused_target(folder, case)
        centre = data.central_slice(label)
        if args.model:
            view.add(image, label, target, np.arange(label.shape[0]) != centre)
        first = max(extents[case]["semi"][0], extents[case]["self"][0])  # where both sources may say gland
        last = min(extents[case]["semi"][1], extents[case]["self"][1])
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
    if args.model:
        report["model_view"] = {"model": args.model, **view.report()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
