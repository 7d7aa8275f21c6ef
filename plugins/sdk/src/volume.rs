//! Volumes as a plugin sees them: typed voxels (i fastest) with the geometry that places them in the
//! patient (LPS millimetres), converted from and to the contract's byte lists.

use crate::bindings::voxflow::plugin::types as wit;
use crate::PluginError;

// The contract's samples are little-endian, as WebAssembly's memory is: a typed slice and its bytes are the
// same, so conversions are single copies.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "voxel bytes are little-endian"
);

/// Samples from the contract's bytes (one copy: the byte list carries no alignment).
fn typed<T: bytemuck::Pod>(bytes: &[u8]) -> Result<Vec<T>, PluginError> {
    let size = std::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size) {
        return Err(PluginError::bad_input(format!(
            "{} bytes is not a whole number of {size}-byte voxels",
            bytes.len()
        )));
    }
    Ok(bytemuck::pod_collect_to_vec(bytes))
}

/// Voxel dims, spacing, origin and axis directions (LPS), as in voxflow's engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub dims: [usize; 3],
    pub spacing: [f64; 3],
    pub origin: [f64; 3],
    /// Unit vectors of the i, j and k axes.
    pub direction: [[f64; 3]; 3],
}

impl Geometry {
    /// Axis-aligned geometry with the given dims and spacing, origin at 0.
    pub fn new(dims: [usize; 3], spacing: [f64; 3]) -> Self {
        Self {
            dims,
            spacing,
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The flat index of voxel (i, j, k).
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }
    /// Millimetres³ of one voxel.
    pub fn voxel_volume(&self) -> f64 {
        self.spacing.iter().product()
    }
}

/// Typed voxels.
#[derive(Debug, Clone, PartialEq)]
pub enum VoxelData {
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl VoxelData {
    pub fn len(&self) -> usize {
        match self {
            VoxelData::U8(v) => v.len(),
            VoxelData::I16(v) => v.len(),
            VoxelData::U16(v) => v.len(),
            VoxelData::I32(v) => v.len(),
            VoxelData::F32(v) => v.len(),
            VoxelData::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every voxel as `f32`.
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            VoxelData::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            VoxelData::I16(v) => v.iter().map(|&x| f32::from(x)).collect(),
            VoxelData::U16(v) => v.iter().map(|&x| f32::from(x)).collect(),
            VoxelData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            VoxelData::F32(v) => v.clone(),
            VoxelData::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    /// Whether each voxel is non-zero (NaN counts as zero).
    pub fn nonzero(&self) -> Vec<bool> {
        match self {
            VoxelData::U8(v) => v.iter().map(|&x| x != 0).collect(),
            VoxelData::I16(v) => v.iter().map(|&x| x != 0).collect(),
            VoxelData::U16(v) => v.iter().map(|&x| x != 0).collect(),
            VoxelData::I32(v) => v.iter().map(|&x| x != 0).collect(),
            VoxelData::F32(v) => v.iter().map(|&x| x != 0.0 && !x.is_nan()).collect(),
            VoxelData::F64(v) => v.iter().map(|&x| x != 0.0 && !x.is_nan()).collect(),
        }
    }
}

/// Voxels in patient space: a scan, a mask or a label map.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub geometry: Geometry,
    pub data: VoxelData,
}

impl Volume {
    /// A volume, if the data has one voxel per grid point.
    pub fn new(geometry: Geometry, data: VoxelData) -> Result<Self, PluginError> {
        if data.len() != geometry.len() {
            return Err(PluginError::bad_input(format!(
                "{} voxels for a {:?} grid",
                data.len(),
                geometry.dims
            )));
        }
        Ok(Self { geometry, data })
    }
    /// A 0/1 `uint8` mask in this volume's geometry.
    pub fn with_mask(&self, mask: Vec<bool>) -> Volume {
        Volume {
            geometry: self.geometry.clone(),
            data: VoxelData::U8(mask.into_iter().map(u8::from).collect()),
        }
    }
    /// A `float32` volume in this volume's geometry.
    pub fn with_f32(&self, values: Vec<f32>) -> Volume {
        Volume {
            geometry: self.geometry.clone(),
            data: VoxelData::F32(values),
        }
    }
    pub fn nonzero(&self) -> Vec<bool> {
        self.data.nonzero()
    }
    /// Whether another volume lies on the same voxel grid (dims exactly; spacing, origin and directions
    /// within 1e-3).
    pub fn same_grid(&self, other: &Volume) -> bool {
        let (a, b) = (&self.geometry, &other.geometry);
        let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-3);
        a.dims == b.dims
            && close(&a.spacing, &b.spacing)
            && close(&a.origin, &b.origin)
            && (0..3).all(|r| close(&a.direction[r], &b.direction[r]))
    }

    pub(crate) fn from_wit(v: wit::Volume) -> Result<Volume, PluginError> {
        let g = v.geometry;
        if g.direction.len() != 9 {
            return Err(PluginError::bad_input(format!(
                "geometry has {} direction values, not 9",
                g.direction.len()
            )));
        }
        let d = &g.direction;
        let geometry = Geometry {
            dims: [g.dims.0 as usize, g.dims.1 as usize, g.dims.2 as usize],
            spacing: [g.spacing.0, g.spacing.1, g.spacing.2],
            origin: [g.origin.0, g.origin.1, g.origin.2],
            direction: [[d[0], d[1], d[2]], [d[3], d[4], d[5]], [d[6], d[7], d[8]]],
        };
        let bytes = v.data;
        let data = match v.dtype {
            wit::Dtype::Uint8 => VoxelData::U8(bytes),
            wit::Dtype::Int16 => VoxelData::I16(typed(&bytes)?),
            wit::Dtype::Uint16 => VoxelData::U16(typed(&bytes)?),
            wit::Dtype::Int32 => VoxelData::I32(typed(&bytes)?),
            wit::Dtype::Float32 => VoxelData::F32(typed(&bytes)?),
            wit::Dtype::Float64 => VoxelData::F64(typed(&bytes)?),
        };
        Volume::new(geometry, data)
    }

    pub(crate) fn into_wit(self) -> wit::Volume {
        let g = self.geometry;
        let (dtype, data) = match self.data {
            VoxelData::U8(v) => (wit::Dtype::Uint8, v),
            VoxelData::I16(v) => (wit::Dtype::Int16, bytemuck::cast_slice(&v).to_vec()),
            VoxelData::U16(v) => (wit::Dtype::Uint16, bytemuck::cast_slice(&v).to_vec()),
            VoxelData::I32(v) => (wit::Dtype::Int32, bytemuck::cast_slice(&v).to_vec()),
            VoxelData::F32(v) => (wit::Dtype::Float32, bytemuck::cast_slice(&v).to_vec()),
            VoxelData::F64(v) => (wit::Dtype::Float64, bytemuck::cast_slice(&v).to_vec()),
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
}
