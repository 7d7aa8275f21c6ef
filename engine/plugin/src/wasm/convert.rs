//! Volumes between voxflow's imaging model and the contract's `volume` record (little-endian bytes).

use voxflow_imaging::{Geometry, Volume, VoxelData};

use super::bindings::voxflow::plugin::types as wit;

// The contract's samples are little-endian: on a little-endian host a typed slice and its bytes are the
// same, so each conversion is one copy.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "voxel bytes are little-endian"
);

fn typed<T: bytemuck::Pod>(raw: &[u8]) -> Result<Vec<T>, String> {
    let size = std::mem::size_of::<T>();
    if !raw.len().is_multiple_of(size) {
        return Err(format!(
            "{} bytes is not a whole number of {size}-byte voxels",
            raw.len()
        ));
    }
    Ok(bytemuck::pod_collect_to_vec(raw))
}

pub(crate) fn to_wit(volume: &Volume) -> wit::Volume {
    let g = &volume.geometry;
    let (dtype, data) = match &volume.data {
        VoxelData::U8(v) => (wit::Dtype::Uint8, v.clone()),
        VoxelData::I16(v) => (wit::Dtype::Int16, bytemuck::cast_slice(v).to_vec()),
        VoxelData::U16(v) => (wit::Dtype::Uint16, bytemuck::cast_slice(v).to_vec()),
        VoxelData::I32(v) => (wit::Dtype::Int32, bytemuck::cast_slice(v).to_vec()),
        VoxelData::F32(v) => (wit::Dtype::Float32, bytemuck::cast_slice(v).to_vec()),
        VoxelData::F64(v) => (wit::Dtype::Float64, bytemuck::cast_slice(v).to_vec()),
    };
    wit::Volume {
        dtype,
        geometry: wit::Geometry {
            dims: (g.dims[0] as u32, g.dims[1] as u32, g.dims[2] as u32),
            spacing: (g.spacing[0], g.spacing[1], g.spacing[2]),
            origin: (g.origin[0], g.origin[1], g.origin[2]),
            direction: g.direction.iter().flatten().copied().collect(),
        },
        data,
    }
}

/// A volume a plugin returned; the error says what is inconsistent.
pub(crate) fn from_wit(v: wit::Volume) -> Result<Volume, String> {
    let g = v.geometry;
    if g.direction.len() != 9 {
        return Err(format!(
            "its geometry has {} direction values, not 9",
            g.direction.len()
        ));
    }
    let d = &g.direction;
    let geometry = Geometry {
        dims: [g.dims.0 as usize, g.dims.1 as usize, g.dims.2 as usize],
        spacing: [g.spacing.0, g.spacing.1, g.spacing.2],
        origin: [g.origin.0, g.origin.1, g.origin.2],
        direction: [[d[0], d[1], d[2]], [d[3], d[4], d[5]], [d[6], d[7], d[8]]],
    };
    let raw = v.data;
    let data = match v.dtype {
        wit::Dtype::Uint8 => VoxelData::U8(raw),
        wit::Dtype::Int16 => VoxelData::I16(typed(&raw)?),
        wit::Dtype::Uint16 => VoxelData::U16(typed(&raw)?),
        wit::Dtype::Int32 => VoxelData::I32(typed(&raw)?),
        wit::Dtype::Float32 => VoxelData::F32(typed(&raw)?),
        wit::Dtype::Float64 => VoxelData::F64(typed(&raw)?),
    };
    Volume::new(geometry, data).map_err(|e| e.to_string())
}
