//! The grid tiling on real data, at the level of probabilities: voxflow's sagittal and coronal prostate view
//! networks (plugins/prostate-seg-<view>/, `tiling.mode: grid`) on PROMISE12's train01, voxel by voxel
//! against the same networks rendered in numpy by ONNX Runtime's Python API as their manifests describe
//! the tiling (scripts/onnx_reference.py writes those into target/onnx-reference).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use voxflow_artifact::ArtifactStore;
use voxflow_imaging::dicom::SeriesRule;
use voxflow_imaging::nifti::read_nifti;
use voxflow_imaging::source::load_source;
use voxflow_onnx::{OnnxPlugin, RuntimeConfig};
use voxflow_spec::types::ArtifactKind;
use voxflow_spec::Value;
use voxflow_steps::builtin::{read_volume, store_volume};
use voxflow_steps::{Step, StepArgs, StepContext};
use voxflow_testkit::{pinned_model_sha256, testdata};

/// Float32 arithmetic in another order (trilinear resizes, softmax against a logistic of the difference):
/// up to 6e-7 measured; a misplaced plane or a crop shifted by one voxel moves the gland's edge by far more.
const TOLERANCE: f32 = 1e-5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn view_networks_on_their_grid_match_a_numpy_rendering_voxel_by_voxel() {
    let reference = repo().join("target/onnx-reference");
    let Ok(bytes) = std::fs::read(reference.join("reference.json")) else {
        eprintln!("SKIPPED: no {}/reference.json (run python3 scripts/onnx_reference.py ../shared/data target/onnx-reference)", reference.display());
        return;
    };
    let expected: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let Some(views) = expected["views"].as_object().filter(|v| !v.is_empty()) else {
        eprintln!("SKIPPED: reference.json has no view network renderings (PROMISE12 or the view models absent)");
        return;
    };
    if let Err(e) = voxflow_onnx::runtime::locate(None) {
        eprintln!("SKIPPED: {e}");
        return;
    }
    let Some(labelled) = testdata("prostate/promise12/labelled") else {
        return;
    };
    let volume = load_source(
        &labelled.join("image_train01.npy.gz"),
        &SeriesRule::default(),
    )
    .unwrap()
    .volume;
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let ctx = StepContext::new("run", "view", "", 1, &store, Default::default());
    let input = store_volume(&ctx, &volume, ArtifactKind::Volume, "train01.nii.gz").unwrap();
    for (view, rendering) in views {
        let plugin_dir = repo().join("plugins").join(format!("prostate-seg-{view}"));
        assert_eq!(
            rendering["model_sha256"].as_str(),
            Some(pinned_model_sha256(&plugin_dir, None).as_str()),
            "{view}: target/onnx-reference was rendered with another model file than plugin.yaml pins; \
             run python3 scripts/onnx_reference.py ../shared/data target/onnx-reference again"
        );
        let plugin = OnnxPlugin::load(&plugin_dir, RuntimeConfig::default()).unwrap();
        let args = StepArgs {
            inputs: BTreeMap::from([("volume".to_string(), Value::artifact(input.clone()))]),
            params: BTreeMap::new(),
            wanted_outputs: Some(BTreeSet::from(["probability".to_string()])),
        };
        let outputs = plugin.run(&ctx, &args).unwrap();
        let ours = read_volume(
            &ctx,
            outputs["probability"].as_artifact().unwrap(),
            "probability",
        )
        .unwrap();
        let (theirs, _) = read_nifti(&reference.join(rendering["file"].as_str().unwrap())).unwrap();
        assert_eq!(ours.geometry.dims, theirs.geometry.dims, "{view}");
        let (ours, theirs) = (ours.data.to_f32(), theirs.data.to_f32());
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{view}: largest difference {worst}");
        assert!(
            worst < TOLERANCE,
            "{view}: probabilities differ by up to {worst}"
        );
        // The rendering is not trivial: the network finds a gland of about the reference's size.
        let gland = ours.iter().filter(|&&p| p > 0.5).count() as f64;
        let their_gland = rendering["gland_voxels"].as_f64().unwrap();
        assert!(
            gland > 1000.0 && (gland - their_gland).abs() <= 0.001 * their_gland,
            "{view}: {gland} against {their_gland}"
        );
    }
}
