"""Trains one stage of the sparse-annotation study (see README.md): one command per stage.

usage: python train.py STAGE [--data DIR] [--runs DIR] [--fold K] [--iterations N] [--threads N] [--name DIR]
                            [--init scratch|pretext] [--seed N] [--margin N] [--taper N] [--labels DIR] [--bf16]
                            [--registration ignore|agree] [--beyond N] [--edge N] [--mean-teacher]
                            [--self-correct ignore|fill] [--distance-weight W]
  baseline   1. supervised on the central slice of each training volume only
  semi       2. mean teacher: the baseline's recipe plus consistency with an EMA teacher on every
                unannotated slice (other slices of the training volumes and the unlabelled volumes)
  selfsup    3. context restoration pretext on every slice, then fine-tuned on the central slices
  final      5. central slices plus the fused pseudo labels (runs/fused/, from workflows/prostate-pseudolabels.yaml:
                prostate where both sources say so, background where neither does, the rest ignored;
                data.fused_target), starting from stage 3's pretext network (--labels runs/reg: three
                sources, pseudolabels.py --register and workflows/prostate-pseudolabels-three.yaml;
                --labels runs/mirrored: pseudolabels.py --extent mirrored; --registration: the
                registration source as a veto on background or as a third vote; --edge: a band along
                the pseudo labels' outline ignored; --mean-teacher: plus stage 2's consistency on every
                unannotated slice; --self-correct: pseudo labels an EMA teacher contradicts ignored;
                --distance-weight: pseudo labels weighed down with their distance from the central slice;
                all measured, not shipped)
  round2     5b. a second round of self-training: as final, on runs/round2/fused (pseudolabels.py --semi STAGE
                --round round2, then the fusion workflow into runs/round2/fused)
  full       6. every slice of the training volumes with its true mask (the upper reference)
Each stage writes runs/<stage>/model.pt and runs/<stage>/log.json (runs/<name>/ with --name).
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
from unet import UNet, context_of, load_trained, shaped_like, width_of

IGNORE = data.IGNORE


def machine_description():
    """What a run's numbers depend on besides the code and the seed: the CPU and the instruction set
    PyTorch's kernels use on it (they change floating-point sums), PyTorch's version and the thread count."""
    cpu = None
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def bf16_refused():
    """Why --bf16 cannot run well here, or None: without AVX512-BF16 or AMX (on an AVX2-only AMD EPYC,
    for one) PyTorch emulates bfloat16 autocast, and a training step took more than 8x as long as in
    float32 (over 16 s against 1.9 s, 1 thread); its numbers would not be those of bf16 runs on a CPU
    that has the instructions either."""
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if supported is None or supported():
        return None
    return (f"--bf16: this CPU has neither AVX512-BF16 nor AMX (PyTorch's kernels use "
            f"{torch.backends.cpu.get_cpu_capability()}), so bfloat16 autocast is emulated, more than 8x slower "
            f"than float32; leave out --bf16 (crossval.py: --float32), and compare the numbers only with float32 runs")


def seed_everything(seed):
    np.random.seed(seed)
    torch.manual_seed(seed)


def random_geometry(n, generator, flip=True):
    """Affine grids for n images: flip left-right (unless `flip` is False; the draw is made either way, so
    that the generator advances alike), rotate +-15 degrees, scale 0.8-1.25, shift 10 %."""
    angle = (torch.rand(n, generator=generator) * 2 - 1) * np.pi / 12
    scale = torch.exp((torch.rand(n, generator=generator) * 2 - 1) * np.log(1.25))
    flip = torch.where((torch.rand(n, generator=generator) < 0.5) & flip, -1.0, 1.0)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 0.1
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    return F.affine_grid(theta, (n, 1, data.SIZE, data.SIZE), align_corners=False)


def augment(x, y, generator, geometry=True, flip=True, textured=False):
    """Joint geometric augmentation (labels by nearest neighbour, outside the image ignored) and
    intensity augmentation (gamma, contrast, noise) of the image; `flip` as random_geometry's; with
    `textured`, texture() before the intensity augmentation."""
    n = x.shape[0]
    if geometry:
        grid = random_geometry(n, generator, flip)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if y is not None:
            y = F.grid_sample(y[:, None].float(), grid, mode="nearest", padding_mode="border", align_corners=False)[:, 0].long()
    if textured:
        x = texture(x, generator)
    return intensity(x, generator), y


def intensity(x, generator):
    n = x.shape[0]
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * 0.3)
    x = x.clamp(min=0) ** gamma
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * 0.15
    x = (x - 0.5) * contrast + 0.5
    return x + torch.randn(x.shape, generator=generator) * 0.03


def smooth_field(n, cells, generator, size):
    """n random fields, one normal draw per cell of a cells x cells grid, upsampled bicubic to size x size."""
    coarse = torch.randn(n, 1, cells, cells, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


def gaussian_blur(x, sigma):
    """Each image of x (n, c, h, w) blurred with its own Gaussian (sigma: n values, pixels), separably."""
    radius = 4
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-offsets[None] ** 2 / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # (n, taps)
    n, c, h, w = x.shape
    flat = x.reshape(1, n * c, h, w)
    taps = kernel.repeat_interleave(c, 0)  # one kernel per channel of each image
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), taps[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), taps[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def texture(x, generator):
    """Texture augmentation (views.py --texture): per image, the same for its three channels, each with
    probability 1/2 and drawn whether applied or not (so the generator advances alike): a random monotonic
    intensity curve (five segments of random slope on [0, 1]); a multiplicative field smooth at two scales,
    4x4 cells (a coil's bias, +-20 %) and 16x16 cells (blotches of the size of nodules, +-15 %); and a
    Gaussian blur (sigma 0.5-1.5 px) or an unsharp mask (amount 0.5-1.5, sigma 1 px), one or the other.
    Applied to the image in [0, 1] before the intensity augmentation; the result clipped to [0, 1]."""
    n, size = x.shape[0], x.shape[-1]
    apply = torch.rand(n, 4, generator=generator) < 0.5
    slopes = torch.rand(n, 5, generator=generator) + 0.25
    knots = torch.cat([torch.zeros(n, 1), torch.cumsum(slopes, 1) / slopes.sum(1, keepdim=True)], 1)  # (n, 6)
    position = x.clamp(0, 1) * 5
    segment = position.floor().clamp(max=4).long()
    low = torch.gather(knots, 1, segment.reshape(n, -1)).reshape(x.shape)
    high = torch.gather(knots, 1, (segment + 1).reshape(n, -1)).reshape(x.shape)
    curved = low + (position - segment) * (high - low)
    x = torch.where(apply[:, 0, None, None, None], curved, x)
    field = 0.2 * smooth_field(n, 4, generator, size).clamp(-2, 2) / 2 + 0.15 * smooth_field(n, 16, generator, size).clamp(-2, 2) / 2
    x = torch.where(apply[:, 1, None, None, None], x * (1 + field), x)
    sharpen = torch.rand(n, generator=generator) < 0.5
    sigma = torch.where(sharpen, torch.ones(n), 0.5 + torch.rand(n, generator=generator))
    amount = 0.5 + torch.rand(n, generator=generator)
    blurred = gaussian_blur(x, sigma)
    filtered = torch.where(sharpen[:, None, None, None], x + amount[:, None, None, None] * (x - blurred), blurred)
    x = torch.where(apply[:, 2, None, None, None], filtered, x)
    return x.clamp(0, 1)


def segmentation_loss(logits, target, weight=None):
    """Cross-entropy plus soft Dice of the prostate channel, both over the voxels not ignored; `weight`
    (one per slice of the batch) weighs each slice's voxels in both terms."""
    valid = target != IGNORE
    ce = F.cross_entropy(logits, torch.where(valid, target, torch.zeros_like(target)), reduction="none")
    if weight is not None:
        valid = valid * weight[:, None, None]
    ce = (ce * valid).sum() / valid.sum().clamp(min=1)
    p = torch.softmax(logits, 1)[:, 1] * valid
    t = (target == 1).float()
    t_sum = t.sum() if weight is None else (t * weight[:, None, None]).sum()
    soft_dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t_sum + 1)
    return ce + soft_dice


def schedule(optimizer, iterations, lr):
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=iterations, pct_start=0.1)


class Slices:
    """Network inputs and targets of annotated slices, sampled in batches; `manual` says which slices an
    annotator labelled (default: all), the others carrying pseudo labels; `weight`, if given, each slice's
    weight in the loss."""

    def __init__(self, inputs, targets, manual=None, weight=None):
        self.x = torch.from_numpy(np.concatenate(inputs))
        self.y = torch.from_numpy(np.concatenate(targets).astype(np.int64))
        self.manual = (torch.from_numpy(np.concatenate(manual)) if manual is not None
                       else torch.ones(len(self.x), dtype=torch.bool))
        self.weight = torch.from_numpy(np.concatenate(weight).astype(np.float32)) if weight is not None else None

    def batch(self, size, generator):
        """Inputs, targets, manual flags and weights (None: all 1) of `size` slices drawn at random."""
        index = torch.randint(0, len(self.x), (size,), generator=generator)
        return self.x[index], self.y[index], self.manual[index], None if self.weight is None else self.weight[index]


def central_slices(root, cases, context=data.CONTEXT):
    inputs, targets = [], []
    for case in cases:
        image, label = data.load_case(root, case)
        z = data.central_slice(label)
        inputs.append(data.prepared(image, context)[z:z + 1])
        targets.append(data.label_slices(label[z:z + 1]))
    return Slices(inputs, targets)


def all_slices(root, cases, targets_of, central_only_manual=False, distance_weight=None, context=data.CONTEXT):
    """Every slice of `cases` with the target `targets_of(case, label)` gives it (label None for an
    unlabelled volume); with `central_only_manual` only the central slice counts as an annotator's (the rest
    are pseudo labels); with `distance_weight` w, a pseudo-labelled slice d slices from the central one
    weighs w**d in the loss (DeSCO's decay)."""
    inputs, targets, manual, weight = [], [], [], []
    for case in cases:
        image, label = data.load_case(root, case)
        inputs.append(data.prepared(image, context))
        targets.append(data.label_slices(targets_of(case, label)))
        if label is None:  # an unlabelled volume (second_round.py tune --unlabelled): no annotated slice
            if distance_weight is not None:
                raise ValueError(f"{case}: no annotated slice to weigh pseudo labels by their distance from")
            manual.append(np.full(len(image), not central_only_manual))
            continue
        central = data.central_slice(label)
        flags = np.full(len(label), not central_only_manual)
        flags[central] = True
        manual.append(flags)
        if distance_weight is not None:
            d = np.abs(np.arange(len(label)) - central)
            weight.append(np.where(flags, 1.0, distance_weight ** d))
    return Slices(inputs, targets, manual, weight if distance_weight is not None else None)


def unannotated_inputs(root, training, context=data.CONTEXT):
    """Every slice no annotator labelled: the training volumes' other slices and the unlabelled volumes."""
    inputs = []
    for case in training:
        image, label = data.load_case(root, case)
        x = data.prepared(image, context)
        inputs.append(np.delete(x, data.central_slice(label), axis=0))
    for case in data.unlabelled_cases(root):
        image, _ = data.load_case(root, case)
        inputs.append(data.prepared(image, context))
    return torch.from_numpy(np.concatenate(inputs))


def save_network(net, out):
    """`net`'s weights as <out>/model.pt, written whole or not at all (never half a model.pt)."""
    os.makedirs(out, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(out, "model.pt.partial"))
    os.replace(os.path.join(out, "model.pt.partial"), os.path.join(out, "model.pt"))


def forward(net, x, bf16):
    """`net(x)` in float32; with `bf16` run under bfloat16 autocast on a channels-last `x` (the layout that
    path runs fastest in; `net` is made channels-last by its trainer)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return net(x.contiguous(memory_format=torch.channels_last) if bf16 else x).float()


def fit(net, sampler, iterations, generator, lr=3e-3, batch=16, extra=None, log=None, bf16=False, relabel=None,
        flip=True, textured=False):
    """Supervised training; `flip`: augment with left-right flips (views.py's sagittal slices have no
    left-right symmetry); `textured`: add texture() to the augmentation (views.py --texture); `extra(net, step)` adds a loss term (the mean teacher's consistency);
    `relabel(net, x, y, manual, step)` changes the augmented batch's targets (self_correcting). With
    `bf16` the network runs under bfloat16 autocast in channels-last layout (the loss in float32), which
    CPUs with AMX or AVX512-BF16 run several times faster; the weights stay float32."""
    if bf16:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = schedule(optimizer, iterations, lr)
    started = time.time()
    for step in range(iterations):
        net.train()
        x, y, manual, weight = sampler.batch(batch, generator)
        x, y = augment(x, y, generator, flip=flip, textured=textured)
        if relabel:
            y = relabel(net, x, y, manual, step)
        loss = segmentation_loss(forward(net, x, bf16), y, weight)
        total = loss + (extra(net, step) if extra else 0)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        scheduler.step()
        if step % 50 == 0 or step == iterations - 1:
            line = {"step": step, "loss": float(loss.detach()), "total": float(total.detach()) if torch.is_tensor(total) else total, "seconds": round(time.time() - started, 1)}
            print(json.dumps(line), flush=True)
            if log is not None:
                log.append(line)
    return net


def ema_teacher(net, bf16):
    """A frozen copy of `net`, to follow it by ema_update."""
    teacher = shaped_like(net.state_dict())
    teacher.load_state_dict(net.state_dict())
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(memory_format=torch.channels_last) if bf16 else teacher


def ema_update(teacher, student, step):
    """The teacher's weights become an exponential moving average of the student's (0.99 after the first
    100 steps); called at each step, it applies the student's previous update."""
    with torch.no_grad():
        alpha = min(1 - 1 / (step + 1), 0.99)
        for t, s in zip(teacher.state_dict().values(), student.state_dict().values()):
            if t.dtype.is_floating_point:
                t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
            else:
                t.copy_(s)


def mean_teacher(net, labelled, unannotated, iterations, generator, log, bf16=False):
    """Tarvainen & Valpola 2017: the student fits the central slices and agrees (softmax MSE, weight ramped
    up) with an EMA teacher on differently perturbed unannotated slices."""
    teacher = ema_teacher(net, bf16)
    ramp = max(1, iterations // 4)

    def consistency(student, step):
        index = torch.randint(0, len(unannotated), (8,), generator=generator)
        x = unannotated[index]
        grid = random_geometry(len(x), generator)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        teacher.train()  # batch statistics, as the student
        with torch.no_grad():
            target = torch.softmax(forward(teacher, intensity(x, generator), bf16), 1)
        pred = torch.softmax(forward(student, intensity(x, generator), bf16), 1)
        weight = 1.0 * np.exp(-5 * (1 - min(step, ramp) / ramp) ** 2)
        ema_update(teacher, student, step)  # after each student step (the previous step's update)
        return weight * F.mse_loss(pred, target)

    fit(net, labelled, iterations, generator, extra=consistency, log=log, bf16=bf16)
    return teacher


SURE = 0.9  # self_correcting: the teacher's probability that overrules a pseudo label


def self_correcting(net, iterations, mode, log, bf16=False, sure=SURE):
    """Online correction of noisy pseudo labels against an EMA teacher of the network being trained (the
    teacher of Tarvainen & Valpola; the idea that a network fits what its data agree on before it fits
    their noise is that of early-learning methods for noisy labels): from a third of the steps on, on the
    slices no annotator labelled, a voxel whose taught class the teacher gives less than 1 - `sure` is
    ignored ("ignore"); with "fill", a voxel the fused set ignores (the sources disagree) is also taught
    the teacher's class where the teacher is at least `sure` of it. Manual slices are never changed.
    Returns `relabel` for fit; the share of the pseudo-labelled voxels changed goes into `log`."""
    teacher = ema_teacher(net, bf16)
    start = iterations // 3
    changed = {"taught": 0, "contradicted": 0, "ignored": 0, "filled": 0}

    def relabel(student, x, y, manual, step):
        ema_update(teacher, student, step)
        if step < start:
            return y
        teacher.train()  # batch statistics, as the student
        with torch.no_grad():
            gland = torch.softmax(forward(teacher, x, bf16), 1)[:, 1]
        pseudo = ~manual[:, None, None].expand_as(y)
        taught = pseudo & (y != IGNORE)
        contradicted = taught & (torch.where(y == 1, gland, 1 - gland) < 1 - sure)
        y = y.masked_fill(contradicted, IGNORE)
        changed["taught"] += int(taught.sum())
        changed["contradicted"] += int(contradicted.sum())
        if mode == "fill":
            ignored = pseudo & ~taught
            filled = ignored & ((gland >= sure) | (gland <= 1 - sure))
            y = torch.where(filled, (gland >= sure).long(), y)
            changed["ignored"] += int(ignored.sum())
            changed["filled"] += int(filled.sum())
        if step % 50 == 0 or step == iterations - 1:
            line = {"step": step, "contradicted_share": changed["contradicted"] / max(changed["taught"], 1),
                    "filled_share": changed["filled"] / max(changed["ignored"], 1)}
            print(json.dumps(line), flush=True)
            log.append(line)
        return y
    return relabel


def corrupt(x, generator):
    """Context restoration (Chen et al. 2019): swap pairs of small patches a number of times and add noise."""
    x = x.clone()
    n, _, h, w = x.shape
    for i in range(n):
        for _ in range(12):
            s = 12
            a = torch.randint(0, h - s, (2,), generator=generator)
            b = torch.randint(0, h - s, (2,), generator=generator)
            pa = x[i, :, a[0]:a[0] + s, a[1]:a[1] + s].clone()
            x[i, :, a[0]:a[0] + s, a[1]:a[1] + s] = x[i, :, b[0]:b[0] + s, b[1]:b[1] + s]
            x[i, :, b[0]:b[0] + s, b[1]:b[1] + s] = pa
    return x + torch.randn(x.shape, generator=generator) * 0.05


def pretrain_restoration(unannotated, iterations, generator, log, bf16=False, base=16):
    """The pretext task: restore the centre slice of corrupted 2.5D inputs; the whole U-Net (`base` wide,
    as many input channels as `unannotated` has) learns."""
    channels = unannotated.shape[1]
    net = UNet(channels=channels, classes=1, base=base)
    if bf16:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = schedule(optimizer, iterations, 3e-3)
    started = time.time()
    for step in range(iterations):
        net.train()
        index = torch.randint(0, len(unannotated), (16,), generator=generator)
        x = unannotated[index]
        grid = random_geometry(len(x), generator)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        loss = F.mse_loss(forward(net, corrupt(x, generator), bf16), x[:, channels // 2:channels // 2 + 1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 50 == 0 or step == iterations - 1:
            line = {"pretext_step": step, "loss": float(loss.detach()), "seconds": round(time.time() - started, 1)}
            print(json.dumps(line), flush=True)
            log.append(line)
    return pretext_initialised(net.state_dict())


def pretext_initialised(state):
    """A segmentation U-Net with the weights of a U-Net in `state`, all but its output layer."""
    segmenter = shaped_like(state)
    segmenter.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")}, strict=False)
    return segmenter


def fused_targets(folder, margin=0, taper=0, registration=None, beyond=2, edge=0):
    """The fused pseudo labels of a training case (data.fused_target: gland, background, ignored) with its
    manual central slice; with `margin`, the `margin` slices beyond each end of the sources' extents
    (<folder>/pseudo-raw/extents.json) are ignored instead of taught as background, since an extent that
    stopped early would teach gland as background; with `taper` (pixels of the network's grid), everything
    outside data.tapered_region grown from the annotation is taught as background. With `registration`
    the third source of `pseudolabels.py --register` (<folder>/reg/) joins: "ignore" keeps the fused set's
    gland and ignores its background where registration says gland (data.registration_ignored, `beyond`
    slices past the sources' reach), "agree" teaches gland where registration and either network agree
    (data.registration_agreeing). With `edge` (pixels of the network's grid), a band that wide on both sides
    of the outline where taught gland meets taught background is ignored (data.edge_ignored)."""
    if registration and not os.path.isdir(os.path.join(folder, "reg", "pseudo-raw")):
        sys.exit(f"train.py: --registration needs the registration source in {folder}/reg/; run "
                 f"`pseudolabels.py --register` first (with --labels runs/mirrored: ln -sfn ../reg runs/mirrored/reg)")
    extents = {}
    if margin or registration:
        with open(os.path.join(folder, "pseudo-raw", "extents.json")) as f:
            extents = json.load(f)
    read = lambda sub, case, role: data.read_nifti_zyx(os.path.join(folder, "reg", sub, f"{case}_{role}.nii.gz"))

    def targets(case, label):
        if registration == "agree":
            target = data.registration_agreeing(*(read("pseudo", case, role) for role in ("semi", "self", "reg")))
        else:
            target = data.fused_target(folder, case)
        if registration == "ignore":
            target = data.registration_ignored(target, read("pseudo-raw", case, "reg"),
                                               data.sources_reach(extents[case]), beyond)
        if margin:
            lo, hi = data.sources_reach(extents[case])
            target[max(0, lo - margin):lo] = IGNORE
            target[hi + 1:hi + 1 + margin] = IGNORE
        if label is None:  # an unlabelled volume (second_round.py tune --unlabelled): nothing annotated
            if taper:
                raise ValueError(f"{case}: the taper grows from an annotation, and the volume has none")
            if edge:
                target = data.edge_ignored(target, max(1, round(data.source_pixels(edge, target.shape[2]))))
            return target
        z = data.central_slice(label)
        if taper:
            radius = max(1, round(data.source_pixels(taper, label.shape[2])))
            target[~data.tapered_region(target, z, label[z], radius)] = 0
        if edge:  # after the taper, which reads every non-background voxel as some source's gland
            target = data.edge_ignored(target, max(1, round(data.source_pixels(edge, label.shape[2]))))
        target[z] = label[z]  # the manual annotation where there is one
        return target
    return targets


def initial(args):
    """The network a stage starts from (--init; baseline always from random weights, at --base and --context)."""
    if args.init == "pretext":
        path = os.path.join(args.runs, "selfsup", "pretext.pt")
        if not os.path.exists(path):
            sys.exit(f"train.py {args.stage}: no {path} to start from; run `train.py selfsup` first "
                     f"(it writes it), or start from random weights with --init scratch")
        return pretext_initialised(torch.load(path))
    return UNet(channels=2 * args.context + 1, base=args.base)


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("stage", choices=["baseline", "semi", "selfsup", "final", "round2", "full"])
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--margin", type=int, default=0,
                        help="final/round2: slices beyond the pseudo labels' extents that are ignored, not background")
    parser.add_argument("--taper", type=int, default=0,
                        help="final/round2: teach as background what lies outside the region grown from the "
                             "annotation, TAPER pixels of the network's grid per slice (data.tapered_region); 0: off")
    parser.add_argument("--labels", default=None,
                        help="final/round2: the folder whose fused/ (and pseudo-raw/) hold the pseudo labels. "
                             "Default: --runs for final (the two sources), --runs/round2 for round2; runs/reg "
                             "for three sources (measured, not shipped)")
    parser.add_argument("--registration", choices=["ignore", "agree"], default=None,
                        help="final/round2: the registration source (pseudolabels.py --register, runs/reg/) joins the "
                             "fused set: ignore = its gland is never taught as background (within the sources' reach "
                             "and --beyond slices past it; with --labels, that folder's reg/); agree = gland where it "
                             "and either network say so (runs/reg/ only). Measured, not shipped")
    parser.add_argument("--beyond", type=int, default=None,
                        help="--registration ignore: slices past the sources' reach where it still applies (default 2)")
    parser.add_argument("--edge", type=int, default=0,
                        help="final/round2: ignore a band this many pixels of the network's grid wide on both sides of "
                             "the pseudo labels' outline where taught gland meets taught background (data.edge_ignored; "
                             "not where the sources disagree, already ignored); 0: off. Measured, not shipped")
    parser.add_argument("--mean-teacher", action="store_true",
                        help="final/round2: add stage 2's mean-teacher consistency on every unannotated slice (the "
                             "training volumes' and the 29 unlabelled volumes', which stage 5 otherwise never sees); "
                             "the EMA teacher is saved, as stage 2 does. Measured, not shipped")
    parser.add_argument("--self-correct", choices=["ignore", "fill"], default=None,
                        help="final/round2: from a third of the steps on, ignore the pseudo-labelled voxels an EMA "
                             "teacher of the network contradicts with probability > 0.9 (ignore), and also teach the "
                             "teacher's class where the sources disagree and it is that sure (fill). Measured, not shipped")
    parser.add_argument("--distance-weight", type=data.slice_weight, default=None, metavar="W",
                        help="final/round2: a pseudo-labelled slice d slices from the central one weighs W**d in the "
                             "loss (0 < W <= 1; the slice-distance decay of DeSCO, Cai et al. 2023): the pseudo labels "
                             "are least sure at the gland's ends. Measured, not shipped")
    parser.add_argument("--name", default=None, help="the folder under --runs to write (default: the stage)")
    parser.add_argument("--init", choices=["scratch", "pretext"], default=None,
                        help="final/round2/full: start from random weights, or from stage 3's context-restoration "
                             "pretext weights (runs/selfsup/pretext.pt: the U-Net after the pretext task, before "
                             "fine-tuning; its output layer is not used). Default: pretext for final "
                             "(since prostate-seg 0.4.0: better over three seeds on each of two sets of pseudo "
                             "labels), scratch for round2 and full (not measured from the pretext start)")
    parser.add_argument("--bf16", action="store_true",
                        help="run the network under bfloat16 autocast, channels-last (2.4-2.7x per step faster on CPUs "
                             "with AVX512-BF16 or AMX; other numbers than float32, so compare like with like). Every "
                             "stage takes it; crossval.py uses it for all of them, the shipped stages 1-3 are float32")
    parser.add_argument("--base", type=int, default=16,
                        help="the U-Net's width (filters of its first block, doubling per level) where a stage starts "
                             "from nothing (baseline, selfsup, --init scratch); a stage that starts from a trained "
                             "network keeps that network's width. 16 for every shipped network; 22 measured "
                             "(EXPERIMENTS, \"A wider network\"), not shipped")
    parser.add_argument("--context", type=int, default=data.CONTEXT,
                        help="the 2.5D context where a stage starts from nothing (as --base): neighbours on each side "
                             "of a slice as input channels (1: three channels, every shipped network; 2 measured, "
                             "EXPERIMENTS \"Five slices as context\"); a stage that starts from a trained network keeps "
                             "its context")
    parser.add_argument("--seed", type=int, default=data.SEED,
                        help="the seed of the weights and the batches (the split stays data.SEED's)")
    args = data.parse(parser)
    if args.bf16 and (refused := bf16_refused()):
        parser.error(refused)
    for option, value in (("--labels", args.labels), ("--margin", args.margin), ("--taper", args.taper),
                          ("--registration", args.registration), ("--edge", args.edge),
                          ("--mean-teacher", args.mean_teacher), ("--self-correct", args.self_correct),
                          ("--distance-weight", args.distance_weight)):
        if value and args.stage not in ("final", "round2"):
            parser.error(f"{option} is for final and round2; {args.stage} has no pseudo labels")
    if args.init is not None and args.stage not in ("final", "round2", "full"):
        parser.error(f"--init is for final, round2 and full; {args.stage} has its own start")
    if args.self_correct and args.mean_teacher:
        parser.error("--self-correct and --mean-teacher each bring their own teacher; pass one")
    if args.edge < 0:
        parser.error(f"--edge takes a number of pixels >= 0 (0: off), not {args.edge}")
    if args.beyond is not None and (args.registration != "ignore" or args.beyond < 0):
        parser.error("--beyond takes a number of slices >= 0, with --registration ignore")
    if args.registration == "agree" and args.labels:
        parser.error("--registration agree teaches from runs/reg/'s three sources (each within its own extent) "
                     "and reads no other labels; leave out --labels")
    if args.beyond is None:
        args.beyond = 2
    if args.init is None:
        args.init = "pretext" if args.stage == "final" else "scratch"
    from_nothing = args.stage in ("baseline", "selfsup") or (args.stage in ("final", "round2", "full")
                                                              and args.init == "scratch")
    for option, value, default, what in (("--base", args.base, 16, "width"),
                                         ("--context", args.context, data.CONTEXT, "context")):
        if value != default and not from_nothing:
            parser.error(f"{option} sets the {what} of a network started from nothing; {args.stage} starts from a "
                         f"trained network ({'stage 1' if args.stage == 'semi' else 'stage 3 pretext'}) and keeps its {what}")
    if args.context < 1:
        parser.error(f"--context takes a number of neighbours on each side >= 1, not {args.context}")
    torch.set_num_threads(args.threads)
    root = data.data_dir(args.data)
    training, validation = data.split(root, args.fold)
    seed_everything(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    log = []
    started = time.time()
    if args.stage == "baseline":
        net = fit(initial(args), central_slices(root, training, args.context), args.iterations or 600, generator,
                  log=log, bf16=args.bf16)
    elif args.stage == "semi":
        net = load_trained(args.runs, "baseline")
        context = context_of(net)
        net = mean_teacher(net, central_slices(root, training, context), unannotated_inputs(root, training, context),
                           args.iterations or 600, generator, log, bf16=args.bf16)
    elif args.stage == "selfsup":
        unannotated = unannotated_inputs(root, training, args.context)
        net = pretrain_restoration(unannotated, args.iterations or 500, generator, log, bf16=args.bf16,
                                   base=args.base)
        os.makedirs(os.path.join(args.runs, "selfsup"), exist_ok=True)
        torch.save(net.state_dict(), os.path.join(args.runs, "selfsup", "pretext.pt"))
        net = fit(net, central_slices(root, training, args.context), args.iterations or 600, generator, log=log,
                  bf16=args.bf16)
    elif args.stage in ("final", "round2"):
        folder = args.labels or (args.runs if args.stage == "final" else os.path.join(args.runs, "round2"))
        if not os.path.isdir(os.path.join(folder, "fused", "agreement")):
            how = ("pseudolabels.py and workflows/prostate-pseudolabels.yaml into runs/fused"
                   if args.stage == "final" else
                   "pseudolabels.py --semi STAGE --round round2 and workflows/prostate-pseudolabels.yaml into "
                   "runs/round2/fused")
            sys.exit(f"train.py {args.stage}: no fused pseudo labels in {folder}/fused/; run {how} first "
                     f"(README, Commands), or pass --labels")
        net = initial(args)
        context = context_of(net)
        labelled = all_slices(root, training, fused_targets(folder, args.margin, args.taper, args.registration,
                                                            args.beyond, args.edge), central_only_manual=True,
                              distance_weight=args.distance_weight, context=context)
        if args.self_correct:
            net = fit(net, labelled, args.iterations or 1000, generator, log=log, bf16=args.bf16,
                      relabel=self_correcting(net, args.iterations or 1000, args.self_correct, log, bf16=args.bf16))
        elif args.mean_teacher:
            net = mean_teacher(net, labelled, unannotated_inputs(root, training, context), args.iterations or 1000,
                               generator, log, bf16=args.bf16)
        else:
            net = fit(net, labelled, args.iterations or 1000, generator, log=log, bf16=args.bf16)
    else:
        net = initial(args)
        net = fit(net, all_slices(root, training, lambda case, label: label, context=context_of(net)),
                  args.iterations or 1000, generator, log=log, bf16=args.bf16)
    out = os.path.join(args.runs, args.name or args.stage)
    save_network(net, out)
    with open(os.path.join(out, "log.json"), "w") as f:
        labels = folder if args.stage in ("final", "round2") else None
        json.dump({"stage": args.stage, "margin": args.margin, "taper": args.taper, "registration": args.registration, "beyond": args.beyond, "edge": args.edge, "mean_teacher": args.mean_teacher, "self_correct": args.self_correct, "distance_weight": args.distance_weight, "labels": labels, "init": args.init, "bf16": args.bf16, "base": width_of(net.state_dict()), "context": context_of(net), "seed": args.seed, "label_resize": data.LABEL_RESIZE, "fold": args.fold, "training_cases": training, "validation_cases": validation,
                   "seconds": round(time.time() - started, 1), "machine": machine_description(), "log": log}, f, indent=1)
    print(f"{args.stage}: {out}/model.pt in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
