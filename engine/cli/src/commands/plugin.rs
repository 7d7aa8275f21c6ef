//! `voxflow plugin build|inspect`: build a plugin's component for wasm32-wasip2 and put it next to its
//! manifest; print a plugin's manifest, ports, hash and what the component says about itself.

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
    let (manifest, dir) = Manifest::load(path)?;
    let component = manifest.component.as_ref().map(|c| dir.join(c));
    let built = component.as_ref().is_some_and(|c| c.is_file());
    let loaded = if built && manifest.kind == PluginKind::Wasm {
        let host = WasmHost::shared(Some(&global.data_dir.join("components")))?;
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
        println!("describe   {} {} (from the component)", d.name, d.version);
    }
    Ok(0)
}
