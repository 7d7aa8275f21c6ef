"""Pseudo labels' outlines redrawn from the image: a label source that reads the slice's own edges, not a
network's or a registration's guess of them.

The oracles (EXPERIMENTS.md, "The labels' cost on every fold") put the sparse recipe's whole gap to full
supervision in the outline of the pseudo labels on the outer slices: there the ring network's masks and the
carried annotation are both over-large (precision 0.5-0.7 five to six slices out). A mask is redrawn inside
a band around its own outline by the slice's intensities, the classic refinement of weak labels:

- `walker`: scikit-image's random walker. Seeds: gland on the mask eroded to its core (CORE of its
  equivalent radius kept), background outside the mask dilated by BAND of that radius; the pixels
  between go to whichever seed set a random walk on the intensity graph reaches first.
- `grabcut`: OpenCV's GrabCut (Gaussian mixtures of gland and background intensities and a graph cut),
  with the same core as sure gland, the rest of the mask as probable gland, the band as probable
  background and everything beyond as sure background.

Measured and closed (EXPERIMENTS.md, "Outlines redrawn from the image"): on the carried annotation both
trade precision for recall without drawing the outline better, and cut gland next to the annotation.

A mask too small to have a core (a few pixels) is kept as it is. The parameters were set before any model
was trained on refined labels; `python refine.py --fold K` measures, on the training volumes of fold K,
the precision and recall of the carried annotation (registration.py) before and after each refinement, by
distance from the central slice, against the true masks (reading only; nothing trained sees them).
"""
import argparse
import json
import time

import numpy as np
from scipy import ndimage

import data

METHODS = ("walker", "grabcut")
CORE = 0.75  # the fraction of the mask's equivalent radius kept as its core (sure gland)
BAND = 0.15  # the band outside the mask, as a fraction of that radius, left for the refinement to claim
BETA = 130.0  # scikit-image's default edge weight
MIN_RADIUS = 3.0  # masks of a smaller equivalent radius (pixels) are kept unrefined


def _disk(radius):
    r = max(1, int(round(radius)))
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def regions(mask):
    """(core, unknown, background) boolean maps for one slice's mask, or None when it is too small."""
    area = int(mask.sum())
    radius = np.sqrt(area / np.pi)
    if radius < MIN_RADIUS:
        return None
    core = ndimage.binary_erosion(mask, _disk(radius * (1 - CORE)))
    if not core.any():
        return None
    outer = ndimage.binary_dilation(mask, _disk(radius * BAND))
    return core, outer & ~core, ~outer


def refined(image_slice, mask, method):
    """`mask` (bool, y x) redrawn on `image_slice` (float in [0, 1], same plane) by `method`."""
    parts = regions(mask)
    if parts is None:
        return mask
    core, unknown, background = parts
    ys, xs = np.where(~background)
    pad = 4
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, mask.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, mask.shape[1])
    window = (slice(y0, y1), slice(x0, x1))
    crop = image_slice[window].astype(np.float64)
    out = np.zeros_like(mask)
    if method == "walker":
        from skimage.segmentation import random_walker
        seeds = np.where(core[window], 1, np.where(background[window], 2, 0)).astype(np.int32)
        out[window] = random_walker(crop, seeds, beta=BETA, mode="cg_j", tol=1e-3) == 1
    elif method == "grabcut":
        import cv2
        gc = np.full(crop.shape, cv2.GC_BGD, np.uint8)
        gc[unknown[window]] = cv2.GC_PR_BGD
        gc[mask[window] & unknown[window]] = cv2.GC_PR_FGD
        gc[core[window]] = cv2.GC_FGD
        rgb = np.repeat((np.clip(crop, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(rgb, gc, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
        out[window] = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    else:
        raise ValueError(f"unknown refinement {method!r}; one of {METHODS}")
    return out


def _counts(mask, truth):
    return np.array([np.logical_and(mask, truth).sum(), mask.sum(), truth.sum()], np.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--fold", type=int, choices=range(1, data.FOLDS + 1), default=1,
                        help="measure on the training volumes of this cross-validation fold (data.split)")
    parser.add_argument("--cases", type=int, default=0, help="only the first N training cases (0: all)")
    parser.add_argument("--out", default=None, help="write the table as JSON here")
    args = parser.parse_args()
    if args.cases < 0:
        parser.error("--cases takes a number >= 0")
    import registration
    registration.single_threaded()
    root = data.data_dir(args.data)
    training, _ = data.split(root, args.fold)
    if args.cases:
        training = training[:args.cases]
    ways = ("carried",) + METHODS
    by_distance = {w: {} for w in ways}
    started = time.time()
    for case in training:
        image, truth = data.load_case(root, case)
        carried = registration.carried_annotation(image, truth)
        norm = data.normalize(image)
        centre = data.central_slice(truth)
        inside = data.occupied_slices(truth)
        for z in range(len(image)):
            # inside the true extent only: where a source stops is a separate question (the extent rule)
            if z == centre or z not in inside or not carried[z].any():
                continue
            d = abs(z - centre)
            for w in ways:
                mask = carried[z] > 0 if w == "carried" else refined(norm[z], carried[z] > 0, w)
                by_distance[w].setdefault(d, np.zeros(3, np.int64))
                by_distance[w][d] += _counts(mask, truth[z] > 0)
        print(f"{case} {time.time() - started:.0f} s", flush=True)
    rate = lambda t: {"precision": round(float(t[0] / max(t[1], 1)), 3), "recall": round(float(t[0] / max(t[2], 1)), 3),
                      "dice": round(float(2 * t[0] / max(t[1] + t[2], 1)), 3)}
    table = {w: {"all": rate(sum(by_distance[w].values())), **{d: rate(t) for d, t in sorted(by_distance[w].items())}}
             for w in ways}
    for w in ways:
        print(w, json.dumps(table[w]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"fold": args.fold, "cases": training, "core": CORE, "band": BAND, "beta": BETA, "table": table}, f, indent=1)


if __name__ == "__main__":
    main()
