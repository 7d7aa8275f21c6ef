//! NIfTI in and out: `.nii`, `.nii.gz` and `.hdr`/`.img` pairs, NIfTI-1 and NIfTI-2 in, NIfTI-1 out. The
//! affine is chosen as the standard says (sform when its code is set, else qform, else pixdim only).

mod header;
mod read;
mod write;

use std::path::PathBuf;

pub use read::{decode_nifti, decode_nifti_file, decode_nifti_from, read_nifti};
pub use write::{encode_nifti, write_nifti, write_nifti_gz_to, write_nifti_to};

#[derive(Debug, thiserror::Error)]
pub enum NiftiError {
    #[error("{path}: cannot read NIfTI: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
    #[error("{path}: cannot write NIfTI: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the reader found besides the voxels.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiInfo {
    /// NIfTI-1 or NIfTI-2.
    pub version: u8,
    /// The stored datatype, before scaling (e.g. `int16`).
    pub stored_dtype: &'static str,
    pub endianness: &'static str,
    pub sform_code: i32,
    pub qform_code: i32,
    /// Which transform gave the geometry: `sform`, `qform` or `pixdim`.
    pub affine_source: &'static str,
    pub scaled: bool,
}
