//! An image source as a user names it: a NIfTI file (or `.hdr`/`.img` pair), a NumPy array (`.npy`,
//! `.npy.gz`), or a DICOM file or folder from which a series is picked by rule. The one place that tells
//! them apart (by file name).

use std::path::Path;

use crate::dicom::{load_series, scan, DicomError, LoadedSeries, SeriesMetadata, SeriesRule};
use crate::inspect::is_nifti_path;
use crate::nifti::{read_nifti, NiftiError, NiftiInfo};
use crate::npy::{is_npy_path, read_npy, NpyError};
use crate::Volume;

/// What was loaded, with what its reader found besides the voxels.
#[derive(Debug)]
pub struct LoadedSource {
    pub volume: Volume,
    pub origin: Origin,
}

/// Which reader produced a [`LoadedSource`], and what it reported.
#[derive(Debug)]
pub enum Origin {
    Nifti(NiftiInfo),
    Dicom {
        /// Boxed: the series' attributes (every SOP instance UID) dwarf NIfTI's few fields.
        metadata: Box<SeriesMetadata>,
        /// Things that did not stop loading but that a reader should know.
        warnings: Vec<String>,
    },
    /// A NumPy array: no geometry of its own.
    Npy {
        /// The spacing was not stated by the caller: a nominal 1 mm.
        spacing_assumed: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Nifti(#[from] NiftiError),
    #[error(transparent)]
    Dicom(#[from] DicomError),
    #[error(transparent)]
    Npy(#[from] NpyError),
}

/// Loads `path`: a NIfTI file by its extension, otherwise the series `rule` picks under a DICOM path.
pub fn load_source(path: &Path, rule: &SeriesRule) -> Result<LoadedSource, SourceError> {
    load_source_spaced(path, rule, None)
}

/// As [`load_source`], with the voxel spacing (mm along x, y, z) of sources that do not record one (NumPy
/// arrays; default a nominal 1 mm, reported as assumed). Files that record their geometry keep it.
pub fn load_source_spaced(
    path: &Path,
    rule: &SeriesRule,
    array_spacing: Option<[f64; 3]>,
) -> Result<LoadedSource, SourceError> {
    if is_npy_path(path) {
        return Ok(LoadedSource {
            volume: read_npy(path, array_spacing.unwrap_or([1.0; 3]))?,
            origin: Origin::Npy {
                spacing_assumed: array_spacing.is_none(),
            },
        });
    }
    if is_nifti_path(path) {
        let (volume, info) = read_nifti(path)?;
        return Ok(LoadedSource {
            volume,
            origin: Origin::Nifti(info),
        });
    }
    let found = scan(path)?;
    let series = found.select(rule, path)?;
    let LoadedSeries {
        volume,
        metadata,
        warnings,
    } = load_series(series)?;
    Ok(LoadedSource {
        volume,
        origin: Origin::Dicom {
            metadata: Box::new(metadata),
            warnings,
        },
    })
}
