//! Volumes as a plugin sees them: typed voxels (i fastest) with the geometry that places them in the
//! patient (LPS millimetres), converted from and to the contract's byte lists.

use crate::bindings::voxflow::plugin::types as wit;
use crate::PluginError;

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
        macro_rules! typed {
            ($t:ty, $variant:ident) => {{
                let size = std::mem::size_of::<$t>();
                if bytes.len() % size != 0 {
                    return Err(PluginError::bad_input(format!(
                        "{} bytes is not a whole number of {size}-byte voxels",
                        bytes.len()
                    )));
                }
                VoxelData::$variant(
                    bytes
                        .chunks_exact(size)
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default()))
                        .collect(),
                )
            }};
        }
        let data = match v.dtype {
            wit::Dtype::Uint8 => VoxelData::U8(bytes),
            wit::Dtype::Int16 => typed!(i16, I16),
            wit::Dtype::Uint16 => typed!(u16, U16),
            wit::Dtype::Int32 => typed!(i32, I32),
            wit::Dtype::Float32 => typed!(f32, F32),
            wit::Dtype::Float64 => typed!(f64, F64),
        };
        Volume::new(geometry, data)
    }

    pub(crate) fn into_wit(self) -> wit::Volume {
        let g = self.geometry;
        fn bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            let mut out = Vec::with_capacity(v.len() * N);
            for &x in v {
                out.extend_from_slice(&f(x));
            }
            out
        }
        let (dtype, data) = match self.data {
            VoxelData::U8(v) => (wit::Dtype::Uint8, v),
            VoxelData::I16(v) => (wit::Dtype::Int16, bytes(&v, i16::to_le_bytes)),
            VoxelData::U16(v) => (wit::Dtype::Uint16, bytes(&v, u16::to_le_bytes)),
            VoxelData::I32(v) => (wit::Dtype::Int32, bytes(&v, i32::to_le_bytes)),
            VoxelData::F32(v) => (wit::Dtype::Float32, bytes(&v, f32::to_le_bytes)),
            VoxelData::F64(v) => (wit::Dtype::Float64, bytes(&v, f64::to_le_bytes)),
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
