//! Series: grouping files by SeriesInstanceUID, ordering slices along the slice normal, checking that the
//! series really is one regular volume, and decoding it (every transfer syntax dicom-pixeldata is built
//! with) into a [`Volume`] with rescale applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::header::{read_header, DicomHeader};
use super::pixels::{decode_file, Samples};
use super::select::SeriesRule;
use super::DicomError;
use crate::volume::{Geometry, Volume, VoxelData};

/// The DICOMDIR index's SOP class: an index of files, not an image.
const MEDIA_DIRECTORY_STORAGE: &str = "1.2.840.10008.1.3.10";

/// The image series found under a path, and the files that were not usable, with why.
#[derive(Debug, Clone)]
pub struct FolderScan {
    pub series: Vec<Series>,
    pub skipped: Vec<(PathBuf, String)>,
}

/// The files of one series, in no particular order.
#[derive(Debug, Clone)]
pub struct Series {
    pub uid: String,
    pub files: Vec<DicomHeader>,
}

impl FolderScan {
    /// The one series `rule` picks. When the scan found no image series at all, the error says why each
    /// file was skipped.
    pub fn select(&self, rule: &SeriesRule, path: &Path) -> Result<&Series, DicomError> {
        if self.series.is_empty() {
            let detail = self
                .skipped
                .iter()
                .take(5)
                .map(|(f, why)| format!("{}: {why}", f.display()))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(DicomError::NoSeries {
                path: path.to_path_buf(),
                detail: if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                },
            });
        }
        rule.select(&self.series)
    }
}

impl Series {
    pub fn first(&self) -> &DicomHeader {
        &self.files[0]
    }

    pub fn frame_count(&self) -> usize {
        self.files.iter().map(|f| f.frames.len()).sum()
    }
}

/// Key attributes of a loaded series, kept with the volume artifact and in the run record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesMetadata {
    pub patient_id: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub modality: String,
    pub series_description: String,
    pub body_part: String,
    pub sop_class_uid: String,
    pub transfer_syntaxes: Vec<String>,
    pub photometric_interpretation: String,
    /// SOP Instance UIDs in slice order (for multi-frame files, one entry per file).
    pub sop_instance_uids: Vec<String>,
    pub attributes: BTreeMap<String, String>,
}

/// A decoded series.
#[derive(Debug, Clone)]
pub struct LoadedSeries {
    pub volume: Volume,
    pub metadata: SeriesMetadata,
    /// Things that did not stop loading but that a reader should know (no positions, ...).
    pub warnings: Vec<String>,
}

/// Finds the DICOM image series under `path` (a file or a folder, searched recursively; file names and
/// extensions do not matter; DICOMDIR indexes and non-image objects are skipped with a reason).
pub fn scan(path: &Path) -> Result<FolderScan, DicomError> {
    let mut files = Vec::new();
    collect_files(path, &mut files, 0).map_err(|e| DicomError::File {
        path: path.to_path_buf(),
        message: format!("cannot list: {e}"),
    })?;
    files.sort();
    let mut by_uid: BTreeMap<String, Vec<DicomHeader>> = BTreeMap::new();
    let mut skipped = Vec::new();
    // Headers are read in parallel; a parser panic on damaged data becomes that file's error.
    let headers = crate::parallel::map_catching(&files, |file| read_header(file));
    for (file, header) in files.into_iter().zip(headers) {
        let header = header.unwrap_or_else(|panic| {
            Err(DicomError::File {
                path: file.clone(),
                message: format!("the DICOM parser failed on damaged data: {panic}"),
            })
        });
        match header {
            Ok(h) if h.sop_class_uid == MEDIA_DIRECTORY_STORAGE => skipped.push((
                file,
                "a DICOMDIR index (its files are scanned directly)".to_string(),
            )),
            Ok(h) if !h.has_pixel_data => {
                skipped.push((file, format!("no pixel data ({} object)", h.modality)))
            }
            Ok(h) => by_uid
                .entry(h.series_instance_uid.clone())
                .or_default()
                .push(h),
            Err(DicomError::File { message, .. }) => skipped.push((file, message)),
            Err(e) => skipped.push((file, e.to_string())),
        }
    }
    let series = by_uid
        .into_iter()
        .map(|(uid, files)| Series { uid, files })
        .collect();
    Ok(FolderScan { series, skipped })
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>, depth: usize) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    if depth > 32 {
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let ty = entry.file_type()?;
        if ty.is_dir() {
            collect_files(&entry.path(), out, depth + 1)?;
        } else if ty.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalized(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt();
    if n > 0.0 {
        [a[0] / n, a[1] / n, a[2] / n]
    } else {
        a
    }
}

/// One frame of the series, ready to be placed.
struct Slice<'a> {
    file: &'a DicomHeader,
    file_index: usize,
    frame: usize,
    distance: f64,
}

/// Where every frame of a series goes, checked, before any pixel is decoded.
#[derive(Debug, Clone)]
pub struct SeriesLayout {
    pub geometry: Geometry,
    /// (file index in `Series::files`, frame index) for each slice k.
    pub slices: Vec<(usize, usize)>,
    pub warnings: Vec<String>,
}

/// Orders and checks the frames of a series. Inconsistent series (mixed sizes or orientations, duplicate
/// or missing slices, uneven spacing, tilted stacks) are errors, never a silently wrong volume.
pub fn layout(series: &Series) -> Result<SeriesLayout, DicomError> {
    let err = |message: String| DicomError::Series {
        series: series.uid.clone(),
        message,
    };
    let first = series.first();
    let mut warnings = Vec::new();
    if first.samples_per_pixel != 1 {
        return Err(err(format!(
            "{}: {} samples per pixel ({}): colour images are not scalar volumes",
            first.path.display(),
            first.samples_per_pixel,
            first.photometric
        )));
    }
    for f in &series.files {
        if (f.rows, f.columns) != (first.rows, first.columns) {
            return Err(err(format!(
                "mixed image sizes: {} is {}x{}, {} is {}x{}",
                first.path.display(),
                first.columns,
                first.rows,
                f.path.display(),
                f.columns,
                f.rows
            )));
        }
        if f.samples_per_pixel != 1 {
            return Err(err(format!(
                "{}: colour image in a scalar series",
                f.path.display()
            )));
        }
    }
    let orientation = first.frames[0].orientation;
    let (row_dir, col_dir) = match orientation {
        Some(o) => (
            normalized([o[0], o[1], o[2]]),
            normalized([o[3], o[4], o[5]]),
        ),
        None => {
            warnings.push(
                "no ImageOrientationPatient: assuming axial (identity) orientation".to_string(),
            );
            ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        }
    };
    let normal = normalized(cross(row_dir, col_dir));
    let mut slices = Vec::with_capacity(series.frame_count());
    let mut missing_positions = false;
    for (file_index, f) in series.files.iter().enumerate() {
        for (n, frame) in f.frames.iter().enumerate() {
            if let (Some(o), Some(reference)) = (frame.orientation, orientation) {
                if o.iter()
                    .zip(reference.iter())
                    .any(|(a, b)| (a - b).abs() > 1e-3)
                {
                    return Err(err(format!(
                        "mixed orientations: {} frame {} is {:?}, the series starts with {:?}",
                        f.path.display(),
                        n + 1,
                        o,
                        reference
                    )));
                }
            }
            let distance = match frame.position {
                Some(p) => dot(p, normal),
                None => {
                    missing_positions = true;
                    (f.instance_number.unwrap_or(0) as f64) * 1e6 + n as f64
                }
            };
            slices.push(Slice {
                file: f,
                file_index,
                frame: n,
                distance,
            });
        }
    }
    slices.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    let spacing_z = if slices.len() == 1 {
        // A single slice: its thickness is its extent.
        first
            .slice_thickness
            .or(first.spacing_between_slices)
            .unwrap_or(1.0)
    } else if missing_positions {
        let z = first
            .spacing_between_slices
            .or(first.slice_thickness)
            .unwrap_or(1.0);
        warnings.push(format!(
            "no ImagePositionPatient: slices ordered by InstanceNumber and frame, spacing {z} mm from the header"
        ));
        z
    } else {
        check_spacing(&slices, normal, first).map_err(&err)?
    };
    let origin = slices[0].file.frames[slices[0].frame]
        .position
        .unwrap_or([0.0; 3]);
    let [dx_row, dy_col] = match first.pixel_spacing {
        Some(ps) => [ps[1], ps[0]],
        None => {
            warnings.push("no PixelSpacing: assuming 1 mm".to_string());
            [1.0, 1.0]
        }
    };
    let geometry = Geometry {
        dims: [first.columns as usize, first.rows as usize, slices.len()],
        spacing: [dx_row, dy_col, spacing_z],
        origin,
        direction: [row_dir, col_dir, normal],
    };
    Ok(SeriesLayout {
        geometry,
        slices: slices.iter().map(|s| (s.file_index, s.frame)).collect(),
        warnings,
    })
}

/// Decodes a series into a volume, after [`layout`] has checked it.
pub fn load_series(series: &Series) -> Result<LoadedSeries, DicomError> {
    let err = |message: String| DicomError::Series {
        series: series.uid.clone(),
        message,
    };
    let SeriesLayout {
        geometry,
        slices,
        warnings,
    } = layout(series)?;
    let data = decode_slices(series, &slices, &geometry).map_err(&err)?;
    let volume = Volume::new(geometry, data).map_err(|e| err(e.to_string()))?;
    let first = series.first();
    let mut sop_instance_uids: Vec<String> = Vec::new();
    for &(file_index, _) in &slices {
        let uid = &series.files[file_index].sop_instance_uid;
        if sop_instance_uids.last() != Some(uid) {
            sop_instance_uids.push(uid.clone());
        }
    }
    let mut transfer_syntaxes: Vec<String> = series
        .files
        .iter()
        .map(|f| f.transfer_syntax.clone())
        .collect();
    transfer_syntaxes.sort();
    transfer_syntaxes.dedup();
    let metadata = SeriesMetadata {
        patient_id: first.patient_id.clone(),
        study_instance_uid: first.study_instance_uid.clone(),
        series_instance_uid: first.series_instance_uid.clone(),
        modality: first.modality.clone(),
        series_description: first.series_description.clone(),
        body_part: first.body_part.clone(),
        sop_class_uid: first.sop_class_uid.clone(),
        transfer_syntaxes,
        photometric_interpretation: first.photometric.clone(),
        sop_instance_uids,
        attributes: first.attributes.clone(),
    };
    Ok(LoadedSeries {
        volume,
        metadata,
        warnings,
    })
}

/// The slice spacing from positions; errors for duplicates, gaps, uneven steps and tilted stacks.
fn check_spacing(
    slices: &[Slice<'_>],
    normal: [f64; 3],
    first: &DicomHeader,
) -> Result<f64, String> {
    if slices.len() < 2 {
        return Ok(first
            .spacing_between_slices
            .or(first.slice_thickness)
            .unwrap_or(1.0));
    }
    let steps: Vec<f64> = slices
        .windows(2)
        .map(|w| w[1].distance - w[0].distance)
        .collect();
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let where_ = |i: usize| {
        format!(
            "{} (frame {}) and {} (frame {})",
            slices[i].file.path.display(),
            slices[i].frame + 1,
            slices[i + 1].file.path.display(),
            slices[i + 1].frame + 1
        )
    };
    for (i, &step) in steps.iter().enumerate() {
        if step.abs() < 1e-3 {
            return Err(format!(
                "two slices at the same position ({:.3} mm along the normal): {}; \
                 the series holds several acquisitions or duplicates",
                slices[i].distance,
                where_(i)
            ));
        }
    }
    let tolerance = (median * 0.02).max(0.01);
    for (i, &step) in steps.iter().enumerate() {
        if (step - median).abs() > tolerance {
            let missing = (step / median).round() as i64 - 1;
            return Err(if missing >= 1 {
                format!(
                    "{missing} slice(s) missing between {}: the gap is {step:.3} mm where the series steps {median:.3} mm",
                    where_(i)
                )
            } else {
                format!(
                    "uneven slice spacing: {step:.3} mm between {}, {median:.3} mm elsewhere",
                    where_(i)
                )
            });
        }
    }
    // Every position must lie on the line through the first along the normal (no gantry tilt).
    let p0 = slices[0].file.frames[slices[0].frame]
        .position
        .unwrap_or([0.0; 3]);
    for s in slices {
        let p = s.file.frames[s.frame].position.unwrap_or(p0);
        let d = [p[0] - p0[0], p[1] - p0[1], p[2] - p0[2]];
        let along = dot(d, normal);
        let off = [
            d[0] - along * normal[0],
            d[1] - along * normal[1],
            d[2] - along * normal[2],
        ];
        if dot(off, off).sqrt() > 0.1 {
            return Err(format!(
                "slice positions are not along the slice normal ({} is {:.2} mm off): a tilted or sheared stack",
                s.file.path.display(),
                dot(off, off).sqrt()
            ));
        }
    }
    Ok(median)
}

/// Decodes every frame in slice order, with each frame's rescale applied. Files are decoded in parallel
/// (one worker per core), each file once however many frames it holds. Integer samples under an identity
/// (or integer-offset) rescale stay integers; anything else goes through `f64`.
fn decode_slices(
    series: &Series,
    slices: &[(usize, usize)],
    geometry: &Geometry,
) -> Result<VoxelData, String> {
    let per_slice = geometry.dims[0] * geometry.dims[1];
    let mut file_indices: Vec<usize> = slices.iter().map(|&(f, _)| f).collect();
    file_indices.sort_unstable();
    file_indices.dedup();
    let decoded = crate::parallel::map_catching(&file_indices, |&i| decode_file(&series.files[i]));
    let mut by_file: std::collections::HashMap<usize, Samples> =
        std::collections::HashMap::with_capacity(decoded.len());
    for (&file_index, result) in file_indices.iter().zip(decoded) {
        let file = &series.files[file_index];
        let samples = result.unwrap_or_else(|panic| {
            Err(format!(
                "{}: the pixel data decoder failed on damaged data ({}): {panic}",
                file.path.display(),
                file.transfer_syntax
            ))
        })?;
        let needed = per_slice * file.frames.len();
        if samples.len() < needed {
            return Err(format!(
                "{}: the pixel data holds {} values for {} frame(s) of {per_slice}",
                file.path.display(),
                samples.len(),
                file.frames.len()
            ));
        }
        by_file.insert(file_index, samples);
    }
    let planes = || {
        slices
            .iter()
            .map(|&(f, frame)| (f, frame, &series.files[f].frames[frame]))
    };
    let integer_rescale = planes().all(|(f, _, p)| {
        by_file[&f].is_integer()
            && p.rescale_slope == 1.0
            && p.rescale_intercept.fract() == 0.0
            && p.rescale_intercept.abs() < 1e9
    });
    let frame_range = |frame: usize| frame * per_slice..(frame + 1) * per_slice;
    // How many planes still need each file's samples: a file's go as soon as its last plane is copied, so
    // the decoded series shrinks while the volume grows.
    let mut uses: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for &(f, _) in slices {
        *uses.entry(f).or_default() += 1;
    }
    let mut release = |by_file: &mut std::collections::HashMap<usize, Samples>, f: usize| {
        if let Some(left) = uses.get_mut(&f) {
            *left -= 1;
            if *left == 0 {
                by_file.remove(&f);
            }
        }
    };
    if integer_rescale {
        // Two passes: the values' range picks the narrowest type, then the planes are copied straight into it.
        let (mut min, mut max) = (i32::MAX, i32::MIN);
        for (f, frame, plane) in planes() {
            let intercept = plane.rescale_intercept as i32;
            if let Some((lo, hi)) = by_file[&f].integer_range(frame_range(frame), intercept) {
                (min, max) = (min.min(lo), max.max(hi));
            }
        }
        let mut data = VoxelData::narrowest_integer(min, max, per_slice * slices.len());
        for (f, frame, plane) in planes() {
            if let Some(samples) = by_file.get(&f) {
                let intercept = plane.rescale_intercept as i32;
                samples.extend_integers(frame_range(frame), intercept, &mut data);
            }
            release(&mut by_file, f);
        }
        return Ok(data);
    }
    let mut values: Vec<f64> = Vec::with_capacity(per_slice * slices.len());
    for (f, frame, plane) in planes() {
        if let Some(samples) = by_file.get(&f) {
            let (slope, intercept) = (plane.rescale_slope, plane.rescale_intercept);
            samples.extend_rescaled(frame_range(frame), slope, intercept, &mut values);
        }
        release(&mut by_file, f);
    }
    Ok(VoxelData::from_f64_compact(values))
}
