//! WebAssembly plugins through the real binary: built from source with `voxflow plugin build`, loaded from
//! `--plugins`, run in a workflow on a real volume, and contained when they misbehave: a plugin that loops,
//! allocates without bound, panics, overflows its stack, reads /etc/passwd or opens a socket fails its own
//! step with a clear message while a sibling step in the same run succeeds.

mod common;

use std::path::{Path, PathBuf};

use common::{last_run, plugins_dir, repo, run_command, voxflow};
use voxflow_testkit::testdata;

/// `voxflow --data-dir DATA plugin test PLUGIN`, ready for inputs and parameters.
fn plugin_test(data: &Path, plugin: &Path) -> std::process::Command {
    let mut c = voxflow();
    c.arg("--data-dir")
        .arg(data)
        .args(["plugin", "test"])
        .arg(plugin);
    c
}

fn run(data: &Path, plugins: &Path, workflow: &Path, args: &[&str]) -> std::process::Output {
    run_command(data, plugins, workflow)
        .args(args)
        .output()
        .unwrap()
}

/// Writes `yaml` as a workflow, runs it on the study folder with its outputs exported, and expects success;
/// returns the output folder.
fn run_on_study(dir: &Path, plugins: &Path, study: &Path, yaml: &str) -> PathBuf {
    let workflow = dir.join("workflow.yaml");
    std::fs::write(&workflow, yaml).unwrap();
    let out_dir = dir.join("out");
    let out = run(
        dir,
        plugins,
        &workflow,
        &[
            "--plain",
            "--input",
            &format!("study={}", study.display()),
            "--out",
            &out_dir.display().to_string(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_dir
}

#[test]
fn hostile_plugins_fail_their_own_step_only() {
    let Some(plugins) = plugins_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("hostile.yaml");
    let mut yaml = String::from("apiVersion: voxflow/v1\nname: hostile\nsteps:\n");
    for mode in ["ok", "loop", "memory", "panic", "stack", "file", "network"] {
        yaml.push_str(&format!(
            "  - id: {mode}\n    uses: wasm/hostile\n    with: {{ mode: {mode} }}\n    continue_on_error: true\n"
        ));
    }
    std::fs::write(&workflow, yaml).unwrap();
    let out = run(dir.path(), plugins, &workflow, &["--plain"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let record = last_run(dir.path());
    let steps = record["steps"].as_array().unwrap();
    let step = |id: &str| {
        steps
            .iter()
            .find(|s| s["step_id"] == id)
            .unwrap_or_else(|| panic!("no step {id}: {stderr}"))
    };
    assert_eq!(step("ok")["status"], "succeeded", "{stderr}");
    let expect = [
        ("loop", "exceeded its time limit"),
        ("memory", "memory allocation"),
        ("panic", "hostile plugin panics on purpose"),
        ("stack", "trapped"),
        ("file", "reading /etc/passwd"),
        ("network", "connecting to 127.0.0.1:5432"),
    ];
    for (id, needle) in expect {
        let s = step(id);
        assert_eq!(s["status"], "failed", "{id}: {s}");
        let error = s["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{id}: `{error}` lacks `{needle}`");
        assert!(!error.contains("root:"), "{id} leaked /etc/passwd: {error}");
    }
}

#[test]
fn a_granted_folder_is_readable_and_nothing_else() {
    let Some(plugins) = plugins_dir() else { return };
    let Some(study) = testdata("prostate/prostatex/ProstateX-0000_t2_tse_tra") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("grant.yaml");
    std::fs::write(
        &workflow,
        format!(
            "apiVersion: voxflow/v1\nname: grant\nsteps:\n  - id: look\n    uses: wasm/hostile\n    with: {{ mode: grant, folder: \"{}\" }}\noutputs:\n  report: \"${{{{ steps.look.outputs.report }}}}\"\n",
            study.display()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = run(
        dir.path(),
        plugins,
        &workflow,
        &["--plain", "--out", &out_dir.display().to_string()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["folder"], "/grants/folder");
    assert_eq!(report["entries"].as_array().unwrap().len(), 19, "{report}");
    assert_eq!(report["write_refused"], true);
    assert_eq!(report["passwd_readable"], false);
    assert!(!study.join("written-by-plugin").exists());
}

#[test]
fn label_fusion_runs_in_a_workflow_on_a_real_volume() {
    let Some(plugins) = plugins_dir() else { return };
    let Some(study) = testdata("prostate/prostatex") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_dir = run_on_study(
        dir.path(),
        plugins,
        &study,
        r#"apiVersion: voxflow/v1
name: fusion-on-t2
inputs:
  study: { type: dicom-folder }
steps:
  - id: load
    uses: builtin/load-volume
    inputs: { source: "${{ inputs.study }}" }
    with: { series: "MR:t2*tra*" }
  - id: bright
    uses: builtin/threshold
    inputs: { volume: "${{ steps.load.outputs.volume }}" }
    with: { lower: 300 }
  - id: very_bright
    uses: builtin/threshold
    inputs: { volume: "${{ steps.load.outputs.volume }}" }
    with: { lower: 600 }
  - id: fuse
    uses: wasm/label-fusion@0.1.0
    inputs: { masks: ["${{ steps.bright.outputs.mask }}", "${{ steps.very_bright.outputs.mask }}"] }
    with: { operation: or }
outputs:
  mask: "${{ steps.fuse.outputs.mask }}"
  agreement: "${{ steps.fuse.outputs.agreement }}"
  bright: "${{ steps.bright.outputs.mask }}"
"#,
    );
    let read = |name: &str| {
        voxflow_imaging::nifti::read_nifti(&out_dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .0
    };
    let (fused, bright, agreement) = (
        read("mask.nii.gz"),
        read("bright.nii.gz"),
        read("agreement.nii.gz"),
    );
    assert_eq!(fused.dims(), [384, 384, 19]);
    assert_eq!(fused.geometry, bright.geometry);
    // OR with a subset is the superset itself; agreement marks exactly the voxels in one mask only.
    assert_eq!(fused.data.to_f64(), bright.data.to_f64());
    let disagree = agreement
        .data
        .to_f64()
        .iter()
        .filter(|&&v| v == 255.0)
        .count();
    let only_bright = bright.data.to_f64().iter().filter(|&&v| v != 0.0).count()
        - read("agreement.nii.gz")
            .data
            .to_f64()
            .iter()
            .filter(|&&v| v == 1.0)
            .count();
    assert!(disagree > 0);
    assert_eq!(disagree, only_bright);
    let record = last_run(dir.path());
    let fuse = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == "fuse")
        .unwrap();
    assert_eq!(fuse["plugin"], "wasm/label-fusion");
    assert_eq!(fuse["plugin_hash"].as_str().unwrap().len(), 64);
}

/// The shipped workflows/mr-normalize-clean.yaml.
#[test]
fn normalize_and_cleanup_on_a_real_volume() {
    let Some(plugins) = plugins_dir() else { return };
    let Some(study) = testdata("prostate/prostatex") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_dir = run_on_study(
        dir.path(),
        plugins,
        &study,
        &std::fs::read_to_string(repo().join("workflows/mr-normalize-clean.yaml")).unwrap(),
    );
    let read = |name: &str| {
        voxflow_imaging::nifti::read_nifti(&out_dir.join(name))
            .unwrap()
            .0
    };
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out_dir.join(name)).unwrap()).unwrap()
    };
    // Percentiles computed here, independently (numpy's linear interpolation), must match the plugin's.
    let source = read("source.nii.gz").data.to_f64();
    let mut sorted = source.clone();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let rank = p / 100.0 * (sorted.len() - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
    };
    let (lo, hi) = (pct(1.0), pct(99.0));
    let stats = json("stats.json");
    assert!(
        (stats["lower"].as_f64().unwrap() - lo).abs() < 1e-3,
        "{stats} vs {lo}"
    );
    assert!(
        (stats["upper"].as_f64().unwrap() - hi).abs() < 1e-3,
        "{stats} vs {hi}"
    );
    let normalized = read("normalized.nii.gz").data.to_f64();
    for (i, (&v, &n)) in source.iter().zip(&normalized).enumerate().step_by(997) {
        let want = ((v.clamp(lo, hi) - lo) / (hi - lo)) as f32 as f64;
        assert!((n - want).abs() < 1e-5, "voxel {i}: {n} vs {want}");
    }
    // The cleaned mask keeps one component of the thresholded one (plus filled holes), on the same grid.
    let (bright, clean) = (read("bright.nii.gz"), read("clean.nii.gz"));
    assert_eq!(bright.geometry, clean.geometry);
    let report = json("report.json");
    let kept = clean.data.to_f64().iter().filter(|&&v| v != 0.0).count();
    assert_eq!(report["voxels_after"].as_u64().unwrap() as usize, kept);
    assert!(
        report["components_before"].as_u64().unwrap() > 1,
        "{report}"
    );
    assert!(kept > 0 && kept < bright.data.to_f64().iter().filter(|&&v| v != 0.0).count() * 2);
}

#[test]
fn a_pinned_hash_refuses_a_different_component_and_inspect_prints_the_real_one() {
    let Some(plugins) = plugins_dir() else { return };
    let inspect = voxflow()
        .args(["plugin", "inspect", "--json"])
        .arg(plugins.join("label-fusion"))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let sha = doc["sha256"].as_str().unwrap().to_string();
    assert_eq!(doc["describe"]["name"], "label-fusion");
    assert_eq!(doc["inputs"][0]["list"], true);
    let dir = tempfile::tempdir().unwrap();
    let write = |pin: &str| {
        let path = dir.path().join("pinned.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: voxflow/v1\nname: pinned\nsteps:\n  - id: fuse\n    uses: wasm/label-fusion@0.1.0#sha256:{pin}\n    inputs: {{ masks: [] }}\n"
            ),
        )
        .unwrap();
        voxflow()
            .arg("--plugins")
            .arg(plugins)
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap()
    };
    let good = write(&sha);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
    let other = write(&"0".repeat(64));
    assert_eq!(other.status.code(), Some(1));
    let text = String::from_utf8_lossy(&other.stdout);
    assert!(
        text.contains("refusing to run a different plugin"),
        "{text}"
    );
}

#[test]
fn plugin_new_creates_a_plugin_that_builds_and_loads() {
    let Some(_) = plugins_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let created = voxflow()
        .args(["plugin", "new", "my-filter", "--dir"])
        .arg(dir.path())
        .arg("--sdk")
        .arg(repo().join("plugins/sdk"))
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let folder = dir.path().join("my-filter");
    // Reuse the plugins' build folder so the SDK is not compiled again.
    let built = voxflow()
        .env("CARGO_TARGET_DIR", repo().join("target/plugins"))
        .args(["plugin", "build"])
        .arg(&folder)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(folder.join("my_filter.wasm").is_file());
    let inspect = voxflow()
        .args(["plugin", "inspect"])
        .arg(&folder)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        text.contains("wasm/my-filter 0.1.0") && text.contains("describe   my-filter"),
        "{text}"
    );
}

#[test]
fn plugin_test_runs_a_plugin_on_files_without_a_workflow() {
    let Some(plugins) = plugins_dir() else { return };
    let Some(series) = testdata("prostate/prostatex/ProstateX-0000_t2_tse_tra") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = plugin_test(dir.path(), &plugins.join("intensity-normalize"))
        .arg("--input")
        .arg(format!("volume={}", series.display()))
        .args(["-p", "method=zscore", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("stats: {") && text.contains("\"method\":\"zscore\""),
        "{text}"
    );
    let (v, _) = voxflow_imaging::nifti::read_nifti(&dir.path().join("out/volume.nii.gz")).unwrap();
    let values = v.data.to_f64();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!(mean.abs() < 1e-3, "z-scored mean {mean}");
    // A bad parameter is refused before the plugin runs, naming it.
    let bad = plugin_test(dir.path(), &plugins.join("intensity-normalize"))
        .arg("--input")
        .arg(format!("volume={}", series.display()))
        .args(["-p", "method=median"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("parameter `method`"), "{err}");
}

#[test]
fn a_fuel_budget_stops_a_loop_before_the_clock_does() {
    let Some(plugins) = plugins_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The hostile plugin again, declared with an instruction budget (and a long timeout, so fuel decides);
    // same name and component, so its describe() still agrees with the manifest.
    let metered = dir.path().join("plugins/hostile-metered");
    std::fs::create_dir_all(&metered).unwrap();
    std::fs::copy(
        plugins.join("hostile/hostile.wasm"),
        metered.join("hostile.wasm"),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(plugins.join("hostile/plugin.yaml"))
        .unwrap()
        .replace("  timeout: 2s", "  timeout: 60s\n  fuel: 20000000");
    assert!(manifest.contains("fuel: 20000000"));
    std::fs::write(metered.join("plugin.yaml"), manifest).unwrap();
    let workflow = dir.path().join("fuel.yaml");
    std::fs::write(
        &workflow,
        "apiVersion: voxflow/v1\nname: fuel\nsteps:\n  - id: spin\n    uses: wasm/hostile\n    with: { mode: loop }\n    continue_on_error: true\n  - id: fine\n    uses: wasm/hostile\n    with: { mode: ok }\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &dir.path().join("plugins"),
        &workflow,
        &["--plain"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = last_run(dir.path());
    let steps = record["steps"].as_array().unwrap();
    let spin = steps.iter().find(|s| s["step_id"] == "spin").unwrap();
    assert_eq!(spin["status"], "failed");
    let error = spin["error"].as_str().unwrap();
    assert!(
        error.contains("used up its instruction budget (fuel 20000000)"),
        "{error}"
    );
    let fine = steps.iter().find(|s| s["step_id"] == "fine").unwrap();
    assert_eq!(fine["status"], "succeeded");
}

#[test]
fn a_workflow_can_tighten_a_plugins_memory_cap_but_not_loosen_it() {
    let Some(plugins) = plugins_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("memory.yaml");
    std::fs::write(
        &workflow,
        "apiVersion: voxflow/v1\nname: memory\nsteps:\n  - id: starved\n    uses: wasm/hostile\n    with: { mode: ok }\n    memory_mb: 1\n    continue_on_error: true\n  - id: generous\n    uses: wasm/hostile\n    with: { mode: memory }\n    memory_mb: 100000\n    continue_on_error: true\n",
    )
    .unwrap();
    let out = run(dir.path(), plugins, &workflow, &["--plain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = last_run(dir.path());
    let steps = record["steps"].as_array().unwrap();
    let error = |id: &str| {
        let s = steps.iter().find(|s| s["step_id"] == id).unwrap();
        assert_eq!(s["status"], "failed", "{s}");
        s["error"].as_str().unwrap().to_string()
    };
    // 1 MiB is less than the guest's initial memory: it cannot even start.
    assert!(
        error("starved").contains("cannot start"),
        "{}",
        error("starved")
    );
    // Asking for more than the manifest's 64 MiB changes nothing: the memory bomb still hits 64 MiB.
    assert!(
        error("generous").contains("memory allocation"),
        "{}",
        error("generous")
    );
}

/// The shipped workflows/prostate-taps.yaml: the TAPS ONNX model, then the mask-cleanup plugin, a DICOM SEG,
/// NIfTI and an overlay, on the ProstateX T2 series.
#[test]
fn taps_prostate_workflow_on_a_real_series() {
    let Some(plugins) = plugins_dir() else { return };
    let model = repo().join("plugins/taps-prostate/model_v1.onnx");
    if !model.is_file() {
        eprintln!("SKIPPED: the TAPS model is absent (scripts/fetch-taps-model.sh)");
        return;
    }
    if let Err(e) = voxflow_onnx::runtime::locate(None) {
        eprintln!("SKIPPED: {e}");
        return;
    }
    let Some(study) = testdata("prostate/prostatex") else {
        return;
    };
    // The plugin's manifest, next to the test's WebAssembly plugins, naming the fetched model in place.
    let taps = plugins.join("taps-prostate");
    std::fs::create_dir_all(&taps).unwrap();
    let manifest = std::fs::read_to_string(repo().join("plugins/taps-prostate/plugin.yaml"))
        .unwrap()
        .replace("file: model_v1.onnx", &format!("file: {}", model.display()));
    std::fs::write(taps.join("plugin.yaml"), manifest).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = run_on_study(
        dir.path(),
        plugins,
        &study,
        &std::fs::read_to_string(repo().join("workflows/prostate-taps.yaml")).unwrap(),
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let millilitres = report["volume_after_mm3"].as_f64().unwrap() / 1000.0;
    // `taps segment` itself gives 40.1 mL on this series.
    assert!((30.0..=50.0).contains(&millilitres), "{report}");
    assert_eq!(report["components_before"], 1, "{report}");
    for file in [
        "seg.dcm",
        "mask.nii.gz",
        "overlay.png",
        "probability.nii.gz",
    ] {
        assert!(out_dir.join(file).is_file(), "{file} missing");
    }
    let record = last_run(dir.path());
    let taps_step = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == "taps")
        .unwrap();
    assert_eq!(taps_step["plugin"], "onnx/taps-prostate");
    assert_eq!(
        taps_step["plugin_hash"],
        "1e39be9d19f6f71810cb0931a7fe895441cfd318d6002730c918ee99b9d79b91"
    );
}

/// seg-metrics on a real prostate mask and a changed copy agrees with MedPy's method computed with scipy
/// (scripts/reference_values.py): Dice, HD95, mean surface distance and Hausdorff distance.
#[test]
fn seg_metrics_agree_with_scipy_on_a_real_mask() {
    let Some(plugins) = plugins_dir() else { return };
    let reference_file = repo().join("target/reference-values.json");
    let Ok(text) = std::fs::read_to_string(&reference_file) else {
        eprintln!(
            "SKIPPED: no {} (scripts/test.sh writes it)",
            reference_file.display()
        );
        return;
    };
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expected = &all["seg_metrics"];
    if expected.is_null() {
        eprintln!("SKIPPED: the PROMISE12 mask for the seg-metrics reference is absent");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = plugin_test(dir.path(), &plugins.join("seg-metrics"))
        .arg("--input")
        .arg(format!(
            "prediction={}",
            expected["prediction"].as_str().unwrap()
        ))
        .arg("--input")
        .arg(format!(
            "reference={}",
            expected["reference"].as_str().unwrap()
        ))
        .args(["-p", "case=train07"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .unwrap_or_else(|| panic!("no report in {stdout}"));
    let report: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(report["case"], "train07");
    for metric in ["dice", "hd95_mm", "assd_mm", "hausdorff_mm"] {
        let (ours, theirs) = (
            report[metric].as_f64().unwrap(),
            expected[metric].as_f64().unwrap(),
        );
        assert!(
            (ours - theirs).abs() < 1e-6,
            "{metric}: voxflow {ours}, scipy {theirs}"
        );
    }
}
