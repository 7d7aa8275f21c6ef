//! `voxflow plugin new|build|test|inspect`: create a plugin from the template, build its component for
//! wasm32-wasip2 next to its manifest, run it once on files, and print a plugin's manifest, ports, hash and
//! what the component (or an ONNX model's graph) says about itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Subcommand;
use sha2::{Digest, Sha256};
use voxflow_plugin::{Manifest, PluginKind, WasmHost, WasmPlugin};

use crate::settings::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a working plugin from the SDK's template in DIR/NAME (then `voxflow plugin build DIR/NAME`).
    New {
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The voxflow plugin SDK (plugins/sdk of a voxflow checkout).
        #[arg(long, default_value = "plugins/sdk")]
        sdk: PathBuf,
    },
    /// Build DIR's component (`cargo build --release --target wasm32-wasip2`) and place it next to its
    /// plugin.yaml, where the engine loads it from.
    Build { dir: PathBuf },
    /// Run a built plugin once on files, without a workflow: each `--input NAME=PATH` is a NIfTI file or
    /// a DICOM series folder (repeat a name for a list port); outputs are written to `--out`.
    Test {
        dir: PathBuf,
        #[arg(long = "input", short = 'i', value_name = "NAME=PATH")]
        inputs: Vec<String>,
        /// A parameter; the value is read as JSON when it parses, else as a string.
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Print a plugin's manifest, ports, parameters, limits and component hash (DIR or DIR/plugin.yaml).
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(global: &GlobalArgs, command: PluginCommand) -> anyhow::Result<u8> {
    match command {
        PluginCommand::New { name, dir, sdk } => new(&name, &dir, &sdk).map(|_| 0),
        PluginCommand::Build { dir } => build(&dir).map(|_| 0),
        PluginCommand::Inspect { path, json } => inspect(global, &path, json),
        PluginCommand::Test {
            dir,
            inputs,
            params,
            out,
        } => test(global, &dir, &inputs, &params, &out),
    }
}

const TEMPLATE_CARGO: &str = include_str!("../../../../plugins/sdk/template/Cargo.toml.tmpl");
const TEMPLATE_MANIFEST: &str = include_str!("../../../../plugins/sdk/template/plugin.yaml.tmpl");
const TEMPLATE_LIB: &str = include_str!("../../../../plugins/sdk/template/lib.rs.tmpl");

/// Writes a new plugin from the template; returns its folder.
pub fn new(name: &str, dir: &Path, sdk: &Path) -> anyhow::Result<PathBuf> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
    {
        bail!("plugin name `{name}`: use lower-case letters, digits and `-`");
    }
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the plugin SDK is not at {} (pass --sdk PATH/TO/voxflow/plugins/sdk)",
            sdk.display()
        )
    })?;
    let folder = dir.join(name);
    if folder.exists() {
        bail!("{} exists already", folder.display());
    }
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    std::fs::create_dir_all(folder.join("src"))?;
    std::fs::write(folder.join("Cargo.toml"), fill(TEMPLATE_CARGO))?;
    std::fs::write(folder.join("plugin.yaml"), fill(TEMPLATE_MANIFEST))?;
    std::fs::write(folder.join("src/lib.rs"), fill(TEMPLATE_LIB))?;
    println!(
        "created {0}: edit src/lib.rs and plugin.yaml, then `voxflow plugin build {0}`",
        folder.display()
    );
    Ok(folder)
}

/// Builds the component and copies it to where the manifest says it is; returns that path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let (manifest, dir) = Manifest::load(dir)?;
    if manifest.kind != PluginKind::Wasm {
        bail!("{}: only wasm plugins are built", dir.display());
    }
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo (is Rust installed? `rustup target add wasm32-wasip2` too)")?;
    if !output.status.success() {
        bail!(
            "building {} failed (does `rustup target add wasm32-wasip2` need running?)",
            dir.display()
        );
    }
    // The last artifact cargo reports for this package's library is the component.
    let built = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm file: is the crate-type cdylib?")?;
    let target = dir.join(
        manifest
            .component
            .as_deref()
            .unwrap_or(Path::new("plugin.wasm")),
    );
    let tmp = target.with_extension("wasm.partial");
    std::fs::copy(&built, &tmp)
        .with_context(|| format!("cannot copy {} to {}", built.display(), tmp.display()))?;
    std::fs::rename(&tmp, &target)?;
    let bytes = std::fs::read(&target)?;
    println!(
        "built {} ({} bytes, sha256 {})",
        target.display(),
        bytes.len(),
        hex::encode(Sha256::digest(&bytes))
    );
    Ok(target)
}

fn inspect(global: &GlobalArgs, path: &Path, json: bool) -> anyhow::Result<u8> {
    if path.extension().is_some_and(|e| e == "onnx") {
        return inspect_model(global, path, json);
    }
    let (manifest, dir) = Manifest::load(path)?;
    if manifest.kind == PluginKind::Onnx {
        let plugin = voxflow_onnx::OnnxPlugin::load(&dir, global.onnx_config()?)?;
        let chosen = plugin
            .chosen_variant(&Default::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !json {
            println!("plugin     {} {}", manifest.step_name(), manifest.version);
            for variant in &plugin.spec().variants {
                println!(
                    "variant    {}{}: {} (sha256 {}){}",
                    variant.name,
                    if variant.name == chosen.name {
                        " (runs here)"
                    } else {
                        ""
                    },
                    plugin.model_path(variant).display(),
                    variant.sha256,
                    variant
                        .description
                        .as_ref()
                        .map(|d| format!(" {d}"))
                        .unwrap_or_default()
                );
            }
        }
        return inspect_model(global, &plugin.model_path(chosen), json);
    }
    let component = manifest.component.as_ref().map(|c| dir.join(c));
    let built = component.as_ref().is_some_and(|c| c.is_file());
    let loaded = if built && manifest.kind == PluginKind::Wasm {
        let host = WasmHost::shared(Some(&global.component_cache()))?;
        Some(WasmPlugin::load(host, &dir)?)
    } else {
        None
    };
    let described = match &loaded {
        Some(p) => Some(p.describe().map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let sha256 = loaded
        .as_ref()
        .map(|p| voxflow_steps::Step::identity(p).sha256.clone());
    if json {
        let doc = serde_json::json!({
            "name": manifest.step_name(),
            "version": manifest.version,
            "component": component,
            "sha256": sha256,
            "inputs": manifest.inputs.iter().map(|p| serde_json::json!({"name": p.name, "type": p.ty, "list": p.list, "optional": p.optional})).collect::<Vec<_>>(),
            "outputs": manifest.outputs.iter().map(|p| serde_json::json!({"name": p.name, "type": p.ty})).collect::<Vec<_>>(),
            "params": manifest.params.keys().collect::<Vec<_>>(),
            "limits": {"memory_mb": manifest.limits.memory_mb, "timeout_s": manifest.limits.timeout.as_secs_f64()},
            "describe": described,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    println!("plugin     {} {}", manifest.step_name(), manifest.version);
    if !manifest.description.is_empty() {
        println!("           {}", manifest.description.trim());
    }
    match (&component, &sha256) {
        (Some(c), Some(h)) => println!("component  {} (sha256 {h})", c.display()),
        (Some(c), None) => println!(
            "component  {} (not built: voxflow plugin build {})",
            c.display(),
            dir.display()
        ),
        (None, _) => {}
    }
    for p in &manifest.inputs {
        println!(
            "input      {}: {}{}{}",
            p.name,
            p.ty,
            if p.list { " (list)" } else { "" },
            if p.optional { " (optional)" } else { "" }
        );
    }
    for p in &manifest.outputs {
        println!("output     {}: {}", p.name, p.ty);
    }
    for (name, p) in &manifest.params {
        let default = p
            .default
            .as_ref()
            .map(|d| format!(" = {d}"))
            .unwrap_or_default();
        println!("param      {name}: {}{default}", p.ty);
    }
    println!(
        "limits     {} MiB memory, {:?} per call; no network, no files, no environment",
        manifest.limits.memory_mb, manifest.limits.timeout
    );
    if let Some(d) = described {
        println!(
            "describe   {} {} (from the component; agrees with plugin.yaml)",
            d.name, d.version
        );
    }
    Ok(0)
}

/// What a model file's graph takes and returns, so an author can write the manifest's `model:` section.
fn inspect_model(global: &GlobalArgs, path: &Path, json: bool) -> anyhow::Result<u8> {
    let info = voxflow_onnx::inspect_model(path, &global.onnx_config()?)?;
    let sha256 = &info.sha256;
    if json {
        let mut doc = serde_json::to_value(&info)?;
        doc["file"] = path.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    println!("file       {} (sha256 {sha256})", path.display());
    if let Some(p) = &info.producer {
        println!("producer   {p}");
    }
    for (domain, version) in &info.opsets {
        let domain = if domain.is_empty() { "ai.onnx" } else { domain };
        println!("opset      {domain} {version}");
    }
    let dims = |t: &voxflow_onnx::TensorInfo| {
        t.shape
            .iter()
            .enumerate()
            .map(|(i, &d)| match t.symbols.get(i).filter(|s| !s.is_empty()) {
                Some(s) if d < 0 => s.clone(),
                _ if d < 0 => "?".to_string(),
                _ => d.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for t in &info.inputs {
        println!("input      {}: {} [{}]", t.name, t.dtype, dims(t));
    }
    for t in &info.outputs {
        println!("output     {}: {} [{}]", t.name, t.dtype, dims(t));
    }
    Ok(0)
}

fn split_pair<'a>(text: &'a str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .with_context(|| format!("{what} `{text}`: write NAME=VALUE"))
}

fn load_volume(path: &Path) -> anyhow::Result<voxflow_imaging::Volume> {
    use voxflow_imaging::{dicom::SeriesRule, source::load_source};
    Ok(load_source(path, &SeriesRule::default())?.volume)
}

/// `--param NAME=VALUE`s: the value as JSON when it parses, else as a string.
fn parse_params(
    params: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, voxflow_spec::Value>> {
    let mut values = std::collections::BTreeMap::new();
    for text in params {
        let (name, raw) = split_pair(text, "--param")?;
        let json = serde_json::from_str(raw).unwrap_or(serde_json::Value::String(raw.to_string()));
        values.insert(name.to_string(), voxflow_spec::Value::from_json(json));
    }
    Ok(values)
}

fn write_volume_output(name: &str, v: &voxflow_imaging::Volume, out: &Path) -> anyhow::Result<()> {
    let path = out.join(format!("{name}.nii.gz"));
    voxflow_imaging::nifti::write_nifti(v, &path, &format!("voxflow plugin test {name}"))?;
    let nonzero = v.data.to_f64().iter().filter(|&&x| x != 0.0).count();
    println!(
        "{name}: {:?} {} volume, {nonzero} non-zero voxels -> {}",
        v.dims(),
        v.data.dtype(),
        path.display()
    );
    Ok(())
}

/// `plugin test` for an ONNX model plugin: its one input volume through the model.
fn test_model(
    global: &GlobalArgs,
    dir: &Path,
    inputs: &[String],
    params: &[String],
    out: &Path,
) -> anyhow::Result<u8> {
    let plugin = voxflow_onnx::OnnxPlugin::load(dir, global.onnx_config()?)?;
    let [input] = inputs else {
        bail!("an ONNX plugin takes one --input NAME=PATH");
    };
    let (name, path) = split_pair(input, "--input")?;
    let port = &plugin.manifest().inputs[0].name;
    if name != port {
        bail!("--input {name}: this plugin's input is `{port}`");
    }
    let volume = load_volume(Path::new(path)).with_context(|| format!("input `{name}`"))?;
    let values = parse_params(params)?;
    let (produced, provenance) = match plugin.call(&volume, &values, None, &|| Ok(())) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(crate::EXIT_FAILED);
        }
    };
    std::fs::create_dir_all(out)?;
    for (name, value) in produced {
        match value {
            voxflow_onnx::Produced::Volume(v) => write_volume_output(&name, &v, out)?,
            voxflow_onnx::Produced::Json(j) => println!("{name}: {j}"),
        }
    }
    println!(
        "ran in {:.1} ms (model variant {}, {} network runs on {} with {} threads)",
        provenance.milliseconds,
        provenance.variant,
        provenance.runs,
        provenance.provider.name(),
        provenance.intra_threads
    );
    Ok(0)
}

fn test(
    global: &GlobalArgs,
    dir: &Path,
    inputs: &[String],
    params: &[String],
    out: &Path,
) -> anyhow::Result<u8> {
    let (manifest, _) = Manifest::load(dir)?;
    if manifest.kind == PluginKind::Onnx {
        return test_model(global, dir, inputs, params, out);
    }
    let host = WasmHost::shared(Some(&global.component_cache()))?;
    let plugin = WasmPlugin::load(host, dir)?;
    let mut named: Vec<(String, Vec<voxflow_imaging::Volume>)> = Vec::new();
    for text in inputs {
        let (name, path) = split_pair(text, "--input")?;
        let volume = load_volume(Path::new(path)).with_context(|| format!("input `{name}`"))?;
        match named.iter_mut().find(|(n, _)| n == name) {
            Some((_, list)) => list.push(volume),
            None => named.push((name.to_string(), vec![volume])),
        }
    }
    let values = parse_params(params)?;
    let started = std::time::Instant::now();
    let result = plugin.call_volumes(&named, &values);
    let elapsed = started.elapsed();
    let (outputs, log) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(crate::EXIT_FAILED);
        }
    };
    for line in log {
        println!("log: {line}");
    }
    std::fs::create_dir_all(out)?;
    for (name, value) in outputs {
        match value {
            voxflow_plugin::CallOutput::Volume(v) => write_volume_output(&name, &v, out)?,
            voxflow_plugin::CallOutput::Volumes(vs) => {
                for (i, v) in vs.iter().enumerate() {
                    let path = out.join(format!("{name}-{i}.nii.gz"));
                    voxflow_imaging::nifti::write_nifti(
                        v,
                        &path,
                        &format!("voxflow plugin test {name}"),
                    )?;
                    println!("{name}[{i}]: {:?} -> {}", v.dims(), path.display());
                }
            }
            voxflow_plugin::CallOutput::Text(t) => println!("{name}: {t}"),
            voxflow_plugin::CallOutput::Json(j) => println!("{name}: {j}"),
        }
    }
    println!("ran in {:.1} ms", elapsed.as_secs_f64() * 1000.0);
    Ok(0)
}
