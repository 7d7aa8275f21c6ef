//! Slices of a volume resampled onto a fixed grid: the centred `crop` of the volume along i and j (all of
//! k) resized trilinear to `grid` voxels, every slice of that grid across `axis` run as `slices` runs them,
//! and the answers resized back to the crop and padded outside it with its edge values. A network trained on
//! the sagittal or coronal planes of volumes stretched to one size sees them as it was trained.

use super::slices::{linear_taps, slices, Window};
use super::{Channels, Tensor, TilingError};
use crate::spec::{InputSpec, TilingMode};

/// Runs `network` over the slices of the resampled volume and assembles its outputs on the volume's grid.
pub(super) fn grid<E>(
    values: &[f32],
    dims: [usize; 3],
    spec: &InputSpec,
    outputs: usize,
    network: &mut impl FnMut(Tensor) -> Result<Vec<Tensor>, E>,
) -> Result<Vec<Channels>, TilingError<E>> {
    let Some(grid) = spec.tiling.grid else {
        return Err(TilingError::Shape(
            "`mode: grid` needs `grid: [i, j, k]` voxels".into(),
        ));
    };
    if dims.contains(&0) {
        return Err(TilingError::Shape(format!(
            "a volume of {dims:?} voxels has nothing to resample"
        )));
    }
    let window = Window::centred(dims[0], dims[1], spec.tiling.crop);
    let boxed = [window.width, window.height, dims[2]];
    let plane = dims[0] * dims[1];
    let inside: Vec<f32> = (0..dims[2])
        .flat_map(|k| window.cut(&values[k * plane..(k + 1) * plane], dims[0]))
        .collect();
    let resampled = resize_trilinear(&inside, boxed, grid);
    let mut on_grid = spec.clone();
    on_grid.tiling.mode = TilingMode::Slices;
    on_grid.tiling.crop = None;
    on_grid.tiling.size = None;
    let assembled = slices(
        &resampled,
        grid,
        spec.tiling.axis,
        &on_grid,
        outputs,
        network,
    )?;
    assembled
        .into_iter()
        .map(|maps| {
            if maps.dims != grid {
                return Err(TilingError::Shape(format!(
                    "the network returned {} scores per slice, not maps: `mode: grid` takes maps back onto the volume",
                    maps.count
                )));
            }
            let mut out = Channels::zeros(dims, maps.count);
            let voxels = out.voxels();
            for c in 0..maps.count {
                let back = resize_trilinear(maps.channel(c), grid, boxed);
                let target = &mut out.data[c * voxels..(c + 1) * voxels];
                for k in 0..dims[2] {
                    let from = &back[k * window.width * window.height..];
                    for j in 0..dims[1] {
                        for i in 0..dims[0] {
                            target[k * plane + j * dims[0] + i] = from[window.source(i, j)];
                        }
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

/// Trilinear resize of values on `from` voxels (i fastest) to `to` voxels: linear along each axis in turn,
/// pixel centres aligned (PyTorch's `align_corners=False`), edges clamped. The axes go from the one that
/// shrinks most to the one that grows most, so that each pass works on as few values as it can (the same
/// result in exact arithmetic: the passes are separable; the view networks' 128^3 answers back onto a
/// 30-slice crop take a quarter of the work of going i, j, k).
pub(crate) fn resize_trilinear(values: &[f32], from: [usize; 3], to: [usize; 3]) -> Vec<f32> {
    let mut current = values.to_vec();
    let mut dims = from;
    let mut order = [0, 1, 2];
    order.sort_by(|&a, &b| (to[a] * from[b]).cmp(&(to[b] * from[a])));
    for axis in order {
        if dims[axis] != to[axis] {
            current = resize_along(&current, dims, axis, to[axis]);
            dims[axis] = to[axis];
        }
    }
    current
}

/// Linear resize along one axis of a volume of `dims` to `n` samples.
fn resize_along(values: &[f32], dims: [usize; 3], axis: usize, n: usize) -> Vec<f32> {
    let taps = linear_taps(n, dims[axis]);
    // The volume as [outer][along][inner] blocks: inner is the product of the faster axes.
    let inner: usize = dims[..axis].iter().product();
    let outer: usize = dims[axis + 1..].iter().product();
    let mut out = vec![0.0; outer * n * inner];
    for o in 0..outer {
        let source = &values[o * dims[axis] * inner..(o + 1) * dims[axis] * inner];
        for (x, &(lo, hi, w)) in taps.iter().enumerate() {
            let row = &mut out[(o * n + x) * inner..(o * n + x + 1) * inner];
            let (a, b) = (
                &source[lo * inner..(lo + 1) * inner],
                &source[hi * inner..(hi + 1) * inner],
            );
            for ((r, &a), &b) in row.iter_mut().zip(a).zip(b) {
                *r = a * (1.0 - w) + b * w;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{ramp, spec};
    use super::super::{flat, resize_bilinear, run_tiled};
    use super::*;
    use crate::spec::Layout;

    fn grid_spec(axis: usize, grid: [usize; 3], crop: Option<f64>) -> InputSpec {
        let mut s = spec(TilingMode::Grid, Layout::Nchw);
        s.tiling.axis = axis;
        s.tiling.grid = Some(grid);
        s.tiling.crop = crop;
        s
    }

    #[test]
    fn trilinear_is_bilinear_in_plane_then_linear_along_k() {
        // What the prostate view networks were trained on: each slice resized bilinear, then each plane
        // across i resized along k.
        let (from, to) = ([5, 4, 3], [7, 6, 8]);
        let values: Vec<f32> = (0..60).map(|v| ((v * 37) % 11) as f32).collect();
        let planes: Vec<f32> = (0..3)
            .flat_map(|k| resize_bilinear(&values[k * 20..(k + 1) * 20], 5, 4, 7, 6))
            .collect();
        let expected = resize_along(&planes, [7, 6, 3], 2, 8);
        let got = resize_trilinear(&values, from, to);
        assert_eq!(got.len(), 7 * 6 * 8);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-5, "{g} vs {e}");
        }
        // A ramp along k stays a ramp, ends clamped (align_corners=False): 2 -> 4 samples.
        let k = resize_trilinear(&[0.0, 1.0], [1, 1, 2], [1, 1, 4]);
        assert_eq!(k, vec![0.0, 0.25, 0.75, 1.0]);
        let constant = resize_trilinear(&[3.0; 24], [2, 3, 4], [5, 5, 5]);
        assert_eq!(constant.len(), 125);
        assert!(
            constant.iter().all(|v| (v - 3.0).abs() < 1e-6),
            "{constant:?}"
        );
    }

    #[test]
    fn the_order_of_the_passes_does_not_change_the_result() {
        // Shrinking k first (the order resize_trilinear picks here) against i, j, k in turn, pass by pass.
        let (from, to) = ([6, 5, 9], [8, 7, 3]);
        let values: Vec<f32> = (0..270).map(|v| ((v * 53) % 17) as f32 - 4.0).collect();
        let along_i = resize_along(&values, from, 0, 8);
        let along_j = resize_along(&along_i, [8, 5, 9], 1, 7);
        let expected = resize_along(&along_j, [8, 7, 9], 2, 3);
        let got = resize_trilinear(&values, from, to);
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-4, "{g} vs {e}");
        }
    }

    #[test]
    fn an_identity_network_on_the_grid_gives_back_the_crop_padded_with_its_edges() {
        // With a grid the size of the crop, resampling is the identity: what comes back is the volume
        // inside the crop and the nearest crop value outside it, across whichever axis the slices go.
        let dims = [5, 4, 3];
        let values = ramp(dims);
        let window = Window::centred(5, 4, Some(0.6));
        for axis in 0..3 {
            let s = grid_spec(axis, [window.width, window.height, 3], Some(0.6));
            let mut shapes = Vec::new();
            let out = run_tiled(&values, dims, &s, 1, |t| {
                shapes.push(t.shape.clone());
                Ok::<_, ()>(vec![t])
            })
            .unwrap();
            assert_eq!(out[0].dims, dims);
            for k in 0..3 {
                for j in 0..4 {
                    for i in 0..5 {
                        let (ci, cj) = (
                            i.clamp(window.left, window.left + window.width - 1),
                            j.clamp(window.top, window.top + window.height - 1),
                        );
                        assert_eq!(
                            out[0].data[flat(dims, [i, j, k])],
                            values[flat(dims, [ci, cj, k])],
                            "axis {axis} voxel {:?}",
                            [i, j, k]
                        );
                    }
                }
            }
            // Slices across i of the 3 x 2 x 3 grid are (rows k, columns j); across j, (k, i).
            let expected = [vec![3, 1, 3, 2], vec![2, 1, 3, 3], vec![3, 1, 2, 3]];
            assert_eq!(shapes[0], expected[axis], "axis {axis}");
        }
    }

    #[test]
    fn the_network_sees_the_grid_and_its_answers_are_resized_back() {
        // A volume constant along k, 2 slices resampled to 4 across k; an identity network returns the
        // grid, which resizes back to the same constant slices.
        let dims = [2, 2, 2];
        let values = vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0];
        let s = grid_spec(0, [2, 2, 4], None);
        let mut seen = 0;
        let out = run_tiled(&values, dims, &s, 1, |t| {
            // Across i: planes of 4 rows (k) by 2 columns (j).
            assert_eq!(&t.shape[1..], &[1, 4, 2]);
            seen += t.shape[0];
            Ok::<_, ()>(vec![t])
        })
        .unwrap();
        assert_eq!(seen, 2);
        assert_eq!(out[0].data, values);
    }

    #[test]
    fn scores_cannot_go_back_onto_a_grid() {
        let dims = [2, 2, 1];
        let s = grid_spec(2, [2, 2, 1], None);
        let e = run_tiled(&ramp(dims), dims, &s, 1, |_| {
            Ok::<_, ()>(vec![Tensor {
                shape: vec![1, 3],
                data: vec![0.0; 3],
            }])
        })
        .unwrap_err();
        assert!(matches!(e, TilingError::Shape(m) if m.contains("scores per slice, not maps")));
    }
}
