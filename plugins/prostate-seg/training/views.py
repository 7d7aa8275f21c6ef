"""Other views as judges of the gland's ends: a network on sagittal or coronal slices, trained on an axial
network's labels, averaged with it (measured, not shipped: "A sagittal network beside the rings" and "A
coronal third view" in EXPERIMENTS.md).

The ring-by-ring network (rings.py) loses where the gland ends along z: it stops a slice or two early at the
apex on some cases and carries gland past the ends on others. An axial network decides each slice on its own
(with its two neighbours as channels); a sagittal or coronal slice shows the gland's whole extent along z in
one image, its taper towards apex and base, the bladder above it (and, sagittal, the rectum behind it). This
script takes an axial network (the shipped ONNX file on the fixed split, or a stage trained under --runs),
labels every training volume and every unlabelled volume with it (mirrored, as the step runs it; its
uncertain voxels, probability between 0.25 and 0.75, ignored; the annotated central slice taught as
annotated), trains the same 2.5D U-Net on slices of the chosen view of those labels from random weights, and
measures on the validation cases the axial network, the view network and the average of their probabilities.

View slices are cut from the network's axial grid (each slice's central 60 % resized to 128x128, as
data.prepared): for each of its 128 columns (sagittal) or rows (coronal), the plane through it with z resized
to 128 (z stretched bilinear, labels nearest), with the planes 2 to each side as the 2.5D channels.
Augmentation as the axial stages; left-right flips only for the coronal view (a sagittal slice has no such
symmetry). Predictions are mapped back along z bilinear and then as the axial step's
(data.probability_on_source).

usage: python views.py [--data DIR] [--runs DIR] [--fold K] [--axial onnx|STAGE] [--view sagittal|coronal]
                       [--steps N] [--threads N] [--seed N] [--name DIR] [--also NAME ...] [--no-unlabelled]
                       [--evaluate-only] [--texture]
Writes runs/<name>/model.pt (name: the view unless given) and runs/<name>/evaluation.json (per case: Dice of
the axial network, the view network, their average, and, read after the average was measured, their union
and intersection (the larger and the smaller probability), plain and largest component, and by third of
the gland's extent along z). --also NAME measures view networks trained before under the same --runs
beside it: each one alone and averaged with the axial network, and, with the first of them, the average
and the majority (median probability) of three views. --evaluate-only measures a view network trained
before and rewrites its evaluation (with --also: three views from two trained ones). --texture adds
train.texture to the augmentation (measured, not shipped: "Texture augmentation for the view networks" in
EXPERIMENTS.md).
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

import data
import train
from evaluate import largest_component
from export import onnx_predict
from unet import UNet, load_trained

IGNORE = data.IGNORE
CONTEXT_STEP = 2  # network pixels between a view slice and each of its two channel neighbours
UNSURE = (0.25, 0.75)  # axial probabilities taught as neither gland nor background
# each view: the axial grid (z, y, x) transposed to (plane, z, in-plane), and the view network's logits
# (plane, class, z, in-plane) permuted back to (z, class, y, x)
VIEWS = {"sagittal": ((2, 0, 1), (2, 1, 3, 0)), "coronal": ((1, 0, 2), (2, 1, 0, 3))}


def z_pixels(slices, per_slice=None):
    """The view planes' height for a volume of `slices` axial slices: S (z stretched to S, as the networks are
    trained), or `per_slice` pixels a slice rounded to a multiple of 16 (the U-Net's four poolings): a
    test-time rescaling (view_seeds.py --z-per-slice)."""
    if per_slice is None:
        return data.SIZE
    return 16 * max(1, round(slices * per_slice / 16))


def cut(slices, view, mode="bilinear", per_slice=None):
    """(z, S, S) axial network grid -> (S, Z, S): for each column x (sagittal) or row y (coronal), the plane
    through it with z resized to Z = z_pixels(z, per_slice) (z first, then y or x)."""
    height = z_pixels(len(slices), per_slice)
    return data.resize_slices(np.transpose(slices, VIEWS[view][0]), size=(height, data.SIZE), mode=mode)


def view_inputs(image, view, per_slice=None):
    """The view network's inputs for a volume: (S, 3, Z, S), each plane with its neighbours."""
    planes = cut(data.resize_slices(data.cropped(data.normalize(image))), view, per_slice=per_slice)
    return data.with_context(planes, step=CONTEXT_STEP)


def view_targets(target, view):
    """A source-grid target (0, 1, IGNORE) as the view network's targets (S, S, S)."""
    return cut(data.label_slices(target), view, mode=data.LABEL_RESIZE).round().astype(np.uint8)


def along_planes(logits, window):
    """Logits (planes, ...) averaged over `window` neighbouring planes (a box, edges clamped); 1: unchanged."""
    if window <= 1:
        return logits
    r = window // 2
    padded = torch.cat([logits[:1].expand(r, *logits.shape[1:]), logits, logits[-1:].expand(r, *logits.shape[1:])])
    return torch.stack([padded[i:i + len(logits)] for i in range(2 * r + 1)]).mean(0)


def view_probability(net, image, view, per_slice=None, plane_window=1):
    """The view network's prostate probability on the source grid (z, y, x); `per_slice` as z_pixels;
    `plane_window` > 1 averages the logits over that many neighbouring view planes first (along_planes)."""
    logits = data.network_logits(net, torch.from_numpy(view_inputs(image, view, per_slice)))  # (x or y, 2, Z, S): z resized
    logits = along_planes(logits, plane_window)
    logits = F.interpolate(logits, size=(image.shape[0], data.SIZE), mode="bilinear", align_corners=False)
    return data.probability_on_source(logits.permute(*VIEWS[view][1]).contiguous(), image.shape[1:])


class Axial:
    """The axial network whose labels a view network learns: the shipped ONNX file or a trained stage."""

    def __init__(self, runs, which):
        self.session = self.net = None
        if which == "onnx":
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "prostate_seg.onnx")
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        else:
            self.net = load_trained(runs, which)

    def probability(self, image):
        if self.session is not None:
            return onnx_predict(self.session, image, mirror=True)
        return data.predict_volume(self.net, image, mirror=True)


def taught(probability, label):
    """The axial network's labels as a target: gland above UNSURE, background below, ignored between; on
    a labelled volume its annotated central slice as annotated."""
    target = (probability > 0.5).astype(np.uint8)
    target[(probability > UNSURE[0]) & (probability < UNSURE[1])] = IGNORE
    if label is not None:
        centre = data.central_slice(label)
        target[centre] = label[centre]
    return target


def thirds(mask, label):
    """Dice within the low, middle and high third of the gland's true extent along z."""
    z = data.occupied_slices(label)
    edges = np.linspace(z.min(), z.max() + 1, 4).round().astype(int)
    return [float(data.dice(mask[a:b], label[a:b])) for a, b in zip(edges[:-1], edges[1:])]


def scores(probability, label):
    mask = probability > 0.5
    return {"dice": float(data.dice(mask, label)), "dice_largest_component": float(data.dice(largest_component(mask), label)),
            "dice_by_third": thirds(mask, label)}


def evaluate(net, view, axial, root, validation, others=()):
    """{"mean": ..., "cases": ...}: scores of each way of combining the networks on the validation cases;
    `others`, (name, view, net) of view networks trained before, adds each one's scores, its average with
    the axial network, and the average and the majority (median probability) of the axial network, this
    one and the first of them."""
    cases = {}
    for case in validation:
        image, label = data.load_case(root, case)
        p_axial, p_view = axial.probability(image), view_probability(net, image, view)
        cases[case] = {"axial": scores(p_axial, label), view: scores(p_view, label),
                       "average": scores((p_axial + p_view) / 2, label),
                       "union": scores(np.maximum(p_axial, p_view), label),
                       "intersection": scores(np.minimum(p_axial, p_view), label)}
        for number, (name, other_view, other) in enumerate(others):
            p_other = view_probability(other, image, other_view)
            cases[case][name] = scores(p_other, label)
            cases[case][f"average_axial_{name}"] = scores((p_axial + p_other) / 2, label)
            if number == 0:
                three = np.stack([p_axial, p_view, p_other])
                cases[case]["three_average"] = scores(three.mean(axis=0), label)
                cases[case]["three_majority"] = scores(np.median(three, axis=0), label)
        print(case, " ".join(f"{k} {v['dice']:.3f}/{v['dice_largest_component']:.3f}" for k, v in cases[case].items()), flush=True)
    return {"mean": means(cases), "cases": cases}


def means(cases):
    """{combination: {"dice": mean, "dice_largest_component": mean}} over the cases' scores."""
    return {k: {m: float(np.mean([c[k][m] for c in cases.values()])) for m in ("dice", "dice_largest_component")}
            for k in next(iter(cases.values()))}


def trained_view(runs, name):
    """(name, view, net) of a view network trained before under `runs` (its view from its evaluation.json;
    sagittal for those written before views.py knew the coronal view)."""
    path = os.path.join(runs, name, "evaluation.json")
    if not os.path.exists(path) or not os.path.exists(os.path.join(runs, name, "model.pt")):
        sys.exit(f"{os.path.basename(sys.argv[0])}: no {runs}/{name}/model.pt and evaluation.json; train the view "
                 f"network {name!r} first with views.py under the same --runs")
    with open(path) as f:
        return name, json.load(f).get("view", "sagittal"), load_trained(runs, name)


def axial_choice(parser, args):
    """The --axial network to use (default: onnx on the fixed split, rings with --fold), stopping with a
    clear message where it cannot be used."""
    which = args.axial or ("rings" if args.fold is not None else "onnx")
    if which == "onnx" and args.fold is not None:
        parser.error("--axial onnx: the shipped file was trained on the fixed split's training cases, which a fold validates on")
    if which != "onnx" and not os.path.exists(os.path.join(args.runs, which, "model.pt")):
        sys.exit(f"{parser.prog}: no {args.runs}/{which}/model.pt; train it first with the same --runs (and --fold)")
    return which


def refuse_clash(view, also):
    """Stop when an --also name would overwrite this run's own scores (they are keyed by its view)."""
    if clash := {view, "axial"} & set(also):
        sys.exit(f"views.py --also {' '.join(sorted(clash))}: this run's own scores are kept under that name; "
                 f"train the other view network under another --name")


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--axial", default=None,
                        help="the axial network: onnx (the shipped file; fixed split only) or a stage under --runs "
                             "(default: onnx on the fixed split, rings with --fold)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=data.SEED)
    parser.add_argument("--view", choices=sorted(VIEWS), default="sagittal")
    parser.add_argument("--name", default=None, help="the folder under --runs to write (default: the view)")
    parser.add_argument("--also", nargs="+", default=[], metavar="NAME",
                        help="view networks trained before under --runs to measure beside this one (three views)")
    parser.add_argument("--no-unlabelled", action="store_true", help="train on the training volumes only")
    parser.add_argument("--texture", action="store_true",
                        help="add texture augmentation (train.texture: intensity curve, smooth fields, blur or sharpen)")
    parser.add_argument("--evaluate-only", action="store_true", help="measure runs/<name>/model.pt again")
    args = data.parse(parser)
    args.name = args.name or args.view
    args.axial = axial_choice(parser, args)
    if args.steps < 1:
        parser.error("--steps takes a number >= 1")
    torch.set_num_threads(args.threads)
    root = data.data_dir(args.data)
    training, validation = data.split(root, args.fold)
    train.seed_everything(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    axial = Axial(args.runs, args.axial)
    others = [trained_view(args.runs, name) for name in args.also]
    out = os.path.join(args.runs, args.name)
    if args.evaluate_only:
        if not os.path.exists(os.path.join(out, "model.pt")) or not os.path.exists(os.path.join(out, "evaluation.json")):
            sys.exit(f"views.py --evaluate-only: no {out}/model.pt and evaluation.json; train it first")
        with open(os.path.join(out, "evaluation.json")) as f:
            recorded = json.load(f)
        view = recorded.get("view", "sagittal")
        refuse_clash(view, args.also)
        recorded["also"] = args.also
        recorded.update(evaluate(load_trained(args.runs, args.name), view, axial, root, validation, others))
        with open(os.path.join(out, "evaluation.json"), "w") as f:
            json.dump(recorded, f, indent=1)
        print(json.dumps(recorded["mean"]))
        return
    refuse_clash(args.view, args.also)
    started = time.time()
    inputs, targets = [], []
    for case in training + ([] if args.no_unlabelled else data.unlabelled_cases(root)):
        image, label = data.load_case(root, case)
        if label is not None and case not in training:  # no validation mask may reach the targets
            raise AssertionError(f"{case}: a labelled case outside the training cases")
        inputs.append(view_inputs(image, args.view))
        targets.append(view_targets(taught(axial.probability(image), label), args.view))
    print(f"views: {len(inputs)} volumes labelled by {args.axial} in {time.time() - started:.0f} s", flush=True)
    log = []
    net = train.fit(UNet(), train.Slices(inputs, targets), args.steps, generator, log=log, flip=args.view == "coronal",
                    textured=args.texture)
    del inputs, targets
    os.makedirs(out, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(out, "model.pt"))
    measured = evaluate(net, args.view, axial, root, validation, others)
    with open(os.path.join(out, "evaluation.json"), "w") as f:
        json.dump({"view": args.view, "axial": args.axial, "also": args.also, "fold": args.fold, "steps": args.steps,
                   "seed": args.seed, "unlabelled": not args.no_unlabelled, "texture": args.texture,
                   "label_resize": data.LABEL_RESIZE, "training_cases": training, "validation_cases": validation,
                   **measured, "seconds": round(time.time() - started, 1),
                   "machine": train.machine_description(), "log": log}, f, indent=1)
    print(json.dumps(measured["mean"]))


if __name__ == "__main__":
    main()
