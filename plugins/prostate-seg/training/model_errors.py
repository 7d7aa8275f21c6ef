"""Where the shipped model is wrong on the validation volumes, as the segmentation workflow runs it
(ONNX, mirrored left-right, largest connected component): its errors sorted by where they lie, and the
Dice each kind of error costs (the Dice if only that kind were fixed). Missed gland: on gland slices the
model leaves empty (the ends of the gland), within a band along the predicted in-plane boundary, farther
inside. Wrong gland: on slices without gland (beyond the gland's ends), within the band, farther out.
Also the Dice by third of the gland's extent along z, and each case slice by slice (true and predicted
area, Dice). Research code: it says whether the gap to 0.85 lies along z (where the gland ends) or in the
plane (its outline), before anything is retrained to close it.

usage: python model_errors.py [--data DIR] [--runs DIR] [--model FILE | --stage NAME] [--plain] [--band PIXELS]
  -> runs/model-errors.json (runs/model-errors-NAME.json with --stage) and a summary
  --model: the ONNX file (default the shipped fp32 prostate_seg.onnx)
  --stage: a model trained by train.py (runs/NAME/model.pt) instead, run the same way
  --plain: without the left-right mirroring the step does by default
  --band: the boundary band's half-width in pixels of the network's 128x128 grid (default 2)
"""
import json
import os

import numpy as np
import onnxruntime as ort
import torch

import data
from evaluate import largest_component
from export import onnx_predict
from pseudo_errors import boundary_distance
from unet import load_trained

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MISSED = ("gland_slice_left_empty", "band", "far")
WRONG = ("slice_without_gland", "band", "far")


def case_errors(mask, label, band):
    """Voxel counts of each kind of error of `mask` against `label`, per slice rows, Dice by third."""
    truth_slices = data.occupied_slices(label)
    first, last = truth_slices.min(), truth_slices.max()
    missed, wrong = dict.fromkeys(MISSED, 0), dict.fromkeys(WRONG, 0)
    thirds = np.zeros((3, 3))  # true positives, predicted, truth (within the gland's extent)
    rows = []
    for z in range(label.shape[0]):
        truth, predicted = label[z] > 0, mask[z]
        near = boundary_distance(predicted) <= band
        fn, fp = truth & ~predicted, predicted & ~truth
        if truth.any() and not predicted.any():
            missed["gland_slice_left_empty"] += fn.sum()
        else:
            missed["band"] += (fn & near).sum()
            missed["far"] += (fn & ~near).sum()
        if not truth.any():
            wrong["slice_without_gland"] += fp.sum()
        else:
            wrong["band"] += (fp & near).sum()
            wrong["far"] += (fp & ~near).sum()
        if first <= z <= last:
            third = min(2, int(3 * (z - first) / (last - first + 1)))
            thirds[third] += [(truth & predicted).sum(), predicted.sum(), truth.sum()]
        if truth.any() or predicted.any():
            both = truth.sum() + predicted.sum()
            rows.append({"slice": z, "position": "gland" if truth.any() else ("before" if z < first else "after"),
                         "true_area": int(truth.sum()), "predicted_area": int(predicted.sum()),
                         "dice": float(2 * (truth & predicted).sum() / both)})
    return missed, wrong, thirds, rows


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--model", default=os.path.join(PLUGIN, "prostate_seg.onnx"))
    parser.add_argument("--stage", default=None, help="a model trained by train.py instead of an ONNX file")
    parser.add_argument("--plain", action="store_true", help="without test-time mirroring")
    parser.add_argument("--band", type=float, default=2.0)
    args = data.parse(parser)
    if args.stage and args.model != parser.get_default("model"):
        parser.error("--model and --stage each name the model to examine; give one")
    if args.fold is not None and not args.stage:
        parser.error("--fold needs --stage: the shipped file was trained on cases a fold validates on")
    root = data.data_dir(args.data)
    _, validation = data.split(root, args.fold)
    if args.stage:
        torch.set_num_threads(2)
        net = load_trained(args.runs, args.stage)
        predict = lambda image: data.predict_volume(net, image, mirror=not args.plain)
    else:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
        predict = lambda image: onnx_predict(session, image, mirror=not args.plain)
    report = {"model": args.stage or os.path.basename(args.model), "mirrored": not args.plain, "cases": {}}
    totals = {"predicted": 0, "truth": 0, "missed": dict.fromkeys(MISSED, 0), "wrong": dict.fromkeys(WRONG, 0)}
    for case in validation:
        image, label = data.load_case(root, case)
        mask = largest_component(predict(image) > 0.5)
        band = data.source_pixels(args.band, label.shape[2])
        missed, wrong, thirds, rows = case_errors(mask, label, band)
        tp, predicted, truth = int((mask & (label > 0)).sum()), int(mask.sum()), int((label > 0).sum())
        dice = 2 * tp / (predicted + truth)
        # the Dice if one kind of error were fixed: a missed voxel becomes a true positive, a wrong one goes
        fixed = {f"missed_{k}": 2 * (tp + v) / (predicted + v + truth) for k, v in missed.items()}
        fixed.update({f"wrong_{k}": 2 * tp / (predicted - v + truth) for k, v in wrong.items()})
        report["cases"][case] = {"dice": dice, "dice_if_fixed": fixed,
                                 "missed_of_truth": {k: v / truth for k, v in missed.items()},
                                 "wrong_of_predicted": {k: v / predicted for k, v in wrong.items()},
                                 "dice_by_third": [2 * t[0] / max(t[1] + t[2], 1) for t in thirds],
                                 "slices": rows}
        totals["predicted"] += predicted
        totals["truth"] += truth
        for k in MISSED:
            totals["missed"][k] += missed[k]
        for k in WRONG:
            totals["wrong"][k] += wrong[k]
        print(f"{case}: Dice {dice:.3f}; thirds " + " ".join(f"{d:.2f}" for d in report["cases"][case]["dice_by_third"])
              + "; if fixed: " + " ".join(f"{k} {v:.3f}" for k, v in fixed.items()), flush=True)
        for r in rows:
            print(f"  {r['slice']:3d} {r['position']:6s} true {r['true_area']:6d} predicted {r['predicted_area']:6d} Dice {r['dice']:.2f}")
    cases = report["cases"].values()
    report["mean_dice"] = float(np.mean([c["dice"] for c in cases]))
    report["mean_dice_if_fixed"] = {k: float(np.mean([c["dice_if_fixed"][k] for c in cases])) for k in next(iter(cases))["dice_if_fixed"]}
    report["mean_dice_by_third"] = [float(np.mean([c["dice_by_third"][i] for c in cases])) for i in range(3)]
    report["missed_of_truth"] = {k: v / totals["truth"] for k, v in totals["missed"].items()}
    report["wrong_of_predicted"] = {k: v / totals["predicted"] for k, v in totals["wrong"].items()}
    os.makedirs(args.runs, exist_ok=True)
    with open(os.path.join(args.runs, f"model-errors-{args.stage}.json" if args.stage else "model-errors.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "cases"}, indent=1))


if __name__ == "__main__":
    main()
