//! DICOM SEG out: a binary segmentation (one segment per label value) referencing the source series'
//! SOP instances, with each segment's description and the algorithm that made it, as PACS viewers,
//! 3D Slicer, OHIF, pydicom and highdicom expect (Segmentation IOD, PS3.3 A.51).

use std::path::Path;

use dicom_core::value::DataSetSequence;
use dicom_core::{dicom_value, DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

use super::header::open_header;
use super::series::Series;
use super::DicomError;
use crate::volume::Volume;

/// The Segmentation Storage SOP class.
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";
const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// A coded concept (code value, scheme, meaning), e.g. ("41216001", "SCT", "Prostate").
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub value: String,
    pub scheme: String,
    pub meaning: String,
}

impl Code {
    pub fn new(value: &str, scheme: &str, meaning: &str) -> Self {
        Code {
            value: value.into(),
            scheme: scheme.into(),
            meaning: meaning.into(),
        }
    }
}

/// What one segment (one label value of the mask) is.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDescription {
    /// The label value in the mask, written as SegmentNumber (1..).
    pub label: u16,
    pub name: String,
    pub category: Code,
    pub property: Code,
}

/// Who made the segmentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Algorithm {
    pub name: String,
    pub version: String,
    /// AUTOMATIC, SEMIAUTOMATIC or MANUAL.
    pub kind: String,
}

/// Builds the SEG object for `mask` (on the grid of `source`, label values as in `segments`) and writes it.
/// Returns the new SOP Instance UID.
pub fn write_seg(
    mask: &Volume,
    source: &Series,
    source_order: &[(usize, usize)],
    segments: &[SegmentDescription],
    algorithm: &Algorithm,
    series_description: &str,
    path: &Path,
) -> Result<String, DicomError> {
    let err = |message: String| DicomError::File {
        path: path.to_path_buf(),
        message,
    };
    let g = &mask.geometry;
    if source_order.len() != g.dims[2] {
        return Err(err(format!(
            "the mask has {} slices but the source series has {}: map the mask back to the source geometry first",
            g.dims[2],
            source_order.len()
        )));
    }
    if segments.is_empty() {
        return Err(err("no segments described".into()));
    }
    let first = source.first();
    let src = open_header(&first.path)?;
    let mut obj = InMemDicomObject::new_empty();
    // Patient, study and frame of reference come from the source so the SEG files with it.
    for tag in [
        tags::PATIENT_NAME,
        tags::PATIENT_ID,
        tags::PATIENT_BIRTH_DATE,
        tags::PATIENT_SEX,
        tags::STUDY_INSTANCE_UID,
        tags::STUDY_DATE,
        tags::STUDY_TIME,
        tags::STUDY_ID,
        tags::ACCESSION_NUMBER,
        tags::REFERRING_PHYSICIAN_NAME,
        tags::STUDY_DESCRIPTION,
        tags::FRAME_OF_REFERENCE_UID,
    ] {
        match src.element_opt(tag) {
            Ok(Some(e)) => {
                obj.put(e.clone());
            }
            _ => put_str(&mut obj, tag, tag_vr(tag), ""),
        }
    }
    let sop_instance_uid = new_uid();
    let (date, time) = now_date_time();
    put_str(&mut obj, tags::SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE);
    put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, &sop_instance_uid);
    put_str(&mut obj, tags::MODALITY, VR::CS, "SEG");
    put_str(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, &new_uid());
    put_str(&mut obj, tags::SERIES_NUMBER, VR::IS, "1000");
    put_str(
        &mut obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        series_description,
    );
    put_str(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    put_str(&mut obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    put_str(&mut obj, tags::MANUFACTURER, VR::LO, "voxflow");
    put_str(
        &mut obj,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        &algorithm.name,
    );
    put_str(&mut obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, "1");
    put_str(
        &mut obj,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        env!("CARGO_PKG_VERSION"),
    );
    put_str(&mut obj, tags::CONTENT_DATE, VR::DA, &date);
    put_str(&mut obj, tags::CONTENT_TIME, VR::TM, &time);
    put_str(&mut obj, tags::SERIES_DATE, VR::DA, &date);
    put_str(&mut obj, tags::SERIES_TIME, VR::TM, &time);
    put_str(&mut obj, tags::CONTENT_LABEL, VR::CS, "SEGMENTATION");
    put_str(
        &mut obj,
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        series_description,
    );
    put_str(&mut obj, tags::CONTENT_CREATOR_NAME, VR::PN, "");
    obj.put(DataElement::new(
        tags::IMAGE_TYPE,
        VR::CS,
        dicom_value!(Strs, ["DERIVED", "PRIMARY"]),
    ));
    put_u16(&mut obj, tags::SAMPLES_PER_PIXEL, 1);
    put_str(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    put_u16(&mut obj, tags::ROWS, g.dims[1] as u16);
    put_u16(&mut obj, tags::COLUMNS, g.dims[0] as u16);
    put_u16(&mut obj, tags::BITS_ALLOCATED, 1);
    put_u16(&mut obj, tags::BITS_STORED, 1);
    put_u16(&mut obj, tags::HIGH_BIT, 0);
    put_u16(&mut obj, tags::PIXEL_REPRESENTATION, 0);
    put_str(&mut obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    put_str(&mut obj, tags::SEGMENTATION_TYPE, VR::CS, "BINARY");

    // Segments.
    let segment_items: Vec<InMemDicomObject> = segments
        .iter()
        .map(|s| {
            let mut item = InMemDicomObject::new_empty();
            put_u16(&mut item, tags::SEGMENT_NUMBER, s.label);
            put_str(&mut item, tags::SEGMENT_LABEL, VR::LO, &s.name);
            put_str(
                &mut item,
                tags::SEGMENT_ALGORITHM_TYPE,
                VR::CS,
                &algorithm.kind,
            );
            if algorithm.kind != "MANUAL" {
                put_str(
                    &mut item,
                    tags::SEGMENT_ALGORITHM_NAME,
                    VR::LO,
                    &algorithm.name,
                );
                let mut ident = InMemDicomObject::new_empty();
                put_seq(
                    &mut ident,
                    tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
                    vec![code_item(&Code::new(
                        "113037",
                        "DCM",
                        "Artificial Intelligence",
                    ))],
                );
                put_str(&mut ident, tags::ALGORITHM_NAME, VR::LO, &algorithm.name);
                put_str(
                    &mut ident,
                    tags::ALGORITHM_VERSION,
                    VR::LO,
                    &algorithm.version,
                );
                put_seq(
                    &mut item,
                    tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
                    vec![ident],
                );
            }
            put_seq(
                &mut item,
                tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
                vec![code_item(&s.category)],
            );
            put_seq(
                &mut item,
                tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
                vec![code_item(&s.property)],
            );
            item
        })
        .collect();
    put_seq(&mut obj, tags::SEGMENT_SEQUENCE, segment_items);

    // Shared geometry: spacing and orientation of the source grid.
    let mut shared = InMemDicomObject::new_empty();
    let mut measures = InMemDicomObject::new_empty();
    put_ds(
        &mut measures,
        tags::PIXEL_SPACING,
        &[g.spacing[1], g.spacing[0]],
    );
    put_ds(&mut measures, tags::SLICE_THICKNESS, &[g.spacing[2]]);
    put_ds(&mut measures, tags::SPACING_BETWEEN_SLICES, &[g.spacing[2]]);
    put_seq(&mut shared, tags::PIXEL_MEASURES_SEQUENCE, vec![measures]);
    let mut orientation = InMemDicomObject::new_empty();
    let (r, c) = (g.direction[0], g.direction[1]);
    put_ds(
        &mut orientation,
        tags::IMAGE_ORIENTATION_PATIENT,
        &[r[0], r[1], r[2], c[0], c[1], c[2]],
    );
    put_seq(
        &mut shared,
        tags::PLANE_ORIENTATION_SEQUENCE,
        vec![orientation],
    );
    put_seq(
        &mut obj,
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![shared],
    );

    // Dimensions: segment, then position.
    let dimension_uid = new_uid();
    let mut organization = InMemDicomObject::new_empty();
    put_str(
        &mut organization,
        tags::DIMENSION_ORGANIZATION_UID,
        VR::UI,
        &dimension_uid,
    );
    put_seq(
        &mut obj,
        tags::DIMENSION_ORGANIZATION_SEQUENCE,
        vec![organization],
    );
    let dimension = |index: Tag, group: Tag, label: &str| {
        let mut d = InMemDicomObject::new_empty();
        put_str(
            &mut d,
            tags::DIMENSION_ORGANIZATION_UID,
            VR::UI,
            &dimension_uid,
        );
        d.put(DataElement::new(
            tags::DIMENSION_INDEX_POINTER,
            VR::AT,
            PrimitiveValue::Tags([index][..].into()),
        ));
        d.put(DataElement::new(
            tags::FUNCTIONAL_GROUP_POINTER,
            VR::AT,
            PrimitiveValue::Tags([group][..].into()),
        ));
        put_str(&mut d, tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label);
        d
    };
    put_seq(
        &mut obj,
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            dimension(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "ReferencedSegmentNumber",
            ),
            dimension(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "ImagePositionPatient",
            ),
        ],
    );

    // Frames: one per (segment, slice holding it), bits packed across frames as the standard says.
    let (nx, ny) = (g.dims[0], g.dims[1]);
    let mut frames = Vec::new();
    let mut bits: Vec<bool> = Vec::new();
    for s in segments {
        for k in 0..g.dims[2] {
            let plane: Vec<bool> = (0..nx * ny)
                .map(|p| mask.data.get_f64(k * nx * ny + p).round() as i64 == i64::from(s.label))
                .collect();
            if !plane.iter().any(|&b| b) {
                continue;
            }
            bits.extend_from_slice(&plane);
            let (file_index, frame_index) = source_order[k];
            let src_file = &source.files[file_index];
            let mut item = InMemDicomObject::new_empty();
            let mut content = InMemDicomObject::new_empty();
            content.put(DataElement::new(
                tags::DIMENSION_INDEX_VALUES,
                VR::UL,
                PrimitiveValue::U32([u32::from(s.label), k as u32 + 1].into()),
            ));
            put_seq(&mut item, tags::FRAME_CONTENT_SEQUENCE, vec![content]);
            let mut position = InMemDicomObject::new_empty();
            put_ds(
                &mut position,
                tags::IMAGE_POSITION_PATIENT,
                &g.voxel_to_lps([0.0, 0.0, k as f64]),
            );
            put_seq(&mut item, tags::PLANE_POSITION_SEQUENCE, vec![position]);
            let mut source_image = InMemDicomObject::new_empty();
            put_str(
                &mut source_image,
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                &src_file.sop_class_uid,
            );
            put_str(
                &mut source_image,
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                &src_file.sop_instance_uid,
            );
            if src_file.frames.len() > 1 {
                source_image.put(DataElement::new(
                    tags::REFERENCED_FRAME_NUMBER,
                    VR::IS,
                    PrimitiveValue::from((frame_index + 1).to_string()),
                ));
            }
            put_seq(
                &mut source_image,
                tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                vec![code_item(&Code::new(
                    "121322",
                    "DCM",
                    "Source image for image processing operation",
                ))],
            );
            let mut derivation = InMemDicomObject::new_empty();
            put_seq(
                &mut derivation,
                tags::DERIVATION_CODE_SEQUENCE,
                vec![code_item(&Code::new("113076", "DCM", "Segmentation"))],
            );
            put_seq(
                &mut derivation,
                tags::SOURCE_IMAGE_SEQUENCE,
                vec![source_image],
            );
            put_seq(&mut item, tags::DERIVATION_IMAGE_SEQUENCE, vec![derivation]);
            let mut ident = InMemDicomObject::new_empty();
            put_u16(&mut ident, tags::REFERENCED_SEGMENT_NUMBER, s.label);
            put_seq(
                &mut item,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                vec![ident],
            );
            frames.push(item);
        }
    }
    if frames.is_empty() {
        return Err(err(
            "the mask is empty: no voxel carries any of the described segment labels".into(),
        ));
    }
    put_str(
        &mut obj,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &frames.len().to_string(),
    );
    put_seq(&mut obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, frames);

    // Every source instance, so viewers can find the series the segmentation belongs to.
    let instances: Vec<InMemDicomObject> = source
        .files
        .iter()
        .map(|f| {
            let mut i = InMemDicomObject::new_empty();
            put_str(
                &mut i,
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                &f.sop_class_uid,
            );
            put_str(
                &mut i,
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                &f.sop_instance_uid,
            );
            i
        })
        .collect();
    let mut referenced_series = InMemDicomObject::new_empty();
    put_str(
        &mut referenced_series,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &first.series_instance_uid,
    );
    put_seq(
        &mut referenced_series,
        tags::REFERENCED_INSTANCE_SEQUENCE,
        instances,
    );
    put_seq(
        &mut obj,
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![referenced_series],
    );

    // Bits: first pixel in the least significant bit; frames follow each other without padding.
    let mut packed = vec![0u8; bits.len().div_ceil(8)];
    for (n, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
        packed[n / 8] |= 1 << (n % 8);
    }
    if packed.len() % 2 == 1 {
        packed.push(0);
    }
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(packed.into()),
    ));

    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN))
        .map_err(|e| err(format!("cannot build the file meta information: {e}")))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".voxflow-partial-");
    let tmp = builder
        .tempfile_in(dir)
        .map_err(|e| err(format!("cannot create a temporary file: {e}")))?;
    file.write_to_file(tmp.path())
        .map_err(|e| err(format!("cannot write: {e}")))?;
    tmp.persist(path)
        .map_err(|e| err(format!("cannot rename into place: {}", e.error)))?;
    Ok(sop_instance_uid)
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn put_u16(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

fn put_ds(obj: &mut InMemDicomObject, tag: Tag, values: &[f64]) {
    let strs: Vec<String> = values.iter().map(|v| format_ds(*v)).collect();
    obj.put(DataElement::new(
        tag,
        VR::DS,
        PrimitiveValue::Strs(strs.into()),
    ));
}

fn put_seq(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

fn code_item(code: &Code) -> InMemDicomObject {
    let mut i = InMemDicomObject::new_empty();
    put_str(&mut i, tags::CODE_VALUE, VR::SH, &code.value);
    put_str(&mut i, tags::CODING_SCHEME_DESIGNATOR, VR::SH, &code.scheme);
    put_str(&mut i, tags::CODE_MEANING, VR::LO, &code.meaning);
    i
}

/// A decimal string of at most 16 characters (the DS limit), as precise as fits.
fn format_ds(v: f64) -> String {
    let plain = format!("{v}");
    if plain.len() <= 16 {
        return plain;
    }
    (0..=10)
        .rev()
        .map(|decimals| format!("{v:.decimals$}"))
        .find(|s| s.len() <= 16)
        .unwrap_or_else(|| format!("{v:.3e}"))
}

fn tag_vr(tag: Tag) -> VR {
    match tag {
        t if t == tags::PATIENT_NAME || t == tags::REFERRING_PHYSICIAN_NAME => VR::PN,
        t if t == tags::PATIENT_BIRTH_DATE || t == tags::STUDY_DATE => VR::DA,
        t if t == tags::STUDY_TIME => VR::TM,
        t if t == tags::PATIENT_SEX => VR::CS,
        t if t == tags::STUDY_INSTANCE_UID || t == tags::FRAME_OF_REFERENCE_UID => VR::UI,
        t if t == tags::STUDY_ID || t == tags::ACCESSION_NUMBER => VR::SH,
        _ => VR::LO,
    }
}

/// A UID under the UUID-derived root 2.25 (PS3.5 B.2).
pub fn new_uid() -> String {
    format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
}

fn now_date_time() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}{month:02}{day:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, (rem % 3600) / 60, rem % 60),
    )
}
