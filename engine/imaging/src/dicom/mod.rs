//! DICOM in: finding the files of a folder (with or without `.dcm`, DICOMDIR trees), grouping them into
//! series, choosing a series by rule, and building a volume with the geometry the positions say.

mod header;
mod jpeg_turbo;
mod pixels;
mod raw;
mod seg;
mod select;
mod series;

use std::path::PathBuf;

pub use header::{read_header, DicomHeader, FramePlane};
pub use seg::{new_uid, write_seg, Algorithm, Code, SegmentDescription, SEGMENTATION_STORAGE};
pub use select::SeriesRule;
pub use series::{
    layout, load_series, scan, FolderScan, LoadedSeries, Series, SeriesLayout, SeriesMetadata,
};

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

/// The name of a transfer syntax UID, e.g. "Explicit VR Little Endian".
pub fn transfer_syntax_name(uid: &str) -> String {
    use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
    dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(uid)
        .map(|ts| ts.name().to_string())
        .unwrap_or_else(|| "unknown transfer syntax".to_string())
}
