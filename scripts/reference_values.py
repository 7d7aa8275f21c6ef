#!/usr/bin/env python3
"""Independent reference values for voxflow's imaging tests.

Reads the shared test data with pydicom (+ pylibjpeg plugins) and nibabel -- readers that share no code with
voxflow -- and writes, for each case, the shape, spacing, voxel-to-patient affine, value statistics and a
few voxel values. The Rust tests (engine/imaging/tests/reference.rs) load the same files and compare.

usage: reference_values.py DATA_DIR OUT.json
Axis convention written here is voxflow's: index (i, j, k) = (column, row, slice); affines are 4x4, LPS
for DICOM and RAS (nibabel's) for NIfTI.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pydicom
import nibabel as nib

DATA = Path(sys.argv[1])
OUT = Path(sys.argv[2])

# (case name, relative path, kind, lossy)
DICOM_SERIES = [
    ("prostatex_t2", "prostate/prostatex/ProstateX-0000_t2_tse_tra", False),
    ("prostatex_adc", "prostate/prostatex/ProstateX-0000_adc", False),
    ("dicomdir_ct2", "dicom/dicomdir/77654033/CT2", False),
    ("seg_source_ct", "dicom/seg_liver_ct3/ct-3slice", False),
]
DICOM_FILES = [
    ("emri_small", "dicom/multiframe_emr/emri_small.dcm", False),
    ("emri_small_rle", "dicom/multiframe_emr/emri_small_RLE.dcm", False),
    ("emri_small_j2k_lossless", "dicom/multiframe_emr/emri_small_jpeg_2k_lossless.dcm", False),
    ("emri_small_jpegls_lossless", "dicom/multiframe_emr/emri_small_jpeg_ls_lossless.dcm", False),
    ("mr_small", "dicom/ts_matrix_mr/MR_small.dcm", False),
    ("mr_small_implicit", "dicom/ts_matrix_mr/MR_small_implicit.dcm", False),
    ("mr_small_bigendian", "dicom/ts_matrix_mr/MR_small_bigendian.dcm", False),
    ("mr_small_rle", "dicom/ts_matrix_mr/MR_small_RLE.dcm", False),
    ("mr_small_jpegls", "dicom/ts_matrix_mr/MR_small_jpeg_ls_lossless.dcm", False),
    ("mr_small_j2k", "dicom/ts_matrix_mr/MR_small_jp2klossless.dcm", False),
    ("ct_small", "dicom/misc/CT_small.dcm", False),
    ("deflate", "dicom/misc/image_dfl.dcm", False),
    ("jpeg_lossless_p14", "dicom/misc/JPGLosslessP14SV1_1s_1f_8b.dcm", False),
    ("jpeg_extended_12bit", "dicom/misc/JPGExtended.dcm", True),
    ("jpeg2000_lossy", "dicom/misc/JPEG2000.dcm", True),
    ("mr2_uncompressed", "dicom/misc/MR2_UNCR.dcm", False),
    ("mr2_j2k_reversible", "dicom/misc/MR2_J2KR.dcm", False),
    ("mr2_j2k_irreversible", "dicom/misc/MR2_J2KI.dcm", True),
    ("rtdose_32bit_grid", "dicom/misc/rtdose.dcm", False),
]
NIFTI = [
    ("anatomical", "nifti/nibabel/anatomical.nii"),
    ("functional_first", "nifti/nibabel/functional.nii"),
    ("resampled_anat_moved", "nifti/nibabel/resampled_anat_moved.nii"),
    ("standard", "nifti/nibabel/standard.nii.gz"),
]

PROBES = [(0, 0, 0), (1, 2, 0), (7, 3, 0)]


def frames_of(ds):
    """[(position, orientation, slope, intercept)] per frame, from plain or functional-group attributes."""
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    inter = float(getattr(ds, "RescaleIntercept", 0) or 0)
    pos = getattr(ds, "ImagePositionPatient", None)
    ori = getattr(ds, "ImageOrientationPatient", None)
    per = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    shared = getattr(ds, "SharedFunctionalGroupsSequence", [None])[0]
    out = []
    for f in range(n):
        fp, fo, fs, fi = pos, ori, slope, inter
        if per is not None and len(per) == n:
            groups = [g for g in (per[f], shared) if g is not None]
            for g in groups:
                if "PlanePositionSequence" in g:
                    fp = g.PlanePositionSequence[0].ImagePositionPatient
                    break
            for g in groups:
                if "PlaneOrientationSequence" in g:
                    fo = g.PlaneOrientationSequence[0].ImageOrientationPatient
                    break
            for g in groups:
                if "PixelValueTransformationSequence" in g:
                    t = g.PixelValueTransformationSequence[0]
                    fs, fi = float(t.RescaleSlope), float(t.RescaleIntercept)
                    break
        out.append((fp, fo, fs, fi))
    grid = getattr(ds, "GridFrameOffsetVector", None)
    if grid is not None and len(grid) == n and n > 1 and pos is not None and ori is not None:
        # RT Dose: frame f lies (offset[f] - offset[0]) along the normal from ImagePositionPatient.
        normal = np.cross(np.array(ori[:3], float), np.array(ori[3:], float))
        scale = float(getattr(ds, "DoseGridScaling", 1) or 1)
        out = [(list(np.array(pos, float) + (float(grid[f]) - float(grid[0])) * normal), ori, slope * scale, inter)
               for f in range(n)]
    return out


def pixel_spacing(ds):
    ps = getattr(ds, "PixelSpacing", None)
    if ps is None and "SharedFunctionalGroupsSequence" in ds:
        g = ds.SharedFunctionalGroupsSequence[0]
        if "PixelMeasuresSequence" in g:
            ps = g.PixelMeasuresSequence[0].PixelSpacing
    return [float(ps[0]), float(ps[1])] if ps is not None else [1.0, 1.0]


def dicom_case(paths, lossy):
    planes = []  # (distance, position, orientation, slope, intercept, pixels)
    for p in paths:
        ds = pydicom.dcmread(p)
        if "PixelData" not in ds:
            continue
        arr = ds.pixel_array.astype(np.float64)
        n = int(getattr(ds, "NumberOfFrames", 1) or 1)
        if n == 1:
            arr = arr[None]
        for f, (pos, ori, slope, inter) in enumerate(frames_of(ds)):
            planes.append((pos, ori, slope, inter, arr[f], ds))
    ori = np.array(planes[0][1], dtype=float) if planes[0][1] is not None else np.array([1, 0, 0, 0, 1, 0.0])
    row, col = ori[:3], ori[3:]
    normal = np.cross(row, col)
    first = planes[0][5]
    thickness = float(getattr(first, "SliceThickness", 0) or 0) or None
    between = float(getattr(first, "SpacingBetweenSlices", 0) or 0) or None
    error = None
    if planes[0][0] is not None and len(planes) > 1:
        planes.sort(key=lambda t: float(np.dot(np.array(t[0], dtype=float), normal)))
        dists = [float(np.dot(np.array(t[0], dtype=float), normal)) for t in planes]
        steps = np.diff(dists)
        dz = float(np.median(steps))
        if steps.max() - steps.min() > max(0.02 * dz, 0.01):
            error = "missing"  # not one regular grid: a reader must refuse it
        origin = np.array(planes[0][0], dtype=float)
    elif len(planes) == 1:
        # A single slice: its thickness is its extent.
        dz = thickness or between or 1.0
        origin = np.array(planes[0][0], dtype=float) if planes[0][0] is not None else np.zeros(3)
    else:
        # Frames without positions: stacked in order, spaced as the header says.
        dz = between or thickness or 1.0
        origin = np.zeros(3)
    ps = pixel_spacing(planes[0][5])
    spacing = [ps[1], ps[0], dz]
    vol = np.stack([t[4] * t[2] + t[3] for t in planes], axis=-1)  # (rows, cols, slices)
    vol = np.transpose(vol, (1, 0, 2))  # (i=col, j=row, k)
    aff = np.eye(4)
    aff[:3, 0] = row * spacing[0]
    aff[:3, 1] = col * spacing[1]
    aff[:3, 2] = normal * spacing[2]
    aff[:3, 3] = origin
    return vol, aff, spacing, error


def summary(vol, aff, spacing, lossy, kind):
    def value(x):
        return None if np.isnan(x) else float(x)  # JSON has no NaN: null stands for it

    probes = {f"{i},{j},{k}": value(vol[i, j, k]) for (i, j, k) in PROBES
              if i < vol.shape[0] and j < vol.shape[1] and k < vol.shape[2]}
    mid = tuple(s // 2 for s in vol.shape)
    probes[",".join(map(str, mid))] = value(vol[mid])
    return {
        "kind": kind,
        "shape": list(vol.shape),
        "spacing": [float(s) for s in spacing],
        "affine": aff.tolist(),
        "nan_count": int(np.isnan(vol).sum()),
        "sum": float(np.nansum(vol)),
        "mean": float(np.nanmean(vol)),
        "min": float(np.nanmin(vol)),
        "max": float(np.nanmax(vol)),
        "probes": probes,
        "lossy": lossy,
    }


def seg_metrics_reference(derived):
    """A real prostate mask (PROMISE12 train07) against a changed copy (shifted 2 voxels along x, the top
    gland slice removed) at 0.625 x 0.625 x 3.6 mm, written as NIfTI, with Dice and HD95 computed as MedPy
    does (surfaces by one 6-connected erosion, scipy's exact EDT with the spacing, both directions pooled)."""
    import gzip
    from scipy import ndimage
    label_path = DATA / "prostate/promise12/labelled/label_train07.npy.gz"
    if not label_path.exists():
        return None
    reference = np.load(gzip.open(label_path)).astype(bool)  # z, y, x
    prediction = np.roll(reference, 2, axis=2)
    top = np.where(reference.reshape(reference.shape[0], -1).any(axis=1))[0].max()
    prediction[top] = False
    spacing_xyz = (0.625, 0.625, 3.6)
    paths = {}
    for name, mask in (("prediction", prediction), ("reference", reference)):
        path = derived / f"seg_metrics_{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.transpose(mask, (2, 1, 0)).astype(np.uint8), np.diag(spacing_xyz + (1.0,))), str(path))
        paths[name] = str(path.resolve())
    spacing_zyx = spacing_xyz[::-1]
    footprint = ndimage.generate_binary_structure(3, 1)

    def surface_distances(a, b):
        a_border = a ^ ndimage.binary_erosion(a, structure=footprint, iterations=1)
        b_border = b ^ ndimage.binary_erosion(b, structure=footprint, iterations=1)
        return ndimage.distance_transform_edt(~b_border, sampling=spacing_zyx)[a_border]

    distances = np.hstack((surface_distances(prediction, reference), surface_distances(reference, prediction)))
    both = np.logical_and(prediction, reference).sum()
    return dict(paths, dice=float(2 * both / (prediction.sum() + reference.sum())),
                hd95_mm=float(np.percentile(distances, 95)), assd_mm=float(distances.mean()),
                hausdorff_mm=float(distances.max()))


def main():
    cases = {}
    for name, rel, lossy in DICOM_SERIES:
        d = DATA / rel
        if not d.exists():
            continue
        files = sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))
        images = []
        for p in files:
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
            except Exception:
                continue
            if getattr(ds, "Modality", "") in ("SEG", "SR", "RTSTRUCT") or "Rows" not in ds:
                continue
            images.append(p)
        vol, aff, spacing, error = dicom_case(images, lossy)
        cases[name] = dict(summary(vol, aff, spacing, lossy, "dicom"), path=rel)
        if error:
            cases[name]["error"] = error
    for name, rel, lossy in DICOM_FILES:
        p = DATA / rel
        if not p.exists():
            continue
        vol, aff, spacing, _ = dicom_case([p], lossy)
        cases[name] = dict(summary(vol, aff, spacing, lossy, "dicom"), path=rel)
    for name, rel in NIFTI:
        p = DATA / rel
        if not p.exists():
            continue
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj).astype(np.float64)
        if data.ndim == 4:
            if data.shape[3] != 1:
                cases[name] = {"kind": "nifti", "path": rel, "error": "volumes are 3D"}
                continue
            data = data[..., 0]
        while data.ndim < 3:
            data = data[..., None]
        zooms = [float(z) for z in img.header.get_zooms()[:3]]
        cases[name] = dict(summary(data, img.affine, zooms, False, "nifti"), path=rel,
                           dtype=str(img.get_data_dtype()))
    # NIfTI-2 and .hdr/.img pairs: nibabel's own NIfTI-2 example (from the installed wheel) and the real
    # anatomical image written by nibabel as a NIfTI-2 file and as NIfTI-1/NIfTI-2 pairs (derived files
    # are written next to OUT, never into the repository).
    derived = OUT.parent / "reference-derived"
    derived.mkdir(parents=True, exist_ok=True)
    anatomical = DATA / "nifti/nibabel/anatomical.nii"
    extra = [("nifti2_example_4d", Path(nib.__file__).parent / "tests/data/example_nifti2.nii.gz")]
    if anatomical.exists():
        src = nib.load(str(anatomical))
        arr = np.asanyarray(src.dataobj)
        for name, cls, fname in [("nifti2_single", nib.Nifti2Image, "anatomical_n2.nii"),
                                 ("nifti2_single_gz", nib.Nifti2Image, "anatomical_n2.nii.gz"),
                                 ("nifti1_pair", nib.Nifti1Pair, "anatomical_pair.hdr"),
                                 ("nifti2_pair", nib.Nifti2Pair, "anatomical_pair2.img")]:
            img = cls(arr, src.affine)
            img.header.set_qform(src.affine, 1)
            img.header.set_sform(src.affine, 1)
            nib.save(img, str(derived / fname))
            extra.append((name, derived / fname))
    for name, p in extra:
        if not p.exists():
            continue
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj).astype(np.float64)
        if data.ndim == 4 and data.shape[3] != 1:
            cases[name] = {"kind": "nifti", "abs_path": str(p.resolve()), "error": "volumes are 3D"}
            continue
        zooms = [float(z) for z in img.header.get_zooms()[:3]]
        cases[name] = dict(summary(data, img.affine, zooms, False, "nifti"), abs_path=str(p.resolve()),
                           dtype=str(img.get_data_dtype()))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    metrics = seg_metrics_reference(derived)
    OUT.write_text(json.dumps({"generator": f"pydicom {pydicom.__version__}, nibabel {nib.__version__}",
                               "cases": cases, "seg_metrics": metrics}, indent=1, allow_nan=False))
    print(f"wrote {len(cases)} reference cases to {OUT}")


main()
