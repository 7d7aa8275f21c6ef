//! Operations every imaging step needs: intensity statistics, normalization and windowing, resampling to a
//! target spacing, cropping and padding, slice extraction, and reorientation to the closest canonical
//! orientation and back. All keep the geometry consistent with the voxels.

use crate::volume::{Geometry, Volume, VoxelData};

/// Intensity statistics over a volume (optionally inside a mask).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
}

/// Statistics of the voxels, restricted to `mask > 0` when a mask of the same dims is given.
pub fn stats(volume: &Volume, mask: Option<&Volume>) -> Stats {
    let (mut count, mut sum, mut sum_sq) = (0usize, 0.0f64, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for idx in 0..volume.data.len() {
        if mask.is_some_and(|m| m.data.get_f64(idx) <= 0.0) {
            continue;
        }
        let v = volume.data.get_f64(idx);
        count += 1;
        sum += v;
        sum_sq += v * v;
        min = min.min(v);
        max = max.max(v);
    }
    let mean = if count > 0 {
        sum / count as f64
    } else {
        f64::NAN
    };
    let var = if count > 0 {
        (sum_sq / count as f64 - mean * mean).max(0.0)
    } else {
        f64::NAN
    };
    Stats {
        count,
        min,
        max,
        mean,
        std: var.sqrt(),
    }
}

/// The `p`-th percentile (0..=100) of the voxels, by nearest rank.
pub fn percentile(volume: &Volume, p: f64) -> f64 {
    let mut v = volume.data.to_f64();
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * (v.len() - 1) as f64).round() as usize;
    let (_, nth, _) = v.select_nth_unstable_by(rank, f64::total_cmp);
    *nth
}

/// Z-score normalization (statistics over the mask if given) into f32.
pub fn normalize_zscore(volume: &Volume, mask: Option<&Volume>) -> Volume {
    let s = stats(volume, mask);
    let scale = if s.std > 0.0 { 1.0 / s.std } else { 1.0 };
    map_f32(volume, |v| ((v - s.mean) * scale) as f32)
}

/// Clips to the `[low, high]` percentiles and scales that range to `[0, 1]` (f32).
pub fn normalize_percentile(volume: &Volume, low: f64, high: f64) -> Volume {
    let (lo, hi) = (percentile(volume, low), percentile(volume, high));
    let range = if hi > lo { hi - lo } else { 1.0 };
    map_f32(volume, |v| ((v.clamp(lo, hi) - lo) / range) as f32)
}

/// Display windowing (`center`, `width` as in DICOM) into 8-bit grey levels.
pub fn window_u8(volume: &Volume, center: f64, width: f64) -> Volume {
    let lo = center - width / 2.0;
    let w = width.max(f64::EPSILON);
    let data = (0..volume.data.len())
        .map(|i| (((volume.data.get_f64(i) - lo) / w).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    Volume {
        geometry: volume.geometry.clone(),
        data: VoxelData::U8(data),
    }
}

fn map_f32(volume: &Volume, f: impl Fn(f64) -> f32) -> Volume {
    let data = (0..volume.data.len())
        .map(|i| f(volume.data.get_f64(i)))
        .collect();
    Volume {
        geometry: volume.geometry.clone(),
        data: VoxelData::F32(data),
    }
}

/// A mask of the voxels within `[lower, upper]` (either bound optional), valued `label`.
pub fn threshold(volume: &Volume, lower: Option<f64>, upper: Option<f64>, label: u8) -> Volume {
    let data = (0..volume.data.len())
        .map(|i| {
            let v = volume.data.get_f64(i);
            let inside = lower.is_none_or(|l| v >= l) && upper.is_none_or(|u| v <= u);
            if inside {
                label
            } else {
                0
            }
        })
        .collect();
    Volume {
        geometry: volume.geometry.clone(),
        data: VoxelData::U8(data),
    }
}

/// How to sample between voxel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// For label maps and masks.
    Nearest,
    /// Trilinear, for images; points past the volume's edge read as 0.
    Linear,
    /// Trilinear; points past the edge take the value at the edge (MONAI's and ITK's "border" padding),
    /// for resampling an image onto a grid that reaches slightly past it.
    LinearBorder,
}

/// Resamples to a new spacing over the same physical extent (same origin and direction). Linear results
/// are f32; nearest keeps the voxel type.
pub fn resample_to_spacing(
    volume: &Volume,
    spacing: [f64; 3],
    interpolation: Interpolation,
) -> Volume {
    let g = &volume.geometry;
    let mut dims = [0usize; 3];
    for a in 0..3 {
        let extent = g.dims[a] as f64 * g.spacing[a];
        dims[a] = ((extent / spacing[a]).round() as usize).max(1);
    }
    let target = Geometry {
        dims,
        spacing,
        origin: g.origin,
        direction: g.direction,
    };
    resample_onto(volume, &target, interpolation)
}

/// Samples `volume` on the grid of `target` (any geometry, e.g. the source series of a mask). Points
/// outside the volume read as 0.
pub fn resample_onto(volume: &Volume, target: &Geometry, interpolation: Interpolation) -> Volume {
    let src = &volume.geometry;
    // LPS -> source voxel index: inverse of (direction * spacing), applied to (p - origin).
    let inv = inverse3(&[
        [
            src.direction[0][0] * src.spacing[0],
            src.direction[1][0] * src.spacing[1],
            src.direction[2][0] * src.spacing[2],
        ],
        [
            src.direction[0][1] * src.spacing[0],
            src.direction[1][1] * src.spacing[1],
            src.direction[2][1] * src.spacing[2],
        ],
        [
            src.direction[0][2] * src.spacing[0],
            src.direction[1][2] * src.spacing[1],
            src.direction[2][2] * src.spacing[2],
        ],
    ]);
    let [nx, ny, nz] = target.dims;
    let mut out = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let p = target.voxel_to_lps([i as f64, j as f64, k as f64]);
                let d = [
                    p[0] - src.origin[0],
                    p[1] - src.origin[1],
                    p[2] - src.origin[2],
                ];
                let c = [
                    inv[0][0] * d[0] + inv[0][1] * d[1] + inv[0][2] * d[2],
                    inv[1][0] * d[0] + inv[1][1] * d[1] + inv[1][2] * d[2],
                    inv[2][0] * d[0] + inv[2][1] * d[1] + inv[2][2] * d[2],
                ];
                out.push(match interpolation {
                    Interpolation::Nearest => sample_nearest(volume, c),
                    Interpolation::Linear => sample_linear(volume, c, false),
                    Interpolation::LinearBorder => sample_linear(volume, c, true),
                });
            }
        }
    }
    let data = match (interpolation, &volume.data) {
        (Interpolation::Linear | Interpolation::LinearBorder, _) => {
            VoxelData::F32(out.iter().map(|&v| v as f32).collect())
        }
        (Interpolation::Nearest, VoxelData::U8(_)) => {
            VoxelData::U8(out.iter().map(|&v| v as u8).collect())
        }
        (Interpolation::Nearest, VoxelData::I16(_)) => {
            VoxelData::I16(out.iter().map(|&v| v as i16).collect())
        }
        (Interpolation::Nearest, VoxelData::U16(_)) => {
            VoxelData::U16(out.iter().map(|&v| v as u16).collect())
        }
        (Interpolation::Nearest, VoxelData::I32(_)) => {
            VoxelData::I32(out.iter().map(|&v| v as i32).collect())
        }
        (Interpolation::Nearest, VoxelData::F32(_)) => {
            VoxelData::F32(out.iter().map(|&v| v as f32).collect())
        }
        (Interpolation::Nearest, VoxelData::F64(_)) => VoxelData::F64(out),
    };
    Volume {
        geometry: target.clone(),
        data,
    }
}

fn sample_nearest(v: &Volume, c: [f64; 3]) -> f64 {
    let d = v.geometry.dims;
    let idx: Vec<i64> = c.iter().map(|x| x.round() as i64).collect();
    if (0..3).any(|a| idx[a] < 0 || idx[a] >= d[a] as i64) {
        return 0.0;
    }
    v.get_f64(idx[0] as usize, idx[1] as usize, idx[2] as usize)
}

fn sample_linear(v: &Volume, c: [f64; 3], border: bool) -> f64 {
    let d = v.geometry.dims;
    let eps = 1e-6;
    if !border && (0..3).any(|a| c[a] < -eps || c[a] > (d[a] - 1) as f64 + eps) {
        return 0.0;
    }
    let c: [f64; 3] = std::array::from_fn(|a| c[a].clamp(0.0, (d[a] - 1) as f64));
    let base: Vec<usize> = (0..3)
        .map(|a| (c[a].max(0.0).floor() as usize).min(d[a].saturating_sub(1)))
        .collect();
    let frac: Vec<f64> = (0..3)
        .map(|a| (c[a] - base[a] as f64).clamp(0.0, 1.0))
        .collect();
    let mut acc = 0.0;
    for corner in 0..8usize {
        let mut w = 1.0;
        let mut idx = [0usize; 3];
        for a in 0..3 {
            let up = (corner >> a) & 1 == 1;
            idx[a] = if up {
                (base[a] + 1).min(d[a] - 1)
            } else {
                base[a]
            };
            w *= if up { frac[a] } else { 1.0 - frac[a] };
        }
        if w > 0.0 {
            acc += w * v.get_f64(idx[0], idx[1], idx[2]);
        }
    }
    acc
}

fn inverse3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let inv_det = if det.abs() > 0.0 { 1.0 / det } else { 0.0 };
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let (a, b) = ((j + 1) % 3, (j + 2) % 3);
            let (c, d) = ((i + 1) % 3, (i + 2) % 3);
            r[i][j] = (m[a][c] * m[b][d] - m[a][d] * m[b][c]) * inv_det;
        }
    }
    r
}

/// Crops or pads (with `fill`) each axis symmetrically to `dims`, moving the origin so that voxels keep
/// their physical positions.
pub fn crop_or_pad(volume: &Volume, dims: [usize; 3], fill: f64) -> Volume {
    let g = &volume.geometry;
    // offset[a]: source index of target index 0 along axis a (negative when padding).
    let offset: Vec<i64> = (0..3)
        .map(|a| (g.dims[a] as i64 - dims[a] as i64) / 2)
        .collect();
    let mut values = Vec::with_capacity(dims.iter().product());
    for k in 0..dims[2] as i64 {
        for j in 0..dims[1] as i64 {
            for i in 0..dims[0] as i64 {
                let s = [i + offset[0], j + offset[1], k + offset[2]];
                let inside = (0..3).all(|a| s[a] >= 0 && s[a] < g.dims[a] as i64);
                values.push(if inside {
                    volume.get_f64(s[0] as usize, s[1] as usize, s[2] as usize)
                } else {
                    fill
                });
            }
        }
    }
    let origin = g.voxel_to_lps([offset[0] as f64, offset[1] as f64, offset[2] as f64]);
    Volume {
        geometry: Geometry {
            dims,
            spacing: g.spacing,
            origin,
            direction: g.direction,
        },
        data: same_type(&volume.data, values),
    }
}

fn same_type(like: &VoxelData, values: Vec<f64>) -> VoxelData {
    match like {
        VoxelData::U8(_) => VoxelData::U8(values.iter().map(|&v| v as u8).collect()),
        VoxelData::I16(_) => VoxelData::I16(values.iter().map(|&v| v as i16).collect()),
        VoxelData::U16(_) => VoxelData::U16(values.iter().map(|&v| v as u16).collect()),
        VoxelData::I32(_) => VoxelData::I32(values.iter().map(|&v| v as i32).collect()),
        VoxelData::F32(_) => VoxelData::F32(values.iter().map(|&v| v as f32).collect()),
        VoxelData::F64(_) => VoxelData::F64(values),
    }
}

/// One 2D slice across `axis` at `index`: (width, height, values row by row).
pub fn extract_slice(
    volume: &Volume,
    axis: usize,
    index: usize,
) -> Option<(usize, usize, Vec<f64>)> {
    let d = volume.geometry.dims;
    if axis > 2 || index >= d[axis] {
        return None;
    }
    let (u, v) = match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let mut out = Vec::with_capacity(d[u] * d[v]);
    for b in 0..d[v] {
        for a in 0..d[u] {
            let mut ijk = [0usize; 3];
            ijk[axis] = index;
            ijk[u] = a;
            ijk[v] = b;
            out.push(volume.get_f64(ijk[0], ijk[1], ijk[2]));
        }
    }
    Some((d[u], d[v], out))
}

/// A permutation and flips of the voxel axes: output axis `a` is input axis `perm[a]`, reversed if `flip[a]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisMap {
    pub perm: [usize; 3],
    pub flip: [bool; 3],
}

impl AxisMap {
    /// The map that brings a volume to the closest RAS+ orientation (as nibabel's `as_closest_canonical`).
    pub fn to_closest_ras(geometry: &Geometry) -> AxisMap {
        let mut perm = [0usize; 3];
        let mut flip = [false; 3];
        let mut used = [false; 3];
        // For each RAS output axis, pick the input axis whose direction is most aligned with it.
        for out_axis in 0..3 {
            let (best, _) = (0..3)
                .filter(|a| !used[*a])
                .map(|a| (a, geometry.direction[a][out_axis].abs()))
                .fold(
                    (usize::MAX, -1.0),
                    |acc, x| if x.1 > acc.1 { x } else { acc },
                );
            used[best] = true;
            perm[out_axis] = best;
            // LPS x+ is Left and y+ Posterior; RAS wants Right and Anterior, i.e. negative LPS x and y.
            let component = geometry.direction[best][out_axis];
            flip[out_axis] = if out_axis < 2 {
                component > 0.0
            } else {
                component < 0.0
            };
        }
        AxisMap { perm, flip }
    }

    /// The map that brings a volume to the closest LPS+ orientation (DICOM's patient axes).
    pub fn to_closest_lps(geometry: &Geometry) -> AxisMap {
        let mut map = AxisMap::to_closest_ras(geometry);
        map.flip[0] = !map.flip[0];
        map.flip[1] = !map.flip[1];
        map
    }

    pub fn inverse(&self) -> AxisMap {
        let mut perm = [0usize; 3];
        let mut flip = [false; 3];
        for out_axis in 0..3 {
            perm[self.perm[out_axis]] = out_axis;
            flip[self.perm[out_axis]] = self.flip[out_axis];
        }
        AxisMap { perm, flip }
    }

    /// Applies the map to voxels and geometry; every voxel keeps its physical position.
    pub fn apply(&self, volume: &Volume) -> Volume {
        let g = &volume.geometry;
        let dims = [
            g.dims[self.perm[0]],
            g.dims[self.perm[1]],
            g.dims[self.perm[2]],
        ];
        let data = match &volume.data {
            VoxelData::U8(v) => VoxelData::U8(self.rearranged(v, g.dims)),
            VoxelData::I16(v) => VoxelData::I16(self.rearranged(v, g.dims)),
            VoxelData::U16(v) => VoxelData::U16(self.rearranged(v, g.dims)),
            VoxelData::I32(v) => VoxelData::I32(self.rearranged(v, g.dims)),
            VoxelData::F32(v) => VoxelData::F32(self.rearranged(v, g.dims)),
            VoxelData::F64(v) => VoxelData::F64(self.rearranged(v, g.dims)),
        };
        let mut origin_index = [0.0; 3];
        let mut spacing = [0.0; 3];
        let mut direction = [[0.0; 3]; 3];
        for a in 0..3 {
            let p = self.perm[a];
            spacing[a] = g.spacing[p];
            let sign = if self.flip[a] { -1.0 } else { 1.0 };
            direction[a] = [
                g.direction[p][0] * sign,
                g.direction[p][1] * sign,
                g.direction[p][2] * sign,
            ];
            if self.flip[a] {
                origin_index[p] = (dims[a] - 1) as f64;
            }
        }
        Volume {
            geometry: Geometry {
                dims,
                spacing,
                origin: g.voxel_to_lps(origin_index),
                direction,
            },
            data,
        }
    }

    /// The voxels of a volume of `from` dims in this map's order, row by row of the output: each output row
    /// runs along one source axis, a plain copy where that axis is i unflipped.
    fn rearranged<T: Copy>(&self, values: &[T], from: [usize; 3]) -> Vec<T> {
        let source_stride = [1, from[0], from[0] * from[1]];
        let dims = [from[self.perm[0]], from[self.perm[1]], from[self.perm[2]]];
        // Where output voxel (0, 0, 0) is in the source, and how far one step along each output axis goes.
        let mut start = 0isize;
        let mut step = [0isize; 3];
        for a in 0..3 {
            let stride = source_stride[self.perm[a]] as isize;
            if self.flip[a] {
                start += (dims[a] as isize - 1) * stride;
                step[a] = -stride;
            } else {
                step[a] = stride;
            }
        }
        let mut out = Vec::with_capacity(values.len());
        for k in 0..dims[2] as isize {
            for j in 0..dims[1] as isize {
                let row = start + k * step[2] + j * step[1];
                if step[0] == 1 {
                    let row = row as usize;
                    out.extend_from_slice(&values[row..row + dims[0]]);
                } else {
                    out.extend((0..dims[0] as isize).map(|i| values[(row + i * step[0]) as usize]));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(dims: [usize; 3]) -> Volume {
        let n = dims.iter().product();
        Volume::new(
            Geometry::new(dims, [1.0, 2.0, 3.0]),
            VoxelData::F32((0..n).map(|v| v as f32).collect()),
        )
        .unwrap()
    }

    #[test]
    fn every_axis_map_moves_each_voxel_where_the_map_says() {
        // All 48 permutations and flips against the definition, voxel by voxel, on a volume of three
        // different extents (and as i16, to check that the type is kept).
        let from = [4, 3, 2];
        let volume = ramp(from);
        let perms = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for perm in perms {
            for f in 0..8 {
                let map = AxisMap {
                    perm,
                    flip: [f & 1 != 0, f & 2 != 0, f & 4 != 0],
                };
                let out = map.apply(&volume);
                let dims = out.geometry.dims;
                assert_eq!(dims, [from[perm[0]], from[perm[1]], from[perm[2]]]);
                for k in 0..dims[2] {
                    for j in 0..dims[1] {
                        for i in 0..dims[0] {
                            let at = [i, j, k];
                            let mut src = [0; 3];
                            for a in 0..3 {
                                src[perm[a]] = if map.flip[a] {
                                    dims[a] - 1 - at[a]
                                } else {
                                    at[a]
                                };
                            }
                            assert_eq!(
                                out.get_f64(i, j, k),
                                volume.get_f64(src[0], src[1], src[2]),
                                "{map:?} at {at:?}"
                            );
                        }
                    }
                }
                let back = map.inverse().apply(&out);
                assert_eq!(back.data, volume.data, "{map:?} and back");
                assert_eq!(back.geometry.dims, from);
            }
        }
        let ints = Volume::new(
            Geometry::new([2, 2, 1], [1.0; 3]),
            VoxelData::I16(vec![1, -2, 3, -4]),
        )
        .unwrap();
        let flipped = AxisMap {
            perm: [0, 1, 2],
            flip: [true, false, false],
        }
        .apply(&ints);
        assert_eq!(flipped.data, VoxelData::I16(vec![-2, 1, -4, 3]));
    }

    #[test]
    fn statistics() {
        let v = ramp([2, 2, 1]);
        let s = stats(&v, None);
        assert_eq!((s.count, s.min, s.max, s.mean), (4, 0.0, 3.0, 1.5));
        assert!((s.std - 1.118033988749895).abs() < 1e-12);
        let mask = Volume::new(v.geometry.clone(), VoxelData::U8(vec![0, 1, 1, 0])).unwrap();
        assert_eq!(stats(&v, Some(&mask)).mean, 1.5);
        assert_eq!(percentile(&v, 100.0), 3.0);
        let z = normalize_zscore(&v, None);
        assert!(stats(&z, None).mean.abs() < 1e-6);
        let t = threshold(&v, Some(1.0), Some(2.0), 7);
        assert_eq!(t.data, VoxelData::U8(vec![0, 7, 7, 0]));
        let w = window_u8(&v, 1.5, 3.0);
        assert_eq!(w.data, VoxelData::U8(vec![0, 85, 170, 255]));
    }

    #[test]
    fn resampling_keeps_values_and_extent() {
        let v = ramp([4, 4, 4]);
        let same = resample_to_spacing(&v, [1.0, 2.0, 3.0], Interpolation::Linear);
        assert_eq!(same.data.to_f64(), v.data.to_f64());
        let fine = resample_to_spacing(&v, [0.5, 2.0, 3.0], Interpolation::Linear);
        assert_eq!(fine.dims(), [8, 4, 4]);
        assert!(
            (fine.get_f64(1, 0, 0) - 0.5).abs() < 1e-6,
            "halfway between voxel 0 and 1"
        );
        let labels = Volume::new(
            v.geometry.clone(),
            VoxelData::U8((0..64).map(|i| (i % 3) as u8).collect()),
        )
        .unwrap();
        let coarse = resample_to_spacing(&labels, [2.0, 4.0, 6.0], Interpolation::Nearest);
        assert!(matches!(coarse.data, VoxelData::U8(_)));
        assert_eq!(coarse.dims(), [2, 2, 2]);
        // A finer grid's last sample lies past the last voxel centre: 0 plain, the edge value with border.
        let past = resample_to_spacing(&v, [0.5, 2.0, 3.0], Interpolation::Linear);
        let border = resample_to_spacing(&v, [0.5, 2.0, 3.0], Interpolation::LinearBorder);
        assert_eq!(past.get_f64(7, 1, 1), 0.0);
        assert_eq!(border.get_f64(7, 1, 1), v.get_f64(3, 1, 1));
        assert_eq!(border.get_f64(1, 1, 1), past.get_f64(1, 1, 1));
    }

    #[test]
    fn crop_and_pad_keep_positions() {
        let v = ramp([4, 4, 4]);
        let c = crop_or_pad(&v, [2, 2, 2], 0.0);
        assert_eq!(c.get_f64(0, 0, 0), v.get_f64(1, 1, 1));
        assert_eq!(
            c.geometry.voxel_to_lps([0.0; 3]),
            v.geometry.voxel_to_lps([1.0, 1.0, 1.0])
        );
        let p = crop_or_pad(&v, [6, 4, 4], -1.0);
        assert_eq!(p.get_f64(0, 0, 0), -1.0);
        assert_eq!(p.get_f64(1, 0, 0), v.get_f64(0, 0, 0));
    }

    #[test]
    fn reorientation_round_trips_and_keeps_positions() {
        let mut v = ramp([3, 4, 5]);
        // An LPS-aligned volume (DICOM axial): RAS canonical flips i and j.
        v.geometry.origin = [10.0, -5.0, 2.0];
        let map = AxisMap::to_closest_ras(&v.geometry);
        let canon = map.apply(&v);
        assert_eq!(canon.geometry.orientation_ras(), "RAS");
        // The same physical point holds the same value.
        let p = v.geometry.voxel_to_lps([0.0, 0.0, 0.0]);
        let q = canon.geometry.voxel_to_lps([2.0, 3.0, 0.0]);
        assert_eq!(p, q);
        assert_eq!(canon.get_f64(2, 3, 0), v.get_f64(0, 0, 0));
        let back = map.inverse().apply(&canon);
        assert_eq!(back, v);
        // A sagittal-like permutation.
        v.geometry.direction = [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]];
        let map = AxisMap::to_closest_ras(&v.geometry);
        let canon = map.apply(&v);
        assert_eq!(canon.geometry.orientation_ras(), "RAS");
        assert_eq!(map.inverse().apply(&canon), v);
        assert_eq!(
            AxisMap::to_closest_lps(&v.geometry)
                .apply(&v)
                .geometry
                .orientation_ras(),
            "LPS"
        );
        let (w, h, s) = extract_slice(&v, 2, 1).unwrap();
        assert_eq!((w, h, s[0]), (3, 4, 12.0));
    }
}
