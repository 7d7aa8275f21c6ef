//! What is in a file or folder: the series found (or the NIfTI image), with size, spacing, orientation,
//! transfer syntax and problems, without decoding pixel data. Used by `voxflow inspect`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::dicom::{self, layout, scan, transfer_syntax_name};
use crate::nifti::read_nifti;

#[derive(Debug, Clone, Serialize)]
pub struct SeriesReport {
    pub series_instance_uid: String,
    pub modality: String,
    pub description: String,
    pub patient_id: String,
    pub study_instance_uid: String,
    pub files: usize,
    pub frames: usize,
    pub dims: Option<[usize; 3]>,
    pub spacing: Option<[f64; 3]>,
    /// RAS axis codes of the voxel axes (as nibabel's aff2axcodes).
    pub orientation: Option<String>,
    pub transfer_syntaxes: Vec<(String, String)>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NiftiReport {
    pub dims: [usize; 3],
    pub dtype: String,
    pub stored_dtype: String,
    pub spacing: [f64; 3],
    pub orientation: String,
    pub affine_ras: [[f64; 4]; 4],
    pub affine_source: String,
    pub endianness: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum Report {
    Dicom {
        path: PathBuf,
        series: Vec<SeriesReport>,
        skipped: Vec<(PathBuf, String)>,
    },
    Nifti {
        path: PathBuf,
        #[serde(flatten)]
        image: Box<NiftiReport>,
    },
}

/// Whether a path names a NIfTI file by its extension.
pub fn is_nifti_path(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    [".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Dicom(#[from] dicom::DicomError),
    #[error(transparent)]
    Nifti(#[from] crate::nifti::NiftiError),
}

pub fn inspect(path: &Path) -> Result<Report, InspectError> {
    if is_nifti_path(path) {
        let (v, info) = read_nifti(path)?;
        return Ok(Report::Nifti {
            path: path.to_path_buf(),
            image: Box::new(NiftiReport {
                dims: v.dims(),
                dtype: v.data.dtype().to_string(),
                stored_dtype: info.stored_dtype.to_string(),
                spacing: v.geometry.spacing,
                orientation: v.geometry.orientation_ras(),
                affine_ras: v.geometry.affine_ras(),
                affine_source: info.affine_source.to_string(),
                endianness: info.endianness.to_string(),
            }),
        });
    }
    let found = scan(path)?;
    let series = found
        .series
        .iter()
        .map(|s| {
            let h = s.first();
            let mut ts: Vec<String> = s.files.iter().map(|f| f.transfer_syntax.clone()).collect();
            ts.sort();
            ts.dedup();
            let (dims, spacing, orientation, problems) = match layout(s) {
                Ok(l) => (
                    Some(l.geometry.dims),
                    Some(l.geometry.spacing),
                    Some(l.geometry.orientation_ras()),
                    l.warnings,
                ),
                Err(e) => (None, None, None, vec![e.to_string()]),
            };
            SeriesReport {
                series_instance_uid: s.uid.clone(),
                modality: h.modality.clone(),
                description: h.series_description.clone(),
                patient_id: h.patient_id.clone(),
                study_instance_uid: h.study_instance_uid.clone(),
                files: s.files.len(),
                frames: s.frame_count(),
                dims,
                spacing,
                orientation,
                transfer_syntaxes: ts
                    .into_iter()
                    .map(|uid| (transfer_syntax_name(&uid), uid))
                    .collect(),
                problems,
            }
        })
        .collect();
    Ok(Report::Dicom {
        path: path.to_path_buf(),
        series,
        skipped: found.skipped,
    })
}
