//! Imaging built-ins: `builtin/load-volume` (a DICOM series or a NIfTI file into a volume artifact),
//! `builtin/write-nifti`, `builtin/write-png`, `builtin/write-dicom-seg` and `builtin/threshold`. Volume
//! and mask artifacts are stored as gzipped NIfTI-1, so any tool can open them and their hash is the hash
//! of a standard file.

use std::path::Path;

use voxflow_imaging::dicom::{
    layout, scan, write_seg, Algorithm, Code, SegmentDescription, SeriesRule,
};
use voxflow_imaging::nifti::{decode_nifti_file, write_nifti_gz_to};
use voxflow_imaging::ops::{resample_onto, Interpolation};
use voxflow_imaging::png::{render_png, PngOptions};
use voxflow_imaging::source::{load_source_spaced, LoadedSource, Origin};
use voxflow_imaging::volume::SAME_GRID_TOLERANCE_MM;
use voxflow_imaging::Volume;
use voxflow_spec::types::{ArtifactKind, DataType};
use voxflow_spec::{ArtifactRef, PortSpec, Value};

use super::{Builtin, Ports};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

/// The media type recorded for volume and mask artifacts.
pub const NIFTI_GZ: &str = "application/x-nifti+gzip";

/// Stores a volume as a gzipped NIfTI artifact.
pub fn store_volume(
    ctx: &StepContext<'_>,
    volume: &Volume,
    kind: ArtifactKind,
    name: &str,
) -> Result<ArtifactRef, StepError> {
    let mut writer = ctx.artifacts.writer()?;
    // Streamed: the voxels go through gzip into the artifact's temporary file, never whole in memory again.
    if let Err(e) = write_nifti_gz_to(volume, &format!("voxflow {}", ctx.step_id), &mut writer) {
        return Err(writer.write_error(e).into());
    }
    Ok(writer.finish(kind, Some(NIFTI_GZ), Some(name))?)
}

/// Reads a volume or mask artifact back.
pub fn read_volume(
    ctx: &StepContext<'_>,
    artifact: &ArtifactRef,
    input: &str,
) -> Result<Volume, StepError> {
    let file = ctx.artifacts.open_content(artifact)?;
    let origin = Path::new(artifact.name.as_deref().unwrap_or("volume.nii.gz"));
    decode_nifti_file(file, origin)
        .map(|(v, _)| v)
        .map_err(|e| StepError::BadArgument {
            field: format!("input `{input}`"),
            message: format!("sha256:{} is not a readable volume: {e}", artifact.hash),
        })
}

/// "x y z" or "x,y,z" millimetres, all positive.
fn parse_spacing(text: &str) -> Option<[f64; 3]> {
    let values: Vec<f64> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    match values[..] {
        [x, y, z] if values.iter().all(|v| v.is_finite() && *v > 0.0) => Some([x, y, z]),
        _ => None,
    }
}

pub fn load_volume() -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "source",
            DataType::Path,
            "a DICOM folder or file, a NIfTI file, or a NumPy array (.npy, .npy.gz; axes z, y, x)",
        )],
        params: vec![
            PortSpec::optional(
                "series",
                DataType::String,
                None,
                "which series: a SeriesInstanceUID or MODALITY:PATTERN, e.g. MR:t2*tra*",
            ),
            PortSpec::optional(
                "spacing",
                DataType::String,
                None,
                "voxel spacing in mm along x, y, z (e.g. `0.625 0.625 3.6`) for sources that record none (NumPy arrays; default a nominal 1 mm)",
            ),
        ],
        outputs: vec![
            PortSpec::required(
                "volume",
                DataType::Artifact(ArtifactKind::Volume),
                "the volume (NIfTI)",
            ),
            PortSpec::required(
                "metadata",
                DataType::Artifact(ArtifactKind::Json),
                "key DICOM attributes and geometry",
            ),
            PortSpec::required(
                "format",
                DataType::String,
                "what was read: dicom, nifti or npy (e.g. for a `when` on a DICOM-only step)",
            ),
        ],
    };
    Builtin::new(
        "load-volume",
        "Loads a DICOM series, a NIfTI file or a NumPy array as a volume",
        ports,
        run_load_volume,
    )
}

fn run_load_volume(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let source = args.input_path("source")?;
    let failed = |e: &dyn std::fmt::Display| StepError::Failed(e.to_string());
    let rule = args
        .param_str("series")?
        .map(SeriesRule::parse)
        .unwrap_or_default();
    let spacing = args
        .param_str("spacing")?
        .filter(|text| !text.trim().is_empty())
        .map(|text| {
            parse_spacing(text).ok_or_else(|| StepError::BadArgument {
                field: "spacing".into(),
                message: format!("`{text}` is not three positive millimetre values (x y z)"),
            })
        })
        .transpose()?;
    ctx.check_cancelled()?;
    let LoadedSource { volume, origin } =
        load_source_spaced(&source, &rule, spacing).map_err(|e| failed(&e))?;
    let mut metadata = match origin {
        Origin::Nifti(info) => serde_json::json!({ "format": "nifti",
            "source": source.display().to_string(), "nifti_version": info.version,
            "stored_dtype": info.stored_dtype, "affine_source": info.affine_source }),
        Origin::Dicom { metadata, warnings } => {
            for w in &warnings {
                ctx.log(format!("warning: {w}"));
            }
            let mut meta = serde_json::to_value(&metadata).unwrap_or_default();
            meta["format"] = "dicom".into();
            meta["warnings"] = serde_json::json!(warnings);
            meta
        }
        Origin::Npy { spacing_assumed } => {
            let mut warnings = Vec::new();
            if spacing_assumed {
                warnings.push(
                    "a NumPy array records no spacing: a nominal 1 mm is assumed (set `spacing`)"
                        .to_string(),
                );
            }
            warnings.push(
                "a NumPy array records no orientation: axes z, y, x taken as an axis-aligned grid"
                    .to_string(),
            );
            for w in &warnings {
                ctx.log(format!("warning: {w}"));
            }
            serde_json::json!({ "format": "npy", "source": source.display().to_string(),
                "spacing_assumed": spacing_assumed, "warnings": warnings })
        }
    };
    let format = metadata["format"].as_str().unwrap_or_default().to_string();
    let g = &volume.geometry;
    metadata["dims"] = serde_json::json!(g.dims);
    metadata["spacing"] = serde_json::json!(g.spacing);
    metadata["orientation"] = serde_json::json!(g.orientation_ras());
    metadata["affine_lps"] = serde_json::json!(g.affine_lps());
    metadata["dtype"] = serde_json::json!(volume.data.dtype());
    ctx.log(format!(
        "loaded {} x {} x {} {} volume, spacing {:.3} x {:.3} x {:.3} mm, {}",
        g.dims[0],
        g.dims[1],
        g.dims[2],
        volume.data.dtype(),
        g.spacing[0],
        g.spacing[1],
        g.spacing[2],
        g.orientation_ras()
    ));
    let mut stored = store_volume(ctx, &volume, ArtifactKind::Volume, "volume.nii.gz")?;
    // On the volume itself (and so in the run record's artifacts), and as a JSON output for later steps.
    stored.metadata = Some(metadata.clone());
    let meta_bytes = serde_json::to_vec_pretty(&metadata).map_err(|e| failed(&e))?;
    let meta =
        ctx.artifacts
            .put_bytes(&meta_bytes, ArtifactKind::Json, None, Some("metadata.json"))?;
    Ok(StepOutputs::from([
        ("volume".to_string(), Value::artifact(stored)),
        ("metadata".to_string(), Value::artifact(meta)),
        ("format".to_string(), Value::String(format)),
    ]))
}

pub fn write_nifti() -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "volume",
            DataType::Artifact(ArtifactKind::Volume),
            "a volume or mask",
        )],
        params: vec![PortSpec::optional(
            "name",
            DataType::String,
            Some(Value::String("image".into())),
            "file name without extension",
        )],
        outputs: vec![PortSpec::required(
            "file",
            DataType::Artifact(ArtifactKind::File),
            "the .nii.gz file",
        )],
    };
    Builtin::new(
        "write-nifti",
        "Writes a volume or mask as a NIfTI-1 .nii.gz file",
        ports,
        run_write_nifti,
    )
}

fn run_write_nifti(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let input = args.input_artifact("volume")?;
    let volume = read_volume(ctx, input, "volume")?;
    let name = args.param_str("name")?.unwrap_or("image");
    let file = store_volume(ctx, &volume, ArtifactKind::File, &format!("{name}.nii.gz"))?;
    Ok(StepOutputs::from([(
        "file".to_string(),
        Value::artifact(file),
    )]))
}

pub fn write_png() -> Builtin {
    let ports = Ports {
        inputs: vec![
            PortSpec::required(
                "volume",
                DataType::Artifact(ArtifactKind::Volume),
                "the image",
            ),
            PortSpec::optional(
                "mask",
                DataType::Artifact(ArtifactKind::Volume),
                None,
                "a mask to overlay in red",
            ),
        ],
        params: vec![
            PortSpec::optional(
                "axis",
                DataType::Integer,
                Some(Value::Number(2.0)),
                "0 sagittal, 1 coronal, 2 axial",
            ),
            PortSpec::optional(
                "slice",
                DataType::Integer,
                None,
                "slice index (default: the middle)",
            ),
            PortSpec::optional(
                "mosaic",
                DataType::Boolean,
                Some(Value::Bool(false)),
                "all slices in a grid",
            ),
            PortSpec::optional(
                "window_center",
                DataType::Number,
                None,
                "display window centre",
            ),
            PortSpec::optional(
                "window_width",
                DataType::Number,
                None,
                "display window width",
            ),
        ],
        outputs: vec![PortSpec::required(
            "image",
            DataType::Artifact(ArtifactKind::Image),
            "the PNG",
        )],
    };
    Builtin::new(
        "write-png",
        "Draws a slice or a mosaic as PNG, with an optional mask overlay",
        ports,
        run_write_png,
    )
}

fn run_write_png(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let volume = read_volume(ctx, args.input_artifact("volume")?, "volume")?;
    let mask = match args.inputs.get("mask").and_then(Value::as_artifact) {
        Some(m) => Some(read_volume(ctx, m, "mask")?),
        None => None,
    };
    let window = match (
        args.param_f64("window_center")?,
        args.param_f64("window_width")?,
    ) {
        (Some(c), Some(w)) => Some((c, w)),
        _ => None,
    };
    let options = PngOptions {
        axis: args.param_u64("axis")?.unwrap_or(2) as usize,
        slice: args.param_u64("slice")?.map(|s| s as usize),
        mosaic: matches!(args.param("mosaic"), Some(Value::Bool(true))),
        window,
    };
    let bytes = render_png(&volume, mask.as_ref(), &options)
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let image = ctx.artifacts.put_bytes(
        &bytes,
        ArtifactKind::Image,
        Some("image/png"),
        Some("image.png"),
    )?;
    Ok(StepOutputs::from([(
        "image".to_string(),
        Value::artifact(image),
    )]))
}

pub fn write_dicom_seg() -> Builtin {
    let ports = Ports {
        inputs: vec![
            PortSpec::required("mask", DataType::Artifact(ArtifactKind::Volume), "label map: 0 background, 1.. segments"),
            PortSpec::required("source", DataType::Path, "the DICOM folder holding the source series"),
        ],
        params: vec![
            PortSpec::optional("series", DataType::String, None, "which source series (UID or MODALITY:PATTERN)"),
            PortSpec::required(
                "segments",
                DataType::List(Box::new(DataType::Any)),
                "one entry per label: {label, name, property: \"SCT:41216001:Prostate\", category?}",
            ),
            PortSpec::optional("algorithm", DataType::String, Some(Value::String("voxflow".into())), "algorithm name"),
            PortSpec::optional("algorithm_version", DataType::String, Some(Value::String(env!("CARGO_PKG_VERSION").into())), "algorithm version"),
            PortSpec::optional("description", DataType::String, Some(Value::String("voxflow segmentation".into())), "series description"),
        ],
        outputs: vec![PortSpec::required("seg", DataType::Artifact(ArtifactKind::File), "the DICOM SEG file")],
    };
    Builtin::new(
        "write-dicom-seg",
        "Writes a label map as DICOM SEG referencing its source series (mapped back onto the source grid)",
        ports,
        run_write_dicom_seg,
    )
}

fn parse_code(text: &str, field: &str) -> Result<Code, StepError> {
    let parts: Vec<&str> = text.splitn(3, ':').collect();
    match parts.as_slice() {
        [scheme, value, meaning] if !scheme.is_empty() && !value.is_empty() => {
            Ok(Code::new(value, scheme, meaning))
        }
        _ => Err(StepError::BadArgument {
            field: field.to_string(),
            message: format!("`{text}` is not SCHEME:CODE:Meaning, e.g. SCT:41216001:Prostate"),
        }),
    }
}

fn segment_descriptions(value: Option<&Value>) -> Result<Vec<SegmentDescription>, StepError> {
    let field = "parameter `segments`";
    let bad = |message: String| StepError::BadArgument {
        field: field.to_string(),
        message,
    };
    let Some(Value::List(items)) = value else {
        return Err(bad("expected a list of {label, name, property}".into()));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Map(m) = item else {
                return Err(bad(format!(
                    "entry {i} is a {}, expected a mapping",
                    item.type_name()
                )));
            };
            let label = m
                .get("label")
                .and_then(Value::as_f64)
                .filter(|l| *l >= 1.0 && l.fract() == 0.0 && *l < 65536.0);
            let label = label
                .ok_or_else(|| bad(format!("entry {i} needs `label`, a whole number from 1")))?
                as u16;
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("entry {i} needs `name`")))?;
            let property = m
                .get("property")
                .and_then(Value::as_str)
                .unwrap_or("SCT:85756007:Tissue");
            let category = m
                .get("category")
                .and_then(Value::as_str)
                .unwrap_or("SCT:91723000:Anatomical Structure");
            Ok(SegmentDescription {
                label,
                name: name.to_string(),
                property: parse_code(property, field)?,
                category: parse_code(category, field)?,
            })
        })
        .collect()
}

fn run_write_dicom_seg(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let failed = |e: &dyn std::fmt::Display| StepError::Failed(e.to_string());
    let mask = read_volume(ctx, args.input_artifact("mask")?, "mask")?;
    let source = args.input_path("source")?;
    let segments = segment_descriptions(args.param("segments"))?;
    let found = scan(&source).map_err(|e| failed(&e))?;
    let rule = args
        .param_str("series")?
        .map(SeriesRule::parse)
        .unwrap_or_default();
    let series = found.select(&rule, &source).map_err(|e| failed(&e))?;
    let source_layout = layout(series).map_err(|e| failed(&e))?;
    // A mask computed on a resampled or reoriented image goes back onto the source grid first.
    let mask = if mask
        .geometry
        .same_grid(&source_layout.geometry, SAME_GRID_TOLERANCE_MM)
    {
        // On the source grid up to the float32 rounding of the NIfTI artifact it was read from.
        Volume {
            geometry: source_layout.geometry.clone(),
            data: mask.data,
        }
    } else {
        ctx.log("mask is not on the source grid: resampling it (nearest neighbour) onto the source series");
        resample_onto(&mask, &source_layout.geometry, Interpolation::Nearest)
    };
    let algorithm = Algorithm {
        name: args
            .param_str("algorithm")?
            .unwrap_or("voxflow")
            .to_string(),
        version: args
            .param_str("algorithm_version")?
            .unwrap_or(env!("CARGO_PKG_VERSION"))
            .to_string(),
        kind: "AUTOMATIC".to_string(),
    };
    let description = args
        .param_str("description")?
        .unwrap_or("voxflow segmentation");
    let tmp = tempfile::tempdir_in(ctx.artifacts.root().join("tmp")).map_err(|e| failed(&e))?;
    let path = tmp.path().join("seg.dcm");
    let uid = write_seg(
        &mask,
        series,
        &source_layout.slices,
        &segments,
        &algorithm,
        description,
        &path,
    )
    .map_err(|e| failed(&e))?;
    ctx.log(format!(
        "wrote DICOM SEG {uid} with {} segment(s)",
        segments.len()
    ));
    let seg = ctx
        .artifacts
        .put_file(&path, ArtifactKind::File, Some("application/dicom"))?;
    Ok(StepOutputs::from([(
        "seg".to_string(),
        Value::artifact(ArtifactRef {
            name: Some("seg.dcm".into()),
            ..seg
        }),
    )]))
}

pub fn threshold() -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "volume",
            DataType::Artifact(ArtifactKind::Volume),
            "the image",
        )],
        params: vec![
            PortSpec::optional(
                "lower",
                DataType::Number,
                None,
                "lowest value inside (e.g. HU)",
            ),
            PortSpec::optional("upper", DataType::Number, None, "highest value inside"),
            PortSpec::optional(
                "label",
                DataType::Integer,
                Some(Value::Number(1.0)),
                "the mask value inside (1-255)",
            ),
        ],
        outputs: vec![PortSpec::required(
            "mask",
            DataType::Artifact(ArtifactKind::Mask),
            "the mask, on the image's grid",
        )],
    };
    Builtin::new(
        "threshold",
        "Masks the voxels whose value lies in [lower, upper]",
        ports,
        run_threshold,
    )
}

fn run_threshold(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let volume = read_volume(ctx, args.input_artifact("volume")?, "volume")?;
    let (lower, upper) = (args.param_f64("lower")?, args.param_f64("upper")?);
    if lower.is_none() && upper.is_none() {
        return Err(StepError::BadArgument {
            field: "parameters `lower` and `upper`".into(),
            message: "give at least one bound".into(),
        });
    }
    let label = match args.param_u64("label")?.unwrap_or(1) {
        l @ 1..=255 => l as u8,
        other => {
            return Err(StepError::BadArgument {
                field: "parameter `label`".into(),
                message: format!("{other} is not in 1..=255"),
            })
        }
    };
    let mask = voxflow_imaging::ops::threshold(&volume, lower, upper, label);
    let inside = mask.data.to_f64().iter().filter(|&&v| v > 0.0).count();
    ctx.log(format!("{inside} of {} voxels inside", mask.data.len()));
    let stored = store_volume(ctx, &mask, ArtifactKind::Mask, "mask.nii.gz")?;
    Ok(StepOutputs::from([(
        "mask".to_string(),
        Value::artifact(stored),
    )]))
}
