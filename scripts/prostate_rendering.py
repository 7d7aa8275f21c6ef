"""voxflow's prostate networks rendered in numpy + onnxruntime as their manifests describe the ONNX step's
tiling (plugins/prostate-seg*/plugin.yaml): percentile normalization, the centred 60 % crop, linear resizes
with pixel centres aligned, neighbours as channels, batches of 8, logits back on the crop and edge-padded,
softmax. One rendering, independent of voxflow's Rust code, shared by scripts/onnx_reference.py (the values
the tests compare with) and bench/prostate_seg_vs_python.py (the pipeline voxflow is timed against).
Volumes are NumPy arrays (z, y, x); sessions are onnxruntime.InferenceSession objects taking `image`.
"""
import numpy as np

GRID = 128  # the view networks' grid (tiling.grid) and the axial network's slice size (tiling.size)
BATCH = 8  # tiling.batch


def taps(src, dst):
    """Linear resize from `src` to `dst` samples, pixel centres aligned (PyTorch's align_corners=False), edges
    clamped: the two source indices and the second one's weight per output sample."""
    s = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(s).astype(int)
    return lo, np.minimum(lo + 1, src - 1), (s - lo).astype(np.float32)


def resize_axis(values, axis, n):
    """Linear resize of `values` along `axis` to `n` samples."""
    lo, hi, w = taps(values.shape[axis], n)
    shape = [1] * values.ndim
    shape[axis] = n
    w = w.reshape(shape)
    return np.take(values, lo, axis=axis) * (1 - w) + np.take(values, hi, axis=axis) * w


def crop_box(n, fraction=0.6):
    """(start, length) of the centred crop the manifest asks for (tiling.crop), as voxflow computes it."""
    length = max(1, int(np.floor(n * fraction + 0.5)))
    return (n - length) // 2, length


def normalized(volume):
    """Percentile normalization (0.5-99.5) to 0..1, the manifests' `normalize`."""
    lo, hi = np.percentile(volume, [0.5, 99.5])
    return np.clip((volume - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def run_batches(session, x):
    return np.concatenate([session.run(None, {"image": x[s:s + BATCH]})[0] for s in range(0, len(x), BATCH)])


def probability_back(logits, shape, top, left):
    """Logits (2, z, ch, cw) on the crop -> prostate probability (z, y, x): edge-padded, softmax."""
    z, height, width = shape
    logits = np.pad(logits, ((0, 0), (0, 0), (top, height - top - logits.shape[2]), (left, width - left - logits.shape[3])),
                    mode="edge")
    return 1 / (1 + np.exp(np.clip(logits[0] - logits[1], -80, 80)))


def axial_probability(session, volume):
    """The axial network (onnx/prostate-seg) on a normalized volume: each slice's crop resized to 128x128 with
    its two neighbours as channels, run as is and mirrored left-right, the two logit maps averaged."""
    z, height, width = volume.shape
    (top, ch), (left, cw) = crop_box(height), crop_box(width)
    small = resize_axis(resize_axis(volume[:, top:top + ch, left:left + cw], 1, GRID), 2, GRID)
    x = small[np.clip(np.arange(z)[:, None] + np.arange(-1, 2)[None, :], 0, z - 1)].astype(np.float32)
    logits = (run_batches(session, x) + run_batches(session, np.ascontiguousarray(x[..., ::-1]))[..., ::-1]) / 2
    logits = resize_axis(resize_axis(logits, 2, ch), 3, cw)  # (z, 2, ch, cw)
    return probability_back(np.transpose(logits, (1, 0, 2, 3)), volume.shape, top, left)


def view_probability(session, volume, view):
    """A view network (onnx/prostate-seg-sagittal or -coronal) on a normalized volume: the crop with every
    slice resized to GRID^3, each sagittal or coronal plane with the planes two apart as channels."""
    z, height, width = volume.shape
    (top, ch), (left, cw) = crop_box(height), crop_box(width)
    grid = volume[:, top:top + ch, left:left + cw]
    for axis in range(3):
        grid = resize_axis(grid, axis, GRID)
    planes = np.transpose(grid, (2, 0, 1) if view == "sagittal" else (1, 0, 2))  # (plane, z, in-plane)
    x = planes[np.clip(np.arange(GRID)[:, None] + 2 * np.arange(-1, 2)[None, :], 0, GRID - 1)].astype(np.float32)
    logits = run_batches(session, np.ascontiguousarray(x))  # (plane, 2, z, in-plane)
    logits = np.transpose(logits, (1, 2, 3, 0) if view == "sagittal" else (1, 2, 0, 3))  # (2, z, y, x)
    logits = resize_axis(resize_axis(resize_axis(logits, 1, z), 2, ch), 3, cw)
    return probability_back(logits, volume.shape, top, left)
