//! The `model:` section of an ONNX plugin's `plugin.yaml`: which model file (and its sha256), how a volume
//! becomes the network's input tensor (tiling, resampling, normalization, layout), and how each output
//! tensor becomes the value of an output port.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The whole section. One model is `file` + `sha256`; several variants of the same network (fp32 and int8,
/// say) are `variants:`, the first being the default, and a site or a step picks one by name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The model, relative to the plugin's folder (one-variant form).
    #[serde(default)]
    file: Option<PathBuf>,
    /// Its sha256 (hex); the plugin refuses to load a file that differs.
    #[serde(default)]
    sha256: Option<String>,
    /// Files of the same network the site or step chooses between; after reading, always at least one
    /// (the one-variant form becomes a variant named `default`).
    #[serde(default)]
    pub variants: Vec<ModelVariant>,
    pub input: InputSpec,
    /// By output port name.
    pub outputs: BTreeMap<String, OutputSpec>,
}

/// One file of the network: a name to choose it by, the file and its pinned sha256.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelVariant {
    pub name: String,
    pub file: PathBuf,
    pub sha256: String,
    /// What sets it apart (e.g. "int8 weights, dynamic quantization").
    #[serde(default)]
    pub description: Option<String>,
}

/// The name the one-variant form's model goes by.
pub const DEFAULT_VARIANT: &str = "default";

/// How the input volume becomes tensors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The graph input's name.
    pub tensor: String,
    /// Memory order of the tensor: `nchw` (2D, default), `nhwc` (2D, channels last) or `ncdhw` (3D).
    #[serde(default)]
    pub layout: Layout,
    pub tiling: Tiling,
    /// Reorder the voxel axes to the closest patient orientation first (`ras`, as nibabel's closest
    /// canonical and MONAI's `Orientation("RAS")`; `lps`, DICOM's); outputs are reordered back.
    #[serde(default)]
    pub orientation: Option<Orientation>,
    /// Resample to this spacing (mm, i j k) first; outputs are mapped back to the source grid.
    #[serde(default)]
    pub spacing: Option<[f64; 3]>,
    /// After normalization, run the network only on the bounding box of the values above zero grown by
    /// this many voxels (MONAI's `CropForeground`); outside it the outputs are zero.
    #[serde(default)]
    pub crop_foreground: Option<usize>,
    #[serde(default)]
    pub normalize: Normalize,
    /// Channels the network takes; one grey channel is repeated to fill them (e.g. 3 for RGB models).
    /// With `context`, the neighbouring slices are the channels instead.
    #[serde(default = "one")]
    pub channels: usize,
    /// Test-time augmentation: voxel axes (0 = i, 1 = j, 2 = k, after `orientation`) the network also
    /// sees its input mirrored along, in every combination; the raw outputs are mirrored back and
    /// averaged (as nnU-Net's mirroring). `[0]` runs the network twice, `[0, 1]` four times.
    #[serde(default)]
    pub mirror: Vec<usize>,
}

fn one() -> usize {
    1
}

/// Memory order of the network's input and output tensors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// 2D: [N, C, rows, columns].
    #[default]
    Nchw,
    /// 2D, channels last: [N, rows, columns, C].
    Nhwc,
    /// 3D: [N, C, k, j, i] (i fastest, as voxflow stores volumes).
    Ncdhw,
    /// 3D: [N, C, i, j, k] (k fastest, as a NIfTI array in numpy, MONAI and nnU-Net).
    Ncijk,
}

impl Layout {
    pub fn is_3d(self) -> bool {
        matches!(self, Layout::Ncdhw | Layout::Ncijk)
    }
}

/// A patient orientation to bring the voxel axes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    Ras,
    Lps,
}

/// How the volume is cut into the network's inputs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiling {
    pub mode: TilingMode,
    /// `slices`: the voxel axis the slices are taken across (0 = i, 1 = j, 2 = k, the default).
    #[serde(default = "axis_k")]
    pub axis: usize,
    /// Tensors per run (`slices`, `patches`).
    #[serde(default = "one")]
    pub batch: usize,
    /// `slices`, `grid`: neighbouring slices on each side given as extra channels (2.5D).
    #[serde(default)]
    pub context: usize,
    /// `slices`, `grid`: slices between a slice and each of its `context` neighbours (1: the next ones).
    #[serde(default = "one")]
    pub context_step: usize,
    /// `image`, `slices`: resize each slice to [width, height] (bilinear) and map outputs back.
    #[serde(default)]
    pub size: Option<[usize; 2]>,
    /// `slices`: the centred fraction (0 < crop <= 1) of each slice, along both in-plane axes, that the
    /// network sees (before `size`); `grid`: of the volume along i and j (all of k). Outside it, outputs
    /// take the value at the nearest edge of the crop.
    #[serde(default)]
    pub crop: Option<f64>,
    /// `grid`: the voxels along i, j, k that the (cropped) volume is resampled onto before it is sliced.
    #[serde(default)]
    pub grid: Option<[usize; 3]>,
    /// `patches`: patch size in voxels along i, j, k.
    #[serde(default)]
    pub patch: Option<[usize; 3]>,
    /// `patches`: fraction of a patch that neighbouring patches share (0 <= overlap < 1).
    #[serde(default = "half")]
    pub overlap: f64,
    /// `patches`: how overlapping predictions are combined.
    #[serde(default)]
    pub blend: Blend,
}

fn axis_k() -> usize {
    2
}

fn half() -> f64 {
    0.5
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TilingMode {
    /// One 2D image (a one-slice volume, e.g. an X-ray or a picture): classifiers.
    Image,
    /// Every slice across `axis`, in batches: 2D (or 2.5D) networks on 3D volumes.
    Slices,
    /// 3D patches with overlap, blended: 3D networks on volumes larger than their input.
    Patches,
    /// The volume (its centred `crop` along i and j, all of k) resampled trilinear onto `grid` voxels, then
    /// every slice of that grid across `axis` as `slices` takes them; outputs resampled back. For 2D
    /// networks trained on the other planes (sagittal, coronal) of a resampled volume.
    Grid,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Blend {
    /// Weights falling off from the patch centre (sigma = patch / 8), as MONAI's sliding window.
    #[default]
    Gaussian,
    /// Every voxel of a patch counts the same.
    Constant,
}

/// Intensity normalization, computed over the whole (resampled) volume.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    #[serde(default)]
    pub method: NormalizeMethod,
    /// `zscore`: statistics of the non-zero voxels only.
    #[serde(default)]
    pub nonzero: bool,
    /// `percentile`: the percentiles clipped to and scaled to [0, 1].
    #[serde(default = "low_percentile")]
    pub lower: f64,
    #[serde(default = "high_percentile")]
    pub upper: f64,
    /// `scale`: value * scale + offset.
    #[serde(default = "unit")]
    pub scale: f64,
    #[serde(default)]
    pub offset: f64,
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize {
            method: NormalizeMethod::None,
            nonzero: false,
            lower: low_percentile(),
            upper: high_percentile(),
            scale: unit(),
            offset: 0.0,
        }
    }
}

fn low_percentile() -> f64 {
    0.5
}

fn high_percentile() -> f64 {
    99.5
}

fn unit() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalizeMethod {
    /// The stored values as they are.
    #[default]
    None,
    /// (v - mean) / std.
    Zscore,
    /// Clipped to the lower/upper percentiles, scaled to [0, 1].
    Percentile,
    /// Scaled so the minimum is 0 and the maximum 1.
    Minmax,
    /// v * scale + offset.
    Scale,
}

/// How one output tensor becomes a port's value; what it becomes follows from the port's type: `mask`
/// (foreground where the chosen channel wins, or above `threshold` for one channel), `labels` (the winning
/// channel per voxel), `volume` (the chosen channel's probability) or `json` (class scores of an `image`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The graph output's name.
    pub tensor: String,
    #[serde(default)]
    pub activation: Activation,
    /// The foreground channel (`mask`, `volume`); default: any channel but 0 for `mask`, the last for
    /// `volume`.
    #[serde(default)]
    pub channel: Option<usize>,
    /// One-channel outputs: foreground above this (after the activation).
    #[serde(default = "half")]
    pub threshold: f64,
    /// `json`: names of the classes, in channel order.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Gaussian smoothing of the raw outputs before anything else (sigma in voxels of the network's grid).
    #[serde(default)]
    pub smooth: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// The network's outputs as they are (already probabilities, or raw scores).
    #[default]
    None,
    /// Across channels.
    Softmax,
    /// Per channel.
    Sigmoid,
}

impl ModelSpec {
    /// The section from the manifest's `model:` value; the error names the field.
    pub fn from_json(value: &serde_json::Value) -> Result<ModelSpec, String> {
        let mut spec: ModelSpec =
            serde_json::from_value(value.clone()).map_err(|e| format!("model: {e}"))?;
        spec.gather_variants()?;
        spec.check()?;
        Ok(spec)
    }

    /// The default variant (the first).
    pub fn default_variant(&self) -> &ModelVariant {
        &self.variants[0]
    }

    /// The variant called `name`.
    pub fn variant(&self, name: &str) -> Option<&ModelVariant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// The variant a site that prefers `preferred` runs: that one where it is listed, else the default.
    pub fn preferred_variant(&self, preferred: Option<&str>) -> &ModelVariant {
        preferred
            .and_then(|name| self.variant(name))
            .unwrap_or(self.default_variant())
    }

    /// The variants' names, for messages: "fp32, int8".
    pub fn variant_names(&self) -> String {
        let names: Vec<&str> = self.variants.iter().map(|v| v.name.as_str()).collect();
        names.join(", ")
    }

    /// Turns the one-variant form into a variant named `default`; refuses a mix of the two forms,
    /// repeated names and sha256 pins that are not 64 hex digits.
    fn gather_variants(&mut self) -> Result<(), String> {
        match (self.file.take(), self.sha256.take(), self.variants.is_empty()) {
            (Some(file), Some(sha256), true) => self.variants.push(ModelVariant {
                name: DEFAULT_VARIANT.into(),
                file,
                sha256,
                description: None,
            }),
            (None, None, false) => {}
            (None, None, true) => {
                return Err("model: name the model with `file` and `sha256`, or list `variants`".into())
            }
            (Some(_), None, _) | (None, Some(_), true) => {
                return Err("model: `file` and `sha256` go together".into())
            }
            (_, _, false) => {
                return Err(
                    "model: `file`/`sha256` and `variants` cannot both be given; list the file as the first variant"
                        .into(),
                )
            }
        }
        for (n, variant) in self.variants.iter_mut().enumerate() {
            let at = format!("model.variants[{n}]");
            if variant.name.is_empty()
                || !variant
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "{at}.name `{}` must be letters, digits, - or _",
                    variant.name
                ));
            }
            if variant.sha256.len() != 64 || !variant.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(format!(
                    "{at}.sha256 `{}` is not 64 hex digits",
                    variant.sha256
                ));
            }
            variant.sha256.make_ascii_lowercase();
        }
        for (n, variant) in self.variants.iter().enumerate() {
            if self.variants[..n].iter().any(|v| v.name == variant.name) {
                return Err(format!(
                    "model.variants: `{}` is listed twice",
                    variant.name
                ));
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        let t = &self.input.tiling;
        if t.axis > 2 {
            return Err(format!(
                "model.input.tiling.axis {} is not 0, 1 or 2",
                t.axis
            ));
        }
        if t.batch == 0 {
            return Err("model.input.tiling.batch must be at least 1".into());
        }
        if !(0.0..1.0).contains(&t.overlap) {
            return Err(format!(
                "model.input.tiling.overlap {} is outside 0..1",
                t.overlap
            ));
        }
        match (t.mode, self.input.layout.is_3d()) {
            (TilingMode::Patches, true) if t.patch.is_none_or(|p| p.contains(&0)) => {
                return Err("model.input.tiling: patches need `patch: [i, j, k]` voxels".into());
            }
            (TilingMode::Patches, true) => {}
            (TilingMode::Patches, false) => {
                return Err("model.input: 3D patches need layout ncdhw or ncijk".into());
            }
            (_, true) => {
                return Err("model.input: layouts ncdhw and ncijk are for 3D patches".into());
            }
            _ => {}
        }
        if let Some(crop) = t.crop {
            if !(crop > 0.0 && crop <= 1.0) {
                return Err(format!("model.input.tiling.crop {crop} is outside (0, 1]"));
            }
            if !matches!(t.mode, TilingMode::Slices | TilingMode::Grid) {
                return Err("model.input.tiling.crop is for `mode: slices` or `mode: grid`".into());
            }
        }
        if t.size.is_some_and(|s| s.contains(&0)) {
            return Err("model.input.tiling.size has a zero".into());
        }
        if t.context_step == 0 {
            return Err("model.input.tiling.context_step must be at least 1".into());
        }
        match (t.mode, t.grid) {
            (TilingMode::Grid, None) => {
                return Err(
                    "model.input.tiling: `mode: grid` needs `grid: [i, j, k]` voxels".into(),
                )
            }
            (TilingMode::Grid, Some(g)) if g.contains(&0) => {
                return Err(format!("model.input.tiling.grid {g:?} has a zero"));
            }
            (TilingMode::Grid, _) if t.size.is_some() => {
                return Err(
                    "model.input.tiling.size: `mode: grid` slices the grid as it is; give its size in `grid`"
                        .into(),
                );
            }
            (TilingMode::Grid, _) | (_, None) => {}
            (_, Some(_)) => return Err("model.input.tiling.grid is for `mode: grid`".into()),
        }
        if self.input.channels == 0 {
            return Err("model.input.channels must be at least 1".into());
        }
        if t.context > 0 && self.input.channels != 2 * t.context + 1 {
            return Err(format!(
                "model.input: context {} gives {} channels, but channels is {}",
                t.context,
                2 * t.context + 1,
                self.input.channels
            ));
        }
        if let Some(s) = self.input.spacing {
            if s.iter().any(|&v| v <= 0.0 || !v.is_finite()) {
                return Err(format!("model.input.spacing {s:?} must be positive"));
            }
        }
        if let Some((port, _)) = self
            .outputs
            .iter()
            .find(|(_, o)| !o.smooth.is_finite() || o.smooth < 0.0)
        {
            return Err(format!("model.outputs.{port}.smooth must be 0 or more"));
        }
        if self.outputs.is_empty() {
            return Err("model.outputs names no output port".into());
        }
        let mut axes = self.input.mirror.clone();
        axes.sort_unstable();
        axes.dedup();
        if axes.len() != self.input.mirror.len() {
            return Err("model.input.mirror names an axis twice".into());
        }
        crate::mirror::tensor_dims(&self.input, &self.input.mirror)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_slice_wise_section_and_names_bad_fields() {
        let ok = serde_json::json!({
            "file": "m.onnx", "sha256": "a".repeat(64),
            "input": {"tensor": "image", "tiling": {"mode": "slices", "batch": 4, "size": [256, 256]},
                      "normalize": {"method": "percentile"}},
            "outputs": {"mask": {"tensor": "logits", "activation": "softmax"}}
        });
        let spec = ModelSpec::from_json(&ok).unwrap();
        assert_eq!(spec.input.tiling.axis, 2);
        assert_eq!(spec.input.normalize.upper, 99.5);
        let mut bad = ok.clone();
        bad["input"]["tiling"]["mode"] = "tiles".into();
        assert!(ModelSpec::from_json(&bad).unwrap_err().contains("tiles"));
        let mut bad = ok.clone();
        bad["input"]["tiling"]["stride"] = 2.into();
        assert!(ModelSpec::from_json(&bad).unwrap_err().contains("stride"));
        let mut bad = ok.clone();
        bad["input"]["tiling"]["mode"] = "patches".into();
        assert!(ModelSpec::from_json(&bad).unwrap_err().contains("ncijk"));
        let mut cropped = ok.clone();
        cropped["input"]["tiling"]["crop"] = 0.6.into();
        assert_eq!(
            ModelSpec::from_json(&cropped).unwrap().input.tiling.crop,
            Some(0.6)
        );
        cropped["input"]["tiling"]["crop"] = 1.5.into();
        assert!(ModelSpec::from_json(&cropped)
            .unwrap_err()
            .contains("tiling.crop 1.5"));
        cropped["input"]["tiling"]["crop"] = 0.5.into();
        cropped["input"]["tiling"]["mode"] = "image".into();
        assert!(ModelSpec::from_json(&cropped)
            .unwrap_err()
            .contains("mode: slices"));
        let mut bad = ok.clone();
        bad["input"]["tiling"]["context_step"] = 0.into();
        assert!(ModelSpec::from_json(&bad)
            .unwrap_err()
            .contains("context_step"));
        let mut bad = ok.clone();
        bad["sha256"] = "xyz".into();
        assert!(ModelSpec::from_json(&bad).unwrap_err().contains("sha256"));
        assert_eq!(spec.variants.len(), 1);
        assert_eq!(spec.default_variant().name, DEFAULT_VARIANT);
    }

    #[test]
    fn reads_a_grid_section_and_refuses_what_a_grid_cannot_use() {
        let section = |tiling: serde_json::Value| {
            serde_json::json!({
                "file": "m.onnx", "sha256": "a".repeat(64),
                "input": {"tensor": "image", "tiling": tiling, "channels": 3},
                "outputs": {"mask": {"tensor": "logits"}}
            })
        };
        let ok = serde_json::json!({"mode": "grid", "axis": 0, "grid": [128, 128, 128], "crop": 0.6,
                                    "context": 1, "context_step": 2});
        let tiling = ModelSpec::from_json(&section(ok.clone()))
            .unwrap()
            .input
            .tiling;
        assert_eq!(
            (tiling.mode, tiling.grid, tiling.context_step),
            (TilingMode::Grid, Some([128; 3]), 2)
        );
        let refused = |change: &dyn Fn(&mut serde_json::Value), expected: &str| {
            let mut t = ok.clone();
            change(&mut t);
            let e = ModelSpec::from_json(&section(t)).unwrap_err();
            assert!(e.contains(expected), "{e}");
        };
        refused(
            &|t| _ = t.as_object_mut().unwrap().remove("grid"),
            "needs `grid",
        );
        refused(
            &|t| t["grid"] = serde_json::json!([128, 0, 128]),
            "has a zero",
        );
        refused(
            &|t| t["size"] = serde_json::json!([64, 64]),
            "give its size in `grid`",
        );
        refused(&|t| t["mode"] = "slices".into(), "is for `mode: grid`");
    }

    #[test]
    fn reads_variants_first_one_default_and_refuses_mixed_or_repeated_forms() {
        let section = |variants: serde_json::Value| {
            serde_json::json!({
                "variants": variants,
                "input": {"tensor": "x", "tiling": {"mode": "image"}},
                "outputs": {"scores": {"tensor": "y"}}
            })
        };
        let two = serde_json::json!([
            {"name": "fp32", "file": "m.onnx", "sha256": "A".repeat(64)},
            {"name": "int8", "file": "m.int8.onnx", "sha256": "b".repeat(64), "description": "dynamic"}
        ]);
        let spec = ModelSpec::from_json(&section(two.clone())).unwrap();
        assert_eq!(spec.default_variant().name, "fp32");
        assert_eq!(spec.default_variant().sha256, "a".repeat(64));
        assert_eq!(
            spec.variant("int8").unwrap().file,
            PathBuf::from("m.int8.onnx")
        );
        assert!(spec.variant("fp16").is_none());

        let mut repeated = two.clone();
        repeated[1]["name"] = "fp32".into();
        let e = ModelSpec::from_json(&section(repeated)).unwrap_err();
        assert!(e.contains("`fp32` is listed twice"), "{e}");
        let mut short = two.clone();
        short[1]["sha256"] = "b".into();
        let e = ModelSpec::from_json(&section(short)).unwrap_err();
        assert!(e.contains("model.variants[1].sha256"), "{e}");
        let mut mixed = section(two);
        mixed["file"] = "m.onnx".into();
        mixed["sha256"] = "c".repeat(64).into();
        assert!(ModelSpec::from_json(&mixed)
            .unwrap_err()
            .contains("cannot both"));
        let e = ModelSpec::from_json(&section(serde_json::json!([]))).unwrap_err();
        assert!(e.contains("list `variants`"), "{e}");
    }
}
