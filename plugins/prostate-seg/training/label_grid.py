"""How well the network grid can hold each case's true mask, for each rule that takes masks to it
(data.LABEL_RESIZES): the ceiling a perfect network trained on such targets reaches.

Each labelled case's true mask goes to the 128x128 network grid as training targets do (data.label_slices
under that rule), becomes a perfect network's logits (+1 gland, -1 background) and comes back to the source
grid as the ONNX step maps logits (data.probability_on_source: bilinear, the crop's edges padded, then
probability > 0.5); the 3D Dice against the mask is the ceiling. Also the centroid of the targets against
that of the image's own bilinear sampling of the mask, in network pixels (y, x): the offset a network
trained on them learns. EXPERIMENTS.md, "Centred targets".

usage: python label_grid.py [--data DIR]   -> prints a JSON summary per rule (no training, ten seconds)
"""
import argparse
import json

import numpy as np
import torch

import data


def centroid(mask):
    """Mean (y, x) of a (z, h, w) weight map, in pixels of its grid."""
    total = mask.sum()
    ys, xs = np.arange(mask.shape[1]), np.arange(mask.shape[2])
    return np.array([(mask.sum((0, 2)) * ys).sum() / total, (mask.sum((0, 1)) * xs).sum() / total])


def ceiling(label, rule):
    """(Dice of the round trip, centroid offset of the targets against the bilinear sampling) for one mask."""
    targets = data.label_slices(label, rule=rule).astype(np.float32)
    logits = torch.from_numpy(np.stack([-(2 * targets - 1), 2 * targets - 1], axis=1))
    back = data.probability_on_source(logits, label.shape[1:]) > 0.5
    sampled = data.resize_slices(data.cropped(label.astype(np.float32)))
    return data.dice(back, label), centroid(targets) - centroid(sampled)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="the promise12 folder (default $VOXFLOW_TESTDATA/prostate/promise12)")
    args = parser.parse_args()
    root = data.data_dir(args.data)
    cases = data.labelled_cases(root)
    results = {rule: {"dice": [], "offset": []} for rule in data.LABEL_RESIZES}
    for case in cases:
        _, label = data.load_case(root, case)
        for rule in data.LABEL_RESIZES:
            score, offset = ceiling(label, rule)
            results[rule]["dice"].append(score)
            results[rule]["offset"].append(offset)
    for rule, r in results.items():
        offsets = np.array(r["offset"])
        print(json.dumps({"rule": rule, "cases": len(cases), "mean_dice": round(float(np.mean(r["dice"])), 4),
                          "min_dice": round(float(np.min(r["dice"])), 4),
                          "mean_offset_yx": [round(float(v), 3) for v in offsets.mean(0)]}))


if __name__ == "__main__":
    main()
