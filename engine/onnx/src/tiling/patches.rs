//! 3D patches: starts with overlap along each axis, short axes padded, and the answers blended back with
//! Gaussian or constant weights (as MONAI's sliding-window inference).

use super::{flat, Channels, Tensor, TilingError};
use crate::spec::{Blend, InputSpec, Layout};

/// A patch from voxflow's order (i fastest) to [i][j][k] order (k fastest).
fn transpose_to_ijk(values: &[f32], size: [usize; 3]) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for k in 0..size[2] {
        for j in 0..size[1] {
            for i in 0..size[0] {
                out[(i * size[1] + j) * size[2] + k] = values[flat(size, [i, j, k])];
            }
        }
    }
    out
}

/// The inverse of [`transpose_to_ijk`].
fn transpose_from_ijk(values: &[f32], size: [usize; 3]) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for k in 0..size[2] {
        for j in 0..size[1] {
            for i in 0..size[0] {
                out[flat(size, [i, j, k])] = values[(i * size[1] + j) * size[2] + k];
            }
        }
    }
    out
}

/// Patch starts along one axis: every `step` voxels, the last patch flush with the end.
pub fn patch_starts(dim: usize, patch: usize, overlap: f64) -> Vec<usize> {
    if dim <= patch {
        return vec![0];
    }
    let step = ((patch as f64 * (1.0 - overlap)).round() as usize).max(1);
    let mut starts: Vec<usize> = (0..)
        .map(|n| n * step)
        .take_while(|&s| s + patch < dim)
        .collect();
    starts.push(dim - patch);
    starts.dedup();
    starts
}

/// Per-axis weights of a patch: a Gaussian with sigma = size / 8 around voxel size / 2 (as MONAI's
/// importance map), or all ones. The product over the axes is clamped below by [`MIN_BLEND_WEIGHT`].
fn blend_weights(size: usize, blend: Blend) -> Vec<f32> {
    match blend {
        Blend::Constant => vec![1.0; size],
        Blend::Gaussian => {
            let sigma = (size as f64 * 0.125).max(1e-3);
            let centre = (size / 2) as f64;
            (0..size)
                .map(|i| {
                    let d = i as f64 - centre;
                    (-d * d / (2.0 * sigma * sigma)).exp() as f32
                })
                .collect()
        }
    }
}

/// Every voxel of a patch keeps at least this weight, so that corners count (MONAI clamps the same way).
const MIN_BLEND_WEIGHT: f32 = 1e-3;

/// Runs `network` over overlapping patches and blends its outputs back onto the volume's grid.
pub(super) fn patches<E>(
    values: &[f32],
    dims: [usize; 3],
    spec: &InputSpec,
    outputs: usize,
    network: &mut impl FnMut(Tensor) -> Result<Vec<Tensor>, E>,
) -> Result<Vec<Channels>, TilingError<E>> {
    let patch = spec.tiling.patch.unwrap_or(dims);
    // Axes shorter than the patch are padded with zeros on both sides (half before, rounded down, as
    // MONAI's sliding window), and cropped back at the end.
    let padded: [usize; 3] = std::array::from_fn(|a| dims[a].max(patch[a]));
    let before: [usize; 3] = std::array::from_fn(|a| (padded[a] - dims[a]) / 2);
    let starts: [Vec<usize>; 3] =
        std::array::from_fn(|a| patch_starts(padded[a], patch[a], spec.tiling.overlap));
    let weights: [Vec<f32>; 3] =
        std::array::from_fn(|a| blend_weights(patch[a], spec.tiling.blend));
    let channels = spec.channels.max(1);
    let mut corners = Vec::new();
    for &k in &starts[2] {
        for &j in &starts[1] {
            for &i in &starts[0] {
                corners.push([i, j, k]);
            }
        }
    }
    let patch_voxels: usize = patch.iter().product();
    let mut sums: Vec<Option<Channels>> = vec![None; outputs];
    let mut weight_sum = vec![0f32; padded.iter().product()];
    for group in corners.chunks(spec.tiling.batch.max(1)) {
        let mut data = Vec::with_capacity(group.len() * channels * patch_voxels);
        for corner in group {
            let mut one = Vec::with_capacity(patch_voxels);
            for k in 0..patch[2] {
                for j in 0..patch[1] {
                    for i in 0..patch[0] {
                        let at = [corner[0] + i, corner[1] + j, corner[2] + k];
                        let inside =
                            (0..3).all(|a| at[a] >= before[a] && at[a] - before[a] < dims[a]);
                        one.push(if inside {
                            values[flat(dims, std::array::from_fn(|a| at[a] - before[a]))]
                        } else {
                            0.0
                        });
                    }
                }
            }
            let one = if spec.layout == Layout::Ncijk {
                transpose_to_ijk(&one, patch)
            } else {
                one
            };
            for _ in 0..channels {
                data.extend_from_slice(&one);
            }
        }
        let spatial = if spec.layout == Layout::Ncijk {
            [patch[0], patch[1], patch[2]]
        } else {
            [patch[2], patch[1], patch[0]]
        };
        let shape = vec![group.len(), channels, spatial[0], spatial[1], spatial[2]];
        let returned = network(Tensor { shape, data }).map_err(TilingError::Network)?;
        if returned.len() != outputs {
            return Err(TilingError::Shape(format!(
                "the network returned {} tensors, expected {outputs}",
                returned.len()
            )));
        }
        for (slot, tensor) in sums.iter_mut().zip(returned) {
            let s = &tensor.shape;
            let fits = s.len() == 5
                && s[0] == group.len()
                && s[2..] == spatial
                && tensor.data.len() == s.iter().product::<usize>();
            if !fits {
                return Err(TilingError::Shape(format!(
                    "an output of shape {s:?} is not {} maps of the patch size {spatial:?}",
                    group.len(),
                )));
            }
            let k_out = s[1];
            let data = if spec.layout == Layout::Ncijk {
                tensor
                    .data
                    .chunks(patch_voxels)
                    .flat_map(|map| transpose_from_ijk(map, patch))
                    .collect()
            } else {
                tensor.data
            };
            let sum = slot.get_or_insert_with(|| Channels::zeros(padded, k_out));
            let voxels = sum.voxels();
            for (b, corner) in group.iter().enumerate() {
                for c in 0..k_out {
                    let base = (b * k_out + c) * patch_voxels;
                    let mut p = 0;
                    for k in 0..patch[2] {
                        for j in 0..patch[1] {
                            let wjk = weights[2][k] * weights[1][j];
                            let row = c * voxels
                                + flat(padded, [corner[0], corner[1] + j, corner[2] + k]);
                            let predicted = &data[base + p..base + p + patch[0]];
                            let target = &mut sum.data[row..row + patch[0]];
                            for ((t, &v), &wi) in target.iter_mut().zip(predicted).zip(&weights[0])
                            {
                                *t += v * (wjk * wi).max(MIN_BLEND_WEIGHT);
                            }
                            p += patch[0];
                        }
                    }
                }
            }
        }
        for corner in group {
            for k in 0..patch[2] {
                for j in 0..patch[1] {
                    let wjk = weights[2][k] * weights[1][j];
                    let row = flat(padded, [corner[0], corner[1] + j, corner[2] + k]);
                    for i in 0..patch[0] {
                        weight_sum[row + i] += (wjk * weights[0][i]).max(MIN_BLEND_WEIGHT);
                    }
                }
            }
        }
    }
    Ok(sums
        .into_iter()
        .flatten()
        .map(|sum| {
            let voxels = sum.voxels();
            let mut out = Channels::zeros(dims, sum.count);
            let out_voxels = out.voxels();
            for c in 0..sum.count {
                for k in 0..dims[2] {
                    for j in 0..dims[1] {
                        for i in 0..dims[0] {
                            let from = flat(padded, [i + before[0], j + before[1], k + before[2]]);
                            out.data[c * out_voxels + flat(dims, [i, j, k])] =
                                sum.data[c * voxels + from] / weight_sum[from];
                        }
                    }
                }
            }
            out
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{ramp, spec};
    use super::super::run_tiled;
    use super::*;
    use crate::spec::TilingMode;

    #[test]
    fn patches_cover_every_voxel_and_blend_back_exactly() {
        // An identity network: blending identical predictions gives the input back, whatever the weights.
        let dims = [9, 5, 3];
        let values = ramp(dims);
        for blend in [Blend::Gaussian, Blend::Constant] {
            let mut s = spec(TilingMode::Patches, Layout::Ncdhw);
            s.tiling.blend = blend;
            let out = run_tiled(&values, dims, &s, 1, |t| Ok::<_, ()>(vec![t])).unwrap();
            for (a, b) in out[0].data.iter().zip(&values) {
                assert!((a - b).abs() < 1e-3 * b.max(1.0), "{a} vs {b}");
            }
        }
        assert_eq!(patch_starts(9, 4, 0.5), vec![0, 2, 4, 5]);
        assert_eq!(patch_starts(3, 4, 0.5), vec![0]);
    }

    #[test]
    fn patches_in_ijk_order_put_k_fastest() {
        let dims = [5, 4, 3];
        let values = ramp(dims);
        let mut s = spec(TilingMode::Patches, Layout::Ncijk);
        s.tiling.patch = Some([5, 4, 3]);
        let out = run_tiled(&values, dims, &s, 1, |t| {
            assert_eq!(t.shape, vec![1, 1, 5, 4, 3]);
            // Element [i=1][j=1][k=2] (row-major over 5x4x3) is voxel (1, 1, 2).
            assert_eq!(t.data[(4 + 1) * 3 + 2], values[flat(dims, [1, 1, 2])]);
            Ok::<_, ()>(vec![t])
        })
        .unwrap();
        for (a, b) in out[0].data.iter().zip(&values) {
            assert!((a - b).abs() < 1e-5 * b.max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn a_short_axis_is_padded_and_cropped_back() {
        let dims = [3, 3, 1];
        let values = ramp(dims);
        let s = spec(TilingMode::Patches, Layout::Ncdhw);
        let out = run_tiled(&values, dims, &s, 1, |t| {
            assert_eq!(t.shape, vec![1, 1, 2, 3, 4]);
            Ok::<_, ()>(vec![t])
        })
        .unwrap();
        assert_eq!(out[0].dims, dims);
        for (a, b) in out[0].data.iter().zip(&values) {
            assert!((a - b).abs() < 1e-5 * b.max(1.0), "{a} vs {b}");
        }
    }
}
