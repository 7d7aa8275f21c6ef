//! The attributes of one DICOM file that series building needs, read without decoding pixel data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};

use super::DicomError;

/// Where one frame lies: position of its first pixel, its rescale.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePlane {
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    pub rescale_slope: f64,
    pub rescale_intercept: f64,
}

/// What one file says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomHeader {
    pub path: PathBuf,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub patient_id: String,
    pub modality: String,
    pub series_description: String,
    pub body_part: String,
    pub transfer_syntax: String,
    pub photometric: String,
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    /// 0 unsigned, 1 two's complement.
    pub pixel_representation: u16,
    pub instance_number: Option<i64>,
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub spacing_between_slices: Option<f64>,
    /// One entry per frame (single-frame files have one).
    pub frames: Vec<FramePlane>,
    /// Acquisition parameters and other attributes kept as metadata (keyword → value).
    pub attributes: BTreeMap<String, String>,
    pub has_pixel_data: bool,
}

const KEPT: &[(dicom_core::Tag, &str)] = &[
    (tags::MANUFACTURER, "Manufacturer"),
    (tags::MANUFACTURER_MODEL_NAME, "ManufacturerModelName"),
    (tags::MAGNETIC_FIELD_STRENGTH, "MagneticFieldStrength"),
    (tags::REPETITION_TIME, "RepetitionTime"),
    (tags::ECHO_TIME, "EchoTime"),
    (tags::FLIP_ANGLE, "FlipAngle"),
    (tags::SCANNING_SEQUENCE, "ScanningSequence"),
    (tags::PROTOCOL_NAME, "ProtocolName"),
    (tags::KVP, "KVP"),
    (tags::CONVOLUTION_KERNEL, "ConvolutionKernel"),
    (tags::STUDY_DATE, "StudyDate"),
    (tags::SERIES_NUMBER, "SeriesNumber"),
    (tags::ACCESSION_NUMBER, "AccessionNumber"),
    (tags::STUDY_DESCRIPTION, "StudyDescription"),
    (tags::FRAME_OF_REFERENCE_UID, "FrameOfReferenceUID"),
    (tags::PATIENT_POSITION, "PatientPosition"),
];

fn text(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok()??;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn floats(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<Vec<f64>> {
    obj.element_opt(tag).ok()??.to_multi_float64().ok()
}

fn float(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<f64> {
    floats(obj, tag)
        .and_then(|v| v.first().copied())
        .filter(|v| v.is_finite())
}

fn int(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<i64> {
    obj.element_opt(tag).ok()??.to_int::<i64>().ok()
}

fn array<const N: usize>(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<[f64; N]> {
    let v = floats(obj, tag)?;
    (v.len() >= N && v.iter().all(|x| x.is_finite())).then(|| std::array::from_fn(|i| v[i]))
}

/// The first item of a sequence attribute.
fn first_item(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<&InMemDicomObject> {
    obj.element_opt(tag).ok()??.items()?.first()
}

/// An attribute looked up in a functional group (per-frame first, then shared).
fn in_groups<'a, T>(
    frame: Option<&'a InMemDicomObject>,
    shared: Option<&'a InMemDicomObject>,
    macro_tag: dicom_core::Tag,
    get: impl Fn(&'a InMemDicomObject) -> Option<T>,
) -> Option<T> {
    [frame, shared]
        .into_iter()
        .flatten()
        .find_map(|g| first_item(g, macro_tag).and_then(&get))
}

/// Opens the file up to (not including) the pixel data, after checking its declared lengths.
pub fn open_header(path: &Path) -> Result<DefaultDicomObject, DicomError> {
    super::raw::check_header(path).map_err(|e| DicomError::File {
        path: path.to_path_buf(),
        message: format!("not a readable DICOM file: {e}"),
    })?;
    OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| DicomError::File {
            path: path.to_path_buf(),
            message: format!("not a readable DICOM file: {e}"),
        })
}

/// Reads the header of one file.
pub fn read_header(path: &Path) -> Result<DicomHeader, DicomError> {
    let obj = open_header(path)?;
    let meta = obj.meta();
    let transfer_syntax = meta.transfer_syntax().trim_end_matches('\0').to_string();
    let sop_class_uid = meta
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        .to_string();
    let o: &InMemDicomObject = &obj;
    let frames_count = int(o, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
    let slope = float(o, tags::RESCALE_SLOPE).unwrap_or(1.0);
    let intercept = float(o, tags::RESCALE_INTERCEPT).unwrap_or(0.0);
    let position = array::<3>(o, tags::IMAGE_POSITION_PATIENT);
    let orientation = array::<6>(o, tags::IMAGE_ORIENTATION_PATIENT);
    let shared = first_item(o, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame: Vec<&InMemDicomObject> = o
        .element_opt(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .map(|items| items.iter().collect())
        .unwrap_or_default();
    let frames = if frames_count > 1 && per_frame.len() == frames_count {
        // Enhanced multi-frame: geometry and rescale per frame through functional groups.
        per_frame
            .iter()
            .map(|f| FramePlane {
                position: in_groups(Some(f), shared, tags::PLANE_POSITION_SEQUENCE, |m| {
                    array::<3>(m, tags::IMAGE_POSITION_PATIENT)
                }),
                orientation: in_groups(Some(f), shared, tags::PLANE_ORIENTATION_SEQUENCE, |m| {
                    array::<6>(m, tags::IMAGE_ORIENTATION_PATIENT)
                })
                .or(orientation),
                rescale_slope: in_groups(
                    Some(f),
                    shared,
                    tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                    |m| float(m, tags::RESCALE_SLOPE),
                )
                .unwrap_or(slope),
                rescale_intercept: in_groups(
                    Some(f),
                    shared,
                    tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                    |m| float(m, tags::RESCALE_INTERCEPT),
                )
                .unwrap_or(intercept),
            })
            .collect()
    } else {
        // RT Dose and similar multi-frame grids place frame f at GridFrameOffsetVector[f] along the normal.
        // Offsets are relative when the first is 0 and absolute otherwise; either way the first frame is at
        // ImagePositionPatient, so frame f lies (offset[f] - offset[0]) further along the normal.
        let offsets = floats(o, tags::GRID_FRAME_OFFSET_VECTOR)
            .filter(|v| v.len() == frames_count && frames_count > 1);
        let normal = orientation.map(|o| {
            let n = [
                o[1] * o[5] - o[2] * o[4],
                o[2] * o[3] - o[0] * o[5],
                o[0] * o[4] - o[1] * o[3],
            ];
            let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
                .sqrt()
                .max(f64::MIN_POSITIVE);
            [n[0] / len, n[1] / len, n[2] / len]
        });
        // RT Dose stores dose as the pixel value times DoseGridScaling.
        let slope = float(o, tags::DOSE_GRID_SCALING).map_or(slope, |d| d * slope);
        (0..frames_count)
            .map(|f| FramePlane {
                position: match (position, &offsets, normal) {
                    (Some(p), Some(off), Some(n)) => {
                        let d = off[f] - off[0];
                        Some([p[0] + d * n[0], p[1] + d * n[1], p[2] + d * n[2]])
                    }
                    _ => position,
                },
                orientation,
                rescale_slope: slope,
                rescale_intercept: intercept,
            })
            .collect()
    };
    let pixel_spacing = array::<2>(o, tags::PIXEL_SPACING).or_else(|| {
        in_groups(
            per_frame.first().copied(),
            shared,
            tags::PIXEL_MEASURES_SEQUENCE,
            |m| array::<2>(m, tags::PIXEL_SPACING),
        )
    });
    let slice_thickness = float(o, tags::SLICE_THICKNESS).or_else(|| {
        in_groups(
            per_frame.first().copied(),
            shared,
            tags::PIXEL_MEASURES_SEQUENCE,
            |m| float(m, tags::SLICE_THICKNESS),
        )
    });
    let spacing_between_slices = float(o, tags::SPACING_BETWEEN_SLICES).or_else(|| {
        in_groups(
            per_frame.first().copied(),
            shared,
            tags::PIXEL_MEASURES_SEQUENCE,
            |m| float(m, tags::SPACING_BETWEEN_SLICES),
        )
    });
    let attributes = KEPT
        .iter()
        .filter_map(|(tag, name)| text(o, *tag).map(|v| (name.to_string(), v)))
        .collect();
    Ok(DicomHeader {
        path: path.to_path_buf(),
        sop_instance_uid: text(o, tags::SOP_INSTANCE_UID).unwrap_or_default(),
        sop_class_uid: text(o, tags::SOP_CLASS_UID).unwrap_or(sop_class_uid),
        study_instance_uid: text(o, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        series_instance_uid: text(o, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        patient_id: text(o, tags::PATIENT_ID).unwrap_or_default(),
        modality: text(o, tags::MODALITY).unwrap_or_default(),
        series_description: text(o, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        body_part: text(o, tags::BODY_PART_EXAMINED).unwrap_or_default(),
        transfer_syntax,
        photometric: text(o, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default(),
        rows: int(o, tags::ROWS).unwrap_or(0).max(0) as u32,
        columns: int(o, tags::COLUMNS).unwrap_or(0).max(0) as u32,
        samples_per_pixel: int(o, tags::SAMPLES_PER_PIXEL).unwrap_or(1).max(1) as u16,
        bits_allocated: int(o, tags::BITS_ALLOCATED).unwrap_or(16).clamp(1, 64) as u16,
        bits_stored: int(o, tags::BITS_STORED)
            .or_else(|| int(o, tags::BITS_ALLOCATED))
            .unwrap_or(16)
            .clamp(1, 32) as u16,
        pixel_representation: int(o, tags::PIXEL_REPRESENTATION).unwrap_or(0).clamp(0, 1) as u16,
        instance_number: int(o, tags::INSTANCE_NUMBER),
        pixel_spacing,
        slice_thickness,
        spacing_between_slices,
        frames,
        attributes,
        has_pixel_data: int(o, tags::ROWS).is_some() && int(o, tags::COLUMNS).is_some(),
    })
}
