//! From a volume's voxels to the network's input tensors and back: whole images and 2D/2.5D slices
//! (`slices`), slices of the volume resampled onto a fixed grid (`grid`), or 3D patches with overlap blended
//! back (`patches`). Pure computation; the network itself is a closure, so this is tested without a model.

mod grid;
mod patches;
mod slices;

pub use patches::patch_starts;
pub use slices::resize_bilinear;

use crate::spec::{InputSpec, TilingMode};

/// Values with several channels on a voxel grid: channel-major, then k, j, i (i fastest).
#[derive(Debug, Clone, PartialEq)]
pub struct Channels {
    pub dims: [usize; 3],
    pub count: usize,
    pub data: Vec<f32>,
}

impl Channels {
    pub fn zeros(dims: [usize; 3], count: usize) -> Channels {
        Channels {
            dims,
            count,
            data: vec![0.0; count * dims.iter().product::<usize>()],
        }
    }
    pub fn voxels(&self) -> usize {
        self.dims.iter().product()
    }
    pub fn channel(&self, c: usize) -> &[f32] {
        let n = self.voxels();
        &self.data[c * n..(c + 1) * n]
    }
}

/// One tensor a network returned: its shape and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Why tiling could not go on: the network's answer did not fit, or the closure failed.
#[derive(Debug)]
pub enum TilingError<E> {
    Shape(String),
    Network(E),
}

/// Runs `network` over `values` (on a grid of `dims`) as `spec` says and assembles each of its output
/// tensors (in the order the closure returns them) into channels on the same grid. Classifier outputs
/// (`[N, K]`) come back as K channels on a 1x1x1 grid.
pub fn run_tiled<E>(
    values: &[f32],
    dims: [usize; 3],
    spec: &InputSpec,
    outputs: usize,
    mut network: impl FnMut(Tensor) -> Result<Vec<Tensor>, E>,
) -> Result<Vec<Channels>, TilingError<E>> {
    match spec.tiling.mode {
        TilingMode::Image | TilingMode::Slices => {
            let axis = if spec.tiling.mode == TilingMode::Image {
                2
            } else {
                spec.tiling.axis
            };
            slices::slices(values, dims, axis, spec, outputs, &mut network)
        }
        TilingMode::Grid => grid::grid(values, dims, spec, outputs, &mut network),
        TilingMode::Patches => patches::patches(values, dims, spec, outputs, &mut network),
    }
}

/// Plane axes (columns, rows) of a slice across `axis`: the same convention as the PNG and slice views.
pub(crate) fn plane_axes(axis: usize) -> (usize, usize) {
    match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    }
}

/// Flat-index steps of voxel axes i, j and k in voxflow's order (i fastest).
fn strides(dims: [usize; 3]) -> [usize; 3] {
    [1, dims[0], dims[0] * dims[1]]
}

/// Index of voxel (i, j, k) in voxflow's order (i fastest).
fn flat(dims: [usize; 3], ijk: [usize; 3]) -> usize {
    let s = strides(dims);
    ijk[0] * s[0] + ijk[1] * s[1] + ijk[2] * s[2]
}

/// What the tests of both tilings share: an input spec and a volume whose values are their own index.
#[cfg(test)]
mod fixtures {
    use crate::spec::{Blend, InputSpec, Layout, Normalize, Tiling, TilingMode};

    pub(super) fn spec(mode: TilingMode, layout: Layout) -> InputSpec {
        InputSpec {
            tensor: "x".into(),
            layout,
            tiling: Tiling {
                mode,
                axis: 2,
                batch: 3,
                context: 0,
                context_step: 1,
                size: None,
                crop: None,
                grid: None,
                patch: Some([4, 3, 2]),
                overlap: 0.5,
                blend: Blend::Gaussian,
            },
            orientation: None,
            spacing: None,
            crop_foreground: None,
            mirror: Vec::new(),
            normalize: Normalize::default(),
            channels: 1,
        }
    }

    pub(super) fn ramp(dims: [usize; 3]) -> Vec<f32> {
        (0..dims.iter().product::<usize>())
            .map(|v| v as f32)
            .collect()
    }
}
