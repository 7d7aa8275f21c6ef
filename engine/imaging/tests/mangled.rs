//! Damaged NIfTI files (truncated at many offsets, bytes overwritten) must give errors, never a panic.
//! A deterministic sweep over real files. (A DICOM sweep is left out for now: dicom-parser allocates an
//! element's declared length before reading it, so damaged length fields cost gigabytes and minutes in a
//! debug build; the panics it found in the RLE decoder are caught in `dicom::series`. See the issue notes.)

use std::path::Path;

use voxflow_imaging::nifti::decode_nifti;
use voxflow_testkit::testdata;

/// Truncations at `count` offsets, and 4 bytes overwritten with each of `patterns` at the same offsets.
fn variants(original: &[u8], count: usize, patterns: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let step = (original.len() / count).max(1);
    for cut in (0..original.len()).step_by(step) {
        out.push(original[..cut].to_vec());
        for &pattern in patterns {
            let mut m = original.to_vec();
            for b in m.iter_mut().skip(cut).take(4) {
                *b = pattern;
            }
            out.push(m);
        }
    }
    out
}

#[test]
fn damaged_nifti_files_never_panic() {
    let mut checked = 0;
    for rel in [
        "nifti/nibabel/anatomical.nii",
        "nifti/nibabel/standard.nii.gz",
        "nifti/nibabel/resampled_anat_moved.nii",
    ] {
        let Some(path) = testdata(rel) else { continue };
        let original = std::fs::read(&path).unwrap();
        for bytes in variants(&original, 200, &[0x00, 0xFF, 0x7F]) {
            let _ = decode_nifti(&bytes, Path::new(rel));
            checked += 1;
        }
    }
    eprintln!("{checked} damaged NIfTI variants read without a panic");
}
