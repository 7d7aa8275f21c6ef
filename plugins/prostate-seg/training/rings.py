"""Ring-by-ring self-labelling from the central slice (prostate-seg 0.5.0's model): a pseudo-label source that
grows outwards from the annotation one slice at a time, so that the network labelling a slice has been
trained on the slice next to it.

Stage 3's network (the pretext network fine-tuned on the central slices) labels, on each training volume,
the two slices next to the annotated one; those join the training set and the network is fine-tuned on it
for a few steps; then it labels the next ring (the slices two away from the central one), and so on (the
idea of self-labelling ring by ring outwards from one annotated slice, Anderson et al., BMC Medical Imaging
2025). A slice is labelled by the network's prediction with test-time mirroring, as the step runs it. Each
side of each volume stops as pseudolabels.py's extent does (pseudolabels.gland_ends): at the first slice
whose predicted area is empty or grows by more than 25 % over the previous slice's (the annotated area
for the first ring); that slice and those beyond it are taught as background from then on, since the gland ends there. A side that
has not stopped after --max-rings leaves its further slices ignored.

Two variants, measured and not shipped: --end ignore (EXPERIMENTS.md, "Float32 against bfloat16, and the
rings' end slice": no difference) leaves the slice where a side stops unknown (neither gland nor
background: the rule fires on a slice that may still hold the tip of the gland, or the gland beside the
bladder) and teaches only the slices beyond it as background; --taper PIXELS (EXPERIMENTS.md, "The taper,
paired on one stage 3": --taper 2 is worse by 0.029 over 21 cases) keeps each ring's label within PIXELS
(source grid, city-block) of the gland on the slice before it, the shape prior of data.tapered_region (the
gland narrows from its middle towards both ends), teaching what it removes as background; --extent mirrored
(EXPERIMENTS.md, "The rings' high-z end mirrored") stops only the low-z side by the area rule and grows the
high-z side, where the gland meets the bladder and the rule errs most, exactly as many slices as the low-z
side reached (the annotated slice is the middle of the gland's extent, data.mirrored_extent), teaching the
slices beyond as background (no better: -0.027 over 14 cases); --extent capped keeps the area rule on the
high-z side too and stops it at the low-z side's reach if the rule has not stopped it before (labels
more precise, the model no better: -0.003 over the same 14 cases). --partners 2 (EXPERIMENTS.md, "Two ring
networks as partners") fine-tunes a second ring network beside the first, from the same stage-3 weights
with its own sampling seed (--seed + 1), and labels each ring by the two networks' Boolean AND, as stage 4
fuses its two sources: gland where both find gland, background where neither does, the voxels where they
disagree ignored; a side stops where either network's area rule fires. Both networks learn the same fused
labels; the first is the model, the second is written beside it as NAME-partner. --oracle, for measuring
only and outside the sparse setting, labels each ring by the true masks (`masks`) or stops each side at
the gland's true end with the network's masks inside it (`extent`) (EXPERIMENTS.md, "The ring schedule
with perfect labels"): what the schedule would give if the pseudo labels, or only their extents, were
perfect. --registration fuses each ring's mask with a second source that needs no network: the central
annotation carried slice by slice by demons registration (registration.py; its masks keep about 95 % of the
gland at every distance but grow over-large away from the centre, while the ring network's lose gland
there): `veto` teaches the network's gland outside the carried mask as background, `and` teaches gland
where both say gland, background where neither does and ignores the rest, `keep` teaches the network's
gland and ignores its background inside the carried mask (EXPERIMENTS.md, "The carried annotation in every
ring"). --distance-weight W weighs each labelled slice W**d in the loss, d slices from the central one
(train.py's stage-5 rule, here inside the rings). --annotated N (odd), for measuring only and outside the
sparse setting, gives each training volume N annotated slices spread evenly over the gland's extent (3: at
a quarter, the middle and three quarters; data.spaced_slices), labelled by their true masks from the first
ring on and never relabelled (EXPERIMENTS.md, "Three annotated slices"): what the recipe gives if the
annotator draws N slices per volume instead of one.

usage: python rings.py [--data DIR] [--runs DIR] [--fold K] [--steps-per-ring N] [--max-rings N] [--threads N]
                       [--bf16] [--seed N] [--name DIR] [--end background|ignore] [--taper PIXELS]
                       [--extent own|mirrored|capped] [--partners 1|2] [--oracle masks|extent]
                       [--registration veto|and|keep] [--distance-weight W] [--annotated N]
Writes runs/rings/model.pt (the network after the last ring) and the labels in the fusion workflow's layout,
so that `train.py final --labels runs/rings` trains on them: runs/rings/fused/fused/<case>_fused.nii.gz
(gland) and runs/rings/fused/agreement/<case>_agreement.nii.gz (1 gland, 0 background, 255 not reached);
runs/rings/log.json holds each side's extent, the training log and, for reading only, the labels' precision
and recall against the true masks on the slices nobody annotated, by ring.
"""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from scipy import ndimage

import data
import registration
import train
from pseudolabels import gland_ends
from unet import context_of, load_trained

IGNORE = data.IGNORE
CROSS = ndimage.generate_binary_structure(2, 1)


def and_fused(masks):
    """The Boolean AND of stage 4 on one slice: gland (1) where every source finds gland, background (0)
    where none does, IGNORE between (one source: its mask)."""
    both, either = np.logical_and.reduce(masks), np.logical_or.reduce(masks)
    return np.where(both, 1, np.where(either, IGNORE, 0)).astype(np.uint8)


class Volume:
    """One training volume's state: its network inputs, its labels so far on the source grid (IGNORE where
    not yet labelled), and each side's last labelled areas, one per labelling network (None once that side
    has stopped)."""

    def __init__(self, case, image, truth, end="background", taper=0, context=data.CONTEXT, extent="own",
                 oracle=None, networks=1, registered=None, registration_rule=None, annotated=1):
        self.truth, self.oracle = truth, oracle
        self.registered, self.registration_rule = registered, registration_rule
        self.end_rule, self.taper, self.extent = end, taper, extent
        self.case, self.shape = case, image.shape
        self.inputs = torch.from_numpy(data.prepared(image, context))
        self.centre = data.central_slice(self.truth)
        self.labels = np.full(self.shape, IGNORE, np.uint8)
        self.labels[self.centre] = self.truth[self.centre]
        # --annotated N: more slices drawn by the annotator, taught from the first ring on
        self.annotated = set(data.spaced_slices(self.truth, annotated)) if annotated > 1 else set()
        for z in self.annotated:
            self.labels[z] = self.truth[z]
        self.network_masks = self.labels.copy()  # the first network's own masks, before any fusion (for the log)
        area = int(self.truth[self.centre].sum())
        self.last_area = {-1: (area,) * networks, +1: (area,) * networks}
        self.end = {-1: None, +1: None}

    def mirrored_end_reached(self, side, ring):
        """--extent mirrored or capped: whether `ring` lies beyond the high-z side's extent, the low-z side's
        reach mirrored about the central slice (unknown, so not reached, while the low-z side is still open)."""
        low_end = self.end[-1]
        return self.extent != "own" and side > 0 and low_end is not None and ring > self.centre - low_end

    def grow(self, nets, ring):
        """Label the slices `ring` away from the central one on each side still open (the low-z side
        first, so that --extent mirrored knows its reach when it ends in this ring). `nets`: one network,
        or the partners, whose masks are fused by AND with their disagreement ignored."""
        for side in (-1, +1):
            if self.last_area[side] is None:
                continue
            z = self.centre + side * ring
            if not 0 <= z < self.shape[0]:
                self.last_area[side] = None
                self.end[side] = z - side
                continue
            mirrored_side = self.extent == "mirrored" and side > 0  # its own area rule does not apply
            if self.mirrored_end_reached(side, ring):
                ends, masks, areas = True, None, None  # the mirrored extent ends before this slice
            elif self.oracle == "masks" or z in self.annotated:  # the true mask: --oracle masks, --annotated N
                masks = [self.truth[z] > 0]
                areas = (int(masks[0].sum()),)
                ends = areas[0] == 0
            elif self.oracle == "extent" and not self.truth[z].any():  # --oracle extent: the true end
                ends, masks, areas = True, None, None
            else:
                masks = [data.probability_on_source(data.network_logits(net, self.inputs[z:z + 1], mirror=True),
                                                    self.shape[1:])[0] > 0.5 for net in nets]  # as the step runs it
                areas = tuple(int(m.sum()) for m in masks)
                ends = (not mirrored_side and self.oracle != "extent" and not self.annotated_beyond(side, z)
                        and any(gland_ends(a, b) for a, b in zip(areas, self.last_area[side], strict=True)))
            if ends:
                first = z if self.end_rule == "background" else z + side  # --end ignore: this slice unknown
                beyond = slice(first, None) if side > 0 else slice(0, first + 1)
                self.labels[beyond] = 0  # the gland ended before this slice
                self.last_area[side] = None
                self.end[side] = z - side
            else:
                mask = masks[0]
                self.network_masks[z] = mask
                if self.taper:  # within `taper` pixels of the gland on the slice before (data.tapered_region)
                    mask = mask & ndimage.binary_dilation(self.labels[z - side] == 1, CROSS, iterations=self.taper)
                carried = self.registered[z] > 0 if self.registration_rule else None
                if self.registration_rule == "veto":  # the network's gland outside the carried annotation
                    self.labels[z] = mask & carried
                elif self.registration_rule == "and":
                    self.labels[z] = and_fused([mask, carried])
                elif self.registration_rule == "keep":  # the network's gland; its background ignored in the carried mask
                    self.labels[z] = np.where(mask, 1, np.where(carried, IGNORE, 0))
                else:  # one network's mask, or the partners' AND
                    self.labels[z] = and_fused([mask] + masks[1:])
                self.last_area[side] = areas

    def open(self):
        return any(a is not None for a in self.last_area.values())

    def annotated_beyond(self, side, z):
        """Whether an annotated slice lies further out than `z` on `side`: the gland goes on there, so the
        area rule may not end that side before it (--annotated N)."""
        return any((a - z) * side > 0 for a in self.annotated)

    def annotated_slices(self):
        """The slices whose labels are the annotator's: the central one, and more with --annotated N."""
        return {self.centre} | self.annotated

    def labelled(self):
        return np.where((self.labels != IGNORE).reshape(self.shape[0], -1).any(axis=1))[0]

    def slices(self):
        """The network inputs and targets (network grid) of every labelled slice (IGNORE inside a slice
        where --partners or --registration and|keep leave voxels unknown; otherwise a slice is labelled
        whole or not at all)."""
        labelled = self.labelled()
        return self.inputs[labelled].numpy(), data.label_slices(self.labels[labelled])

    def weights(self, distance_weight):
        """--distance-weight W: each labelled slice's weight in the loss, W**d for a slice d slices from the
        central one (the annotation weighs 1), as train.py --distance-weight weighs stage 5's pseudo labels."""
        return distance_weight ** np.abs(self.labelled() - self.centre)


def quality(volumes, of="labels"):
    """Precision and recall of the labels (or, of="network_masks", of the first network's own masks before
    any fusion) against the true masks on the unannotated slices, in all and by distance from the central
    slice (read only for the log; training never sees the true masks)."""
    totals, by_ring, ignored, reached = np.zeros(3), {}, 0, 0
    for v in volumes:
        labels = getattr(v, of)
        for z in range(v.shape[0]):
            if z in v.annotated_slices():
                continue  # slices not reached count as background: their gland is missed
            if (labels[z] != IGNORE).any():  # within a reached slice, the fused sources' disagreement
                ignored, reached = ignored + int((labels[z] == IGNORE).sum()), reached + labels[z].size
            mask, truth = labels[z] == 1, v.truth[z] > 0
            counts = np.array([np.logical_and(mask, truth).sum(), mask.sum(), truth.sum()])
            totals += counts
            by_ring.setdefault(abs(z - v.centre), np.zeros(3))
            by_ring[abs(z - v.centre)] += counts
    rate = lambda t: {"precision": float(t[0] / max(t[1], 1)), "recall": float(t[0] / max(t[2], 1))}
    return {**rate(totals), "ignored_in_reached": ignored / max(reached, 1),
            "by_distance": {d: rate(t) for d, t in sorted(by_ring.items())}}


def write_labels(labels, folder):
    """{case: labels (1 gland, 0 background, IGNORE)} in the fusion workflow's output layout
    (data.fused_target reads them back)."""
    for sub in ("agreement", "fused"):
        os.makedirs(os.path.join(folder, "fused", sub), exist_ok=True)
    for case, target in labels.items():
        data.write_nifti_zyx(target, os.path.join(folder, "fused", "agreement", f"{case}_agreement.nii.gz"), np.uint8)
        data.write_nifti_zyx(target == 1, os.path.join(folder, "fused", "fused", f"{case}_fused.nii.gz"), np.uint8)


def fit_all(nets, sampler, generators, logs, args):
    """Fine-tune each network on the ring's labels; the partners side by side in threads of --threads each
    (the GIL is released inside PyTorch's kernels), so that each trains with the arithmetic it would have
    alone on that many threads."""
    def fit(net, generator, log):
        torch.set_num_threads(args.threads)  # per thread: OpenMP's thread count is the calling thread's
        return train.fit(net, sampler, args.steps_per_ring, generator, lr=args.lr, log=log, bf16=args.bf16)
    if len(nets) == 1:
        return [fit(nets[0], generators[0], logs[0])]
    with ThreadPoolExecutor(max_workers=len(nets)) as pool:
        return list(pool.map(fit, nets, generators, logs))


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--steps-per-ring", type=int, default=100, help="fine-tuning steps after each ring")
    parser.add_argument("--max-rings", type=int, default=15, help="rings at most; a side still open stays ignored beyond")
    parser.add_argument("--lr", type=float, default=1e-3, help="the fine-tuning's peak learning rate (one-cycle per ring)")
    parser.add_argument("--end", choices=("background", "ignore"), default="background",
                        help="the slice where a side stops: taught as background with those beyond it, or left "
                             "unknown (ignored) with only those beyond it background")
    parser.add_argument("--taper", type=int, default=0, metavar="PIXELS",
                        help="keep a ring's label within PIXELS (source grid, city-block) of the gland on the slice "
                             "before it (0: off)")
    parser.add_argument("--extent", choices=("own", "mirrored", "capped"), default="own",
                        help="own: each side stops by the area rule; mirrored: the high-z side grows exactly as far "
                             "as the low-z side reached (the annotated slice is the gland's middle); capped: the "
                             "high-z side stops by the area rule or there, whichever comes first")
    parser.add_argument("--partners", type=int, choices=(1, 2), default=1,
                        help="2: a second ring network beside the first (seed + 1), each ring labelled by the two "
                             "networks' AND with their disagreement ignored")
    parser.add_argument("--oracle", choices=("masks", "extent"), default=None,
                        help="for measuring only, outside the sparse setting: masks, each ring labelled by the true "
                             "masks (the ring schedule's ceiling with perfect pseudo labels); extent, the network's "
                             "masks, each side stopped at the gland's true end")
    parser.add_argument("--registration", choices=("veto", "and", "keep"), default=None,
                        help="fuse each ring's mask with the central annotation carried slice by slice by demons "
                             "registration (registration.py): veto, the network's gland outside the carried mask "
                             "taught as background; and, gland where both, background where neither, ignored "
                             "between; keep, the network's gland, its background inside the carried mask ignored")
    parser.add_argument("--distance-weight", type=data.slice_weight, default=None, metavar="W",
                        help="each labelled slice weighs W**d in the loss, d its distance from the central slice")
    parser.add_argument("--annotated", type=int, choices=(1, 3, 5), default=1,
                        help="for measuring only, outside the sparse setting: N annotated slices per training "
                             "volume, spread evenly over the gland's extent (3: at a quarter, the middle and "
                             "three quarters)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="fine-tune under bfloat16 autocast (train.py --bf16)")
    parser.add_argument("--seed", type=int, default=data.SEED)
    parser.add_argument("--name", default="rings", help="the folder under --runs to write")
    args = data.parse(parser)
    if args.bf16 and (refused := train.bf16_refused()):
        parser.error(refused)
    if args.steps_per_ring < 1 or args.max_rings < 1:
        parser.error("--steps-per-ring and --max-rings take numbers >= 1")
    if args.taper < 0:
        parser.error("--taper takes a number of pixels >= 0")
    if args.oracle and (args.partners > 1 or args.taper or args.extent != "own"):
        parser.error("--oracle is measured on the plain recipe: no --partners, --taper or --extent")
    if args.partners > 1 and (args.taper or args.extent != "own"):
        parser.error("--partners 2 is measured with the area rule alone: no --taper, --extent own")
    if args.annotated > 1 and (args.partners > 1 or args.taper or args.extent != "own" or args.oracle
                               or args.registration):
        parser.error("--annotated is measured on the plain recipe: no --partners, --taper, --extent, --oracle "
                     "or --registration")
    if args.registration and (args.partners > 1 or args.taper or args.extent != "own" or args.oracle):
        parser.error("--registration is measured on the plain recipe: no --partners, --taper, --extent or --oracle")
    torch.set_num_threads(args.threads)
    root = data.data_dir(args.data)
    training, validation = data.split(root, args.fold)
    train.seed_everything(args.seed)
    generators = [torch.Generator().manual_seed(args.seed + i) for i in range(args.partners)]
    if not os.path.exists(os.path.join(args.runs, "selfsup", "model.pt")):
        sys.exit(f"rings.py: no {args.runs}/selfsup/model.pt to start from; run `train.py selfsup` "
                 f"with the same --runs (and --fold) first")
    nets = [load_trained(args.runs, "selfsup") for _ in range(args.partners)]
    if args.registration:
        registration.single_threaded()
    volumes = []
    for case in training:
        image, truth = data.load_case(root, case)
        registered = registration.carried_annotation(image, truth) if args.registration else None
        volumes.append(Volume(case, image, truth, args.end, args.taper, context_of(nets[0]), args.extent, args.oracle,
                              len(nets), registered, args.registration, args.annotated))
    logs, rings, started = [[] for _ in nets], [], time.time()
    for ring in range(1, args.max_rings + 1):
        if not any(v.open() for v in volumes):
            break
        for v in volumes:
            v.grow(nets, ring)
        inputs, targets = zip(*(v.slices() for v in volumes))
        sampler = train.Slices(list(inputs), list(targets), weight=None if args.distance_weight is None
                               else [v.weights(args.distance_weight) for v in volumes])
        summary = {"ring": ring, "open_sides": sum(a is not None for v in volumes for a in v.last_area.values()),
                   "labelled_slices": len(sampler.x), **{k: q for k, q in quality(volumes).items() if k != "by_distance"}}
        print(json.dumps(summary), flush=True)
        rings.append(summary)
        nets = fit_all(nets, sampler, generators, logs, args)
    out = os.path.join(args.runs, args.name)
    write_labels({v.case: v.labels for v in volumes}, out)
    net, log = nets[0], logs[0]
    train.save_network(net, out)
    if args.partners > 1:
        train.save_network(nets[1], out + "-partner")
    with open(os.path.join(out, "log.json"), "w") as f:
        json.dump({"stage": "rings", "end": args.end, "taper": args.taper, "extent": args.extent,
                   "partners": args.partners, "oracle": args.oracle, "registration": args.registration, "distance_weight": args.distance_weight, "annotated": args.annotated,
                   "steps_per_ring": args.steps_per_ring, "max_rings": args.max_rings, "lr": args.lr,
                   "bf16": args.bf16, "context": context_of(net), "seed": args.seed, "label_resize": data.LABEL_RESIZE, "fold": args.fold, "training_cases": training,
                   "validation_cases": validation,
                   "extents": {v.case: [v.end[-1], v.centre, v.end[+1]] for v in volumes},
                   "quality": quality(volumes), "network_quality": quality(volumes, "network_masks"), "rings": rings, "seconds": round(time.time() - started, 1),
                   "machine": train.machine_description(), "log": log,
                   **({"partner_log": logs[1]} if args.partners > 1 else {})}, f, indent=1)
    print(f"rings: {out}/model.pt and labels in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
