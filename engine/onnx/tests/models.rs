//! Real models through the ONNX step, compared with ONNX Runtime's Python API on the same inputs
//! (scripts/onnx_reference.py writes those into target/onnx-reference): the MNIST model zoo network on drawn
//! digits, a brain-MRI classifier on a real brain slice (NHWC, RGB), and small 2D networks applied slice-wise
//! to a real prostate MR series, whose answer is known. Then the errors: a wrong shape, a corrupt model, a
//! model that is not the pinned one, a tensor that does not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use voxflow_artifact::ArtifactStore;
use voxflow_imaging::dicom::SeriesRule;
use voxflow_imaging::nifti::read_nifti;
use voxflow_imaging::source::load_source;
use voxflow_imaging::{Volume, VoxelData};
use voxflow_onnx::{OnnxPlugin, RuntimeConfig};
use voxflow_spec::types::ArtifactKind;
use voxflow_spec::Value;
use voxflow_steps::builtin::{read_volume, store_volume};
use voxflow_steps::{Step, StepArgs, StepContext, StepError, StepOutputs};
use voxflow_testkit::testdata;

const TOLERANCE: f64 = 1e-5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The reference folder and the runtime library, or None with a message saying what is missing.
fn prerequisites() -> Option<PathBuf> {
    let reference = repo().join("target/onnx-reference");
    if !reference.join("reference.json").is_file() {
        eprintln!(
            "SKIPPED: no {} (run python3 scripts/onnx_reference.py ../shared/data target/onnx-reference)",
            reference.display()
        );
        return None;
    }
    if let Err(e) = voxflow_onnx::runtime::locate(None) {
        eprintln!("SKIPPED: {e}");
        return None;
    }
    Some(reference)
}

/// What onnxruntime in Python returned (reference.json in the reference folder).
fn expected_values(reference: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(reference.join("reference.json")).unwrap()).unwrap()
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// A plugin folder for `model` with the given `model:` section body (YAML, indented by four spaces) and
/// ports.
fn plugin(dir: &Path, name: &str, model: &Path, section: &str, outputs: &str) -> OnnxPlugin {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let yaml = format!(
        "name: {name}\nversion: 0.1.0\nkind: onnx\ninputs:\n  - {{name: volume, type: volume}}\noutputs:\n{outputs}\
         model:\n  file: {}\n  sha256: {}\n{section}",
        model.display(),
        sha256_of(model)
    );
    std::fs::write(folder.join("plugin.yaml"), yaml).unwrap();
    OnnxPlugin::load(&folder, RuntimeConfig::default()).unwrap()
}

/// Runs the step on a volume through a real artifact store.
fn run(
    plugin: &OnnxPlugin,
    volume: &Volume,
    store: &ArtifactStore,
) -> Result<StepOutputs, StepError> {
    run_with(plugin, volume, store, BTreeMap::new())
}

fn run_with(
    plugin: &OnnxPlugin,
    volume: &Volume,
    store: &ArtifactStore,
    params: BTreeMap<String, Value>,
) -> Result<StepOutputs, StepError> {
    run_wanting(plugin, volume, store, params, None)
}

/// One step run asked for some of its outputs only (`None`: all), as a workflow that reads only those asks.
fn run_wanting(
    plugin: &OnnxPlugin,
    volume: &Volume,
    store: &ArtifactStore,
    params: BTreeMap<String, Value>,
    wanted_outputs: Option<BTreeSet<String>>,
) -> Result<StepOutputs, StepError> {
    let ctx = StepContext::new("run", "model", "", 1, store, Default::default());
    let input = store_volume(&ctx, volume, ArtifactKind::Volume, "input.nii.gz").unwrap();
    let args = StepArgs {
        inputs: BTreeMap::from([("volume".to_string(), Value::artifact(input))]),
        params,
        wanted_outputs,
    };
    plugin.run(&ctx, &args)
}

fn json_output(outputs: &StepOutputs, port: &str, store: &ArtifactStore) -> serde_json::Value {
    let artifact = outputs[port].as_artifact().unwrap();
    serde_json::from_slice(&store.read(artifact).unwrap()).unwrap()
}

fn volume_output(outputs: &StepOutputs, port: &str, store: &ArtifactStore) -> Volume {
    let ctx = StepContext::new("run", "read", "", 1, store, Default::default());
    read_volume(&ctx, outputs[port].as_artifact().unwrap(), port).unwrap()
}

/// The run record an ONNX step attaches to an output artifact (variant, model sha256, provider...).
fn onnx_record(outputs: &StepOutputs, port: &str) -> serde_json::Value {
    outputs[port]
        .as_artifact()
        .unwrap()
        .metadata
        .clone()
        .unwrap()
}

fn assert_close(ours: &[f64], theirs: &[f64], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (a, b) in ours.iter().zip(theirs) {
        assert!(
            (a - b).abs() <= TOLERANCE * b.abs().max(1.0),
            "{what}: voxflow {a} vs onnxruntime {b}"
        );
    }
}

fn scores(json: &serde_json::Value) -> Vec<f64> {
    json["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect()
}

#[test]
fn mnist_scores_match_onnxruntime_on_drawn_digits() {
    let (Some(reference), Some(model)) = (prerequisites(), testdata("onnx/mnist-8_model_zoo.onnx"))
    else {
        return;
    };
    let expected = expected_values(&reference);
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let mnist = plugin(
        dir.path(),
        "mnist",
        &model,
        &format!(
            "  input: {{tensor: Input3, tiling: {{mode: image}}}}\n  outputs:\n    digit: {{tensor: Plus214_Output_0, classes: {classes:?}}}\n"
        ),
        "  - {name: digit, type: json}\n",
    );
    let mut right = 0;
    for case in expected["mnist"].as_array().unwrap() {
        let (volume, _) = read_nifti(&reference.join(case["file"].as_str().unwrap())).unwrap();
        let outputs = run(&mnist, &volume, &store).unwrap();
        let json = json_output(&outputs, "digit", &store);
        let theirs: Vec<f64> = case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_close(&scores(&json), &theirs, case["file"].as_str().unwrap());
        right += usize::from(json["predicted"] == case["digit"].to_string().as_str());
    }
    // A real model: most digits drawn in a plain font are read right (7 of 10 when written).
    assert!(right >= 6, "only {right} of 10 digits recognised");
}

#[test]
fn quantized_variant_is_chosen_by_step_or_site_recorded_and_matches_onnxruntime() {
    let (Some(reference), Some(model)) = (prerequisites(), testdata("onnx/mnist-8_model_zoo.onnx"))
    else {
        return;
    };
    let expected = expected_values(&reference);
    let int8 = reference.join("mnist_int8.onnx");
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let folder = dir.path().join("mnist-variants");
    std::fs::create_dir_all(&folder).unwrap();
    let yaml = format!(
        "name: mnist-variants\nversion: 0.1.0\nkind: onnx\ninputs:\n  - {{name: volume, type: volume}}\n\
         outputs:\n  - {{name: digit, type: json}}\nmodel:\n  variants:\n\
         \x20   - {{name: fp32, file: {}, sha256: {}}}\n\
         \x20   - {{name: int8, file: {}, sha256: {}, description: dynamic int8 weights}}\n\
         \x20 input: {{tensor: Input3, tiling: {{mode: image}}}}\n\
         \x20 outputs:\n    digit: {{tensor: Plus214_Output_0}}\n",
        model.display(),
        sha256_of(&model),
        int8.display(),
        sha256_of(&int8),
    );
    std::fs::write(folder.join("plugin.yaml"), yaml).unwrap();
    let site_default = OnnxPlugin::load(&folder, RuntimeConfig::default()).unwrap();
    let site_int8 = OnnxPlugin::load(
        &folder,
        RuntimeConfig {
            variant: Some("int8".into()),
            ..RuntimeConfig::default()
        },
    )
    .unwrap();
    let chosen = |name: &str| BTreeMap::from([("variant".to_string(), Value::String(name.into()))]);
    let logits = |case: &serde_json::Value, key: &str| -> Vec<f64> {
        case[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    for case in expected["mnist"].as_array().unwrap().iter().take(4) {
        let file = case["file"].as_str().unwrap();
        let (volume, _) = read_nifti(&reference.join(file)).unwrap();
        for (plugin, params, key, sha) in [
            (&site_default, BTreeMap::new(), "logits", sha256_of(&model)),
            (
                &site_default,
                chosen("int8"),
                "logits_int8",
                sha256_of(&int8),
            ),
            (&site_int8, BTreeMap::new(), "logits_int8", sha256_of(&int8)),
            (&site_int8, chosen("fp32"), "logits", sha256_of(&model)),
        ] {
            let outputs = run_with(plugin, &volume, &store, params).unwrap();
            let json = json_output(&outputs, "digit", &store);
            assert_close(&scores(&json), &logits(case, key), &format!("{file} {key}"));
            let recorded = onnx_record(&outputs, "digit");
            assert_eq!(recorded["onnx"]["model_sha256"], sha.as_str());
            assert_eq!(
                recorded["onnx"]["variant"],
                if key == "logits" { "fp32" } else { "int8" }
            );
        }
    }
    // CUDA asked of the CPU build of the library: a clear error, no silent fall-back to the CPU.
    let (volume, _) = read_nifti(&reference.join("digit_0.nii.gz")).unwrap();
    let cuda = BTreeMap::from([("provider".to_string(), Value::String("cuda".into()))]);
    match run_with(&site_default, &volume, &store, cuda) {
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("mnist-variants") && e.contains("CUDA"), "{e}");
        }
        // Only where the GPU build of ONNX Runtime and a GPU are present.
        Ok(outputs) => {
            let recorded = onnx_record(&outputs, "digit");
            assert_eq!(recorded["onnx"]["provider"], "cuda");
        }
    }
    // The pinned identity stays the default variant's, whichever ran.
    assert_eq!(site_int8.identity().sha256, sha256_of(&model));
    let error = run_with(&site_default, &volume, &store, chosen("fp16"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no model variant `fp16`") && error.contains("fp32, int8"),
        "{error}"
    );
}

#[test]
fn brain_classifier_matches_onnxruntime_with_channels_last_rgb() {
    let (Some(reference), Some(model)) = (
        prerequisites(),
        testdata("onnx/brain_tumor_mri_classifier.onnx"),
    ) else {
        return;
    };
    let expected = expected_values(&reference);
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let brain = plugin(
        dir.path(),
        "brain",
        &model,
        "  input: {tensor: input_layer, layout: nhwc, channels: 3, tiling: {mode: image}}\n  outputs:\n    finding: {tensor: \"Identity:0\", classes: [no tumour, tumour]}\n",
        "  - {name: finding, type: json}\n",
    );
    let (volume, _) = read_nifti(&reference.join("brain_slice.nii.gz")).unwrap();
    let json = json_output(&run(&brain, &volume, &store).unwrap(), "finding", &store);
    let theirs: Vec<f64> = expected["brain"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_close(&scores(&json), &theirs, "brain slice");
}

fn prostate_t2() -> Option<Volume> {
    let dir = testdata("prostate/prostatex/ProstateX-0000_t2_tse_tra")?;
    Some(load_source(&dir, &SeriesRule::default()).unwrap().volume)
}

/// Min-max normalized voxels above one half: what both test networks mark as foreground.
fn expected_mask(volume: &Volume) -> Vec<bool> {
    let v = volume.data.to_f64();
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    v.iter().map(|&x| (x - lo) / (hi - lo) > 0.5).collect()
}

/// The same grid, up to the float32 precision NIfTI stores geometry in.
fn assert_same_grid(a: &voxflow_imaging::Geometry, b: &voxflow_imaging::Geometry) {
    assert_eq!(a.dims, b.dims);
    let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-4);
    assert!(
        close(&a.spacing, &b.spacing) && close(&a.origin, &b.origin),
        "{a:?} vs {b:?}"
    );
    assert!(
        (0..3).all(|r| close(&a.direction[r], &b.direction[r])),
        "{a:?} vs {b:?}"
    );
}

fn nonzero(volume: &Volume) -> Vec<bool> {
    volume.data.to_f64().iter().map(|&v| v != 0.0).collect()
}

fn dice(a: &[bool], b: &[bool]) -> f64 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let total = a.iter().filter(|x| **x).count() + b.iter().filter(|x| **x).count();
    2.0 * both as f64 / total.max(1) as f64
}

#[test]
fn a_2d_network_slice_wise_gives_a_mask_on_the_source_grid() {
    let (Some(reference), Some(volume)) = (prerequisites(), prostate_t2()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let expected = expected_mask(&volume);
    assert!(
        expected.iter().any(|&v| v),
        "the test needs some bright voxels"
    );

    // Sigmoid output, one channel, thresholded: exactly the expected voxels.
    let threshold = plugin(
        dir.path(),
        "threshold",
        &reference.join("threshold2d.onnx"),
        "  input: {tensor: image, tiling: {mode: slices, batch: 4}, normalize: {method: minmax}}\n  outputs:\n    mask: {tensor: probability, threshold: 0.5}\n",
        "  - {name: mask, type: mask}\n",
    );
    let outputs = run(&threshold, &volume, &store).unwrap();
    let mask = volume_output(&outputs, "mask", &store);
    assert_same_grid(&mask.geometry, &volume.geometry);
    let got = nonzero(&mask);
    let differ = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
    assert!(differ * 100_000 <= got.len(), "{differ} voxels differ");
    let provenance = &onnx_record(&outputs, "mask")["onnx"];
    assert_eq!(
        provenance["model_sha256"],
        sha256_of(&reference.join("threshold2d.onnx"))
    );
    assert_eq!(provenance["provider"], "cpu");
    assert_eq!(provenance["runs"], volume.geometry.dims[2].div_ceil(4));

    // Two-class logits, softmax and argmax, each slice resized to 512x448 (not square: a swapped axis would
    // show) and back: nearly the same mask.
    let softmax = plugin(
        dir.path(),
        "softmax",
        &reference.join("softmax2d.onnx"),
        "  input: {tensor: image, tiling: {mode: slices, batch: 8, size: [512, 448]}, normalize: {method: minmax}}\n  outputs:\n    mask: {tensor: logits, activation: softmax}\n    probability: {tensor: logits, activation: softmax, channel: 1}\n",
        "  - {name: mask, type: mask}\n  - {name: probability, type: volume}\n",
    );
    let outputs = run(&softmax, &volume, &store).unwrap();
    let mask = volume_output(&outputs, "mask", &store);
    assert_same_grid(&mask.geometry, &volume.geometry);
    let d = dice(&nonzero(&mask), &expected);
    assert!(d > 0.9, "Dice {d} after resizing");
    let probability = volume_output(&outputs, "probability", &store);
    let VoxelData::F32(p) = &probability.data else {
        panic!("probabilities are float32")
    };
    assert!(p.iter().all(|&v| (0.0..=1.0).contains(&v)));

    // A workflow that reads only the mask: the same mask, and no probability map computed or stored.
    let wanted = BTreeSet::from(["mask".to_string()]);
    let mask_only = run_wanting(&softmax, &volume, &store, BTreeMap::new(), Some(wanted)).unwrap();
    assert_eq!(mask_only.keys().collect::<Vec<_>>(), ["mask"]);
    assert_eq!(
        mask_only["mask"].as_artifact().unwrap().hash,
        outputs["mask"].as_artifact().unwrap().hash
    );
}

#[test]
fn mirroring_runs_every_combination_and_maps_answers_back_onto_the_source() {
    let (Some(reference), Some(volume)) = (prerequisites(), prostate_t2()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    // A per-pixel network answers a mirrored image with the mirrored answer: mirrored back and averaged,
    // the mask is the plain one. An answer left unmirrored would put the mask on the wrong side.
    let model = reference.join("threshold2d.onnx");
    let section = |mirror: &str| {
        format!(
            "  input: {{tensor: image, tiling: {{mode: slices, batch: 4}}, normalize: {{method: minmax}}{mirror}}}\n  \
             outputs:\n    mask: {{tensor: probability, threshold: 0.5}}\n"
        )
    };
    let ports = "  - {name: mask, type: mask}\n";
    let plain = plugin(dir.path(), "plain", &model, &section(""), ports);
    let mirrored = plugin(
        dir.path(),
        "mirrored",
        &model,
        &section(", mirror: [0, 1]"),
        ports,
    );
    let plain_out = run(&plain, &volume, &store).unwrap();
    let mirrored_out = run(&mirrored, &volume, &store).unwrap();
    let expected = nonzero(&volume_output(&plain_out, "mask", &store));
    let got = nonzero(&volume_output(&mirrored_out, "mask", &store));
    assert!(expected.iter().any(|&v| v) && expected.iter().any(|&v| !v));
    let differ = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
    assert!(differ * 100_000 <= got.len(), "{differ} voxels differ");
    // The same model file, other processing: the identity's hash of the model is the same, the hash of
    // its `model:` section (part of the cache key) is not.
    assert_eq!(plain.identity().sha256, mirrored.identity().sha256);
    assert_ne!(
        plain.identity().config_sha256,
        mirrored.identity().config_sha256
    );
    assert!(plain.identity().config_sha256.is_some());
    let batches = volume.geometry.dims[2].div_ceil(4);
    let provenance = &onnx_record(&mirrored_out, "mask")["onnx"];
    assert_eq!(provenance["mirror"], serde_json::json!([0, 1]));
    assert_eq!(provenance["runs"], 4 * batches, "plain, i, j, and both");
    // A step turns it off; the plain plugin has no such parameter.
    let once = run_with(
        &mirrored,
        &volume,
        &store,
        BTreeMap::from([("mirror".to_string(), Value::Bool(false))]),
    )
    .unwrap();
    let provenance = &onnx_record(&once, "mask")["onnx"];
    assert_eq!(
        (provenance["runs"].clone(), provenance["mirror"].clone()),
        (batches.into(), serde_json::json!([]))
    );
    assert!(plain.signature().params.iter().all(|p| p.name != "mirror"));
    let bad = run_with(
        &mirrored,
        &volume,
        &store,
        BTreeMap::from([("mirror".to_string(), Value::String("yes".into()))]),
    );
    assert!(bad.unwrap_err().to_string().contains("mirror"));
    // The slice axis cannot be mirrored slice by slice: the manifest is refused, naming the field.
    let folder = dir.path().join("across");
    std::fs::create_dir_all(&folder).unwrap();
    let yaml = format!(
        "name: across\nversion: 0.1.0\nkind: onnx\ninputs:\n  - {{name: volume, type: volume}}\noutputs:\n{ports}\
         model:\n  file: {}\n  sha256: {}\n{}",
        model.display(),
        sha256_of(&model),
        section(", mirror: [2]")
    );
    std::fs::write(folder.join("plugin.yaml"), yaml).unwrap();
    let err = OnnxPlugin::load(&folder, RuntimeConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.input.mirror") && err.contains("axis 2"),
        "{err}"
    );
    // A manifest cannot declare a parameter of its own under the name every onnx step takes.
    let yaml = std::fs::read_to_string(dir.path().join("mirrored/plugin.yaml")).unwrap();
    let reserved = yaml.replace("model:\n", "params:\n  mirror: {type: boolean}\nmodel:\n");
    std::fs::write(folder.join("plugin.yaml"), reserved).unwrap();
    let err = OnnxPlugin::load(&folder, RuntimeConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("parameter `mirror` is reserved"), "{err}");
}

#[test]
fn bad_models_and_shapes_are_errors_naming_the_plugin_and_tensor() {
    let (Some(_), Some(model)) = (prerequisites(), testdata("onnx/mnist-8_model_zoo.onnx")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(dir.path()).unwrap();
    let section = "  input: {tensor: Input3, tiling: {mode: image}}\n  outputs:\n    digit: {tensor: Plus214_Output_0}\n";
    let ports = "  - {name: digit, type: json}\n";
    let wrong_size = Volume::new(
        voxflow_imaging::Geometry::new([30, 30, 1], [1.0; 3]),
        VoxelData::F32(vec![0.0; 900]),
    )
    .unwrap();
    let error = run(
        &plugin(dir.path(), "mnist", &model, section, ports),
        &wrong_size,
        &store,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("onnx/mnist")
            && error.contains("Input3")
            && error.contains("[1, 1, 28, 28]"),
        "{error}"
    );

    let missing = "  input: {tensor: Input3, tiling: {mode: image}}\n  outputs:\n    digit: {tensor: no_such_output}\n";
    let digit = Volume::new(
        voxflow_imaging::Geometry::new([28, 28, 1], [1.0; 3]),
        VoxelData::F32(vec![0.0; 784]),
    )
    .unwrap();
    let error = run(
        &plugin(dir.path(), "nameless", &model, missing, ports),
        &digit,
        &store,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("no_such_output") && error.contains("Plus214_Output_0"),
        "{error}"
    );

    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"this is not a protobuf model at all").unwrap();
    let error = run(
        &plugin(dir.path(), "corrupt", &corrupt, section, ports),
        &digit,
        &store,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("onnx/corrupt") && error.contains("corrupt.onnx"),
        "{error}"
    );

    // A model plugin reads one volume; a text input is refused when the plugin is loaded.
    let text_input = dir.path().join("text-input");
    std::fs::create_dir_all(&text_input).unwrap();
    std::fs::write(
        text_input.join("plugin.yaml"),
        std::fs::read_to_string(dir.path().join("mnist/plugin.yaml"))
            .unwrap()
            .replace("name: mnist", "name: text-input")
            .replace("{name: volume, type: volume}", "{name: volume, type: text}"),
    )
    .unwrap();
    let error = OnnxPlugin::load(&text_input, RuntimeConfig::default())
        .err()
        .expect("a text input is refused")
        .to_string();
    assert!(
        error.contains("exactly one input") && error.contains("text-input"),
        "{error}"
    );

    // A pinned hash that the file does not have: refused before the model is opened.
    let pinned = plugin(dir.path(), "pinned", &model, section, ports);
    let manifest = dir.path().join("pinned/plugin.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(&sha256_of(&model), &"f".repeat(64));
    std::fs::write(&manifest, text).unwrap();
    drop(pinned);
    let pinned = OnnxPlugin::load(&dir.path().join("pinned"), RuntimeConfig::default()).unwrap();
    let error = run(&pinned, &digit, &store).unwrap_err().to_string();
    assert!(
        error.contains("pins") && error.contains("onnx/pinned"),
        "{error}"
    );
}
