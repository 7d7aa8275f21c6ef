//! ONNX model plugins through the real binary: `plugin inspect` on a model file, a workflow running a 2D
//! network slice-wise on a real MR series with the model's hash and provider in the run record, and a
//! missing ONNX Runtime library failing the model's step with how to get it while other steps still run.

mod common;

use std::path::{Path, PathBuf};

use common::{last_run, repo, run_command, voxflow};
use sha2::{Digest, Sha256};
use voxflow_testkit::testdata;

/// The test networks from scripts/onnx_reference.py and the runtime, or None with a message.
fn reference() -> Option<PathBuf> {
    let dir = repo().join("target/onnx-reference");
    if !dir.join("threshold2d.onnx").is_file() {
        eprintln!(
            "SKIPPED: no {} (run scripts/onnx_reference.py)",
            dir.display()
        );
        return None;
    }
    if let Err(e) = voxflow_onnx::runtime::locate(None) {
        eprintln!("SKIPPED: {e}");
        return None;
    }
    Some(dir)
}

#[test]
fn inspect_prints_a_models_tensors_and_opset() {
    let Some(model) = testdata("onnx/mnist-8_model_zoo.onnx") else {
        return;
    };
    if reference().is_none() {
        return;
    }
    let out = voxflow()
        .args(["plugin", "inspect"])
        .arg(&model)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("input      Input3: f32 [1, 1, 28, 28]"),
        "{text}"
    );
    assert!(
        text.contains("output     Plus214_Output_0: f32 [1, 10]"),
        "{text}"
    );
    assert!(text.contains("opset      ai.onnx 8"), "{text}");
    let brain = testdata("onnx/brain_tumor_mri_classifier.onnx").unwrap();
    let out = voxflow()
        .args(["plugin", "inspect", "--json"])
        .arg(&brain)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["inputs"][0]["shape"],
        serde_json::json!([-1, 224, 224, 3])
    );
    assert_eq!(doc["inputs"][0]["symbols"][0], "unk__53");
}

fn write_plugin(plugins: &Path, model: &Path) -> String {
    let folder = plugins.join("bright");
    std::fs::create_dir_all(&folder).unwrap();
    let sha = hex::encode(Sha256::digest(std::fs::read(model).unwrap()));
    std::fs::write(
        folder.join("plugin.yaml"),
        format!(
            "name: bright\nversion: 0.1.0\nkind: onnx\ndescription: bright tissue by a tiny 2D network\n\
             inputs:\n  - {{name: volume, type: volume}}\noutputs:\n  - {{name: mask, type: mask}}\n\
             model:\n  file: {}\n  sha256: {sha}\n  input: {{tensor: image, tiling: {{mode: slices, batch: 8}}, normalize: {{method: minmax}}}}\n\
             \x20 outputs:\n    mask: {{tensor: probability}}\n",
            model.display()
        ),
    )
    .unwrap();
    sha
}

const WORKFLOW: &str = r#"apiVersion: voxflow/v1
name: onnx-bright
inputs:
  study: { type: dicom-folder }
steps:
  - id: load
    uses: builtin/load-volume
    inputs: { source: "${{ inputs.study }}" }
  - id: segment
    uses: onnx/bright@0.1.0
    inputs: { volume: "${{ steps.load.outputs.volume }}" }
    with: { threads: 1 }
    continue_on_error: true
  - id: preview
    uses: builtin/write-png
    inputs: { volume: "${{ steps.load.outputs.volume }}" }
outputs:
  mask: "${{ steps.segment.outputs.mask }}"
"#;

fn run(
    data: &Path,
    plugins: &Path,
    workflow: &Path,
    study: &Path,
    library: Option<&str>,
) -> std::process::Output {
    let mut c = run_command(data, plugins, workflow);
    if let Some(lib) = library {
        c.env("VOXFLOW_ONNXRUNTIME", lib);
    }
    c.args(["--plain", "--input"])
        .arg(format!("study={}", study.display()))
        .output()
        .unwrap()
}

#[test]
fn a_model_step_runs_slice_wise_and_records_its_model_and_provider() {
    let Some(reference) = reference() else { return };
    let Some(study) = testdata("prostate/prostatex/ProstateX-0000_t2_tse_tra") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let sha = write_plugin(&plugins, &reference.join("threshold2d.onnx"));
    let workflow = dir.path().join("workflow.yaml");
    std::fs::write(&workflow, WORKFLOW).unwrap();
    let validate = voxflow()
        .arg("--plugins")
        .arg(&plugins)
        .arg("validate")
        .arg(&workflow)
        .output()
        .unwrap();
    assert!(
        validate.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validate.stdout),
        String::from_utf8_lossy(&validate.stderr)
    );
    let out = run(dir.path(), &plugins, &workflow, &study, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = last_run(dir.path());
    let segment = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == "segment")
        .unwrap();
    assert_eq!(segment["plugin"], "onnx/bright");
    assert_eq!(segment["plugin_hash"], sha.as_str());
    let mask = record["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["output_name"] == "mask")
        .expect("the mask is recorded");
    assert_eq!(mask["metadata"]["onnx"]["model_sha256"], sha.as_str());
    assert_eq!(mask["metadata"]["onnx"]["provider"], "cpu");
    assert_eq!(mask["metadata"]["onnx"]["intra_threads"], 1);
    assert_eq!(mask["metadata"]["onnx"]["runs"], 3); // 19 slices in batches of 8
}

#[test]
fn without_the_runtime_library_the_model_step_fails_clearly_and_the_rest_runs() {
    let Some(reference) = reference() else { return };
    let Some(study) = testdata("prostate/prostatex/ProstateX-0000_t2_tse_tra") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    write_plugin(&plugins, &reference.join("threshold2d.onnx"));
    let workflow = dir.path().join("workflow.yaml");
    std::fs::write(&workflow, WORKFLOW).unwrap();
    let missing = dir.path().join("nowhere/libonnxruntime.so");
    let out = run(
        dir.path(),
        &plugins,
        &workflow,
        &study,
        Some(&missing.display().to_string()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let record = last_run(dir.path());
    let steps = record["steps"].as_array().unwrap();
    let state = |id: &str| {
        let s = steps.iter().find(|s| s["step_id"] == id).unwrap();
        (
            s["status"].as_str().unwrap_or_default().to_string(),
            s["error"].to_string(),
        )
    };
    let (status, error) = state("segment");
    assert_eq!(status, "failed", "{stderr}");
    assert!(
        error.contains("ONNX Runtime is not available") && error.contains("fetch-onnxruntime.sh"),
        "{error}"
    );
    assert_eq!(state("preview").0, "succeeded", "{stderr}");

    let inspect = voxflow()
        .env("VOXFLOW_ONNXRUNTIME", &missing)
        .args(["plugin", "inspect"])
        .arg(reference.join("threshold2d.onnx"))
        .output()
        .unwrap();
    assert!(!inspect.status.success());
    let text = String::from_utf8_lossy(&inspect.stderr);
    assert!(
        text.contains("does not exist") && text.contains("fetch-onnxruntime.sh"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}
