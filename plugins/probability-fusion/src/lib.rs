//! probability-fusion: fuses probability maps of one structure voxel-wise, by their mean or by the first
//! map on the middle of its own extent and the mean at its ends, optionally smoothed across slices before
//! the threshold. The fusion is plain Rust ([`mean`], [`ends_kept`], [`smoothed_along`]); the plugin wraps
//! it for voxflow.

use voxflow_plugin_sdk::{
    export_plugin, Description, Geometry, Inputs, Outputs, Plugin, PluginError, Port,
};

/// The voxel-wise mean of maps of equal length (the caller checks).
pub fn mean(maps: &[Vec<f32>]) -> Vec<f32> {
    let len = maps.first().map_or(0, Vec::len);
    let mut sum = vec![0.0f32; len];
    for map in maps {
        for (s, &v) in sum.iter_mut().zip(map) {
            *s += v;
        }
    }
    let n = maps.len().max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

/// The slice along `axis` (0, 1, 2 = i, j, k) of the voxel at flat index `n` (i fastest).
fn slice_of(n: usize, dims: [usize; 3], axis: usize) -> usize {
    match axis {
        0 => n % dims[0],
        1 => (n / dims[0]) % dims[1],
        _ => n / (dims[0] * dims[1]),
    }
}

/// The slices along `axis` (0, 1, 2 = i, j, k) holding a voxel of `primary` above `threshold`: the first
/// and the last, or `None` where there is none.
pub fn extent(
    primary: &[f32],
    dims: [usize; 3],
    axis: usize,
    threshold: f32,
) -> Option<(usize, usize)> {
    let mut occupied = vec![false; dims[axis]];
    for (n, _) in primary.iter().enumerate().filter(|(_, &p)| p > threshold) {
        occupied[slice_of(n, dims, axis)] = true;
    }
    let first = occupied.iter().position(|&o| o)?;
    let last = occupied.iter().rposition(|&o| o)?;
    Some((first, last))
}

/// `fused` (the mean of every map) with the primary's values put back on the slices along `axis` of the
/// primary's extent less `inset` at each end; unchanged where the primary mask is empty or spans fewer
/// than 2 * inset + 1 slices. Returns the slices kept, first and last, if any.
pub fn ends_kept(
    fused: &mut [f32],
    primary: &[f32],
    dims: [usize; 3],
    axis: usize,
    inset: usize,
    threshold: f32,
) -> Option<(usize, usize)> {
    let (first, last) = extent(primary, dims, axis, threshold)?;
    if last - first < 2 * inset {
        return None;
    }
    let (from, to) = (first + inset, last - inset);
    for (n, (f, &p)) in fused.iter_mut().zip(primary).enumerate() {
        if (from..=to).contains(&slice_of(n, dims, axis)) {
            *f = p;
        }
    }
    Some((from, to))
}

/// `values` smoothed along `axis` (0, 1, 2 = i, j, k) with the kernel [weight, 1 - 2 weight, weight],
/// the first and last slices repeated beyond the edges (scipy's `convolve1d(..., mode="nearest")`).
/// A weight of 0.25 is the [1, 2, 1] / 4 binomial kernel: a voxel's neighbours on the adjacent slices
/// pull its probability towards theirs, which evens out slice-to-slice jitter of a 2D network.
pub fn smoothed_along(values: &[f32], dims: [usize; 3], axis: usize, weight: f32) -> Vec<f32> {
    let stride = match axis {
        0 => 1,
        1 => dims[0],
        _ => dims[0] * dims[1],
    };
    let last = dims[axis].saturating_sub(1);
    let centre = 1.0 - 2.0 * weight;
    values
        .iter()
        .enumerate()
        .map(|(n, &v)| {
            let slice = slice_of(n, dims, axis);
            let before = if slice > 0 { values[n - stride] } else { v };
            let after = if slice < last { values[n + stride] } else { v };
            weight * before + centre * v + weight * after
        })
        .collect()
}

pub struct ProbabilityFusion;

/// A parameter as a whole number in `0..=max`, or its default; the error names it.
fn whole(params: &serde_json::Value, name: &str, max: u64) -> Result<Option<usize>, PluginError> {
    match params.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => match v.as_u64().filter(|&n| n <= max) {
            Some(n) => Ok(Some(n as usize)),
            None => Err(PluginError::bad_params(format!(
                "{name} {v}: expected a whole number 0..={max}"
            ))),
        },
    }
}

/// A parameter as a number in `0..=max`, or its default; the error names it.
fn fraction(params: &serde_json::Value, name: &str, max: f64) -> Result<Option<f32>, PluginError> {
    match params.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => match v.as_f64().filter(|x| (0.0..=max).contains(x)) {
            Some(x) => Ok(Some(x as f32)),
            None => Err(PluginError::bad_params(format!(
                "{name} {v}: expected a number 0..={max}"
            ))),
        },
    }
}

impl Plugin for ProbabilityFusion {
    fn describe() -> Description {
        Description::new("probability-fusion", env!("CARGO_PKG_VERSION"))
            .input(Port::new("primary", "volume").describe("the first network's probability"))
            .input(Port::new("others", "volumes").describe("the other networks' probabilities"))
            .output(Port::new("probability", "volume"))
            .output(Port::new("mask", "mask"))
            .params(serde_json::json!({
                "type": "object",
                "properties": {
                    "ends_inset": {"type": "integer", "minimum": 0},
                    "axis": {"type": "integer", "enum": [0, 1, 2]},
                    "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                    "smooth_along_axis": {"type": "number", "minimum": 0, "maximum": 0.5}
                },
                "additionalProperties": false
            }))
    }

    fn run(mut inputs: Inputs, params: serde_json::Value) -> Result<Outputs, PluginError> {
        let inset = whole(&params, "ends_inset", u32::MAX as u64)?;
        let axis = whole(&params, "axis", 2)?.unwrap_or(2);
        let threshold = fraction(&params, "threshold", 1.0)?.unwrap_or(0.5);
        let smoothing = fraction(&params, "smooth_along_axis", 0.5)?;
        let primary = inputs.volume("primary")?;
        let others = inputs.volumes("others")?;
        if others.is_empty() {
            return Err(PluginError::bad_input(
                "others: give at least one probability to fuse with the primary",
            ));
        }
        if let Some((n, other)) = others
            .iter()
            .enumerate()
            .find(|(_, v)| !v.same_grid(&primary))
        {
            return Err(PluginError::bad_input(format!(
                "others[{n}] is on another voxel grid ({:?} voxels) than the primary ({:?})",
                other.geometry.dims, primary.geometry.dims
            )));
        }
        let primary_values = primary.data.to_f32();
        let mut maps = vec![primary_values.clone()];
        maps.extend(others.iter().map(|v| v.data.to_f32()));
        drop(others);
        let mut fused = mean(&maps);
        drop(maps);
        let Geometry { dims, .. } = primary.geometry;
        if let Some(inset) = inset {
            match ends_kept(&mut fused, &primary_values, dims, axis, inset, threshold) {
                Some((from, to)) => voxflow_plugin_sdk::log::info(&format!(
                    "primary kept on slices {from}..={to} along axis {axis}, the mean elsewhere"
                )),
                None => voxflow_plugin_sdk::log::info(&format!(
                    "the primary mask spans fewer than {} slices along axis {axis}: the mean everywhere",
                    2 * inset + 1
                )),
            }
        }
        if let Some(weight) = smoothing.filter(|&w| w > 0.0) {
            fused = smoothed_along(&fused, dims, axis, weight);
            voxflow_plugin_sdk::log::info(&format!(
                "smoothed along axis {axis} with [{weight}, {}, {weight}]",
                1.0 - 2.0 * weight
            ));
        }
        let mask: Vec<bool> = fused.iter().map(|&p| p > threshold).collect();
        Ok(Outputs::new()
            .volume("mask", primary.with_mask(mask))
            .volume("probability", primary.with_f32(fused)))
    }
}

export_plugin!(ProbabilityFusion);

#[cfg(test)]
mod tests {
    use super::*;
    use voxflow_plugin_sdk::{Value, Volume, VoxelData};

    #[test]
    fn the_mean_is_voxel_wise() {
        assert_eq!(
            mean(&[vec![0.0, 1.0], vec![1.0, 1.0], vec![0.5, 0.0]]),
            vec![0.5, 2.0 / 3.0]
        );
    }

    #[test]
    fn the_primary_is_kept_inside_its_extent_less_the_inset() {
        // One voxel per slice along k: the primary says foreground on slices 1..=5 of 7.
        let dims = [1, 1, 7];
        let primary = vec![0.0, 0.9, 0.8, 0.7, 0.8, 0.9, 0.1];
        let mut fused = vec![0.3; 7];
        assert_eq!(extent(&primary, dims, 2, 0.5), Some((1, 5)));
        assert_eq!(
            ends_kept(&mut fused, &primary, dims, 2, 1, 0.5),
            Some((2, 4))
        );
        assert_eq!(fused, vec![0.3, 0.3, 0.8, 0.7, 0.8, 0.3, 0.3]);
        // An inset that leaves nothing keeps the mean; so does an empty primary.
        let mut fused = vec![0.3; 7];
        assert_eq!(ends_kept(&mut fused, &primary, dims, 2, 3, 0.5), None);
        assert_eq!(fused, vec![0.3; 7]);
        assert_eq!(ends_kept(&mut fused, &[0.0; 7], dims, 2, 0, 0.5), None);
        // Along i on a 3 x 2 x 1 grid: columns 0 and 2 hold foreground, the inset-0 extent is all of them.
        let primary = vec![0.9, 0.0, 0.0, 0.0, 0.0, 0.6];
        let mut fused = vec![0.1; 6];
        assert_eq!(
            ends_kept(&mut fused, &primary, [3, 2, 1], 0, 0, 0.5),
            Some((0, 2))
        );
        assert_eq!(fused, primary);
    }

    #[test]
    fn smoothing_along_an_axis_repeats_the_edges() {
        let dims = [1, 1, 5];
        let values = [0.4, 0.5, 0.9, 0.45, 0.0];
        let smoothed = smoothed_along(&values, dims, 2, 0.25);
        let expected = [0.425, 0.575, 0.6875, 0.45, 0.1125];
        assert!(
            smoothed
                .iter()
                .zip(expected)
                .all(|(s, e)| (s - e).abs() < 1e-6),
            "{smoothed:?}"
        );
        assert_eq!(smoothed_along(&values, dims, 2, 0.0), values);
        // Along j of a 2 x 3 x 1 grid: each column i is smoothed on its own, never across i.
        let values = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(
            smoothed_along(&values, [2, 3, 1], 1, 0.25),
            vec![0.75, 0.0, 0.25, 0.25, 0.0, 0.75]
        );
        // Along i of a 3 x 1 x 1 grid, and a single slice (nothing to smooth with).
        assert_eq!(
            smoothed_along(&[0.0, 1.0, 0.0], [3, 1, 1], 0, 0.5),
            vec![0.5, 0.0, 0.5]
        );
        assert_eq!(smoothed_along(&[0.7], [1, 1, 1], 2, 0.25), vec![0.7]);
    }

    #[test]
    fn run_fuses_and_names_bad_inputs() {
        let g = Geometry::new([1, 1, 5], [1.0, 1.0, 3.0]);
        let volume = |v: Vec<f32>| Volume::new(g.clone(), VoxelData::F32(v)).unwrap();
        let primary = volume(vec![0.0, 0.9, 0.9, 0.9, 0.0]);
        let other = volume(vec![0.8, 0.1, 0.2, 0.0, 0.0]);
        let inputs = |others: Vec<Volume>| {
            Inputs(vec![
                ("primary".into(), Value::Volume(primary.clone())),
                ("others".into(), Value::Volumes(others)),
            ])
        };
        let values = |params: serde_json::Value, port: &str| -> Vec<f32> {
            let out = ProbabilityFusion::run(inputs(vec![other.clone()]), params).unwrap();
            match out.0.into_iter().find(|(n, _)| n == port).map(|(_, v)| v) {
                Some(Value::Volume(v)) => v.data.to_f32(),
                other => panic!("{port}: {other:?}"),
            }
        };
        let close = |got: Vec<f32>, expected: [f32; 5]| {
            assert!(
                got.iter().zip(expected).all(|(g, e)| (g - e).abs() < 1e-6),
                "{got:?} vs {expected:?}"
            );
        };
        close(
            values(serde_json::json!({"ends_inset": 1}), "probability"),
            [0.4, 0.5, 0.9, 0.45, 0.0],
        );
        close(
            values(serde_json::json!({"ends_inset": 1}), "mask"),
            [0.0, 0.0, 1.0, 0.0, 0.0],
        );
        close(
            values(serde_json::json!({}), "probability"),
            [0.4, 0.5, 0.55, 0.45, 0.0],
        );
        // Smoothed along k after keeping the primary, before the threshold: slice 1 rises above 0.5.
        let smoothed = serde_json::json!({"ends_inset": 1, "smooth_along_axis": 0.25});
        close(
            values(smoothed.clone(), "probability"),
            [0.425, 0.575, 0.6875, 0.45, 0.1125],
        );
        close(values(smoothed, "mask"), [0.0, 1.0, 1.0, 0.0, 0.0]);

        let err = ProbabilityFusion::run(inputs(vec![]), serde_json::json!({})).unwrap_err();
        assert!(err.message.contains("at least one"), "{err}");
        let elsewhere = Volume::new(
            Geometry::new([5, 1, 1], [1.0; 3]),
            VoxelData::F32(vec![0.0; 5]),
        )
        .unwrap();
        let err = ProbabilityFusion::run(
            inputs(vec![other.clone(), elsewhere]),
            serde_json::json!({}),
        )
        .unwrap_err();
        assert!(
            err.message.contains("others[1] is on another voxel grid"),
            "{err}"
        );
        let err =
            ProbabilityFusion::run(inputs(vec![other.clone()]), serde_json::json!({"axis": 3}))
                .unwrap_err();
        assert_eq!(err.code, "bad-params");
        let err = ProbabilityFusion::run(
            inputs(vec![other]),
            serde_json::json!({"smooth_along_axis": 0.6}),
        )
        .unwrap_err();
        assert_eq!(err.code, "bad-params");
        assert!(err.message.contains("smooth_along_axis 0.6"), "{err}");
    }
}
