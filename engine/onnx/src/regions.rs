//! Channel maps on a voxel grid: cropping to the foreground's bounding box (and padding back), and Gaussian
//! smoothing (as scipy.ndimage.gaussian_filter: truncated at 4 sigma, edges repeated), the steps that
//! MONAI-style pipelines put around a network.

use crate::tiling::Channels;

/// A box of voxels: first corner (negative where the box reaches past the grid) and size along i, j, k.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: [i64; 3],
    pub size: [usize; 3],
}

impl Region {
    /// The whole grid.
    pub fn all(dims: [usize; 3]) -> Region {
        Region {
            start: [0; 3],
            size: dims,
        }
    }
}

fn flat(dims: [usize; 3], i: usize, j: usize, k: usize) -> usize {
    i + dims[0] * (j + dims[1] * k)
}

/// The bounding box of the values above zero grown by `margin` voxels on every side, even past the grid's
/// edges (those voxels read as zero, as MONAI's `CropForeground` pads them); the whole grid when nothing is
/// above zero.
pub fn foreground_region(values: &[f32], dims: [usize; 3], margin: usize) -> Region {
    let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                if values[flat(dims, i, j, k)] > 0.0 {
                    for (a, v) in [i, j, k].into_iter().enumerate() {
                        lo[a] = lo[a].min(v);
                        hi[a] = hi[a].max(v);
                    }
                }
            }
        }
    }
    if lo[0] == usize::MAX {
        return Region::all(dims);
    }
    let margin = margin as i64;
    Region {
        start: std::array::from_fn(|a| lo[a] as i64 - margin),
        size: std::array::from_fn(|a| (hi[a] - lo[a]) + 1 + 2 * margin as usize),
    }
}

/// The grid index of the region's voxel `at` along axis `a`, if it is on the grid.
fn inside(region: Region, dims: [usize; 3], a: usize, at: usize) -> Option<usize> {
    let v = region.start[a] + at as i64;
    (v >= 0 && (v as usize) < dims[a]).then_some(v as usize)
}

/// The values inside `region` (zero where it reaches past the grid).
pub fn crop(values: &[f32], dims: [usize; 3], region: Region) -> Vec<f32> {
    let mut out = Vec::with_capacity(region.size.iter().product());
    for k in 0..region.size[2] {
        for j in 0..region.size[1] {
            for i in 0..region.size[0] {
                let at = (
                    inside(region, dims, 0, i),
                    inside(region, dims, 1, j),
                    inside(region, dims, 2, k),
                );
                out.push(match at {
                    (Some(x), Some(y), Some(z)) => values[flat(dims, x, y, z)],
                    _ => 0.0,
                });
            }
        }
    }
    out
}

/// Channels on `region` placed back on the whole grid, zero elsewhere (what lies past the grid is dropped).
pub fn uncrop(channels: &Channels, dims: [usize; 3], region: Region) -> Channels {
    let mut out = Channels::zeros(dims, channels.count);
    let (n_in, n_out) = (channels.voxels(), out.voxels());
    for c in 0..channels.count {
        for k in 0..region.size[2] {
            let Some(z) = inside(region, dims, 2, k) else {
                continue;
            };
            for j in 0..region.size[1] {
                let Some(y) = inside(region, dims, 1, j) else {
                    continue;
                };
                for i in 0..region.size[0] {
                    let Some(x) = inside(region, dims, 0, i) else {
                        continue;
                    };
                    out.data[c * n_out + flat(dims, x, y, z)] =
                        channels.data[c * n_in + flat(region.size, i, j, k)];
                }
            }
        }
    }
    out
}

/// scipy's Gaussian kernel: radius `round(4 sigma)`, normalized to sum 1.
fn kernel(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
}

/// Gaussian smoothing of every channel with `sigma` voxels along each axis (edges repeat the border
/// value, as scipy's mode `nearest`).
pub fn gaussian_smooth(channels: &mut Channels, sigma: f64) {
    if sigma <= 0.0 {
        return;
    }
    let weights = kernel(sigma);
    let radius = (weights.len() / 2) as i64;
    let dims = channels.dims;
    let n = channels.voxels();
    let strides = [1, dims[0], dims[0] * dims[1]];
    let mut line = Vec::new();
    for c in 0..channels.count {
        let data = &mut channels.data[c * n..(c + 1) * n];
        for axis in 0..3 {
            let len = dims[axis];
            if len < 2 {
                continue;
            }
            let (a, b) = match axis {
                0 => (1, 2),
                1 => (0, 2),
                _ => (0, 1),
            };
            for v in 0..dims[b] {
                for u in 0..dims[a] {
                    let base = u * strides[a] + v * strides[b];
                    line.clear();
                    line.extend((0..len).map(|x| f64::from(data[base + x * strides[axis]])));
                    for x in 0..len {
                        let mut sum = 0.0;
                        for (t, w) in weights.iter().enumerate() {
                            let at = (x as i64 + t as i64 - radius).clamp(0, len as i64 - 1);
                            sum += w * line[at as usize];
                        }
                        data[base + x * strides[axis]] = sum as f32;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_and_uncrop_around_the_foreground() {
        let dims = [6, 5, 4];
        let mut values = vec![-1.0f32; 120];
        values[flat(dims, 2, 3, 1)] = 2.0;
        values[flat(dims, 3, 3, 2)] = 1.0;
        let region = foreground_region(&values, dims, 1);
        assert_eq!(
            region,
            Region {
                start: [1, 2, 0],
                size: [4, 3, 4]
            }
        );
        let cropped = crop(&values, dims, region);
        assert_eq!(cropped.len(), 48);
        let back = uncrop(
            &Channels {
                dims: region.size,
                count: 1,
                data: cropped,
            },
            dims,
            region,
        );
        assert_eq!(back.data[flat(dims, 2, 3, 1)], 2.0);
        assert_eq!(
            back.data[flat(dims, 0, 0, 0)],
            0.0,
            "outside the region is zero"
        );
        let none = foreground_region(&[-1.0; 8], [2, 2, 2], 3);
        assert_eq!(none, Region::all([2, 2, 2]));
    }

    #[test]
    fn a_margin_past_the_edges_pads_with_zeros() {
        let dims = [3, 2, 1];
        let values = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let region = foreground_region(&values, dims, 2);
        assert_eq!(region.start, [-2, -2, -2]);
        assert_eq!(region.size, [7, 6, 5]);
        let cropped = crop(&values, dims, region);
        assert_eq!(cropped.iter().sum::<f32>(), 21.0);
        assert_eq!(cropped[flat(region.size, 2, 2, 2)], 1.0);
        let back = uncrop(
            &Channels {
                dims: region.size,
                count: 1,
                data: cropped,
            },
            dims,
            region,
        );
        assert_eq!(back.data, values);
    }

    #[test]
    fn smoothing_keeps_constants_and_mass_and_matches_scipy() {
        let mut flat_field = Channels {
            dims: [5, 4, 3],
            count: 1,
            data: vec![3.0; 60],
        };
        gaussian_smooth(&mut flat_field, 1.5);
        assert!(flat_field.data.iter().all(|v| (v - 3.0).abs() < 1e-5));
        // scipy.ndimage.gaussian_filter1d([0,0,0,1,0,0,0], 1.0, mode='nearest')[2:5]
        // == [0.24197145, 0.39894347, 0.24197145]
        let mut impulse = Channels {
            dims: [7, 1, 1],
            count: 1,
            data: vec![0.0; 7],
        };
        impulse.data[3] = 1.0;
        gaussian_smooth(&mut impulse, 1.0);
        for (got, want) in impulse.data[2..5]
            .iter()
            .zip([0.24197145, 0.39894347, 0.24197145])
        {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
