"""Five-fold cross-validation of the whole sparse-annotation recipe over the 34 labelled PROMISE12 cases:
stages 1-3, the pseudo labels, their AND, stage 5 and the fully supervised reference, trained afresh for
each fold on its 27-28 training cases and measured on its 6-7 validation cases, so that every case is
validated once. The fixed split's 8 cases move a mean by 0.10 when one model takes train01's bladder; 34
cases and a count of such failures tell recipes apart that it cannot.

usage: python crossval.py run --folds 1 3 5 [--threads 1] [--veto]   # one lane; run another with --folds 2 4
       python crossval.py run --folds 1 3 5 --full-steps 4000         # adds full-4000 to folds already run
       python crossval.py run --folds 1 3 5 --mean-teacher --edge 1   # adds those stage-5 variants
       python crossval.py run --folds 1 3 --mean-teacher --skip-full  # the variant, without stage 6
       python crossval.py run --folds 1 --self-correct ignore fill --seeds 1 2   # variants, three seeds each
       python crossval.py run --folds 1 --distance-weight 0.9 --skip-full --seeds 2   # slices weighed 0.9**d
       python crossval.py run --folds 1 --voxflow ../../../target/release/voxflow  # stage 4 by the workflow
       python crossval.py run --folds 1 --rings --skip-full          # adds ring-by-ring self-labelling (rings.py)
       python crossval.py summary                                     # -> runs/cv/summary.json, a table

Each fold lives in runs/cv/fold-K/ and runs the README's commands with --fold K --bf16 (every stage in
bfloat16 (--float32 on a CPU without AVX512-BF16 or AMX), 1000 steps for stage 5 and stage 6 from the pretext start): so its numbers compare with each
other, not with the float32 tables. A step whose output exists is skipped, so an interrupted lane resumes
(the AND and the evaluation are made again when what they read is newer than they are).
The AND (stage 4) is label-fusion's, rendered in NumPy here (agreement 1 both sources, 0 neither, 255 one;
fused = both): the fusion workflow gave the same maps voxel for voxel on 2 x 26 cases ("The ends of the
gland" in EXPERIMENTS.md). With --voxflow BIN it runs as the README runs it, through
workflows/prostate-pseudolabels.yaml, recorded in runs/cv/fold-K/.voxflow/.
With --veto, also the registration veto (`pseudolabels.py --register`, `train.py final --registration
ignore`, as "final-veto"); with --full-steps N, also stage 6 trained N steps ("full-N"; the README's
reference for the goal's ratio is 4000); with --mean-teacher, stage 5 plus stage 2's consistency on every
unannotated slice ("final-mt"); with --edge N, stage 5 with a band of N pixels of the network's grid ignored
on each side of the pseudo labels' outline where gland meets background ("final-edge-N"); with
--self-correct MODE, stage 5 whose pseudo labels an EMA teacher corrects ("final-sc-MODE"); with
--distance-weight W, stage 5 whose pseudo-labelled slices weigh W**d, d slices from the central one
("final-dw-W"); with --rings, rings.py's ring-by-ring self-labelling from stage 3's network ("rings",
the network after the last ring) and stage 5 trained on its labels instead of the fused set ("final-rings");
with --seeds, stage 5 and those self-correcting and distance-weighed variants again
with each further seed ("NAME-seedN", paired with "final-seedN"). Every model whose folder starts with final- or full-, and "rings", is evaluated."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from scipy import stats

import data
from train import bf16_refused

HERE = os.path.dirname(os.path.abspath(__file__))
FUSION_WORKFLOW = os.path.join(HERE, "..", "..", "..", "workflows", "prostate-pseudolabels.yaml")
LCC_FAILURE = 0.1  # a largest component this far off the gland took the wrong organ (train01's bladder)


def fold_runs(runs, fold):
    return os.path.join(runs, "cv", f"fold-{fold}")


def step(label, done, command):
    """Run one of the README's commands unless `done` exists; stop the lane, naming the step, if it fails."""
    if os.path.exists(done):
        print(f"{label}: {done} exists, skipped", flush=True)
        return
    started = time.time()
    print(f"{label}: {' '.join(command[1:])}", flush=True)
    if subprocess.run(command, cwd=HERE).returncode != 0:
        sys.exit(f"crossval.py: {label} failed (command: {' '.join(command)})")
    print(f"{label}: {time.time() - started:.0f} s", flush=True)


def fuse_and(folder):
    """label-fusion's AND of the two sources in <folder>/pseudo/ into <folder>/fused/{agreement,fused}/,
    written aside and moved into place whole, so that an interrupted fusion is redone."""
    pseudo, partial = os.path.join(folder, "pseudo"), os.path.join(folder, "fused.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for sub in ("agreement", "fused"):
        os.makedirs(os.path.join(partial, sub))
    cases = sorted(f[:-len("_image.nii.gz")] for f in os.listdir(pseudo) if f.endswith("_image.nii.gz"))
    for case in cases:
        semi, selfsup = (data.read_nifti_zyx(os.path.join(pseudo, f"{case}_{role}.nii.gz")) > 0 for role in ("semi", "self"))
        both = semi & selfsup
        agreement = np.where(both, 1, np.where(semi | selfsup, 255, 0))
        data.write_nifti_zyx(agreement, os.path.join(partial, "agreement", f"{case}_agreement.nii.gz"), np.uint8)
        data.write_nifti_zyx(both, os.path.join(partial, "fused", f"{case}_fused.nii.gz"), np.uint8)
    os.replace(partial, os.path.join(folder, "fused"))
    return len(cases)


def fuse_by_workflow(voxflow, folder):
    """Stage 4 as the README runs it: workflows/prostate-pseudolabels.yaml (wasm/label-fusion's AND, from
    this repository's plugins/) on <folder>/pseudo/ into <folder>/fused/, the run recorded in
    <folder>/.voxflow/ (SQLite and artifacts); written aside and moved into place whole, as fuse_and."""
    partial = os.path.join(folder, "fused.partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [voxflow, "run", os.path.abspath(FUSION_WORKFLOW), "--input", f"cases={os.path.join(folder, 'pseudo')}",
               "--out", partial, "--plain", "--plugins", os.path.abspath(os.path.join(HERE, "..", "..")),
               "--data-dir", os.path.join(folder, ".voxflow")]
    if subprocess.run(command, cwd=HERE).returncode != 0:
        sys.exit(f"crossval.py: the fusion workflow failed on {folder} (command: {' '.join(command)})")
    cases = len(os.listdir(os.path.join(partial, "agreement")))
    os.replace(partial, os.path.join(folder, "fused"))
    return cases


def run_fold(args, fold):
    folder = fold_runs(args.runs, fold)
    common = (["--fold", str(fold), "--runs", folder, "--label-resize", args.label_resize]
              + (["--data", args.data] if args.data else []))
    train = [sys.executable, "train.py"]
    threads = ["--threads", str(args.threads)] + ([] if args.float32 else ["--bf16"])
    model = lambda name: os.path.join(folder, name, "model.pt")
    step(f"fold {fold} stage 1", model("baseline"), train + ["baseline"] + common + threads)
    step(f"fold {fold} stage 3", model("selfsup"), train + ["selfsup"] + common + threads)
    step(f"fold {fold} stage 2", model("semi"), train + ["semi"] + common + threads)
    extents = os.path.join(folder, "pseudo-raw", "extents.json")
    step(f"fold {fold} pseudo labels", extents, [sys.executable, "pseudolabels.py"] + common)
    fused = os.path.join(folder, "fused")
    if os.path.isdir(fused) and os.path.getmtime(extents) > os.path.getmtime(fused):
        shutil.rmtree(fused)  # the pseudo labels were made again since
    if not os.path.isdir(fused):
        if args.voxflow:
            print(f"fold {fold} stage 4: the fusion workflow on {fuse_by_workflow(args.voxflow, folder)} cases", flush=True)
        else:
            print(f"fold {fold} stage 4: AND of {fuse_and(folder)} cases", flush=True)
    step(f"fold {fold} stage 5", model("final"), train + ["final"] + common + threads)
    if not args.skip_full:
        step(f"fold {fold} stage 6", model("full"), train + ["full", "--init", "pretext"] + common + threads)
    if args.veto:
        step(f"fold {fold} registration", os.path.join(folder, "reg", "pseudo-raw", "extents.json"),
             [sys.executable, "pseudolabels.py", "--register"] + common)
        step(f"fold {fold} stage 5, veto", model("final-veto"),
             train + ["final", "--registration", "ignore", "--name", "final-veto"] + common + threads)
    if args.mean_teacher:
        step(f"fold {fold} stage 5, mean teacher", model("final-mt"),
             train + ["final", "--mean-teacher", "--name", "final-mt"] + common + threads)
    if args.edge:
        step(f"fold {fold} stage 5, edge {args.edge}", model(f"final-edge-{args.edge}"),
             train + ["final", "--edge", str(args.edge), "--name", f"final-edge-{args.edge}"] + common + threads)
    if args.rings:
        step(f"fold {fold} rings", model("rings"), [sys.executable, "rings.py"] + common + threads)
        step(f"fold {fold} stage 5, ring labels", model("final-rings"),
             train + ["final", "--labels", os.path.join(folder, "rings"), "--name", "final-rings"] + common + threads)
    variants = [(f"final-sc-{mode}", ["--self-correct", mode]) for mode in args.self_correct]  # those --seeds repeats
    if args.distance_weight:
        variants.append((f"final-dw-{args.distance_weight}", ["--distance-weight", str(args.distance_weight)]))
    for name, options in variants:
        step(f"fold {fold} stage 5, {name}", model(name), train + ["final", "--name", name] + options + common + threads)
    for seed in args.seeds:  # stage 5 and the variants asked for, again with each further seed
        for name, options in [("final", [])] + variants:
            step(f"fold {fold} {name}, seed {seed}", model(f"{name}-seed{seed}"),
                 train + ["final", "--seed", str(seed), "--name", f"{name}-seed{seed}"] + options + common + threads)
    if args.full_steps:
        step(f"fold {fold} stage 6, {args.full_steps} steps", model(f"full-{args.full_steps}"),
             train + ["full", "--init", "pretext", "--iterations", str(args.full_steps), "--name",
                      f"full-{args.full_steps}"] + common + threads)
    evaluation = os.path.join(folder, "evaluation-mirrored.json")
    optional = sorted(name for name in os.listdir(folder) if (name.startswith(("final-", "full-")) or name == "rings")
                      and os.path.isdir(os.path.join(folder, name)))
    models = [model(name) for name in ["final", "full"] + optional]  # stage 6 where it was trained
    if os.path.exists(evaluation) and any(os.path.exists(m) and os.path.getmtime(m) > os.path.getmtime(evaluation)
                                          for m in models):
        os.remove(evaluation)  # measured before a model was (re)trained
    extra = [name for name in optional if os.path.exists(model(name))]
    extra = ["--extra"] + extra if extra else []
    step(f"fold {fold} evaluation", evaluation, [sys.executable, "evaluate.py", "--mirror"] + common + extra)


def seed_of(stage):
    """A model's name without its -seedN suffix, and N (None: the default seed)."""
    base, _, seed = stage.rpartition("-seed")
    return (base, int(seed)) if base and seed.isdigit() else (stage, None)


def paired(variant, control):
    """A variant's per-case Dice against the control's on the cases both were validated on."""
    shared = sorted(set(variant) & set(control))
    difference = np.array([variant[c] - control[c] for c in shared])
    return {"cases": len(shared), "mean_difference": float(difference.mean()),
            "standard_error": float(difference.std(ddof=1) / np.sqrt(len(shared))) if len(shared) > 1 else None,
            "wilcoxon_p": float(stats.wilcoxon(difference).pvalue) if difference.any() else 1.0,
            "better_on": int((difference > 0).sum()),
            "final_over_this": float(np.mean([control[c] for c in shared]) / np.mean([variant[c] for c in shared]))}


def seed_averaged(table):
    """Each variant trained with several seeds against stage 5 with the same seeds, per case the mean over
    the seeds both have: the seed's share of a difference averaged out."""
    groups = {}
    for stage in table:
        base, seed = seed_of(stage)
        groups.setdefault(base, {})[seed] = table[stage]["dice"]
    out = {}
    for base, by_seed in groups.items():
        seeds = sorted(set(by_seed) & set(groups.get("final", {})), key=lambda s: -1 if s is None else s)
        if base == "final" or len(seeds) < 2:
            continue
        cases = set.intersection(*(set(by_seed[s]) & set(groups["final"][s]) for s in seeds))
        if not cases:
            continue
        mean = lambda runs: {c: float(np.mean([runs[s][c] for s in seeds])) for c in cases}
        variant, control = mean(by_seed), mean(groups["final"])
        name = lambda s: "default" if s is None else str(s)
        out[base] = {"seeds": [name(s) for s in seeds], "mean_dice": float(np.mean(list(variant.values()))),
                     "final_mean_dice": float(np.mean(list(control.values()))), **paired(variant, control),
                     "final_seed_means": {name(s): float(np.mean([groups["final"][s][c] for c in cases])) for s in seeds},
                     "seed_means": {name(s): float(np.mean([by_seed[s][c] for c in cases])) for s in seeds}}
    return out


def standard_error_text(a):
    return "n/a" if a["standard_error"] is None else f"{a['standard_error']:.3f}"


def summary(args):
    """Pool the folds' per-case Dice: a case's Dice comes from the one fold that validated it."""
    folds, stages, pseudo = {}, {}, {}
    for fold in range(1, data.FOLDS + 1):
        path = os.path.join(fold_runs(args.runs, fold), "evaluation-mirrored.json")
        if not os.path.exists(path):
            print(f"fold {fold}: no {path}, left out")
            continue
        with open(path) as f:
            result = json.load(f)
        folds[fold] = result["validation_cases"]
        if "pseudo_labels" in result:
            pseudo[fold] = {k: result["pseudo_labels"]["fused"][k] for k in ("precision", "recall")}
        for stage, r in result["stages"].items():
            entry = stages.setdefault(stage, {"title": r["title"], "dice": {}, "dice_largest_component": {}, "folds": []})
            entry["dice"].update(r["dice"])
            entry["dice_largest_component"].update(r["dice_largest_component"])
            entry["folds"].append(fold)
    _, fixed = data.split(data.data_dir(args.data))  # the fixed split's validation cases: harder than most?
    table = {}
    for stage, entry in stages.items():
        raw = np.array(list(entry["dice"].values()))
        cleaned = np.array(list(entry["dice_largest_component"].values()))
        table[stage] = {"title": entry["title"], "cases": len(raw), "folds": entry["folds"],
                        "mean_dice": float(raw.mean()), "std": float(raw.std()), "min": float(raw.min()),
                        "mean_dice_largest_component": float(cleaned.mean()),
                        "largest_component_failures": sorted(c for c, d in entry["dice_largest_component"].items()
                                                             if d < LCC_FAILURE),
                        "per_fold_mean": {f: float(np.mean([entry["dice"][c] for c in folds[f]])) for f in entry["folds"]},
                        "fixed_split_cases_mean": float(np.mean([d for c, d in entry["dice"].items() if c in fixed] or [np.nan])),
                        "other_cases_mean": float(np.mean([d for c, d in entry["dice"].items() if c not in fixed] or [np.nan])),
                        "dice": entry["dice"], "dice_largest_component": entry["dice_largest_component"]}
    for stage, r in table.items():  # paired with stage 5 of the same seed on the cases both were validated on
        seed = seed_of(stage)[1]
        control = "final" if seed is None else f"final-seed{seed}"
        if stage != control and control in table and set(r["dice"]) & set(table[control]["dice"]):
            r["against_final"] = paired(r["dice"], table[control]["dice"])
    averaged = seed_averaged(table)
    out = {"folds": folds, "mirrored": True, "fused_pseudo_labels": pseudo, "stages": table, "seed_averaged": averaged}
    os.makedirs(os.path.join(args.runs, "cv"), exist_ok=True)
    with open(os.path.join(args.runs, "cv", "summary.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("| stage | cases | mean Dice | std | min | per-fold means | the fixed split's 8, the rest | largest component | its failures |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table.values():
        per_fold = ", ".join(f"{m:.3f}" for m in r["per_fold_mean"].values())
        print(f"| {r['title']} | {r['cases']} | {r['mean_dice']:.3f} | {r['std']:.3f} | {r['min']:.3f} | {per_fold} | "
              f"{r['fixed_split_cases_mean']:.3f}, {r['other_cases_mean']:.3f} | "
              f"{r['mean_dice_largest_component']:.3f} | {', '.join(r['largest_component_failures']) or 'none'} |")
    for r in table.values():
        if "against_final" in r:
            a = r["against_final"]
            print(f"{r['title']} against stage 5 (the same seed) on the same {a['cases']} cases: {a['mean_difference']:+.3f} "
                  f"(standard error {standard_error_text(a)}, Wilcoxon p {a['wilcoxon_p']:.2g}), "
                  f"better on {a['better_on']}; stage 5 is {a['final_over_this']:.2f}x it")
    for base, a in averaged.items():
        print(f"{base}, the mean of seeds {', '.join(a['seeds'])}: "
              f"{a['mean_dice']:.3f} against stage 5's {a['final_mean_dice']:.3f} on the same {a['cases']} cases and "
              f"seeds, {a['mean_difference']:+.3f} (standard error {standard_error_text(a)}, Wilcoxon p "
              f"{a['wilcoxon_p']:.2g}), better on {a['better_on']}; per seed "
              f"{', '.join(f'{v:.3f}' for v in a['seed_means'].values())} against "
              f"{', '.join(f'{v:.3f}' for v in a['final_seed_means'].values())}")
    for fold, p in pseudo.items():
        print(f"fold {fold}: fused pseudo labels precision {p['precision']:.3f}, recall {p['recall']:.3f}")


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("action", choices=["run", "summary"])
    parser.add_argument("--folds", type=int, nargs="+", choices=range(1, data.FOLDS + 1), default=None,
                        help="run: the folds this lane trains, one after the other")
    parser.add_argument("--threads", type=int, default=1, help="run: threads per training (1: run two lanes)")
    parser.add_argument("--voxflow", default=None, metavar="BIN",
                        help="run: stage 4 through workflows/prostate-pseudolabels.yaml with this voxflow binary "
                             "(e.g. target/release/voxflow), as the README does, instead of the NumPy rendering")
    parser.add_argument("--veto", action="store_true", help="run: also the registration veto as final-veto")
    parser.add_argument("--skip-full", action="store_true",
                        help="run: leave out stage 6 (1000 steps), for a study of stage-5 variants against stage 5 "
                             "on a slower machine; a later run without it adds it")
    parser.add_argument("--mean-teacher", action="store_true",
                        help="run: also stage 5 with stage 2's consistency on every unannotated slice, as final-mt")
    parser.add_argument("--edge", type=int, default=None,
                        help="run: also stage 5 with a band of this many pixels of the network's grid ignored on each "
                             "side of the pseudo labels' outline where gland meets background, as final-edge-N")
    parser.add_argument("--self-correct", nargs="+", choices=["ignore", "fill"], default=[],
                        help="run: also stage 5 with its pseudo labels corrected against an EMA teacher "
                             "(train.py --self-correct), as final-sc-MODE")
    parser.add_argument("--distance-weight", type=data.slice_weight, default=None, metavar="W",
                        help="run: also stage 5 with pseudo-labelled slices weighed W**d, d slices from the central one "
                             "(train.py --distance-weight), as final-dw-W")
    parser.add_argument("--rings", action="store_true",
                        help="run: also rings.py (ring-by-ring self-labelling from stage 3's network) as rings, and "
                             "stage 5 trained on its labels as final-rings")
    parser.add_argument("--seeds", type=int, nargs="+", default=[],
                        help="run: also stage 5, and each --self-correct and --distance-weight variant, trained with these further seeds "
                             "(NAME-seedN): a rule's difference is then measured against the control's spread")
    parser.add_argument("--float32", action="store_true",
                        help="run: every stage in float32 instead of bfloat16 (on a CPU without AVX512-BF16 or AMX, "
                             "where --bf16 is refused); its numbers compare only with float32 runs, so give another --runs")
    parser.add_argument("--full-steps", type=int, default=None,
                        help="run: also stage 6 trained for this many steps, as full-N (the README's reference: 4000)")
    args = parser.parse_args()
    args.runs = os.path.abspath(args.runs)  # the stages run in this folder, whatever the caller's
    args.data = args.data and os.path.abspath(args.data)
    if args.voxflow:
        found = shutil.which(args.voxflow)
        if not found:
            parser.error(f"--voxflow: no executable {args.voxflow}")
        args.voxflow = os.path.abspath(found)
    if args.fold is not None:
        parser.error("crossval.py takes --folds (run), not --fold")
    if data.SEED in args.seeds:
        parser.error(f"--seeds: {data.SEED} is the default seed, which every model is trained with already")
    if args.edge is not None and args.edge < 1:
        parser.error(f"--edge takes a number of pixels >= 1, not {args.edge}")
    if args.action == "run":
        if not args.folds:
            parser.error("run needs --folds")
        if not args.float32 and (refused := bf16_refused()):
            parser.error(refused)
        for fold in args.folds:
            run_fold(args, fold)
    else:
        summary(args)


if __name__ == "__main__":
    main()
