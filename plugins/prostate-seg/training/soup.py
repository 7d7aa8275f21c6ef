"""Measured, not shipped (it fails here; see EXPERIMENTS.md, "Ensembles"): a uniform "model soup" (Wortsman et
al., 2022), the weights of several stage-5 models that started from the same network (`train.py final
--init pretext --seed N`) averaged into one network of the same size and speed. Models fine-tuned from one
start can stay in one basin of the loss, where the average of their weights works; ours do not (a fresh
output layer per seed, a learning rate of 3e-3): --path prints the Dice of one validation case along the
straight line between the first two models' weights. With --recalibrate the averaged network's batch-norm
statistics (and those of every point on that line) are measured again on every training slice.

usage: python soup.py NAME [NAME ...] [--out soup] [--recalibrate] [--path] [--data DIR] [--runs DIR]
  -> runs/<out>/model.pt and runs/<out>/log.json; evaluate with `evaluate.py --extra <out>`
"""
import json
import os

import torch

import data
from unet import context_of, load_trained, shaped_like


def blended(nets, weights):
    """One network whose every floating-point weight and buffer is the weighted sum over `nets` (integer
    counters from the first)."""
    states = [net.state_dict() for net in nets]
    blend = {key: sum(w * state[key] for w, state in zip(weights, states)) if value.is_floating_point()
             else value.clone() for key, value in states[0].items()}
    net = shaped_like(blend)
    net.load_state_dict(blend)
    return net.eval()


def averaged(nets):
    """The uniform soup: every weight the mean over `nets`."""
    return blended(nets, [1 / len(nets)] * len(nets))


def interpolated(a, b, t):
    """The network (1 - t) a + t b."""
    return blended([a, b], [1 - t, t])


def recalibrated(net, root, cases, batch=16):
    """`net` with its batch-norm running statistics measured again over every slice of `cases` (the
    cumulative average, as in training mode with momentum None); its weights do not change."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    net.train()
    with torch.no_grad():
        for case in cases:
            x = torch.from_numpy(data.prepared(data.load_case(root, case)[0], context_of(net)))
            for s in range(0, len(x), batch):
                net(x[s:s + batch])
    return net.eval()


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("names", nargs="+", help="trained models (runs/<name>/model.pt) to average")
    parser.add_argument("--out", default="soup")
    parser.add_argument("--recalibrate", action="store_true", help="batch-norm statistics measured again")
    parser.add_argument("--path", action="store_true", help="Dice along the line between the first two models")
    args = data.parse(parser)
    torch.set_num_threads(2)
    root = data.data_dir(args.data)
    training, validation = data.split(root, args.fold)
    if len(args.names) < 2:
        parser.error("a soup needs at least two models")
    missing = [name for name in args.names
               if not all(os.path.exists(os.path.join(args.runs, name, f)) for f in ("model.pt", "log.json"))]
    if missing:
        parser.error(f"no trained model (model.pt and log.json) {', '.join(missing)} under {args.runs}")
    logs = [json.load(open(os.path.join(args.runs, name, "log.json"))) for name in args.names]
    unfit = [name for name, log in zip(args.names, logs)
             if log.get("stage") != "final" or log.get("init", "scratch") != "pretext"]
    if unfit:
        parser.error(f"{', '.join(unfit)}: not trained by `train.py final --init pretext`, which every member of "
                     "a soup must be (models from different starts have nothing in common to average)")
    members = [load_trained(args.runs, name) for name in args.names]
    if args.path:
        image, label = data.load_case(root, validation[2])
        for t in (0.0, 0.1, 0.25, 0.5):
            line = interpolated(members[0], members[1], t)
            if args.recalibrate:
                line = recalibrated(line, root, training)
            print(f"{validation[2]}, {t:.2f} of the way from {args.names[0]} to {args.names[1]}"
                  f"{' (batch norm recalibrated)' if args.recalibrate else ''}: Dice "
                  f"{data.dice(data.predict_volume(line, image) > 0.5, label):.3f}", flush=True)
    net = averaged(members)
    if args.recalibrate:
        net = recalibrated(net, root, training)
    out = os.path.join(args.runs, args.out)
    os.makedirs(out, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(out, "model.pt"))
    with open(os.path.join(out, "log.json"), "w") as f:
        json.dump({"stage": "soup", "members": args.names, "member_seeds": [log.get("seed") for log in logs],
                   "init": "pretext", "recalibrated": args.recalibrate, "training_cases": training,
                   "validation_cases": validation}, f, indent=1)
    print(f"soup of {', '.join(args.names)}: {out}/model.pt")


if __name__ == "__main__":
    main()
