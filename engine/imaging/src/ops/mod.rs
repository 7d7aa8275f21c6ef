//! Operations every imaging step needs: intensity statistics, normalization and windowing, thresholding,
//! cropping and padding and slice extraction here; resampling (`resample`) and reorientation to the closest
//! canonical orientation and back (`orientation`) in their own modules. All keep the geometry consistent
//! with the voxels.

mod orientation;
mod resample;

pub use orientation::AxisMap;
pub use resample::{resample_onto, resample_to_spacing, Interpolation};

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

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn ramp(dims: [usize; 3]) -> Volume {
        let n = dims.iter().product();
        Volume::new(
            Geometry::new(dims, [1.0, 2.0, 3.0]),
            VoxelData::F32((0..n).map(|v| v as f32).collect()),
        )
        .unwrap()
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
}
