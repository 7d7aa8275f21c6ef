//! Damaged NIfTI and DICOM files (truncated at many offsets, bytes overwritten) must give errors, never a
//! panic, and never an allocation the file does not justify. A deterministic sweep over real files.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, noting the largest single request: a reader that trusts a damaged length asks
/// for gigabytes at once, which this makes visible (a test, not a timing).
struct LargestRequest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for LargestRequest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestRequest = LargestRequest;

/// No single allocation while reading a damaged file of at most a few hundred KB may exceed this.
const ALLOCATION_CEILING: usize = 256 << 20;

use voxflow_imaging::dicom::{load_series, scan, SeriesRule};
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
fn damaged_nifti_files_never_panic_or_allocate_gigabytes() {
    let mut checked = 0;
    for rel in [
        "nifti/nibabel/anatomical.nii",
        "nifti/nibabel/standard.nii.gz",
        "nifti/nibabel/resampled_anat_moved.nii",
    ] {
        let Some(path) = testdata(rel) else { continue };
        let original = std::fs::read(&path).unwrap();
        for bytes in variants(&original, 200, &[0x00, 0xFF, 0x7F]) {
            LARGEST.store(0, Ordering::Relaxed);
            let _ = decode_nifti(&bytes, Path::new(rel));
            let largest = LARGEST.load(Ordering::Relaxed);
            assert!(
                largest < ALLOCATION_CEILING,
                "{rel}, a damaged variant of {} bytes: one allocation of {largest} bytes",
                bytes.len()
            );
            checked += 1;
        }
    }
    eprintln!("{checked} damaged NIfTI variants read without a panic");
}

/// Scans and loads one DICOM file; the error text, or `None` when it loaded.
fn load_dicom(path: &Path) -> Option<String> {
    let found = match scan(path) {
        Ok(f) => f,
        Err(e) => return Some(e.to_string()),
    };
    match found
        .select(&SeriesRule::default(), path)
        .and_then(load_series)
    {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// Header bytes are overwritten at every 4th offset (lengths, tags, VRs) and the rest at wider steps; a
/// damaged length of 0x7F7F7F7F or 0xFFFFFFFF used to make dicom-parser allocate gigabytes before failing.
#[test]
fn damaged_dicom_files_never_panic_or_allocate_gigabytes() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("damaged.dcm");
    let (mut checked, mut refused) = (0, 0);
    for rel in [
        "dicom/ts_matrix_mr/MR_small.dcm",
        "dicom/ts_matrix_mr/MR_small_implicit.dcm",
        "dicom/ts_matrix_mr/MR_small_bigendian.dcm",
        "dicom/ts_matrix_mr/MR_small_RLE.dcm",
        "dicom/ts_matrix_mr/MR_small_jpeg_ls_lossless.dcm",
        "dicom/misc/JPGExtended.dcm",
        "dicom/misc/image_dfl.dcm",
    ] {
        let Some(path) = testdata(rel) else { continue };
        let original = std::fs::read(&path).unwrap();
        let header_end = original.len().min(1400);
        let offsets = (128..header_end)
            .step_by(4)
            .chain((header_end..original.len()).step_by(original.len() / 40 + 1));
        for at in offsets {
            let mut damaged: Vec<Vec<u8>> = vec![original[..at].to_vec()];
            for pattern in [0x7Fu8, 0xFF, 0x00] {
                let mut m = original.clone();
                for b in m.iter_mut().skip(at).take(4) {
                    *b = pattern;
                }
                damaged.push(m);
            }
            for bytes in damaged {
                std::fs::write(&target, &bytes).unwrap();
                LARGEST.store(0, Ordering::Relaxed);
                let result = load_dicom(&target);
                let largest = LARGEST.load(Ordering::Relaxed);
                assert!(
                    largest < ALLOCATION_CEILING,
                    "{rel} damaged at byte {at}: one allocation of {largest} bytes"
                );
                if let Some(err) = result {
                    assert!(err.contains("damaged.dcm"), "{rel} at {at}: {err}");
                    refused += 1;
                }
                checked += 1;
            }
        }
    }
    eprintln!("{checked} damaged DICOM variants read without a panic ({refused} refused with an error naming the file)");
}
