//! Broken and non-volume DICOM files give clear errors that name the file and say what is wrong, never a
//! panic or a silently wrong volume.

use voxflow_imaging::dicom::{load_series, scan, SeriesRule};
use voxflow_testkit::testdata;

fn load_error(relative: &str) -> Option<String> {
    let path = testdata(relative)?;
    let found = match scan(&path) {
        Ok(f) => f,
        Err(e) => return Some(e.to_string()),
    };
    match found
        .select(&SeriesRule::default(), &path)
        .and_then(load_series)
    {
        Ok(l) => panic!(
            "{relative} loaded as {:?}; expected an error",
            l.volume.dims()
        ),
        Err(e) => Some(e.to_string()),
    }
}

#[test]
fn negative_files_fail_clearly() {
    let cases = [
        (
            "dicom/negative/no_meta.dcm",
            vec![
                "no_meta.dcm",
                "no DICOM image series found",
                "not a readable DICOM file",
            ],
        ),
        (
            "dicom/negative/MR_truncated.dcm",
            vec!["MR_truncated.dcm", "cannot read"],
        ),
        (
            "dicom/negative/JPEG-lossy.dcm",
            vec![
                "JPEG-lossy.dcm",
                "cannot decode pixel data (1.2.840.10008.1.2.4.51)",
            ],
        ),
        (
            "dicom/misc/SC_rgb_rle_2frame.dcm",
            vec!["colour images are not scalar volumes"],
        ),
        (
            "dicom/misc/rtplan.dcm",
            vec!["rtplan.dcm", "no DICOM image series found"],
        ),
        (
            "dicom/dicomdir/77654033/CT2",
            vec!["slice(s) missing between", "17106", "17136"],
        ),
        (
            "dicom/highdicom/seg_image_ct_binary_overlap.dcm",
            vec!["two slices at the same position"],
        ),
    ];
    for (relative, needles) in cases {
        let Some(err) = load_error(relative) else {
            continue;
        };
        for n in needles {
            assert!(err.contains(n), "{relative}: `{err}` lacks `{n}`");
        }
    }
}

#[test]
fn garbage_and_empty_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("random.dcm"),
        (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.dcm"), b"").unwrap();
    let found = scan(dir.path()).unwrap();
    assert!(found.series.is_empty());
    assert_eq!(found.skipped.len(), 2);
    let err = found
        .select(&SeriesRule::default(), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no DICOM image series found") && err.contains("random.dcm"),
        "{err}"
    );
    assert!(scan(&dir.path().join("absent")).is_err());
}
