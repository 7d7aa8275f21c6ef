//! DICOM SEG written by voxflow on a real CT series, read back by dicom-rs and by highdicom (an
//! independent implementation of the Segmentation IOD; skipped with a message when not installed).

use std::process::Command;

use voxflow_imaging::dicom::{
    layout, load_series, scan, write_seg, Algorithm, Code, SegmentDescription, SeriesRule,
};
use voxflow_imaging::{Volume, VoxelData};
use voxflow_testkit::testdata;

#[test]
fn seg_of_a_real_ct_series_reads_back() {
    let Some(ct) = testdata("dicom/seg_liver_ct3/ct-3slice") else {
        return;
    };
    let found = scan(&ct).unwrap();
    let series = found.select(&SeriesRule::default(), &ct).unwrap();
    let loaded = load_series(series).unwrap();
    let order = layout(series).unwrap().slices;
    // Two labels from the image itself: soft tissue (1) and bone (2); slice 0 has no bone on purpose.
    let v = &loaded.volume;
    let n = v.data.len();
    let per_slice = v.dims()[0] * v.dims()[1];
    let labels: Vec<u8> = (0..n)
        .map(|i| {
            let hu = v.data.get_f64(i);
            if hu > 300.0 && i >= per_slice {
                2
            } else if (20.0..80.0).contains(&hu) {
                1
            } else {
                0
            }
        })
        .collect();
    let counts = [
        labels.iter().filter(|&&l| l == 1).count(),
        labels.iter().filter(|&&l| l == 2).count(),
    ];
    assert!(counts[0] > 1000 && counts[1] > 100, "{counts:?}");
    let mask = Volume::new(v.geometry.clone(), VoxelData::U8(labels)).unwrap();
    let segments = vec![
        SegmentDescription {
            label: 1,
            name: "soft tissue".into(),
            category: Code::new("91723000", "SCT", "Anatomical Structure"),
            property: Code::new("87784001", "SCT", "Soft tissue"),
        },
        SegmentDescription {
            label: 2,
            name: "bone".into(),
            category: Code::new("91723000", "SCT", "Anatomical Structure"),
            property: Code::new("272673000", "SCT", "Bone"),
        },
    ];
    let algorithm = Algorithm {
        name: "threshold".into(),
        version: "1".into(),
        kind: "AUTOMATIC".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg.dcm");
    let uid = write_seg(
        &mask,
        series,
        &order,
        &segments,
        &algorithm,
        "voxflow test",
        &path,
    )
    .unwrap();
    assert!(uid.starts_with("2.25."));

    // dicom-rs reads it back: SEG modality, 3 + 2 frames (bone absent on slice 0).
    let back = scan(&path).unwrap();
    let h = &back.series[0].files[0];
    assert_eq!(h.modality, "SEG");
    assert_eq!(h.frames.len(), 5);
    assert_eq!(h.sop_instance_uid, uid);

    // dcmtk's dcmdump parses it, and dicom3tools' dciodvfy finds no error against the Segmentation IOD.
    match Command::new("dcmdump").arg(&path).output() {
        Ok(out) => assert!(
            out.status.success(),
            "dcmdump: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("SKIPPED: dcmdump (dcmtk) is not installed"),
    }
    match Command::new("dciodvfy").arg(&path).output() {
        Ok(out) => {
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("Error")).collect();
            assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
            eprintln!("dciodvfy report:\n{report}");
        }
        Err(_) => eprintln!("SKIPPED: dciodvfy (dicom3tools) is not installed"),
    }

    let script = r#"
import sys, highdicom as hd, numpy as np, pydicom
seg = hd.seg.segread(sys.argv[1])
src = sorted((pydicom.dcmread(p) for p in sys.argv[2:]), key=lambda d: float(d.ImagePositionPatient[2]))
print(len(seg.segment_numbers), seg.segmentation_type.value, seg.SegmentSequence[1].SegmentLabel)
uids = {u for _, _, u in seg.get_source_image_uids()}
print(int(uids == {d.SOPInstanceUID for d in src}))
vol = seg.get_volume(combine_segments=True)
print(int((vol.array == 1).sum()), int((vol.array == 2).sum()))
"#;
    let sources: Vec<String> = series
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .args(&sources)
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], "2 BINARY bone", "{text}");
            assert_eq!(
                lines[1], "1",
                "highdicom sees other source instances: {text}"
            );
            assert_eq!(lines[2], format!("{} {}", counts[0], counts[1]), "{text}");
        }
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named 'highdicom'") => {
            eprintln!("SKIPPED: highdicom is not installed (pip install highdicom)")
        }
        Ok(out) => panic!(
            "highdicom could not read the SEG: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("SKIPPED: python3 is not available"),
    }
}

#[test]
fn empty_masks_and_wrong_grids_are_refused() {
    let Some(ct) = testdata("dicom/seg_liver_ct3/ct-3slice") else {
        return;
    };
    let found = scan(&ct).unwrap();
    let series = found.select(&SeriesRule::default(), &ct).unwrap();
    let l = layout(series).unwrap();
    let segments = vec![SegmentDescription {
        label: 1,
        name: "x".into(),
        category: Code::new("91723000", "SCT", "Anatomical Structure"),
        property: Code::new("41216001", "SCT", "Prostate"),
    }];
    let algorithm = Algorithm {
        name: "t".into(),
        version: "1".into(),
        kind: "AUTOMATIC".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let empty = Volume::new(
        l.geometry.clone(),
        VoxelData::U8(vec![0; l.geometry.voxel_count()]),
    )
    .unwrap();
    let err = write_seg(
        &empty,
        series,
        &l.slices,
        &segments,
        &algorithm,
        "x",
        &dir.path().join("a.dcm"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("the mask is empty"), "{err}");
    let mut g = l.geometry.clone();
    g.dims[2] = 2;
    let short = Volume::new(g.clone(), VoxelData::U8(vec![1; g.voxel_count()])).unwrap();
    let err = write_seg(
        &short,
        series,
        &l.slices,
        &segments,
        &algorithm,
        "x",
        &dir.path().join("b.dcm"),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("map the mask back to the source geometry"),
        "{err}"
    );
    assert!(!dir.path().join("a.dcm").exists() && !dir.path().join("b.dcm").exists());
}
