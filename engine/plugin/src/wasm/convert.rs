//! Volumes between voxflow's imaging model and the contract's `volume` record (little-endian bytes).

use voxflow_imaging::{Geometry, Volume, VoxelData};

use super::bindings::voxflow::plugin::types as wit;

pub(crate) fn to_wit(volume: &Volume) -> wit::Volume {
    let g = &volume.geometry;
    fn bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len() * N);
        for &x in v {
            out.extend_from_slice(&f(x));
        }
        out
    }
    let (dtype, data) = match &volume.data {
        VoxelData::U8(v) => (wit::Dtype::Uint8, v.clone()),
        VoxelData::I16(v) => (wit::Dtype::Int16, bytes(v, i16::to_le_bytes)),
        VoxelData::U16(v) => (wit::Dtype::Uint16, bytes(v, u16::to_le_bytes)),
        VoxelData::I32(v) => (wit::Dtype::Int32, bytes(v, i32::to_le_bytes)),
        VoxelData::F32(v) => (wit::Dtype::Float32, bytes(v, f32::to_le_bytes)),
        VoxelData::F64(v) => (wit::Dtype::Float64, bytes(v, f64::to_le_bytes)),
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
    macro_rules! typed {
        ($t:ty) => {{
            const SIZE: usize = std::mem::size_of::<$t>();
            if raw.len() % SIZE != 0 {
                return Err(format!(
                    "{} bytes is not a whole number of {SIZE}-byte voxels",
                    raw.len()
                ));
            }
            raw.chunks_exact(SIZE)
                .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; SIZE])))
                .collect()
        }};
    }
    let data = match v.dtype {
        wit::Dtype::Uint8 => VoxelData::U8(raw),
        wit::Dtype::Int16 => VoxelData::I16(typed!(i16)),
        wit::Dtype::Uint16 => VoxelData::U16(typed!(u16)),
        wit::Dtype::Int32 => VoxelData::I32(typed!(i32)),
        wit::Dtype::Float32 => VoxelData::F32(typed!(f32)),
        wit::Dtype::Float64 => VoxelData::F64(typed!(f64)),
    };
    Volume::new(geometry, data).map_err(|e| e.to_string())
}
