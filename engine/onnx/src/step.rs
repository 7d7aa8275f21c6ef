//! An ONNX model plugin as a voxflow step: the input volume resampled and normalized as its manifest says,
//! cut into tensors, run through the shared session, and the outputs assembled, mapped back to the source
//! grid and stored as masks, label maps, probability maps or class scores. The model's hash, the provider
//! and the threads are recorded on every output.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use voxflow_imaging::ops::{resample_onto, resample_to_spacing, AxisMap, Interpolation};
use voxflow_imaging::{Geometry, Volume, VoxelData};
use voxflow_plugin::manifest::{port_kind, PluginKind};
use voxflow_plugin::Manifest;
use voxflow_spec::types::{ArtifactKind, DataType};
use voxflow_spec::{PortSpec, StepSignature, Value};
use voxflow_steps::builtin::{read_volume, store_volume};
use voxflow_steps::{PluginIdentity, Step, StepArgs, StepContext, StepError, StepOutputs};

use crate::binary;
use crate::mirror;
use crate::regions::{self, Region};
use crate::runtime::{Provider, RuntimeConfig};
use crate::session::{shared_session, ModelSession};
use crate::spec::{Activation, ModelSpec, ModelVariant, Orientation};
use crate::stop::RunStop;
use crate::tiling::{run_tiled, Channels, Tensor, TilingError};
use crate::{values, OnnxError};

/// Step parameters every ONNX plugin takes besides its manifest's.
const PROVIDER_PARAM: &str = "provider";
const THREADS_PARAM: &str = "threads";
const VARIANT_PARAM: &str = "variant";
/// Only for plugins whose manifest declares `model.input.mirror`.
const MIRROR_PARAM: &str = "mirror";
/// The parameters above: a manifest cannot declare its own by these names.
const STEP_PARAMS: [&str; 4] = [PROVIDER_PARAM, THREADS_PARAM, VARIANT_PARAM, MIRROR_PARAM];

/// A loaded ONNX model plugin (the model itself is opened on first use).
pub struct OnnxPlugin {
    manifest: Manifest,
    spec: ModelSpec,
    dir: PathBuf,
    identity: PluginIdentity,
    signature: StepSignature,
    config: RuntimeConfig,
}

impl OnnxPlugin {
    /// Loads the plugin in `dir`: its `plugin.yaml` with a `model:` section; the model file is read (and its
    /// hash checked against the pin) when its session is first needed.
    pub fn load(dir: &Path, config: RuntimeConfig) -> Result<OnnxPlugin, OnnxError> {
        let (manifest, dir) =
            Manifest::load(dir).map_err(|e| OnnxError::Manifest(e.to_string()))?;
        let bad = |message: String| OnnxError::Manifest(format!("{}: {message}", dir.display()));
        if manifest.kind != PluginKind::Onnx {
            return Err(bad("not an onnx plugin".into()));
        }
        let spec =
            ModelSpec::from_json(manifest.model.as_ref().unwrap_or(&serde_json::Value::Null))
                .map_err(bad)?;
        let volume_input = |p: &voxflow_plugin::manifest::PortDecl| {
            !p.list
                && matches!(
                    port_kind(&p.ty),
                    Some(ArtifactKind::Volume | ArtifactKind::Mask)
                )
        };
        if manifest.inputs.len() != 1 || !volume_input(&manifest.inputs[0]) {
            return Err(bad(
                "an onnx plugin takes exactly one input, of type volume, mask or labels".into(),
            ));
        }
        for port in &manifest.outputs {
            if !spec.outputs.contains_key(&port.name) {
                return Err(bad(format!(
                    "output `{}` has no entry under model.outputs",
                    port.name
                )));
            }
        }
        if let Some(extra) = spec
            .outputs
            .keys()
            .find(|k| !manifest.outputs.iter().any(|p| &p.name == *k))
        {
            return Err(bad(format!(
                "model.outputs.{extra} is not an output port of the manifest"
            )));
        }
        if let Some(reserved) = STEP_PARAMS
            .into_iter()
            .find(|name| manifest.params.contains_key(*name))
        {
            return Err(bad(format!(
                "parameter `{reserved}` is reserved: every onnx plugin's step takes it"
            )));
        }
        let mut signature = manifest.signature();
        let site_variant = spec.preferred_variant(config.variant.as_deref());
        signature.params.push(PortSpec::optional(
            VARIANT_PARAM,
            DataType::String,
            Some(Value::String(site_variant.name.clone())),
            &format!("which model file to run: {}", spec.variant_names()),
        ));
        signature.params.push(PortSpec::optional(
            PROVIDER_PARAM,
            DataType::String,
            Some(Value::String(config.provider.name().into())),
            "where to run the model: cpu or cuda (the site's choice by default)",
        ));
        signature.params.push(PortSpec::optional(
            THREADS_PARAM,
            DataType::Integer,
            Some(Value::Number(config.intra_threads as f64)),
            "threads inside each operator",
        ));
        if !spec.input.mirror.is_empty() {
            signature.params.push(PortSpec::optional(
                MIRROR_PARAM,
                DataType::Boolean,
                Some(Value::Bool(true)),
                &format!(
                    "test-time mirroring along voxel axes {:?} (false: the network runs once)",
                    spec.input.mirror
                ),
            ));
        }
        Ok(OnnxPlugin {
            // Workflows pin the default variant's hash; the variant that ran is recorded per output.
            identity: PluginIdentity {
                name: manifest.step_name(),
                version: manifest.version.clone(),
                sha256: spec.default_variant().sha256.clone(),
                config_sha256: Some(processing_sha256(manifest.model.as_ref())),
            },
            dir,
            signature,
            spec,
            manifest,
            config,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Where a variant's model file is.
    pub fn model_path(&self, variant: &ModelVariant) -> PathBuf {
        self.dir.join(&variant.file)
    }

    /// The variant a step's parameters choose: its `variant`, else the site's where this plugin has it,
    /// else the default.
    pub fn chosen_variant(
        &self,
        params: &BTreeMap<String, Value>,
    ) -> Result<&ModelVariant, StepError> {
        match params.get(VARIANT_PARAM) {
            Some(v) => {
                let name = v.as_str().unwrap_or_default();
                self.spec
                    .variant(name)
                    .ok_or_else(|| StepError::BadArgument {
                        field: VARIANT_PARAM.into(),
                        message: format!(
                            "plugin {} has no model variant `{name}`; it has {}",
                            self.identity.name,
                            self.spec.variant_names()
                        ),
                    })
            }
            None => Ok(self.spec.preferred_variant(self.config.variant.as_deref())),
        }
    }

    /// The session for this step's variant, provider and threads.
    fn session(
        &self,
        params: &BTreeMap<String, Value>,
    ) -> Result<(Arc<ModelSession>, &ModelVariant), StepError> {
        let variant = self.chosen_variant(params)?;
        let mut config = self.config.clone();
        if let Some(p) = params.get(PROVIDER_PARAM) {
            let name = p.as_str().unwrap_or_default();
            config.provider = Provider::parse(name).ok_or_else(|| StepError::BadArgument {
                field: PROVIDER_PARAM.into(),
                message: format!("`{name}` is not cpu or cuda"),
            })?;
        }
        if let Some(t) = params.get(THREADS_PARAM) {
            config.intra_threads = t
                .as_f64()
                .filter(|&n| n.fract() == 0.0 && (1.0..=1024.0).contains(&n))
                .ok_or_else(|| StepError::BadArgument {
                    field: THREADS_PARAM.into(),
                    message: format!("{t:?} is not a thread count"),
                })? as usize;
        }
        let session =
            shared_session(&self.model_path(variant), &variant.sha256, &config).map_err(|e| {
                StepError::Failed(format!(
                    "plugin {} (model variant {}): {e}",
                    self.identity.name, variant.name
                ))
            })?;
        Ok((session, variant))
    }

    /// Runs the model on a volume: each wanted output port's raw channels on the volume's own grid (class
    /// scores on a 1x1x1 grid), and whether they are the one-channel logit difference of a two-class
    /// softmax ([`binary`]). The order follows MONAI's pipelines: orient, resample, normalize, crop; run;
    /// smooth, uncrop, map back (the activation comes after, in [`OnnxPlugin::call`]).
    fn infer(
        &self,
        session: &ModelSession,
        volume: &Volume,
        mirror_axes: &[usize],
        wanted: Option<&BTreeSet<String>>,
        cancel: &dyn Fn() -> Result<(), StepError>,
        stop: &RunStop,
    ) -> Result<(Vec<RawOutput>, usize), StepError> {
        let name = &self.identity.name;
        let input = &self.spec.input;
        let orient = input.orientation.map(|o| match o {
            Orientation::Ras => AxisMap::to_closest_ras(&volume.geometry),
            Orientation::Lps => AxisMap::to_closest_lps(&volume.geometry),
        });
        let oriented = match &orient {
            Some(map) => Cow::Owned(map.apply(volume)),
            None => Cow::Borrowed(volume),
        };
        let working = match input.spacing {
            Some(spacing) => Cow::Owned(resample_to_spacing(
                &oriented,
                spacing,
                Interpolation::LinearBorder,
            )),
            None => Cow::Borrowed(oriented.as_ref()),
        };
        let dims = working.geometry.dims;
        let mut voxels = working.data.to_f32();
        values::normalize(&mut voxels, &input.normalize);
        let region = match input.crop_foreground {
            Some(margin) => regions::foreground_region(&voxels, dims, margin),
            None => Region::all(dims),
        };
        let cropped = if region == Region::all(dims) {
            voxels
        } else {
            regions::crop(&voxels, dims, region)
        };
        // The ports to produce, and each graph output they read once, however many ports read it (the
        // session computes only those, so a branch no wanted port reads is not run).
        let ports: Vec<(&String, &crate::spec::OutputSpec)> = self
            .spec
            .outputs
            .iter()
            .filter(|(port, _)| wanted.is_none_or(|w| w.contains(*port)))
            .collect();
        let mut tensors: Vec<String> = Vec::new();
        for (_, spec) in &ports {
            if !tensors.contains(&spec.tensor) {
                tensors.push(spec.tensor.clone());
            }
        }
        // A tensor every wanted port of which reads a two-class softmax map goes on as its logit difference.
        let binary_wanted: Vec<bool> = tensors
            .iter()
            .map(|t| {
                ports
                    .iter()
                    .filter(|(_, spec)| &spec.tensor == t)
                    .all(|(port, spec)| {
                        self.manifest
                            .outputs
                            .iter()
                            .any(|p| &p.name == *port && binary::reducible(&p.ty, spec))
                    })
            })
            .collect();
        let mut differenced = vec![false; tensors.len()];
        let mut runs = 0;
        let network = |tensor: Tensor| {
            cancel()?;
            runs += 1;
            // A run the watcher stopped is the step's cancellation, not a failure of the model.
            let failed = |e| {
                cancel()
                    .err()
                    .unwrap_or_else(|| StepError::Failed(format!("plugin {name}: {e}")))
            };
            let mut answers = session
                .run(&input.tensor, &tensor, &tensors, stop)
                .map_err(failed)?;
            binary::cut_answers(&mut answers, &binary_wanted, input.layout, &mut differenced);
            Ok(answers)
        };
        let mirror_dims = mirror::tensor_dims(input, mirror_axes)
            .map_err(|e| StepError::Failed(format!("plugin {name}: {e}")))?;
        let network = mirror::mirrored(network, mirror_dims, |m| {
            StepError::Failed(format!("plugin {name}: {m}"))
        });
        let mut assembled = run_tiled(&cropped, region.size, input, tensors.len(), network)
            .map_err(|e| match e {
                TilingError::Network(e) => e,
                TilingError::Shape(m) => StepError::Failed(format!("plugin {name}: {m}")),
            })?;
        // Smoothing, uncropping and mapping back, once per (tensor, smoothing) pair; a map no later port
        // shares is moved, not copied.
        let keys: Vec<(usize, u64)> = ports
            .iter()
            .map(|(_, spec)| {
                let t = tensors.iter().position(|n| n == &spec.tensor).unwrap_or(0);
                (t, spec.smooth.to_bits())
            })
            .collect();
        let mut mapped: Vec<((usize, u64), Channels)> = Vec::new();
        let mut out = Vec::new();
        for (i, (port, spec)) in ports.iter().enumerate() {
            let key = keys[i];
            if let Some((_, done)) = mapped.iter().find(|(k, _)| *k == key) {
                out.push(((*port).clone(), done.clone()));
                continue;
            }
            let later = &keys[i + 1..];
            let t = key.0;
            let mut channels = if later.iter().any(|k| k.0 == t) {
                assembled[t].clone()
            } else {
                std::mem::replace(&mut assembled[t], Channels::zeros([0, 0, 0], 0))
            };
            if channels.dims != [1, 1, 1] {
                regions::gaussian_smooth(&mut channels, spec.smooth);
                if region != Region::all(dims) {
                    channels = regions::uncrop(&channels, dims, region);
                }
                if input.spacing.is_some() {
                    channels = map_channels(&channels, &working.geometry, |v| {
                        resample_onto(&v, &oriented.geometry, Interpolation::LinearBorder)
                    });
                }
                if let Some(map) = &orient {
                    let inverse = map.inverse();
                    channels = map_channels(&channels, &oriented.geometry, |v| inverse.apply(&v));
                }
            }
            if later.contains(&key) {
                mapped.push((key, channels.clone()));
            }
            out.push(((*port).clone(), channels));
        }
        let out = out
            .into_iter()
            .zip(&keys)
            .map(|((port, channels), key)| RawOutput {
                port,
                channels,
                logit_difference: differenced[key.0],
            })
            .collect();
        Ok((out, runs))
    }
}

/// One output port's raw values on the volume's grid, as `infer` assembles them.
struct RawOutput {
    port: String,
    channels: Channels,
    /// One channel: the logit difference of a two-class softmax ([`binary`]).
    logit_difference: bool,
}

/// sha256 of the manifest's `model:` section in canonical JSON (sorted keys): the processing around the
/// model, which the model file's own hash does not cover.
fn processing_sha256(model: Option<&serde_json::Value>) -> String {
    use sha2::{Digest, Sha256};
    let canonical = model.map(|m| m.to_string()).unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Each channel as a float volume on `grid`, transformed by `f` (which fixes the new grid).
fn map_channels(channels: &Channels, grid: &Geometry, f: impl Fn(Volume) -> Volume) -> Channels {
    let mut out: Option<Channels> = None;
    for c in 0..channels.count {
        let mapped = f(Volume {
            geometry: grid.clone(),
            data: VoxelData::F32(channels.channel(c).to_vec()),
        });
        let target =
            out.get_or_insert_with(|| Channels::zeros(mapped.geometry.dims, channels.count));
        let n = target.voxels();
        target.data[c * n..(c + 1) * n].copy_from_slice(&mapped.data.to_f32());
    }
    out.unwrap_or_else(|| Channels::zeros(grid.dims, 0))
}

/// What an output port produced.
#[derive(Debug, Clone)]
pub enum Produced {
    /// A mask, label map or probability map on the input's grid.
    Volume(Volume),
    /// Class scores.
    Json(serde_json::Value),
}

/// How a call ran: the model, where, and how many network runs it took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Provenance {
    /// The model variant that ran, and its file's sha256.
    pub variant: String,
    pub model_sha256: String,
    pub provider: Provider,
    pub intra_threads: usize,
    pub library: Option<PathBuf>,
    /// The voxel axes the input was also mirrored along (test-time augmentation); empty if none.
    pub mirror: Vec<usize>,
    /// Network runs, mirrored ones included.
    pub runs: usize,
    pub milliseconds: f64,
}

impl OnnxPlugin {
    /// One call on an in-memory volume with the step's parameters (`provider`, `threads` and the manifest's):
    /// the value of each output port in `wanted` (all of them for `None`), and how it ran. What `Step::run`
    /// and `voxflow plugin test` use. Once `cancel` answers an error, the runs stop (the one in flight is
    /// terminated: `stop::watched`) and the call returns that error.
    pub fn call(
        &self,
        volume: &Volume,
        params: &BTreeMap<String, Value>,
        wanted: Option<&BTreeSet<String>>,
        cancel: &(dyn Fn() -> Result<(), StepError> + Sync),
    ) -> Result<(Vec<(String, Produced)>, Provenance), StepError> {
        let name = &self.identity.name;
        let own: BTreeMap<String, Value> = params
            .iter()
            .filter(|(k, _)| !STEP_PARAMS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.manifest
            .checked_params(&own)
            .map_err(|message| StepError::BadArgument {
                field: "with".into(),
                message,
            })?;
        let (session, variant) = self.session(params)?;
        let mirror_axes = match params.get(MIRROR_PARAM) {
            Some(Value::Bool(false)) => Vec::new(),
            Some(Value::Bool(true)) | None => self.spec.input.mirror.clone(),
            Some(other) => {
                return Err(StepError::BadArgument {
                    field: MIRROR_PARAM.into(),
                    message: format!("{other:?} is not true or false"),
                })
            }
        };
        let started = Instant::now();
        let stopping = || cancel().is_err();
        let (outputs, runs) = crate::stop::watched(&stopping, |stop| {
            self.infer(&session, volume, &mirror_axes, wanted, cancel, stop)
        })
        .map_err(|e| StepError::Failed(format!("plugin {name}: {e}")))??;
        let provenance = Provenance {
            variant: variant.name.clone(),
            model_sha256: variant.sha256.clone(),
            provider: session.provider,
            intra_threads: session.intra_threads,
            library: crate::runtime::loaded_library().map(Path::to_path_buf),
            mirror: mirror_axes,
            runs,
            milliseconds: started.elapsed().as_secs_f64() * 1000.0,
        };
        let mut produced = Vec::new();
        for RawOutput {
            port: port_name,
            mut channels,
            logit_difference,
        } in outputs
        {
            let decl = self
                .manifest
                .outputs
                .iter()
                .find(|p| p.name == port_name)
                .ok_or_else(|| StepError::Failed(format!("no output port `{port_name}`")))?;
            let spec = &self.spec.outputs[&port_name];
            let dims = channels.dims;
            let as_volume = |data: VoxelData| -> Result<Produced, StepError> {
                if dims != volume.geometry.dims {
                    return Err(StepError::Failed(format!(
                        "plugin {name}: output `{port_name}` is scores, not a map; declare the port as json"
                    )));
                }
                Ok(Produced::Volume(Volume {
                    geometry: volume.geometry.clone(),
                    data,
                }))
            };
            if logit_difference {
                let value = as_volume(binary::port_voxels(&decl.ty, spec, &channels.data))?;
                produced.push((port_name, value));
                continue;
            }
            // Softmax keeps each voxel's winning channel: masks and label maps by argmax skip it.
            let argmax_only = matches!(decl.ty.as_str(), "mask" | "labels")
                && spec.activation == Activation::Softmax
                && channels.count > 1;
            if !argmax_only {
                values::activate(&mut channels, spec.activation);
            }
            let value = match decl.ty.as_str() {
                "mask" => as_volume(VoxelData::U8(values::mask(&channels, spec)))?,
                "labels" => as_volume(VoxelData::U8(
                    values::argmax(&channels)
                        .into_iter()
                        .map(|c| c.min(255) as u8)
                        .collect(),
                ))?,
                "volume" => {
                    let c = spec
                        .channel
                        .unwrap_or(channels.count - 1)
                        .min(channels.count - 1);
                    as_volume(VoxelData::F32(channels.channel(c).to_vec()))?
                }
                "json" => Produced::Json(values::scores_json(&channels, spec)),
                other => {
                    return Err(StepError::Failed(format!(
                    "plugin {name}: output `{port_name}` of type {other} cannot come from a model"
                )))
                }
            };
            produced.push((port_name, value));
        }
        Ok((produced, provenance))
    }
}

impl Step for OnnxPlugin {
    fn signature(&self) -> &StepSignature {
        &self.signature
    }

    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    fn run(&self, ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
        let port = &self.manifest.inputs[0];
        let Some(Value::Artifact(input)) = args.inputs.get(&port.name) else {
            return Err(StepError::BadArgument {
                field: port.name.clone(),
                message: "expects a volume artifact".into(),
            });
        };
        let volume = read_volume(ctx, &input.artifact, &port.name)?;
        let (produced, provenance) =
            self.call(&volume, &args.params, args.wanted_outputs.as_ref(), &|| {
                ctx.check_cancelled()
            })?;
        ctx.log(format!(
            "onnx: {} model variant {} (sha256 {}) on {} with {} threads, {} runs in {:.0} ms",
            self.identity.name,
            provenance.variant,
            provenance.model_sha256,
            provenance.provider.name(),
            provenance.intra_threads,
            provenance.runs,
            provenance.milliseconds
        ));
        let recorded = serde_json::json!({ "onnx": provenance });
        let mut stored = StepOutputs::new();
        for (port_name, value) in produced {
            let kind = self
                .manifest
                .outputs
                .iter()
                .find(|p| p.name == port_name)
                .and_then(|p| port_kind(&p.ty))
                .unwrap_or(ArtifactKind::File);
            let mut artifact = match value {
                Produced::Volume(v) => store_volume(ctx, &v, kind, &format!("{port_name}.nii.gz"))?,
                Produced::Json(json) => ctx.artifacts.put_bytes(
                    json.to_string().as_bytes(),
                    ArtifactKind::Json,
                    None,
                    Some(&format!("{port_name}.json")),
                )?,
            };
            artifact.metadata = Some(recorded.clone());
            stored.insert(port_name, Value::artifact(artifact));
        }
        Ok(stored)
    }
}
