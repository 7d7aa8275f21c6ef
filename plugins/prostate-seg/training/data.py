"""PROMISE12 cases for the sparse-annotation experiments: loading, the fixed train/validation split, the
central annotated slice, and the preprocessing the ONNX step repeats (percentile normalization of the
whole volume to [0, 1], the central 60 % of every axial slice (the gland lies in the central 25-75 % of
the field of view in all 34 labelled cases) resized to 128x128 bilinear, 2.5D: a slice and its two
neighbours as three channels, clamped at the ends)."""
import argparse
import glob
import gzip
import json
import math
import os

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from unet import context_of

SIZE = 128
CROP = 0.6
CONTEXT = 1
SEED = 20261128
# How masks reach the network grid (--label-resize): torch's legacy "nearest" takes source pixel floor(i*r),
# not the bilinear inputs' sample at (i+0.5)*r-0.5, so every target sat about 0.4 network pixels towards
# higher y and x than its image (a perfect network output mapped back scores Dice 0.984 against 0.999 with
# "nearest-exact", the pixel centre; label_grid.py). Every network up to prostate-seg 0.6.1 was trained with
# "nearest"; EXPERIMENTS.md, "Centred targets".
LABEL_RESIZE = "nearest"
LABEL_RESIZES = ("nearest", "nearest-exact")
VALIDATION_CASES = 8
FOLDS = 5
IGNORE = 255


HERE = os.path.dirname(os.path.abspath(__file__))


def data_dir(arg=None):
    """The promise12 folder: --data, else $VOXFLOW_TESTDATA/prostate/promise12, else the shared data folder
    beside the repository (as the tests find it)."""
    default = os.path.join(HERE, "..", "..", "..", "..", "shared", "data")
    return arg or os.path.join(os.environ.get("VOXFLOW_TESTDATA", default), "prostate", "promise12")


def arguments(doc):
    """The options every script takes: --data, --runs and --fold."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="the promise12 folder (default $VOXFLOW_TESTDATA/prostate/promise12)")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--fold", type=int, choices=range(1, FOLDS + 1), default=None,
                        help=f"validate on fold FOLD of {FOLDS} over the 34 labelled cases instead of the fixed split "
                             f"(data.split; with it --runs defaults to runs/cv/fold-FOLD, and data.parse keeps each runs folder to one split)")
    parser.add_argument("--label-resize", choices=LABEL_RESIZES, default=LABEL_RESIZE,
                        help="how masks are resized to the network grid: nearest (torch's legacy rule, about 0.4 network "
                             "pixels off the images; every network up to 0.6.1) or nearest-exact (the pixel centre)")
    return parser


def slice_weight(text):
    """argparse type of --distance-weight (train.py, crossval.py): a weight in (0, 1]."""
    try:
        weight = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not 0 < weight <= 1:
        raise argparse.ArgumentTypeError(f"a weight in (0, 1], not {weight}")
    return weight


def parse(parser):
    """The parsed options, with --runs tied to one split: a runs folder records the split its models were
    trained on (<runs>/split.json, written on first use) and a script asked for another one stops, since
    a model trained on the fixed split has seen cases that a fold validates on and vice versa. With --fold
    and no --runs, the fold's own folder (runs/cv/fold-K, as crossval.py lays them out)."""
    args = parser.parse_args()
    global LABEL_RESIZE
    LABEL_RESIZE = args.label_resize
    if args.fold is not None and args.runs == parser.get_default("runs"):
        args.runs = os.path.join(args.runs, "cv", f"fold-{args.fold}")
    marker = os.path.join(args.runs, "split.json")
    if os.path.exists(marker):
        with open(marker) as f:
            recorded = json.load(f).get("fold")
        if recorded != args.fold:
            name = lambda fold: f"fold {fold}" if fold is not None else "the fixed split"
            hint = f"give --fold {recorded}" if recorded is not None else "leave out --fold"
            parser.error(f"{args.runs} holds models of {name(recorded)} ({marker}), not of {name(args.fold)}; "
                         f"{hint}, or give another --runs")
    else:
        os.makedirs(args.runs, exist_ok=True)
        with open(marker, "w") as f:
            json.dump({"fold": args.fold}, f)
    return args


def read_nifti_zyx(path):
    """A NIfTI written by these scripts or by voxflow (i, j, k) as a z, y, x array."""
    return np.transpose(np.asarray(nib.load(path).dataobj), (2, 1, 0))


def write_nifti_zyx(array_zyx, path, dtype):
    """A z, y, x array as NIfTI (i, j, k = x, y, z) with a nominal 1 mm grid: PROMISE12 kept no spacing."""
    image = nib.Nifti1Image(np.transpose(array_zyx, (2, 1, 0)).astype(dtype), np.eye(4))
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def fused_target(folder, case):
    """What the final model is taught on a training volume, from the fusion workflow's outputs under
    <folder>/fused/: 1 where the fused mask is gland, 0 where no source says gland (agreement 0), IGNORE
    where some source says gland but too few for the fused mask. For the AND of two sources that is the
    agreement map itself (1 both, 0 neither, 255 one of them); for the majority of three, gland where two or
    three sources say so, ignored where only one does."""
    agreement = read_nifti_zyx(os.path.join(folder, "fused", "agreement", f"{case}_agreement.nii.gz"))
    fused = read_nifti_zyx(os.path.join(folder, "fused", "fused", f"{case}_fused.nii.gz")) > 0
    return np.where(fused, 1, np.where(agreement == 0, 0, IGNORE)).astype(np.uint8)


def tapered_region(target, centre, annotation, radius):
    """Where a gland grown from the annotation may lie, as a (z, y, x) bool map: walking out from the
    annotated central slice in both directions, each slice allows what some source says is gland
    (`target` != 0: gland or disagreement in data.fused_target's terms) within `radius` source pixels
    (city-block) of what the slice before it kept, the annotation on the central slice. The gland is widest
    near its middle and narrows towards both ends, so a pseudo label that grows away from the annotation
    (the bladder neck at the base, muscle at the apex) falls outside. On the 34 labelled PROMISE12 masks
    themselves, grown the same way from their central slice, the rule with 1 pixel of the network's grid
    keeps 97.9 % of the gland (2 pixels: 99.2 %)."""
    allowed = np.zeros(target.shape, bool)
    allowed[centre] = True
    kept = np.zeros(target.shape, bool)
    kept[centre] = annotation > 0
    cross = ndimage.generate_binary_structure(2, 1)
    for step in (-1, 1):
        z = centre + step
        while 0 <= z < target.shape[0] and kept[z - step].any():
            allowed[z] = ndimage.binary_dilation(kept[z - step], cross, iterations=radius)
            kept[z] = allowed[z] & (target[z] != 0)
            z += step
    return allowed


def registration_ignored(target, registered, reach, beyond):
    """`target` (data.fused_target's values) with its background ignored wherever `registered` (the
    annotation carried by registration.py, on every slice) says gland, on the slices from `reach`'s first
    to its last (pseudolabels.py's sources' reach) and `beyond` slices further at each end: the gland the
    two sources miss at the ends of their extents is then not taught as background. The gland taught is
    unchanged."""
    first, last = reach
    within = np.zeros(target.shape[0], bool)
    within[max(first - beyond, 0):last + 1 + beyond] = True
    out = target.copy()
    out[(out == 0) & (registered > 0) & within[:, None, None]] = IGNORE
    return out


def registration_agreeing(semi, selfsup, registered):
    """A target from the three sources' masks (each within its extent): gland where registration and at
    least one of the two networks say so, background where none of the three does, ignored otherwise."""
    semi, selfsup, registered = semi > 0, selfsup > 0, registered > 0
    target = np.full(semi.shape, IGNORE, np.uint8)
    target[registered & (semi | selfsup)] = 1
    target[~(registered | semi | selfsup)] = 0
    return target


def edge_ignored(target, radius):
    """`target` (data.fused_target's values) with a band of `radius` source pixels (city-block, in each
    axial slice, `radius` >= 1) ignored on both sides of the outline where taught gland meets taught
    background: gland within `radius` of background and background within `radius` of gland. Where the
    two sources disagree along the outline, a ring of ignored voxels already lies between the two, and the
    band adds nothing there (with the AND's targets, about 40 % of the outline is gland meeting background
    directly). A third of the fused set's wrong gland lies within 2 network pixels outside its outline
    ("Where the fused pseudo labels are wrong" in EXPERIMENTS.md); the band leaves the outline to what the
    model learns from the interior, the background and the manual central slice. Slices without gland
    are unchanged."""
    if radius < 1:
        raise ValueError(f"edge_ignored: radius {radius}, needs >= 1 (binary_dilation with 0 iterations "
                         f"would grow until nothing changes)")
    cross = ndimage.generate_binary_structure(2, 1)
    out = target.copy()
    for z in range(target.shape[0]):
        gland, background = target[z] == 1, target[z] == 0
        if not gland.any():
            continue
        near_background = ndimage.binary_dilation(background, cross, iterations=radius)
        near_gland = ndimage.binary_dilation(gland, cross, iterations=radius)
        out[z][(gland & near_background) | (background & near_gland)] = IGNORE
    return out


def mirrored_extent(extent, centre, slices):
    """(first, last): the gland's extent along z taken symmetric about the annotated central slice, the
    middle of the gland by the annotation protocol (central_slice): its low-z end is the outermost one the
    two sources' extents reach (pseudolabels.py), its high-z end that one mirrored about `centre`. On the
    26 training volumes the sources find the low-z end within a slice on 73 % (mean error 1.0 slice) but
    the high-z end, where the gland meets the bladder and the seminal vesicles, only on 38 % (2.8 slices);
    mirrored, the high-z end is within a slice on 65 % (1.04 slices; pseudo_ends.py). That leans on the
    annotator: central_slice here is the exact middle of the true mask (rounded), so the mirrored end
    carries the low-z end's error plus at most a slice; an annotator who picks a slice off the middle adds
    twice that offset to the high-z end."""
    first = min(extent["semi"][0], extent["self"][0])
    return first, min(2 * centre - first, slices - 1)


def sources_reach(extent):
    """(first, last): the outermost slices either pseudo-label source's extent reaches, from a case's entry
    in pseudo-raw/extents.json (written by pseudolabels.py)."""
    return min(extent["semi"][0], extent["self"][0]), max(extent["semi"][1], extent["self"][1])


def load_npy_gz(path):
    with gzip.open(path) as f:
        return np.load(f)


def labelled_cases(root):
    """Sorted case names (train01, ...) of the labelled folder."""
    names = [os.path.basename(p)[len("image_"):-len(".npy.gz")] for p in glob.glob(os.path.join(root, "labelled", "image_*.npy.gz"))]
    return sorted(names)


def unlabelled_cases(root):
    names = [os.path.basename(p)[len("image_"):-len(".npy.gz")] for p in glob.glob(os.path.join(root, "unlabelled", "image_*.npy.gz"))]
    return sorted(names)


def split(root, fold=None):
    """(training, validation) case names. The fixed split: VALIDATION_CASES labelled cases drawn with SEED
    for validation, the rest for training. With `fold` (1..FOLDS) cross-validation instead: the labelled
    cases shuffled with SEED and cut into FOLDS near-equal parts (7, 7, 7, 7, 6 of 34), part `fold`
    validating, so that every case is validated exactly once over the folds."""
    cases = labelled_cases(root)
    rng = np.random.default_rng(SEED)
    if fold is not None:
        parts = np.array_split(rng.permutation(cases), FOLDS)
        validation = sorted(parts[fold - 1].tolist())
    else:
        validation = sorted(rng.choice(cases, size=VALIDATION_CASES, replace=False).tolist())
    training = [c for c in cases if c not in validation]
    return training, validation


def load_case(root, case):
    """(image int16 z,y,x; label uint8 z,y,x or None)."""
    folder = "labelled" if os.path.exists(os.path.join(root, "labelled", f"image_{case}.npy.gz")) else "unlabelled"
    image = load_npy_gz(os.path.join(root, folder, f"image_{case}.npy.gz"))
    label_path = os.path.join(root, folder, f"label_{case}.npy.gz")
    label = load_npy_gz(label_path).astype(np.uint8) if os.path.exists(label_path) else None
    return image, label


def occupied_slices(mask):
    """Indices of the slices (along z, the first axis) where `mask` has any voxel set."""
    return np.where(mask.reshape(len(mask), -1).any(axis=1))[0]


def central_slice(label):
    """The middle slice of the gland's extent along z, as an annotator would pick it."""
    z = occupied_slices(label)
    return int(round((z.min() + z.max()) / 2))


def spaced_slices(label, count):
    """The slices an annotator drawing `count` (odd) slices evenly over the gland's extent along z would
    draw besides the central one: those at i / (count + 1) of the extent, i = 1..count (rounded half up;
    for 3, a quarter and three quarters). Those that coincide with the central slice or with each other
    (a short extent) are left out."""
    z = occupied_slices(label)
    low, high = int(z.min()), int(z.max())
    spaced = {int(math.floor(low + i / (count + 1) * (high - low) + 0.5)) for i in range(1, count + 1)}
    return sorted(spaced - {central_slice(label)})


def normalize(image, lower=0.5, upper=99.5):
    """Clipped to the volume's percentiles (numpy's linear interpolation), scaled to [0, 1]."""
    v = image.astype(np.float32)
    lo, hi = np.percentile(v, [lower, upper])
    width = hi - lo if hi > lo else 1.0
    return np.clip((v - lo) / width, 0.0, 1.0).astype(np.float32)


def crop_box(n, fraction=CROP):
    """(start, length) of the centred crop along an axis of n voxels, as the ONNX step computes it."""
    length = max(1, int(math.floor(n * fraction + 0.5)))
    return (n - length) // 2, length


def source_pixels(network_pixels, width):
    """A length in pixels of the network's 128-pixel grid as source pixels of a slice `width` wide (the
    crop is resized to SIZE, so one network pixel spans crop width / SIZE source pixels)."""
    return network_pixels * crop_box(width)[1] / SIZE


def cropped(volume, fraction=CROP):
    """The centred in-plane crop of every slice of a (z, y, x) array."""
    (y0, h), (x0, w) = crop_box(volume.shape[1], fraction), crop_box(volume.shape[2], fraction)
    return volume[:, y0:y0 + h, x0:x0 + w]


def uncropped(maps, shape, fraction=CROP):
    """(z, c, h, w) maps of the crop back on the full (y, x) plane, each outside voxel taking the value of
    the nearest crop edge (as the ONNX step pads)."""
    (y0, h), (x0, w) = crop_box(shape[0], fraction), crop_box(shape[1], fraction)
    return F.pad(maps, (x0, shape[1] - x0 - w, y0, shape[0] - y0 - h), mode="replicate")


def resize_slices(volume, size=SIZE, mode="bilinear"):
    """(z, y, x) float -> (z, size, size), or (z, h, w) for a size (h, w): torch's bilinear with
    align_corners=False (as the ONNX step)."""
    shape = (size, size) if isinstance(size, int) else tuple(size)
    t = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[:, None]
    if mode in LABEL_RESIZES:
        return F.interpolate(t, size=shape, mode=mode)[:, 0].numpy()
    return F.interpolate(t, size=shape, mode="bilinear", align_corners=False)[:, 0].numpy()


def with_context(slices, context=CONTEXT, step=1):
    """(z, h, w) -> (z, 2*context+1, h, w): each slice with its neighbours `step` slices apart, indices
    clamped at the ends."""
    z = slices.shape[0]
    index = np.clip(np.arange(z)[:, None] + step * np.arange(-context, context + 1)[None, :], 0, z - 1)
    return slices[index]


def prepared(image, context=CONTEXT, fraction=CROP):
    """The network's input for every slice of a volume: (z, 2*context+1, SIZE, SIZE) float32 (3 channels
    for every shipped network; train.py --context measures more), from the central `fraction` of the plane
    (CROP as the step; inference_variants.py measures others)."""
    return with_context(resize_slices(cropped(normalize(image), fraction)), context)


def label_slices(label, size=SIZE, rule=None):
    """Masks (or ignore maps with 255) resized to the network grid by nearest neighbour under `rule`
    (one of LABEL_RESIZES; None: LABEL_RESIZE, as --label-resize set it)."""
    return resize_slices(cropped(label.astype(np.float32)), size, mode=rule or LABEL_RESIZE).round().astype(np.uint8)


def predict_volume(net, image, batch=16, mirror=False):
    """Softmax foreground probability on the source grid (z, y, x): logits resized back bilinear, as the
    ONNX step maps outputs back. With `mirror`, the logits are averaged with those of the left-right
    mirrored input, mirrored back (the manifest's `mirror: [0]`). `net` may be a list of networks (an
    ensemble): their logits are averaged too."""
    contexts = {context_of(n) for n in (net if isinstance(net, (list, tuple)) else [net])}
    if len(contexts) > 1:
        raise ValueError(f"an ensemble of networks with different contexts ({sorted(contexts)}) cannot share inputs")
    x = torch.from_numpy(prepared(image, contexts.pop()))
    return probability_on_source(network_logits(net, x, batch, mirror), image.shape[1:])


def network_logits(net, x, batch=16, mirror=False):
    """The network's logits (z, 2, SIZE, SIZE) for prepared inputs `x` (z, channels, SIZE, SIZE), in batches, with
    predict_volume's mirroring and ensembles."""
    nets = net if isinstance(net, (list, tuple)) else [net]

    def run(model, inputs):
        model.eval()
        with torch.no_grad():
            return torch.cat([model(inputs[s:s + batch]) for s in range(0, inputs.shape[0], batch)])

    logits = sum(run(model, x) for model in nets) / len(nets)
    if mirror:
        flipped = torch.flip(x, dims=[3])
        mirrored = sum(run(model, flipped) for model in nets) / len(nets)
        logits = (logits + mirrored.flip(dims=[3])) / 2
    return logits


def logits_on_source(logits, shape, fraction=CROP):
    """Network logits (z, 2, SIZE, SIZE) of the central `fraction` of the plane -> logits on the source
    plane (z, 2, y, x): resized bilinear to the crop, padded with the crop's edge values."""
    crop = (crop_box(shape[0], fraction)[1], crop_box(shape[1], fraction)[1])
    return uncropped(F.interpolate(logits, size=crop, mode="bilinear", align_corners=False), shape, fraction)


def probability_on_source(logits, shape):
    """Network logits (z, 2, SIZE, SIZE) -> prostate probability on the source plane (z, y, x): resized
    bilinear to the crop, padded with the crop's edge values, softmax."""
    return torch.softmax(logits_on_source(logits, shape), dim=1)[:, 1].numpy()


def dice(a, b):
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(a, b).sum() / total
