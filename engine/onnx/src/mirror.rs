//! Test-time augmentation by mirroring (as nnU-Net's): the network also runs on its input mirrored along
//! chosen voxel axes (every combination of them), each answer is mirrored back, and the raw answers are
//! averaged before any activation. Pure computation around the network closure, tested without a model.

use crate::spec::{InputSpec, Layout, TilingMode};
use crate::tiling::{plane_axes, Tensor};

/// Which dimensions of the network's input tensor (as `spec` lays it out) hold each of the voxel `axes`,
/// in that order. Fails for an axis the tensor does not lay out in space: the slice axis of slice-wise
/// tiling (each tensor holds one slice, with its neighbours as channels where there is `context`).
pub fn tensor_dims(spec: &InputSpec, axes: &[usize]) -> Result<Vec<usize>, String> {
    axes.iter()
        .map(|&axis| {
            let dim = match (spec.tiling.mode, spec.layout) {
                _ if axis > 2 => None,
                (TilingMode::Patches, Layout::Ncijk) => Some(2 + axis),
                (TilingMode::Patches, _) => Some(4 - axis),
                (mode, layout) => {
                    let across = if mode == TilingMode::Image {
                        2
                    } else {
                        spec.tiling.axis
                    };
                    let (columns, rows) = plane_axes(across);
                    let (row_dim, column_dim) = if layout == Layout::Nhwc {
                        (1, 2)
                    } else {
                        (2, 3)
                    };
                    [(columns, column_dim), (rows, row_dim)]
                        .into_iter()
                        .find(|(a, _)| *a == axis)
                        .map(|(_, d)| d)
                }
            };
            dim.ok_or_else(|| {
                format!(
                    "model.input.mirror: voxel axis {axis} is not laid out in the network's images \
                     (it is not 0, 1 or 2, or the slices are taken across it)"
                )
            })
        })
        .collect()
}

/// Every non-empty combination of `dims` (2^n - 1 of them): the mirrored runs besides the plain one.
fn combinations(dims: &[usize]) -> Vec<Vec<usize>> {
    (1..1usize << dims.len())
        .map(|bits| {
            dims.iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, &d)| d)
                .collect()
        })
        .collect()
}

/// `tensor` reversed along each of `dims` (each below its rank; its data as long as its shape says, which
/// the callers check), one pass per dimension.
fn flipped(tensor: &Tensor, dims: &[usize]) -> Tensor {
    let mut data = tensor.data.clone();
    let mut scratch = Vec::with_capacity(data.len());
    for &dim in dims {
        let outer: usize = tensor.shape[..dim].iter().product();
        let length = tensor.shape[dim];
        let inner: usize = tensor.shape[dim + 1..].iter().product();
        scratch.clear();
        for o in 0..outer {
            for x in (0..length).rev() {
                let from = (o * length + x) * inner;
                scratch.extend_from_slice(&data[from..from + inner]);
            }
        }
        std::mem::swap(&mut data, &mut scratch);
    }
    Tensor {
        shape: tensor.shape.clone(),
        data,
    }
}

/// `network` with mirroring along the tensor dimensions `dims` (from [`tensor_dims`]): the plain run and
/// one run per combination of mirrored dimensions, each output mirrored back (maps of the input's rank;
/// `[N, K]` scores need no mirroring), summed and divided by the number of runs. `shape_error` turns an
/// output that cannot be mirrored back into the closure's error. Without dimensions, `network` as it is.
pub fn mirrored<E>(
    mut network: impl FnMut(Tensor) -> Result<Vec<Tensor>, E>,
    dims: Vec<usize>,
    shape_error: impl Fn(String) -> E,
) -> impl FnMut(Tensor) -> Result<Vec<Tensor>, E> {
    let variants = combinations(&dims);
    move |input: Tensor| {
        if variants.is_empty() {
            return network(input);
        }
        let shape = input.shape.clone();
        let mut sums: Vec<Tensor> = Vec::new();
        // The mirrored runs first, so that the plain run can take the input without a copy.
        for flips in &variants {
            let answers = network(flipped(&input, flips))?;
            accumulate(&mut sums, answers, flips, &shape).map_err(&shape_error)?;
        }
        let answers = network(input)?;
        accumulate(&mut sums, answers, &[], &shape).map_err(&shape_error)?;
        let count = (variants.len() + 1) as f32;
        for sum in &mut sums {
            sum.data.iter_mut().for_each(|v| *v /= count);
        }
        Ok(sums)
    }
}

/// Adds one run's `answers`, mirrored back along `flips`, to `sums` (the first run's answers start them).
fn accumulate(
    sums: &mut Vec<Tensor>,
    answers: Vec<Tensor>,
    flips: &[usize],
    input_shape: &[usize],
) -> Result<(), String> {
    if !sums.is_empty() && answers.len() != sums.len() {
        return Err(format!(
            "the network returned {} tensors for one mirrored input, {} for another",
            answers.len(),
            sums.len()
        ));
    }
    for (t, answer) in answers.into_iter().enumerate() {
        if answer.data.len() != answer.shape.iter().product::<usize>() {
            return Err(format!(
                "an output of shape {:?} holds {} values",
                answer.shape,
                answer.data.len()
            ));
        }
        let back = match answer.shape.len() {
            _ if flips.is_empty() => answer,
            2 => answer,
            r if r == input_shape.len() => flipped(&answer, flips),
            _ => {
                return Err(format!(
                    "an output of shape {:?} cannot be mirrored back onto an input of shape {input_shape:?}",
                    answer.shape
                ))
            }
        };
        match sums.get_mut(t) {
            None => sums.push(back),
            Some(sum) if sum.shape != back.shape => {
                return Err(format!(
                    "output {t} has shape {:?} for one mirrored input, {:?} for another",
                    back.shape, sum.shape
                ))
            }
            Some(sum) => sum
                .data
                .iter_mut()
                .zip(&back.data)
                .for_each(|(s, v)| *s += v),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ModelSpec;

    fn spec(input: serde_json::Value) -> InputSpec {
        let model = serde_json::json!({
            "file": "m.onnx", "sha256": "a".repeat(64), "input": input,
            "outputs": {"out": {"tensor": "y"}}
        });
        ModelSpec::from_json(&model).unwrap().input
    }

    fn tensor(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            data: (0..n).map(|v| v as f32).collect(),
        }
    }

    #[test]
    fn flips_the_named_dimension_only() {
        let t = tensor(&[1, 2, 3]);
        assert_eq!(flipped(&t, &[2]).data, vec![2., 1., 0., 5., 4., 3.]);
        assert_eq!(flipped(&t, &[1]).data, vec![3., 4., 5., 0., 1., 2.]);
        assert_eq!(flipped(&flipped(&t, &[1, 2]), &[2, 1]).data, t.data);
    }

    #[test]
    fn voxel_axes_map_to_the_tensor_dimensions_of_each_layout() {
        use serde_json::json;
        let dims = |input| {
            let spec = spec(input);
            tensor_dims(&spec, &spec.mirror)
        };
        let slices = json!({"tensor": "x", "mirror": [0, 1], "tiling": {"mode": "slices"}});
        assert_eq!(dims(slices).unwrap(), vec![3, 2]);
        let nhwc =
            json!({"tensor": "x", "layout": "nhwc", "mirror": [0], "tiling": {"mode": "image"}});
        assert_eq!(dims(nhwc).unwrap(), vec![2]);
        let sagittal =
            json!({"tensor": "x", "mirror": [2], "tiling": {"mode": "slices", "axis": 0}});
        assert_eq!(dims(sagittal).unwrap(), vec![2]);
        let patches = json!({"mode": "patches", "patch": [4, 4, 4]});
        let ncdhw = json!({"tensor": "x", "layout": "ncdhw", "mirror": [0, 2], "tiling": patches});
        assert_eq!(dims(ncdhw).unwrap(), vec![4, 2]);
        let ncijk = json!({"tensor": "x", "layout": "ncijk", "mirror": [0], "tiling": patches});
        assert_eq!(dims(ncijk).unwrap(), vec![2]);
        let across = json!({"tensor": "x", "mirror": [2], "tiling": {"mode": "slices"}});
        let model = json!({"file": "m.onnx", "sha256": "a".repeat(64), "input": across,
                           "outputs": {"out": {"tensor": "y"}}});
        let err = ModelSpec::from_json(&model).unwrap_err();
        assert!(err.contains("voxel axis 2"), "{err}");
    }

    #[test]
    fn answers_are_mirrored_back_and_averaged() {
        // Not mirror-symmetric: each pixel's answer is its own value plus its column index times 10, and
        // one class score per image that is the sum of its first row.
        let network = |x: Tensor| -> Result<Vec<Tensor>, String> {
            let w = x.shape[3];
            let map = Tensor {
                shape: x.shape.clone(),
                data: x
                    .data
                    .iter()
                    .enumerate()
                    .map(|(p, v)| v + (p % w) as f32 * 10.0)
                    .collect(),
            };
            let scores = Tensor {
                shape: vec![x.shape[0], 1],
                data: vec![x.data[..w].iter().sum()],
            };
            Ok(vec![map, scores])
        };
        let input = tensor(&[1, 1, 2, 3]);
        let mut augmented = mirrored(network, vec![3], |m| m);
        let answers = augmented(input.clone()).unwrap();
        // Plain: v + 10 c. Mirrored: the pixel at c sees column w-1-c, so its answer is v + 10 (2 - c);
        // averaged: v + 10.
        let expected: Vec<f32> = input.data.iter().map(|v| v + 10.0).collect();
        assert_eq!(answers[0].data, expected);
        assert_eq!(answers[0].shape, input.shape);
        // The first row sums to the same either way round.
        assert_eq!(answers[1].data, vec![3.0]);
    }

    #[test]
    fn every_combination_runs_and_a_misshapen_answer_is_an_error() {
        let mut runs = 0;
        let counting = |x: Tensor| -> Result<Vec<Tensor>, String> {
            runs += 1;
            Ok(vec![x])
        };
        let input = tensor(&[2, 1, 2, 2]);
        let answers = mirrored(counting, vec![2, 3], |m| m)(input.clone()).unwrap();
        assert_eq!(runs, 4);
        assert_eq!(
            answers[0], input,
            "mirrored back, an identity stays the identity"
        );
        let squashed = |x: Tensor| -> Result<Vec<Tensor>, String> {
            Ok(vec![Tensor {
                shape: vec![x.shape[0], 1, 4],
                data: vec![0.0; x.shape[0] * 4],
            }])
        };
        let err = mirrored(squashed, vec![3], |m| m)(input.clone()).unwrap_err();
        assert!(err.contains("cannot be mirrored back"), "{err}");
        let short = |x: Tensor| -> Result<Vec<Tensor>, String> {
            Ok(vec![Tensor {
                shape: x.shape,
                data: vec![0.0; 3],
            }])
        };
        let err = mirrored(short, vec![3], |m| m)(input).unwrap_err();
        assert!(err.contains("holds 3 values"), "{err}");
    }
}
