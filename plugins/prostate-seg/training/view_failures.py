"""Diagnostics of the view networks' outright failures on some volumes with many slices (train01, train07,
train10, train34: 28-39 slices): each view network alone, run on the volume as trained and on three changed
inputs, to see which change mends it ("Views at the ends on folds 2, 3 and 4, and the view networks'
failures" in EXPERIMENTS.md; none does):
  heights   the planes' z resized to 96, 128 (as trained), 160, 192, 224 and 256 rows
  half      every other axial slice, the probability interpolated back linearly along z
  window    the slices of the axial network's largest component's extent along z widened to 1/0.7 of it
            (the gland filling ~70 % of them, as in most training volumes), probability 0 outside

usage: python view_failures.py [--data DIR] [--runs DIR] [--fold K] [--axial onnx|STAGE]
                               [--networks NAME ...] [--threads N] CASE ...
Prints one line per case and network (largest-component Dice); the networks are views.py's under --runs.
"""
import numpy as np
import torch

import data
import views
from evaluate import largest_component

HEIGHTS = (96, 128, 160, 192, 224, 256)
GLAND_SHARE = 0.7


def score(probability, label):
    """Dice of the probability's largest component against the label."""
    return views.scores(probability, label)["dice_largest_component"]


def every_other_slice(net, image, view):
    """The view probability from every other axial slice, interpolated back linearly along z."""
    half = views.view_probability(net, image[::2], view)
    j = np.arange(len(image)) / 2.0
    lo = np.floor(j).astype(int)
    hi = np.minimum(lo + 1, len(half) - 1)
    w = (j - lo)[:, None, None]
    return (1 - w) * half[lo] + w * half[hi]


def gland_window(p_axial):
    """(start, stop) of the slices around the axial mask's largest component, the gland filling GLAND_SHARE."""
    n = len(p_axial)
    z = data.occupied_slices(largest_component(p_axial > 0.5))
    if not len(z):
        return 0, n
    want = int(round((z.max() - z.min() + 1) / GLAND_SHARE))
    stop = int(min(n, max(0, round((z.min() + z.max() + 1 - want) / 2)) + want))
    return max(0, stop - want), stop


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--axial", default=None, help="as views.py --axial")
    parser.add_argument("--networks", nargs="+", default=["sagittal", "coronal"], metavar="NAME")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("cases", nargs="+", metavar="CASE")
    args = data.parse(parser)
    args.axial = views.axial_choice(parser, args)
    torch.set_num_threads(args.threads)
    root = data.data_dir(args.data)
    unknown = set(args.cases) - set(data.labelled_cases(root))
    if unknown:
        parser.error(f"not labelled cases: {' '.join(sorted(unknown))}")
    axial = views.Axial(args.runs, args.axial)
    networks = [views.trained_view(args.runs, name) for name in args.networks]
    for case in args.cases:
        image, label = data.load_case(root, case)
        p_axial = axial.probability(image)
        start, stop = gland_window(p_axial)
        for name, view, net in networks:
            heights = " ".join(f"{h}:{score(views.view_probability(net, image, view, h / len(image)), label):.3f}" for h in HEIGHTS)
            windowed = np.zeros_like(p_axial)
            windowed[start:stop] = views.view_probability(net, image[start:stop], view)
            print(f"{case} ({len(image)} slices) {name}: axial {score(p_axial, label):.3f} | heights {heights} | "
                  f"half {score(every_other_slice(net, image, view), label):.3f} | window {start}:{stop} {score(windowed, label):.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
