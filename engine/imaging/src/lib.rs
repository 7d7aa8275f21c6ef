//! Imaging for voxflow: the [`Volume`] model (voxels plus patient geometry) and the operations on it, with
//! readers and writers layered on top: DICOM series (dicom-rs), NIfTI (the `nifti` crate for reading),
//! NumPy arrays (`npyz`) and PNG. The volume layer knows nothing about files; the readers produce volumes
//! and the writers consume them.

// Matrix and voxel-index arithmetic reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

pub mod dicom;
pub mod inspect;
pub mod nifti;
pub mod npy;
pub mod ops;
mod parallel;
pub mod png;
pub mod source;
mod stream;
pub mod volume;

pub use volume::{Geometry, ShapeMismatch, Volume, VoxelData};
