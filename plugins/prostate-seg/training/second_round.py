"""A second round on the shipped fusion's labels (measured: "A second round from the views at the ends" in
EXPERIMENTS.md): three networks together (the axial ring network, the sagittal and coronal networks, fused
as the workflows fuse them: evaluate_onnx.shipped_fusion) label every training volume, and the axial
network learns those labels, so that what the views add at the gland's ends is taught to the network that
decides the middle. On the fixed split the three are the shipped fp32 ONNX files; with --fold K, the rings
and the view networks trained under --runs (rings.py, then views.py --view sagittal and --view coronal).

  labels    the fusion's labels of the training volumes in the fusion workflow's layout (train.py final
            --labels reads them): gland where its probability is at least 0.75 inside the largest component
            of its mask, background where it is at most 0.25 or outside that component, ignored between;
            the central slice as annotated. Also scores, for reading only, the axial network alone and the
            fusion against the true masks of the training volumes (the gate of the section's rule). With
            --unlabelled the 29 unlabelled volumes are labelled too (no annotated slice on them).
  tune      a network trained before under --runs (default: rings) fine-tuned on those labels for --steps
            (one-cycle, peak --lr, as rings.py fine-tunes after each ring); with --unlabelled on the
            unlabelled volumes' labels as well (written to tuned-unlabelled/ instead of tuned/).
  evaluate  trained axial networks on the validation volumes, each mirrored alone and fused with the
            view networks as the workflows fuse them, beside the three's own axial network (the control).

usage: python second_round.py labels   [--data DIR] [--runs DIR] [--fold K] [--name DIR] [--unlabelled]
       python second_round.py tune     [--runs DIR] [--fold K] [--name DIR] [--start NAME] [--steps N] [--lr F] [--bf16] [--threads N] [--seed N] [--unlabelled]
       python second_round.py evaluate [--runs DIR] [--fold K] [--threads N] --networks NAME ...
Writes runs/<name>/fused/ and runs/<name>/labels.json (labels), runs/<name>/tuned[-unlabelled]/model.pt and
log.json (tune), runs/second-round.json (evaluate).
"""
import json
import os
import sys
import time

import numpy as np
import torch

import data
import train
from evaluate import largest_component
import views
from evaluate_onnx import VIEWS, cpu_session, scored, shipped_fusion
from export import OnnxNetwork
from rings import write_labels
from unet import context_of, load_trained

SURE = (0.25, 0.75)  # fused probabilities taught as neither gland nor background between these


def taught(probability, label):
    """The fused probability as a target: gland where sure inside the largest component of its mask,
    background where sure or outside that component, ignored between; the central slice as annotated
    (`label` None: an unlabelled volume, no slice annotated)."""
    component = largest_component(probability > 0.5)
    target = np.full(probability.shape, data.IGNORE, np.uint8)
    target[(probability >= SURE[1]) & component] = 1
    target[(probability <= SURE[0]) | ((probability > 0.5) & ~component)] = 0
    if label is not None:
        centre = data.central_slice(label)
        target[centre] = label[centre]
    return target


class Trio:
    """The three networks whose fusion labels the training volumes: on the fixed split the shipped fp32 ONNX
    files, on a fold the rings and the view networks named sagittal and coronal trained under --runs."""

    def __init__(self, args):
        if args.fold is None:
            self.name = "shipped"
            self.axial = views.Axial(args.runs, "onnx")
            self.views = {view: OnnxNetwork(cpu_session(path, args.threads)) for view, path in VIEWS["fp32"].items()}
        else:
            self.name = "rings"
            if not os.path.exists(os.path.join(args.runs, "rings", "model.pt")):
                sys.exit(f"second_round.py: no {args.runs}/rings/model.pt; run rings.py with the same --runs and --fold")
            self.axial = views.Axial(args.runs, "rings")
            self.views = {view: views.trained_view(args.runs, view)[2] for view in VIEWS["fp32"]}

    def axial_probability(self, image):
        return self.axial.probability(image)

    def view_probabilities(self, image):
        return [views.view_probability(net, image, view) for view, net in self.views.items()]


def make_labels(args, root, training):
    trio = Trio(args)
    labels, rows, unlabelled = {}, {}, {}
    for case in training + (data.unlabelled_cases(root) if args.unlabelled else []):
        image, label = data.load_case(root, case)
        p_axial = trio.axial_probability(image)
        p_fused = shipped_fusion(p_axial, trio.view_probabilities(image))
        labels[case] = target = taught(p_fused, label)
        if label is None:  # an unlabelled volume: nothing to score against
            unlabelled[case] = {"gland": float((target == 1).mean()), "ignored": float((target == data.IGNORE).mean())}
            print(case, json.dumps(unlabelled[case]), flush=True)
            continue
        keep = np.ones(len(label), bool)
        keep[data.central_slice(label)] = False  # the annotated slice is taught as annotated: not scored
        gland, truth = target[keep] == 1, label[keep] > 0
        hits = (gland & truth).sum()
        rows[case] = {"axial": float(data.dice(largest_component(p_axial > 0.5), label)),
                      "fused": float(data.dice(largest_component(p_fused > 0.5), label)),
                      "labels_precision": float(hits / max(gland.sum(), 1)),
                      "labels_recall": float(hits / max(truth.sum(), 1)),
                      "ignored": float((target[keep] == data.IGNORE).mean())}
        print(case, json.dumps(rows[case]), flush=True)
    out = os.path.join(args.runs, args.name)
    write_labels(labels, out)
    means = {key: float(np.mean([r[key] for r in rows.values()])) for key in next(iter(rows.values()))}
    with open(os.path.join(out, "labels.json"), "w") as f:
        json.dump({"training_cases": training, "sure": SURE, "mean": means, "per_case": rows,
                   "unlabelled": unlabelled}, f, indent=1)
    print("mean", json.dumps(means))


def tune(args, root, training):
    if not os.path.exists(os.path.join(args.runs, args.start, "model.pt")):
        sys.exit(f"second_round.py tune: no {args.runs}/{args.start}/model.pt; train it first (rings.py)")
    folder = os.path.join(args.runs, args.name)
    if not os.path.isdir(os.path.join(folder, "fused", "agreement")):
        sys.exit(f"second_round.py tune: no labels in {folder}/fused/; run `second_round.py labels` first")
    train.seed_everything(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    cases = list(training)
    if args.unlabelled:
        with open(os.path.join(folder, "labels.json")) as f:
            cases += sorted(json.load(f).get("unlabelled", {}))
        if len(cases) == len(training):
            sys.exit(f"second_round.py tune --unlabelled: {folder}/labels.json has no unlabelled volumes; run "
                     f"`second_round.py labels --unlabelled` first")
    start = load_trained(args.runs, args.start)
    labelled = train.all_slices(root, cases, train.fused_targets(folder), central_only_manual=True,
                                context=context_of(start))
    log, started = [], time.time()
    net = train.fit(start, labelled, args.steps, generator, lr=args.lr, log=log, bf16=args.bf16)
    out = os.path.join(folder, "tuned-unlabelled" if args.unlabelled else "tuned")
    train.save_network(net, out)
    with open(os.path.join(out, "log.json"), "w") as f:
        json.dump({"stage": "second-round tune", "start": args.start, "labels": folder, "steps": args.steps,
                   "lr": args.lr, "bf16": args.bf16, "seed": args.seed, "training_cases": training,
                   "unlabelled_cases": cases[len(training):],
                   "seconds": round(time.time() - started, 1), "machine": train.machine_description(), "log": log},
                  f, indent=1)
    print(f"tune: {out}/model.pt in {time.time() - started:.0f} s")


def evaluate(args, root, validation):
    missing = [name for name in args.networks if not os.path.exists(os.path.join(args.runs, name, "model.pt"))]
    if missing:
        sys.exit(f"second_round.py evaluate: no model.pt under {args.runs}/ for {', '.join(missing)}; "
                 f"train them first with the same --runs (and --fold)")
    trio = Trio(args)
    if trio.name in args.networks:
        sys.exit(f"second_round.py evaluate: {trio.name} is the control, measured beside every network; leave it "
                 f"out of --networks")
    nets = {name: load_trained(args.runs, name) for name in args.networks}
    masks = {}
    for case in validation:
        image, label = data.load_case(root, case)
        p_views = trio.view_probabilities(image)
        axial = {trio.name: trio.axial_probability(image),
                 **{name: data.predict_volume(net, image, mirror=True) for name, net in nets.items()}}
        for name, p in axial.items():
            masks.setdefault(f"{name} alone", {})[case] = (p > 0.5, label)
            masks.setdefault(f"{name} + views at the ends", {})[case] = (shipped_fusion(p, p_views) > 0.5, label)
        print(case, " ".join(f"{n} {float(data.dice(largest_component(m[case][0]), label)):.3f}"
                             for n, m in masks.items()), flush=True)
    results = {name: scored(m) for name, m in masks.items()}
    with open(os.path.join(args.runs, "second-round.json"), "w") as f:
        json.dump({"fold": args.fold, "validation_cases": validation, **results}, f, indent=1)
    print("| axial network | mean Dice | largest component |\n|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['mean_dice']:.3f} | {r['mean_dice_largest_component']:.3f} |")


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("action", choices=("labels", "tune", "evaluate"))
    parser.add_argument("--networks", nargs="+", default=[], metavar="NAME",
                        help="evaluate: axial networks trained under --runs (NAME/model.pt)")
    parser.add_argument("--name", default="second-round", help="the folder under --runs for the labels")
    parser.add_argument("--start", default="rings", help="tune: the network under --runs to fine-tune")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=data.SEED)
    parser.add_argument("--unlabelled", action="store_true",
                        help="labels: label the unlabelled volumes too; tune: learn their labels as well")
    args = data.parse(parser)
    if args.bf16 and (refused := train.bf16_refused()):
        parser.error(refused)
    if args.networks and args.action != "evaluate":
        parser.error("--networks is for evaluate")
    torch.set_num_threads(args.threads)
    root = data.data_dir(args.data)
    training, validation = data.split(root, args.fold)
    {"labels": lambda: make_labels(args, root, training), "tune": lambda: tune(args, root, training),
     "evaluate": lambda: evaluate(args, root, validation)}[args.action]()


if __name__ == "__main__":
    main()
