//! DICOM in: finding the files of a folder (with or without `.dcm`, DICOMDIR trees), grouping them into
//! series, choosing a series by rule, and building a volume with the geometry the positions say.

mod header;
mod select;
mod series;

use std::path::PathBuf;

pub use header::{read_header, DicomHeader, FramePlane};
pub use select::SeriesRule;
pub use series::{load_series, scan, FolderScan, LoadedSeries, Series, SeriesMetadata};

#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("series {series}: {message}")]
    Series { series: String, message: String },
    #[error("{0}")]
    Selection(String),
    #[error("{path}: no DICOM image series found{detail}")]
    NoSeries { path: PathBuf, detail: String },
}
