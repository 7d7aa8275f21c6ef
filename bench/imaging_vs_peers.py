#!/usr/bin/env python3
"""voxflow's imaging readers against their peers, on the same files, in one run.

In-process load into a float32 volume (median of REPEAT runs after a warm-up):
  voxflow (engine/imaging, release build) vs pydicom 3 + pylibjpeg (DICOM) and nibabel (NIfTI).
Whole job, as a user runs it (median of 5 wall-clock runs):
  `voxflow convert SERIES out.nii.gz` vs `dcm2niix -z y` on the ProstateX T2 series.
The NIfTI cases include the T2 series written by dcm2niix as .nii and .nii.gz (5.6 MB of voxels).

usage: bench/imaging_vs_peers.py [DATA_DIR]     (DATA_DIR default ../shared/data; needs scripts/requirements-reference.txt
                                                 and dcm2niix; builds the voxflow example itself)
Prints a table of medians and ratios (peer time / voxflow time: above 1 means voxflow is faster).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import nibabel as nib

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "../shared/data").resolve()
REPEAT = int(os.environ.get("REPEAT", "15"))

CASES = [
    ("prostatex_t2_series", DATA / "prostate/prostatex/ProstateX-0000_t2_tse_tra"),
    ("emri_jpeg2000_lossless", DATA / "dicom/multiframe_emr/emri_small_jpeg_2k_lossless.dcm"),
    ("emri_jpegls_lossless", DATA / "dicom/multiframe_emr/emri_small_jpeg_ls_lossless.dcm"),
    ("mr2_jpeg2000_1024", DATA / "dicom/misc/MR2_J2KR.dcm"),
    ("nibabel_anatomical_nii", DATA / "nifti/nibabel/anatomical.nii"),
]


def pydicom_load(path):
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    planes = []
    for p in files:
        ds = pydicom.dcmread(p)
        arr = ds.pixel_array.astype(np.float32)
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        inter = float(getattr(ds, "RescaleIntercept", 0) or 0)
        if int(getattr(ds, "NumberOfFrames", 1) or 1) == 1:
            arr = arr[None]
        pos = getattr(ds, "ImagePositionPatient", None)
        ori = getattr(ds, "ImageOrientationPatient", None)
        key = float(np.dot(np.array(pos, float), np.cross(np.array(ori[:3], float), np.array(ori[3:], float)))) if pos and ori else 0.0
        for f in range(arr.shape[0]):
            planes.append((key, f, arr[f] * slope + inter))
    planes.sort(key=lambda t: (t[0], t[1]))
    return np.stack([t[2] for t in planes], axis=-1)


def nibabel_load(path):
    return nib.load(str(path)).get_fdata(dtype=np.float32)


def median_ms(fn, *args, repeat=REPEAT):
    fn(*args)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def wall_ms(cmd, repeat=5):
    subprocess.run(cmd, check=True, capture_output=True)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def derived_nifti_cases(tmp):
    """Larger NIfTI inputs: the ProstateX T2 series (384x384x19 int16) and ADC map written by dcm2niix, as
    .nii and .nii.gz, so the NIfTI comparison is not dominated by per-call overhead on a 68 KB file."""
    out = []
    for name, series in [("t2", "prostate/prostatex/ProstateX-0000_t2_tse_tra")]:
        src = DATA / series
        if not src.exists():
            continue
        for gz, suffix in [("n", ".nii"), ("y", ".nii.gz")]:
            stem = f"{name}_{gz}"  # dcm2niix renames a second output of the same stem
            subprocess.run(["dcm2niix", "-z", gz, "-b", "n", "-f", stem, "-o", tmp, str(src)], check=True,
                           capture_output=True)
            out.append((f"prostatex_{name}{suffix.replace('.', '_')}", Path(tmp) / f"{stem}{suffix}"))
    return out


def main():
    tmp_nifti = tempfile.TemporaryDirectory()
    cases = [(n, p) for n, p in CASES if p.exists()] + derived_nifti_cases(tmp_nifti.name)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "voxflow-imaging", "--example", "load_timings"],
                   check=True, cwd=ROOT)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "voxflow-cli"], check=True, cwd=ROOT)
    example = ROOT / "target/release/examples/load_timings"
    out = subprocess.run([str(example)] + [f"{n}={p}" for n, p in cases], check=True, capture_output=True, text=True,
                         env={**os.environ, "REPEAT": str(REPEAT)}, cwd=ROOT)
    ours = json.loads(out.stdout)
    rows = []
    for name, path in cases:
        peer_name, peer = ("nibabel", nibabel_load) if path.suffix in (".nii", ".gz") else ("pydicom", pydicom_load)
        peer_ms = median_ms(peer, path)
        rows.append((name, ours[name]["median_ms"], peer_name, peer_ms))
    t2 = DATA / "prostate/prostatex/ProstateX-0000_t2_tse_tra"
    with tempfile.TemporaryDirectory() as tmp:
        voxflow = [str(ROOT / "target/release/voxflow"), "convert", str(t2), f"{tmp}/v.nii.gz"]
        dcm2niix = ["dcm2niix", "-z", "y", "-b", "n", "-f", "d", "-o", tmp, str(t2)]
        rows.append(("t2_series_to_nii_gz (whole command)", wall_ms(voxflow), "dcm2niix", wall_ms(dcm2niix)))
    print(f"{'case':40} {'voxflow ms':>11} {'peer':>9} {'peer ms':>9} {'ratio':>7}")
    for name, ours_ms, peer_name, peer_ms in rows:
        print(f"{name:40} {ours_ms:11.2f} {peer_name:>9} {peer_ms:9.2f} {peer_ms / ours_ms:7.2f}x")


main()
