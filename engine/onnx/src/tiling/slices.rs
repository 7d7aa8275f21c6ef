//! Whole images and 2D/2.5D slices across one axis: a centred crop of each plane, neighbours as channels,
//! batches resized to the network's size, and the answers put back on the volume's grid.

use std::collections::BTreeMap;

use super::{plane_axes, strides, Channels, Tensor, TilingError};
use crate::spec::{InputSpec, Layout};

/// The volume with i slowest, then k, then j: every slice across i, row by row, one after the other. Cut in
/// blocks, so that reads and writes both run along rows (a slice across i picked pixel by pixel from the
/// volume takes a cache line per pixel).
fn slices_across_i(values: &[f32], dims: [usize; 3]) -> Vec<f32> {
    const BLOCK: usize = 16;
    let [di, dj, dk] = dims;
    let mut out = vec![0.0; values.len()];
    for k in 0..dk {
        let slab = &values[k * di * dj..(k + 1) * di * dj];
        for j0 in (0..dj).step_by(BLOCK) {
            for i0 in (0..di).step_by(BLOCK) {
                for i in i0..(i0 + BLOCK).min(di) {
                    let row = i * dj * dk + k * dj;
                    for j in j0..(j0 + BLOCK).min(dj) {
                        out[row + j] = slab[j * di + i];
                    }
                }
            }
        }
    }
    out
}

/// One slice across `axis` (0 or 1), row by row: rows of a slice across j are runs of the volume; across i
/// each pixel is `dims[0]` apart.
fn plane_across(values: &[f32], dims: [usize; 3], axis: usize, index: usize) -> Vec<f32> {
    let (u, v) = plane_axes(axis);
    let stride = strides(dims);
    let mut out = Vec::with_capacity(dims[u] * dims[v]);
    for b in 0..dims[v] {
        let row = index * stride[axis] + b * stride[v];
        if stride[u] == 1 {
            out.extend_from_slice(&values[row..row + dims[u]]);
        } else {
            out.extend((0..dims[u]).map(|a| values[row + a * stride[u]]));
        }
    }
    out
}

/// Runs `network` over the slices across `axis` in batches and assembles its outputs.
pub(super) fn slices<E>(
    values: &[f32],
    dims: [usize; 3],
    axis: usize,
    spec: &InputSpec,
    outputs: usize,
    network: &mut impl FnMut(Tensor) -> Result<Vec<Tensor>, E>,
) -> Result<Vec<Channels>, TilingError<E>> {
    let (u, v) = plane_axes(axis);
    let window = Window::centred(dims[u], dims[v], spec.tiling.crop);
    let (w, h) = (window.width, window.height);
    let [tw, th] = spec.tiling.size.unwrap_or([w, h]);
    let context = spec.tiling.context;
    let channels = spec.channels.max(1);
    let count = dims[axis];
    // Slices across k (axial) are contiguous in voxflow's order, and those across j are a run per row;
    // those across i are made contiguous once.
    let across_i = (axis == 0).then(|| slices_across_i(values, dims));
    let plane = |index: usize| -> Vec<f32> {
        let size = dims[u] * dims[v];
        let out = match &across_i {
            Some(planes) => window.cut(&planes[index * size..(index + 1) * size], dims[u]),
            None if axis == 2 => window.cut(&values[index * size..(index + 1) * size], dims[u]),
            None => window.cut(&plane_across(values, dims, axis, index), dims[u]),
        };
        if (tw, th) == (w, h) {
            out
        } else {
            resize_bilinear(&out, w, h, tw, th)
        }
    };
    let mut assembled: Vec<Option<Channels>> = vec![None; outputs];
    let batch = spec.tiling.batch.max(1);
    // Neighbours `step` slices apart, clamped at the ends; each slice is cut (and resized) once and kept
    // while a later slice can still take it as a neighbour: at most 2 * context * step + 1 at a time.
    let step = spec.tiling.context_step.max(1);
    let reach = context * step;
    let mut cut: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    let mut start = 0;
    while start < count {
        let n = batch.min(count - start);
        let mut data = Vec::with_capacity(n * channels * tw * th);
        for s in start..start + n {
            let indices: Vec<usize> = (0..channels)
                .map(|c| {
                    if context > 0 {
                        (s + c * step).saturating_sub(reach).min(count - 1)
                    } else {
                        s
                    }
                })
                .collect();
            for &index in &indices {
                cut.entry(index).or_insert_with(|| plane(index));
            }
            let planes: Vec<&[f32]> = indices.iter().map(|i| cut[i].as_slice()).collect();
            match spec.layout {
                Layout::Nhwc => {
                    for p in 0..tw * th {
                        for pl in &planes {
                            data.push(pl[p]);
                        }
                    }
                }
                _ => planes.iter().for_each(|pl| data.extend_from_slice(pl)),
            }
            // The next slice's lowest neighbour is (s + 1) - reach at the least.
            let keep_from = (s + 1).saturating_sub(reach);
            cut = cut.split_off(&keep_from);
        }
        let shape = match spec.layout {
            Layout::Nhwc => vec![n, th, tw, channels],
            _ => vec![n, channels, th, tw],
        };
        let returned = network(Tensor { shape, data }).map_err(TilingError::Network)?;
        if returned.len() != outputs {
            return Err(TilingError::Shape(format!(
                "the network returned {} tensors, expected {outputs}",
                returned.len()
            )));
        }
        for (slot, tensor) in assembled.iter_mut().zip(returned) {
            place_slices(slot, tensor, n, start, dims, axis, spec.layout, window)?;
        }
        start += n;
    }
    Ok(assembled.into_iter().flatten().collect())
}

/// The part of each slice the network sees: all of it, or a centred crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub(super) left: usize,
    pub(super) top: usize,
    pub(super) width: usize,
    pub(super) height: usize,
}

impl Window {
    /// The centred `fraction` of a `w` x `h` plane: length round(n * fraction) (at least 1), starting at
    /// (n - length) / 2, as training/data.py of a plugin computes it.
    pub(super) fn centred(w: usize, h: usize, fraction: Option<f64>) -> Window {
        let along = |n: usize| match fraction {
            Some(f) => {
                let length = ((n as f64 * f + 0.5).floor() as usize).max(1).min(n);
                ((n - length) / 2, length)
            }
            None => (0, n),
        };
        let ((left, width), (top, height)) = (along(w), along(h));
        Window {
            left,
            top,
            width,
            height,
        }
    }

    /// The window's pixels of a row-major plane `full_width` wide.
    pub(super) fn cut(&self, plane: &[f32], full_width: usize) -> Vec<f32> {
        if self.left == 0 && self.width == full_width && self.top == 0 {
            return plane[..self.width * self.height].to_vec();
        }
        (self.top..self.top + self.height)
            .flat_map(|row| {
                &plane[row * full_width + self.left..row * full_width + self.left + self.width]
            })
            .copied()
            .collect()
    }

    /// The plane pixel (col, row) taken from the window: itself inside, the nearest edge pixel outside.
    pub(super) fn source(&self, col: usize, row: usize) -> usize {
        self.source_row(row) * self.width + self.source_col(col)
    }

    /// The window column a plane column takes (the nearest edge column outside the window).
    fn source_col(&self, col: usize) -> usize {
        col.clamp(self.left, self.left + self.width - 1) - self.left
    }

    /// The window row a plane row takes (the nearest edge row outside the window).
    fn source_row(&self, row: usize) -> usize {
        row.clamp(self.top, self.top + self.height - 1) - self.top
    }
}

/// Writes one batch's output (`[n, K]` scores, or `[n, K, H', W']` / `[n, H', W', K]` maps) into the
/// assembled channels, resizing maps back to the window's size and padding outside it with the nearest
/// edge value.
#[allow(clippy::too_many_arguments)]
fn place_slices<E>(
    slot: &mut Option<Channels>,
    tensor: Tensor,
    n: usize,
    start: usize,
    dims: [usize; 3],
    axis: usize,
    layout: Layout,
    window: Window,
) -> Result<(), TilingError<E>> {
    let shape = &tensor.shape;
    if shape.first() != Some(&n) || tensor.data.len() != shape.iter().product::<usize>() {
        return Err(TilingError::Shape(format!(
            "an output of shape {shape:?} does not hold {n} results"
        )));
    }
    if shape.len() == 2 {
        // Scores per image: only one image (a classifier) has a place to go.
        if dims[axis] != 1 {
            return Err(TilingError::Shape(format!(
                "the network returns scores {shape:?}, not a map, for a volume of {} slices",
                dims[axis]
            )));
        }
        *slot = Some(Channels {
            dims: [1, 1, 1],
            count: shape[1],
            data: tensor.data,
        });
        return Ok(());
    }
    if shape.len() != 4 {
        return Err(TilingError::Shape(format!(
            "an output of shape {shape:?} is neither scores [N, K] nor a 2D map"
        )));
    }
    let (k, oh, ow) = match layout {
        Layout::Nhwc => (shape[3], shape[1], shape[2]),
        _ => (shape[1], shape[2], shape[3]),
    };
    let (u, v) = plane_axes(axis);
    let (w, h) = (dims[u], dims[v]);
    let whole = window == Window::centred(w, h, None);
    let out = slot.get_or_insert_with(|| Channels::zeros(dims, k));
    if out.count != k {
        return Err(TilingError::Shape(format!(
            "the network returned {k} channels after {} before",
            out.count
        )));
    }
    let voxels = out.voxels();
    if axis == 2 && layout != Layout::Nhwc && whole && (ow, oh) == (w, h) {
        // Axial maps of the slice's own size go back as contiguous blocks.
        for b in 0..n {
            for c in 0..k {
                let to = c * voxels + (start + b) * w * h;
                let from = (b * k + c) * w * h;
                out.data[to..to + w * h].copy_from_slice(&tensor.data[from..from + w * h]);
            }
        }
        return Ok(());
    }
    if window.width == 0 || window.height == 0 {
        // An empty plane has nothing to place.
        return Ok(());
    }
    // Which window pixel each plane column and row takes (itself inside, the nearest edge outside), and
    // where each goes in the volume.
    let source_col: Vec<usize> = (0..w).map(|col| window.source_col(col)).collect();
    let source_row: Vec<usize> = (0..h).map(|row| window.source_row(row)).collect();
    let stride = strides(dims);
    for b in 0..n {
        for c in 0..k {
            let map: Vec<f32> = match layout {
                Layout::Nhwc => (0..oh * ow)
                    .map(|p| tensor.data[(b * oh * ow + p) * k + c])
                    .collect(),
                _ => tensor.data[(b * k + c) * oh * ow..(b * k + c + 1) * oh * ow].to_vec(),
            };
            let (mw, mh) = (window.width, window.height);
            let map = if (ow, oh) == (mw, mh) {
                map
            } else {
                resize_bilinear(&map, ow, oh, mw, mh)
            };
            let plane = c * voxels + (start + b) * stride[axis];
            for (row, &from_row) in source_row.iter().enumerate() {
                let line = &map[from_row * mw..(from_row + 1) * mw];
                let to = plane + row * stride[v];
                if stride[u] == 1 && whole {
                    out.data[to..to + w].copy_from_slice(line);
                } else {
                    for (col, &from_col) in source_col.iter().enumerate() {
                        out.data[to + col * stride[u]] = line[from_col];
                    }
                }
            }
        }
    }
    Ok(())
}

/// For each of `n` samples resized from `from`: the two source samples it lies between and the weight of
/// the second (pixel centres aligned, as PyTorch's `align_corners=False`; edges clamped).
pub(super) fn linear_taps(n: usize, from: usize) -> Vec<(usize, usize, f32)> {
    let scale = from as f64 / n as f64;
    (0..n)
        .map(|x| {
            let s = ((x as f64 + 0.5) * scale - 0.5).clamp(0.0, (from - 1) as f64);
            let lo = s.floor() as usize;
            (lo, (lo + 1).min(from - 1), (s - lo as f64) as f32)
        })
        .collect()
}

/// Bilinear resize of a row-major `w` x `h` picture to `nw` x `nh` (pixel centres aligned, as PyTorch's
/// `align_corners=False`; edges clamped).
pub fn resize_bilinear(src: &[f32], w: usize, h: usize, nw: usize, nh: usize) -> Vec<f32> {
    let (xs, ys) = (linear_taps(nw, w), linear_taps(nh, h));
    let mut out = Vec::with_capacity(nw * nh);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
            let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{ramp, spec};
    use super::super::flat;
    use super::super::run_tiled;
    use super::*;
    use crate::spec::TilingMode;

    #[test]
    fn slices_across_i_cut_in_blocks_are_the_planes_pixel_by_pixel() {
        // Extents that are not multiples of the block, and one larger than it.
        for dims in [[5, 4, 7], [17, 33, 3], [1, 1, 1]] {
            let values = ramp(dims);
            let planes = slices_across_i(&values, dims);
            let size = dims[1] * dims[2];
            for i in 0..dims[0] {
                assert_eq!(
                    &planes[i * size..(i + 1) * size],
                    plane_across(&values, dims, 0, i).as_slice(),
                    "{dims:?} slice {i}"
                );
            }
        }
    }

    #[test]
    fn slices_round_trip_through_an_identity_network() {
        let dims = [5, 4, 7];
        let values = ramp(dims);
        for axis in 0..3 {
            for layout in [Layout::Nchw, Layout::Nhwc] {
                let mut s = spec(TilingMode::Slices, layout);
                s.tiling.axis = axis;
                let mut calls = 0;
                let out = run_tiled(&values, dims, &s, 1, |t| {
                    calls += 1;
                    Ok::<_, ()>(vec![t])
                })
                .unwrap();
                assert_eq!(out[0].data, values, "axis {axis} {layout:?}");
                assert_eq!(calls, dims[axis].div_ceil(3));
            }
        }
    }

    #[test]
    fn neighbours_on_every_axis_are_the_slices_step_apart() {
        // Each slice's channels are slices s - 2, s and s + 2 (clamped): the network answers with the first
        // and last channels, which must be the volume's slices at those indices, on every axis and batch size.
        let dims = [5, 4, 7];
        let values = ramp(dims);
        for axis in 0..3 {
            for batch in [1, 3, 8] {
                let mut s = spec(TilingMode::Slices, Layout::Nchw);
                s.tiling.axis = axis;
                s.tiling.batch = batch;
                s.tiling.context = 1;
                s.tiling.context_step = 2;
                s.channels = 3;
                let out = run_tiled(&values, dims, &s, 1, |t| {
                    let (n, plane) = (t.shape[0], t.shape[2] * t.shape[3]);
                    let mut data = Vec::with_capacity(n * 2 * plane);
                    for b in 0..n {
                        data.extend_from_slice(&t.data[(b * 3) * plane..(b * 3 + 1) * plane]);
                        data.extend_from_slice(&t.data[(b * 3 + 2) * plane..(b * 3 + 3) * plane]);
                    }
                    let shape = vec![n, 2, t.shape[2], t.shape[3]];
                    Ok::<_, ()>(vec![Tensor { shape, data }])
                })
                .unwrap();
                let voxels = values.len();
                for k in 0..dims[2] {
                    for j in 0..dims[1] {
                        for i in 0..dims[0] {
                            let ijk = [i, j, k];
                            let (mut below, mut above) = (ijk, ijk);
                            below[axis] = ijk[axis].saturating_sub(2);
                            above[axis] = (ijk[axis] + 2).min(dims[axis] - 1);
                            let at = flat(dims, ijk);
                            assert_eq!(
                                out[0].data[at],
                                values[flat(dims, below)],
                                "axis {axis} {ijk:?}"
                            );
                            assert_eq!(
                                out[0].data[voxels + at],
                                values[flat(dims, above)],
                                "axis {axis} {ijk:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_centred_crop_is_what_the_network_sees_and_edges_pad_the_rest() {
        // 5 x 4 slices, crop 0.6: columns 1..4 (round(3.0) = 3 wide), rows 1..3 (round(2.4) = 2 high).
        let dims = [5, 4, 2];
        let values = ramp(dims);
        for axis in [2, 0, 1] {
            let mut s = spec(TilingMode::Slices, Layout::Nchw);
            s.tiling.axis = axis;
            s.tiling.crop = Some(0.6);
            let out = run_tiled(&values, dims, &s, 1, |t| {
                if axis == 2 {
                    assert_eq!(t.shape, vec![2, 1, 2, 3]);
                    // Slice 0, rows 1-2, columns 1-3.
                    assert_eq!(t.data[..6], [6.0, 7.0, 8.0, 11.0, 12.0, 13.0]);
                }
                Ok::<_, ()>(vec![t])
            })
            .unwrap();
            let (u, v) = plane_axes(axis);
            let window = Window::centred(dims[u], dims[v], Some(0.6));
            for k in 0..dims[2] {
                for j in 0..dims[1] {
                    for i in 0..dims[0] {
                        let ijk = [i, j, k];
                        let mut nearest = ijk;
                        nearest[u] = ijk[u].clamp(window.left, window.left + window.width - 1);
                        nearest[v] = ijk[v].clamp(window.top, window.top + window.height - 1);
                        assert_eq!(
                            out[0].data[flat(dims, ijk)],
                            values[flat(dims, nearest)],
                            "axis {axis} voxel {ijk:?}"
                        );
                    }
                }
            }
        }
        // Odd leftovers start at the floor of half of them; a one-voxel (or empty) plane stays whole.
        let odd = Window::centred(7, 1, Some(0.5));
        assert_eq!((odd.left, odd.width, odd.top, odd.height), (1, 4, 0, 1));
        assert_eq!(Window::centred(0, 1, Some(0.5)).width, 0);
        assert_eq!(
            Window::centred(256, 160, Some(0.6)),
            Window {
                left: 51,
                top: 32,
                width: 154,
                height: 96
            }
        );
    }

    #[test]
    fn context_slices_are_channels_clamped_at_the_ends() {
        let dims = [2, 1, 3];
        let values = ramp(dims);
        let mut s = spec(TilingMode::Slices, Layout::Nchw);
        s.tiling.context = 1;
        s.channels = 3;
        s.tiling.batch = 1;
        let mut seen = Vec::new();
        run_tiled(&values, dims, &s, 1, |t| {
            seen.push(t.data.clone());
            // Return the middle channel only.
            Ok::<_, ()>(vec![Tensor {
                shape: vec![1, 1, 1, 2],
                data: t.data[2..4].to_vec(),
            }])
        })
        .unwrap();
        assert_eq!(seen[0], vec![0.0, 1.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(seen[2], vec![2.0, 3.0, 4.0, 5.0, 4.0, 5.0]);

        // Two slices apart: slice 1 of 4 sees slices 0 (clamped from -1), 1 and 3.
        let dims = [1, 1, 4];
        s.tiling.context_step = 2;
        seen.clear();
        run_tiled(&ramp(dims), dims, &s, 1, |t| {
            seen.push(t.data.clone());
            Ok::<_, ()>(vec![Tensor {
                shape: vec![1, 1, 1, 1],
                data: t.data[1..2].to_vec(),
            }])
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                [0.0, 0.0, 2.0],
                [0.0, 1.0, 3.0],
                [0.0, 2.0, 3.0],
                [1.0, 3.0, 3.0]
            ]
        );
    }

    #[test]
    fn wrong_output_shapes_are_errors() {
        let dims = [4, 4, 2];
        let s = spec(TilingMode::Slices, Layout::Nchw);
        let e = run_tiled(&ramp(dims), dims, &s, 1, |_| {
            Ok::<_, ()>(vec![Tensor {
                shape: vec![2, 3],
                data: vec![0.0; 6],
            }])
        })
        .unwrap_err();
        assert!(matches!(e, TilingError::Shape(m) if m.contains("scores")));
    }

    #[test]
    fn bilinear_resize_keeps_constants_and_ramps() {
        assert_eq!(resize_bilinear(&[2.0; 6], 3, 2, 5, 4), vec![2.0; 20]);
        let up = resize_bilinear(&[0.0, 1.0], 2, 1, 4, 1);
        assert_eq!(up, vec![0.0, 0.25, 0.75, 1.0]);
    }
}
