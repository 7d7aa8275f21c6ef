"""A third pseudo-label source that needs no trained network: the annotated central slice carried to the
other slices of its volume by deformable registration, slice to neighbouring slice (label propagation).

Walking out from the central slice in both directions, each slice is registered to the one before it
(SimpleITK's symmetric-forces demons: a dense displacement field on the network's 128x128 grid,
smoothed by a Gaussian), and the previous slice's propagated mask is warped onto it. Registration
carries the gland well within its extent but has no notion of where the gland ends (it warps the last
gland slice onto the bladder or muscle beyond it), so pseudolabels.py bounds this source by the other two
sources' extents.

The parameters were fixed before looking at any result: 50 demons iterations, a field smoothed with
sigma 2 pixels of the network grid (about 0.8 % of the field of view).
"""
import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

import data

ITERATIONS = 50
SMOOTHING = 2.0


def carried(fixed, moving, moving_mask):
    """`moving_mask` (on the grid of the `moving` slice) warped onto the `fixed` slice, by the demons
    field that aligns `moving` to `fixed`; a float mask in [0, 1]."""
    fixed_image = sitk.GetImageFromArray(fixed.astype(np.float32))
    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(ITERATIONS)
    demons.SetStandardDeviations(SMOOTHING)
    field = demons.Execute(fixed_image, sitk.GetImageFromArray(moving.astype(np.float32)))
    transform = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    warped = sitk.Resample(sitk.GetImageFromArray(moving_mask.astype(np.float32)), fixed_image, transform,
                           sitk.sitkLinear, 0.0)
    return sitk.GetArrayFromImage(warped)


def propagated(image, annotation, centre):
    """The annotation of slice `centre` carried to every slice of `image` (z, y, x, any grid), on the
    network grid: (z, SIZE, SIZE) uint8. Registration runs on the normalized, cropped, resized slices the
    network sees."""
    slices = data.resize_slices(data.cropped(data.normalize(image)))
    masks = np.zeros(slices.shape, np.uint8)
    masks[centre] = data.label_slices(annotation[None])[0]
    for step in (-1, +1):
        z = centre
        while 0 <= z + step < len(slices):
            masks[z + step] = carried(slices[z + step], slices[z], masks[z]) >= 0.5
            z += step
    return masks


def on_source_grid(masks, shape):
    """Network-grid masks (z, SIZE, SIZE) back on the source plane (z, y, x): resized bilinear to the
    crop, thresholded at 0.5, background outside the crop."""
    (y0, h), (x0, w) = data.crop_box(shape[0]), data.crop_box(shape[1])
    resized = F.interpolate(torch.from_numpy(masks.astype(np.float32))[:, None], size=(h, w), mode="bilinear",
                            align_corners=False)[:, 0].numpy()
    out = np.zeros((len(masks),) + tuple(shape), np.uint8)
    out[:, y0:y0 + h, x0:x0 + w] = resized >= 0.5
    return out


def carried_annotation(image, label):
    """The annotation of `label`'s central slice (the only slice the sparse setting may read) carried to
    every slice of `image`, on the source grid (z, y, x) uint8."""
    centre = data.central_slice(label)
    return on_source_grid(propagated(image, label[centre], centre), image.shape[1:])


def single_threaded():
    """SimpleITK's filters on one thread, beside a training on the others."""
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
