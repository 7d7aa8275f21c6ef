//! The volume model: voxels of one scalar type plus their place in the patient. Knows nothing about files.
//!
//! Axis order: voxel `(i, j, k)` is stored at `i + nx * (j + ny * k)` — `i` (columns) varies fastest, then
//! `j` (rows), then `k` (slices), as in NIfTI. Geometry is in DICOM patient coordinates (LPS, millimetres):
//! the centre of voxel `(i, j, k)` is `origin + i*spacing[0]*direction[0] + j*spacing[1]*direction[1] +
//! k*spacing[2]*direction[2]`, where `direction[a]` is the unit vector of voxel axis `a`.

use serde::{Deserialize, Serialize};

/// Voxel values of one scalar type.
#[derive(Debug, Clone, PartialEq)]
pub enum VoxelData {
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

// The F64 arm of `each_variant!` casts f64 to f64; the other arms need the cast.
macro_rules! each_variant {
    ($self:expr, $v:ident => $body:expr) => {
        match $self {
            VoxelData::U8($v) => $body,
            VoxelData::I16($v) => $body,
            VoxelData::U16($v) => $body,
            VoxelData::I32($v) => $body,
            VoxelData::F32($v) => $body,
            VoxelData::F64($v) => $body,
        }
    };
}

impl VoxelData {
    pub fn len(&self) -> usize {
        each_variant!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets aside room for `additional` more values when the allocator grants it (a hint: the vector still
    /// grows as values come when it does not).
    pub fn try_reserve(&mut self, additional: usize) {
        each_variant!(self, v => { let _ = v.try_reserve_exact(additional); })
    }

    /// Appends `other`'s values; when the two types differ, both become float64.
    pub fn append(&mut self, other: VoxelData) {
        match (self, other) {
            (VoxelData::U8(a), VoxelData::U8(b)) => a.extend(b),
            (VoxelData::I16(a), VoxelData::I16(b)) => a.extend(b),
            (VoxelData::U16(a), VoxelData::U16(b)) => a.extend(b),
            (VoxelData::I32(a), VoxelData::I32(b)) => a.extend(b),
            (VoxelData::F32(a), VoxelData::F32(b)) => a.extend(b),
            (VoxelData::F64(a), VoxelData::F64(b)) => a.extend(b),
            (this, other) => {
                let mut values = this.to_f64();
                values.extend(other.to_f64());
                *this = VoxelData::F64(values);
            }
        }
    }

    /// Bytes of one value of this type.
    pub fn bytes_per_voxel(&self) -> usize {
        match self {
            VoxelData::U8(_) => 1,
            VoxelData::I16(_) | VoxelData::U16(_) => 2,
            VoxelData::I32(_) | VoxelData::F32(_) => 4,
            VoxelData::F64(_) => 8,
        }
    }

    /// The type's name as in numpy (`uint8`, `int16`, ..., `float64`).
    pub fn dtype(&self) -> &'static str {
        match self {
            VoxelData::U8(_) => "uint8",
            VoxelData::I16(_) => "int16",
            VoxelData::U16(_) => "uint16",
            VoxelData::I32(_) => "int32",
            VoxelData::F32(_) => "float32",
            VoxelData::F64(_) => "float64",
        }
    }

    #[allow(clippy::unnecessary_cast)]
    pub fn get_f64(&self, index: usize) -> f64 {
        each_variant!(self, v => v[index] as f64)
    }

    /// All values as f64 (a copy).
    #[allow(clippy::unnecessary_cast)]
    pub fn to_f64(&self) -> Vec<f64> {
        each_variant!(self, v => v.iter().map(|&x| x as f64).collect())
    }

    /// All values as f32 (a copy).
    #[allow(clippy::unnecessary_cast)]
    pub fn to_f32(&self) -> Vec<f32> {
        each_variant!(self, v => v.iter().map(|&x| x as f32).collect())
    }

    /// The smallest integer type that holds every value exactly, or f32 / f64 for fractional values.
    /// Integer voxels in the smallest type that holds them (the integer half of [`Self::from_f64_compact`]).
    pub fn from_i32_compact(values: Vec<i32>) -> VoxelData {
        let (min, max) = values
            .iter()
            .fold((i32::MAX, i32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let mut out = VoxelData::narrowest_integer(min, max, 0);
        if let VoxelData::I32(_) = out {
            return VoxelData::I32(values);
        }
        out.try_reserve(values.len());
        out.extend_from_i32(values.into_iter());
        out
    }

    /// An empty vector of the narrowest type that holds every integer in `min..=max` (uint8, int16, uint16,
    /// else int32; uint8 for an empty range), with room for `capacity` values when the allocator grants it.
    pub fn narrowest_integer(min: i32, max: i32, capacity: usize) -> VoxelData {
        let mut out = if min > max || (min >= 0 && max <= i32::from(u8::MAX)) {
            VoxelData::U8(Vec::new())
        } else if min >= i32::from(i16::MIN) && max <= i32::from(i16::MAX) {
            VoxelData::I16(Vec::new())
        } else if min >= 0 && max <= i32::from(u16::MAX) {
            VoxelData::U16(Vec::new())
        } else {
            VoxelData::I32(Vec::new())
        };
        out.try_reserve(capacity);
        out
    }

    /// Appends integers cast to this type (chosen to hold them: see [`VoxelData::narrowest_integer`]).
    pub fn extend_from_i32(&mut self, values: impl Iterator<Item = i32>) {
        match self {
            VoxelData::U8(v) => v.extend(values.map(|x| x as u8)),
            VoxelData::I16(v) => v.extend(values.map(|x| x as i16)),
            VoxelData::U16(v) => v.extend(values.map(|x| x as u16)),
            VoxelData::I32(v) => v.extend(values),
            VoxelData::F32(v) => v.extend(values.map(|x| x as f32)),
            VoxelData::F64(v) => v.extend(values.map(f64::from)),
        }
    }

    pub fn from_f64_compact(values: Vec<f64>) -> VoxelData {
        let integral = values.iter().all(|v| v.fract() == 0.0 && v.is_finite());
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if integral && !values.is_empty() {
            if min >= 0.0 && max <= u8::MAX as f64 {
                return VoxelData::U8(values.iter().map(|&v| v as u8).collect());
            }
            if min >= i16::MIN as f64 && max <= i16::MAX as f64 {
                return VoxelData::I16(values.iter().map(|&v| v as i16).collect());
            }
            if min >= 0.0 && max <= u16::MAX as f64 {
                return VoxelData::U16(values.iter().map(|&v| v as u16).collect());
            }
            if min >= i32::MIN as f64 && max <= i32::MAX as f64 {
                return VoxelData::I32(values.iter().map(|&v| v as i32).collect());
            }
        }
        let fits_f32 = values
            .iter()
            .all(|&v| (v as f32) as f64 == v || !v.is_finite());
        if fits_f32 {
            VoxelData::F32(values.iter().map(|&v| v as f32).collect())
        } else {
            VoxelData::F64(values)
        }
    }
}

/// How far apart two grids' voxel centres may be for them to count as one grid (see
/// [`Geometry::same_grid`]): a hundredth of a millimetre, far below any imaging voxel and far above what
/// float32 storage moves a grid (about 1e-4 mm at 500 mm from the scanner's origin).
pub const SAME_GRID_TOLERANCE_MM: f64 = 0.01;

/// Where the voxels are in the patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// Voxels along i, j, k.
    pub dims: [usize; 3],
    /// Millimetres between voxel centres along i, j, k.
    pub spacing: [f64; 3],
    /// LPS position of the centre of voxel (0, 0, 0).
    pub origin: [f64; 3],
    /// Unit LPS vector of each voxel axis: `direction[0]` is the direction of increasing i.
    pub direction: [[f64; 3]; 3],
}

impl Geometry {
    /// Axis-aligned geometry (identity direction) with the given dims and spacing at the origin.
    pub fn new(dims: [usize; 3], spacing: [f64; 3]) -> Self {
        Geometry {
            dims,
            spacing,
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    pub fn voxel_count(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }

    /// Whether `other` is this grid up to `tolerance_mm`: the same dimensions, and no voxel centre more than
    /// `tolerance_mm` away from its counterpart (checked at the eight corners: the map is affine). Exact
    /// equality is too strict for grids that went through a file: NIfTI-1 stores the affine as float32.
    pub fn same_grid(&self, other: &Geometry, tolerance_mm: f64) -> bool {
        if self.dims != other.dims {
            return false;
        }
        let last = self.dims.map(|d| d.saturating_sub(1) as f64);
        (0..8).all(|corner| {
            let ijk = std::array::from_fn(|a| if corner >> a & 1 == 1 { last[a] } else { 0.0 });
            let (p, q) = (self.voxel_to_lps(ijk), other.voxel_to_lps(ijk));
            let distance = (0..3).map(|d| (p[d] - q[d]).powi(2)).sum::<f64>().sqrt();
            distance <= tolerance_mm
        })
    }

    /// LPS position of a (possibly fractional) voxel index.
    pub fn voxel_to_lps(&self, ijk: [f64; 3]) -> [f64; 3] {
        let mut p = self.origin;
        for (axis, &c) in ijk.iter().enumerate() {
            for (d, p) in p.iter_mut().enumerate() {
                *p += c * self.spacing[axis] * self.direction[axis][d];
            }
        }
        p
    }

    /// The 4x4 voxel-to-LPS matrix (row-major).
    pub fn affine_lps(&self) -> [[f64; 4]; 4] {
        let mut m = [[0.0; 4]; 4];
        for row in 0..3 {
            for axis in 0..3 {
                m[row][axis] = self.direction[axis][row] * self.spacing[axis];
            }
            m[row][3] = self.origin[row];
        }
        m[3][3] = 1.0;
        m
    }

    /// The 4x4 voxel-to-RAS matrix that NIfTI stores (LPS with x and y negated).
    pub fn affine_ras(&self) -> [[f64; 4]; 4] {
        let mut m = self.affine_lps();
        for row in m.iter_mut().take(2) {
            row.iter_mut().for_each(|v| *v = -*v);
        }
        m
    }

    /// Geometry from a voxel-to-RAS matrix (as NIfTI stores it).
    pub fn from_affine_ras(dims: [usize; 3], affine: &[[f64; 4]; 4]) -> Self {
        let mut spacing = [0.0; 3];
        let mut direction = [[0.0; 3]; 3];
        for axis in 0..3 {
            let col = [-affine[0][axis], -affine[1][axis], affine[2][axis]];
            let norm = (col[0] * col[0] + col[1] * col[1] + col[2] * col[2]).sqrt();
            spacing[axis] = norm;
            direction[axis] = if norm > 0.0 {
                [col[0] / norm, col[1] / norm, col[2] / norm]
            } else {
                let mut unit = [0.0; 3];
                unit[axis] = 1.0;
                unit
            };
        }
        Geometry {
            dims,
            spacing,
            origin: [-affine[0][3], -affine[1][3], affine[2][3]],
            direction,
        }
    }

    /// The orientation code of the axes, as nibabel's `aff2axcodes` in RAS terms (e.g. `"RAS"`, `"LPS"`).
    pub fn orientation_ras(&self) -> String {
        self.direction
            .iter()
            .map(|d| {
                // LPS components: x+ = L, y+ = P, z+ = S
                let (axis, value) = d
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .unwrap_or((0, &1.0));
                match (axis, *value >= 0.0) {
                    (0, true) => 'L',
                    (0, false) => 'R',
                    (1, true) => 'P',
                    (1, false) => 'A',
                    (_, true) => 'S',
                    (_, false) => 'I',
                }
            })
            .collect()
    }
}

/// A 3D image or label map with its geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub geometry: Geometry,
    pub data: VoxelData,
}

/// A volume whose data length does not match its dimensions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("volume data has {actual} values but dimensions {dims:?} need {expected}")]
pub struct ShapeMismatch {
    pub dims: [usize; 3],
    pub expected: usize,
    pub actual: usize,
}

impl Volume {
    pub fn new(geometry: Geometry, data: VoxelData) -> Result<Self, ShapeMismatch> {
        let expected = geometry.voxel_count();
        if data.len() != expected {
            return Err(ShapeMismatch {
                dims: geometry.dims,
                expected,
                actual: data.len(),
            });
        }
        Ok(Volume { geometry, data })
    }

    pub fn dims(&self) -> [usize; 3] {
        self.geometry.dims
    }

    pub fn get_f64(&self, i: usize, j: usize, k: usize) -> f64 {
        self.data.get_f64(self.geometry.index(i, j, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_go_into_the_narrowest_type_that_holds_their_range() {
        for (min, max, dtype) in [
            (i32::MAX, i32::MIN, "uint8"), // no values
            (0, 255, "uint8"),
            (-1, 255, "int16"),
            (-1024, 3071, "int16"),
            (0, 65535, "uint16"),
            (-1, 40000, "int32"),
        ] {
            let mut data = VoxelData::narrowest_integer(min, max, 2);
            assert_eq!(data.dtype(), dtype, "{min}..={max}");
            if min <= max {
                data.extend_from_i32([min, max].into_iter());
                assert_eq!(data.to_f64(), vec![f64::from(min), f64::from(max)]);
                assert_eq!(VoxelData::from_i32_compact(vec![min, max]), data);
            }
        }
    }

    #[test]
    fn a_grid_read_back_from_nifti_is_the_same_grid_and_a_shifted_one_is_not() {
        let grid = Geometry {
            dims: [384, 384, 19],
            spacing: [0.5, 0.5, 3.6],
            origin: [-101.35, -87.42, -53.17],
            direction: [
                [0.9998, 0.0, -0.0175],
                [0.0017, 0.9952, 0.0976],
                [0.0174, -0.0976, 0.9951],
            ],
        };
        let volume = Volume::new(grid.clone(), VoxelData::U8(vec![0; grid.voxel_count()])).unwrap();
        let bytes = crate::nifti::encode_nifti(&volume, "");
        let (back, _) = crate::nifti::decode_nifti(&bytes, std::path::Path::new("x.nii")).unwrap();
        assert_ne!(
            back.geometry, grid,
            "float32 storage moves the grid a little"
        );
        assert!(back.geometry.same_grid(&grid, SAME_GRID_TOLERANCE_MM));
        let mut shifted = grid.clone();
        shifted.origin[2] += 0.05;
        assert!(!shifted.same_grid(&grid, SAME_GRID_TOLERANCE_MM));
        let mut tilted = grid.clone();
        tilted.direction[0] = [0.9998, 0.0002, -0.0175];
        assert!(
            !tilted.same_grid(&grid, SAME_GRID_TOLERANCE_MM),
            "a tilt shows at the far corners"
        );
        let mut other_dims = grid.clone();
        other_dims.dims[2] = 20;
        assert!(!other_dims.same_grid(&grid, SAME_GRID_TOLERANCE_MM));
    }

    #[test]
    fn affine_round_trip_through_ras() {
        let g = Geometry {
            dims: [4, 5, 6],
            spacing: [0.5, 0.75, 3.0],
            origin: [-10.0, 20.0, 5.0],
            direction: [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]],
        };
        let back = Geometry::from_affine_ras(g.dims, &g.affine_ras());
        for a in 0..3 {
            assert!((back.spacing[a] - g.spacing[a]).abs() < 1e-12);
            assert!((back.origin[a] - g.origin[a]).abs() < 1e-12);
            for d in 0..3 {
                assert!((back.direction[a][d] - g.direction[a][d]).abs() < 1e-12);
            }
        }
        let p = g.voxel_to_lps([1.0, 2.0, 3.0]);
        assert_eq!(p, [-10.0 + 9.0, 20.0 + 0.5, 5.0 - 1.5]);
        assert_eq!(g.orientation_ras(), "PIL");
    }

    #[test]
    fn compact_types() {
        assert!(matches!(
            VoxelData::from_f64_compact(vec![0.0, 255.0]),
            VoxelData::U8(_)
        ));
        assert!(matches!(
            VoxelData::from_f64_compact(vec![-1024.0, 3000.0]),
            VoxelData::I16(_)
        ));
        assert!(matches!(
            VoxelData::from_f64_compact(vec![0.0, 60000.0]),
            VoxelData::U16(_)
        ));
        assert!(matches!(
            VoxelData::from_f64_compact(vec![0.5]),
            VoxelData::F32(_)
        ));
        assert!(matches!(
            VoxelData::from_f64_compact(vec![0.1]),
            VoxelData::F64(_)
        ));
        assert!(Volume::new(
            Geometry::new([2, 2, 2], [1.0; 3]),
            VoxelData::U8(vec![0; 7])
        )
        .is_err());
    }
}
