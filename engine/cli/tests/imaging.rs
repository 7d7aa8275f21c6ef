//! `voxflow inspect` and `voxflow convert` on real data, checked against dcm2niix (the tool people use for
//! this job) and nibabel. Each peer check skips with a message when the peer is not installed.

use std::path::Path;
use std::process::Command;

use voxflow_imaging::nifti::read_nifti;
use voxflow_imaging::ops::AxisMap;
use voxflow_imaging::Volume;
use voxflow_testkit::testdata;

fn voxflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voxflow"))
}

/// Runs a shipped workflow from the repository root with one input and extra arguments.
fn run_workflow(
    data_dir: &Path,
    workflow: &str,
    input: String,
    extra: &[&str],
) -> std::process::Output {
    voxflow()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["run", workflow, "--input", &input])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn inspect_lists_the_series_of_a_study() {
    let Some(dir) = testdata("prostate/prostatex") else {
        return;
    };
    let out = voxflow()
        .arg("inspect")
        .arg(&dir)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let series = report["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let t2 = series
        .iter()
        .find(|s| s["description"] == "t2_tse_tra")
        .unwrap();
    assert_eq!(t2["dims"], serde_json::json!([384, 384, 19]));
    assert_eq!(t2["orientation"], "LPS");
    assert_eq!(t2["transfer_syntaxes"][0][1], "1.2.840.10008.1.2.1");
    let text = voxflow()
        .arg("inspect")
        .arg(dir.join("ProstateX-0000_adc"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("size         84 x 128 x 19"), "{text}");
}

#[test]
fn inspect_reports_broken_files_and_inconsistent_series() {
    let Some(dicomdir) = testdata("dicom/dicomdir") else {
        return;
    };
    let out = voxflow().arg("inspect").arg(&dicomdir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("slice(s) missing between"),
        "the CT2 series has a gap: {text}"
    );
    assert!(text.contains("DICOMDIR: a DICOMDIR index"), "{text}");
    let Some(negative) = testdata("dicom/negative") else {
        return;
    };
    let out = voxflow()
        .arg("convert")
        .arg(negative.join("MR_truncated.dcm"))
        .arg("/tmp/never.nii")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MR_truncated.dcm"), "{err}");
    let out = voxflow()
        .arg("inspect")
        .arg(negative.join("no_meta.dcm"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no_meta.dcm: not a readable DICOM file"));
}

fn canonical(v: &Volume) -> Volume {
    AxisMap::to_closest_ras(&v.geometry).apply(v)
}

#[test]
fn convert_agrees_with_dcm2niix_and_nibabel() {
    let Some(series) = testdata("prostate/prostatex/ProstateX-0000_t2_tse_tra") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours_path = dir.path().join("t2.nii.gz");
    let out = voxflow()
        .arg("convert")
        .arg(&series)
        .arg(&ours_path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ours, _) = read_nifti(&ours_path).unwrap();
    assert_eq!(ours.dims(), [384, 384, 19]);

    match Command::new("dcm2niix")
        .args(["-z", "y", "-b", "n", "-f", "peer", "-o"])
        .arg(dir.path())
        .arg(&series)
        .output()
    {
        Err(_) => eprintln!("SKIPPED: dcm2niix is not installed (apt-get install dcm2niix)"),
        Ok(run) => {
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stdout)
            );
            let (peer, _) = read_nifti(&dir.path().join("peer.nii.gz")).unwrap();
            let (a, b) = (canonical(&ours), canonical(&peer));
            assert_eq!(a.dims(), b.dims());
            let (fa, fb) = (a.geometry.affine_ras(), b.geometry.affine_ras());
            for r in 0..3 {
                for c in 0..4 {
                    assert!(
                        (fa[r][c] - fb[r][c]).abs() < 1e-3,
                        "affine differs from dcm2niix: {fa:?} vs {fb:?}"
                    );
                }
            }
            assert_eq!(
                a.data.to_f64(),
                b.data.to_f64(),
                "voxel values differ from dcm2niix"
            );
        }
    }

    let script = "import sys, nibabel as nib, numpy as np; i = nib.load(sys.argv[1]); \
                  print(' '.join(map(repr, i.affine.ravel().tolist() + [float(np.asanyarray(i.dataobj).astype(float).sum())])))";
    match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&ours_path)
        .output()
    {
        Ok(run) if run.status.success() => {
            let nums: Vec<f64> = String::from_utf8_lossy(&run.stdout)
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            let affine = ours.geometry.affine_ras();
            for r in 0..4 {
                for c in 0..4 {
                    assert!(
                        (affine[r][c] - nums[r * 4 + c]).abs() < 1e-3,
                        "nibabel reads affine {nums:?}"
                    );
                }
            }
            let sum: f64 = ours.data.to_f64().iter().sum();
            assert_eq!(sum, nums[16], "nibabel reads other values");
        }
        _ => eprintln!("SKIPPED: python3 with nibabel is not available for the read-back check"),
    }
}

#[test]
fn convert_refuses_ambiguous_folders_and_follows_series_rules() {
    let Some(dir) = testdata("prostate/prostatex") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = voxflow()
        .arg("convert")
        .arg(&dir)
        .arg(tmp.path().join("x.nii.gz"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 series match any series"), "{err}");
    let out = voxflow()
        .args(["convert", "--series", "MR:*adc*"])
        .arg(&dir)
        .arg(tmp.path().join("adc.nii"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (adc, _) = read_nifti(&tmp.path().join("adc.nii")).unwrap();
    assert_eq!(adc.dims(), [84, 128, 19]);
    assert!(Path::new(&tmp.path().join("adc.nii")).is_file());
}

#[test]
fn series_to_nifti_workflow_on_a_real_study() {
    let Some(study) = testdata("prostate/prostatex") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out_arg = out_dir.display().to_string();
    let run = run_workflow(
        dir.path(),
        "workflows/series-to-nifti.yaml",
        format!("study={}", study.display()),
        &["--out", &out_arg],
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (v, _) = read_nifti(&out_dir.join("nifti.nii.gz")).unwrap();
    assert_eq!(v.dims(), [384, 384, 19]);
    assert_eq!(v.geometry.orientation_ras(), "LPS");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["series_description"], "t2_tse_tra");
    assert_eq!(meta["modality"], "MR");
    assert_eq!(meta["sop_instance_uids"].as_array().unwrap().len(), 19);
    // The run record carries the same metadata on the volume artifact.
    let list = voxflow()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["runs", "list", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let run_id = runs[0]["id"].as_str().unwrap();
    let show = voxflow()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["runs", "show", run_id, "--json"])
        .output()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let volume = record["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["output_name"] == "volume")
        .expect("the volume artifact is recorded");
    assert_eq!(volume["metadata"]["modality"], "MR");
    assert_eq!(
        volume["metadata"]["dims"],
        serde_json::json!([384, 384, 19])
    );
    let png = std::fs::read(out_dir.join("preview.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    // A rule that matches nothing fails the step with the candidates listed.
    let run = run_workflow(
        dir.path(),
        "workflows/series-to-nifti.yaml",
        format!("study={}", study.display()),
        &["-p", "series=CT:*"],
    );
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("step `load`: no series matches CT:*; found:"),
        "{err}"
    );
}

#[test]
fn ct_threshold_seg_workflow_writes_a_valid_dicom_seg() {
    let Some(ct) = testdata("dicom/seg_liver_ct3/ct-3slice") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out_arg = out_dir.display().to_string();
    let run = run_workflow(
        dir.path(),
        "workflows/ct-threshold-seg.yaml",
        format!("ct={}", ct.display()),
        &["--out", &out_arg],
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seg = out_dir.join("seg.dcm");
    let found = voxflow_imaging::dicom::scan(&seg).unwrap();
    let h = &found.series[0].files[0];
    assert_eq!(
        (h.modality.as_str(), h.sop_class_uid.as_str()),
        ("SEG", voxflow_imaging::dicom::SEGMENTATION_STORAGE)
    );
    assert_eq!(h.frames.len(), 3, "one frame per CT slice holding bone");
    let (mask, _) = read_nifti(&out_dir.join("mask.nii.gz")).unwrap();
    assert_eq!(mask.dims(), [512, 512, 3]);
    let bone = mask.data.to_f64().iter().filter(|&&v| v == 1.0).count();
    assert!(bone > 1000, "{bone} bone voxels");
    if let Ok(out) = Command::new("dciodvfy").arg(&seg).output() {
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!report.lines().any(|l| l.starts_with("Error")), "{report}");
    }
}
