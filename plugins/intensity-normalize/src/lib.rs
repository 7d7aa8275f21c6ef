//! intensity-normalize: z-score, or percentile clipping and scaling, with statistics from the voxels inside
//! an optional mask. The functions are plain Rust over `f32` slices; the plugin wraps them for voxflow.

use voxflow_plugin_sdk::{
    export_plugin, Description, Inputs, Outputs, Plugin, PluginError, Port, VoxelData,
};

/// Mean and (population) standard deviation of the finite values `select` keeps.
pub fn mean_std(values: &[f32], select: Option<&[bool]>) -> Option<(f64, f64)> {
    let (mut n, mut sum, mut sq) = (0usize, 0f64, 0f64);
    for (i, &v) in values.iter().enumerate() {
        if v.is_finite() && select.is_none_or(|s| s[i]) {
            n += 1;
            sum += f64::from(v);
            sq += f64::from(v) * f64::from(v);
        }
    }
    (n > 0).then(|| {
        let mean = sum / n as f64;
        (mean, (sq / n as f64 - mean * mean).max(0.0).sqrt())
    })
}

/// The `p`-th percentile (0..=100, linear interpolation, as numpy's default) of the kept finite values.
pub fn percentile(values: &[f32], select: Option<&[bool]>, p: f64) -> Option<f64> {
    let mut kept: Vec<f32> = values
        .iter()
        .enumerate()
        .filter(|&(i, v)| v.is_finite() && select.is_none_or(|s| s[i]))
        .map(|(_, &v)| v)
        .collect();
    if kept.is_empty() {
        return None;
    }
    let rank = p.clamp(0.0, 100.0) / 100.0 * (kept.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let (_, &mut a, _) = kept.select_nth_unstable_by(lo, f32::total_cmp);
    let b = if hi == lo {
        a
    } else {
        let (_, &mut b, _) = kept.select_nth_unstable_by(hi, f32::total_cmp);
        b
    };
    Some(f64::from(a) + (f64::from(b) - f64::from(a)) * (rank - lo as f64))
}

/// Percentiles (0..=100, linear interpolation as numpy's default) of integer samples, by counting them:
/// exact, one pass, and no sort; the values of the 8- and 16-bit scans most series are. `None` when no
/// sample is kept, or when the samples span more than [`MAX_COUNTED_RANGE`] values (then sort instead).
pub fn percentiles_counted<T: Copy + Into<i64>>(
    values: &[T],
    select: Option<&[bool]>,
    ps: &[f64],
) -> Option<Vec<f64>> {
    let kept = |i: usize| select.is_none_or(|s| s[i]);
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for (i, &v) in values.iter().enumerate() {
        if kept(i) {
            lo = lo.min(v.into());
            hi = hi.max(v.into());
        }
    }
    if lo > hi || hi - lo >= MAX_COUNTED_RANGE {
        return None;
    }
    let mut counts = vec![0usize; (hi - lo + 1) as usize];
    for (i, &v) in values.iter().enumerate() {
        if kept(i) {
            counts[(v.into() - lo) as usize] += 1;
        }
    }
    let n: usize = counts.iter().sum();
    // The k-th smallest kept value (0-based).
    let nth = |k: usize| -> f64 {
        let mut seen = 0;
        for (offset, &c) in counts.iter().enumerate() {
            seen += c;
            if seen > k {
                return (lo + offset as i64) as f64;
            }
        }
        hi as f64
    };
    Some(
        ps.iter()
            .map(|&p| {
                let rank = p.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
                let (a, b) = (nth(rank.floor() as usize), nth(rank.ceil() as usize));
                a + (b - a) * (rank - rank.floor())
            })
            .collect(),
    )
}

/// The widest range of integer values [`percentiles_counted`] counts (one counter per value).
pub const MAX_COUNTED_RANGE: i64 = 1 << 20;

/// `(v - mean) / std` for every voxel (std 0 leaves the values centred only).
pub fn zscore(values: &[f32], mean: f64, std: f64) -> Vec<f32> {
    let scale = if std > 0.0 { 1.0 / std } else { 1.0 };
    values
        .iter()
        .map(|&v| ((f64::from(v) - mean) * scale) as f32)
        .collect()
}

/// Clipped to [lo, hi] and scaled to [0, 1].
pub fn clip_scale(values: &[f32], lo: f64, hi: f64) -> Vec<f32> {
    let width = if hi > lo { hi - lo } else { 1.0 };
    values
        .iter()
        .map(|&v| ((f64::from(v).clamp(lo, hi) - lo) / width) as f32)
        .collect()
}

pub struct IntensityNormalize;

impl Plugin for IntensityNormalize {
    fn describe() -> Description {
        Description::new("intensity-normalize", env!("CARGO_PKG_VERSION"))
            .input(Port::new("volume", "volume"))
            .input(Port::new("mask", "mask").optional())
            .output(Port::new("volume", "volume"))
            .output(Port::new("stats", "json"))
            .params(serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "method": {"type": "string", "enum": ["zscore", "percentile"]},
                    "lower_percentile": {"type": "number", "minimum": 0, "maximum": 100},
                    "upper_percentile": {"type": "number", "minimum": 0, "maximum": 100}
                }
            }))
    }

    fn run(mut inputs: Inputs, params: serde_json::Value) -> Result<Outputs, PluginError> {
        let volume = inputs.volume("volume")?;
        let mask = inputs.optional_volume("mask")?;
        if let Some(m) = &mask {
            if !m.same_grid(&volume) {
                return Err(PluginError::bad_input(format!(
                    "the mask ({:?} voxels) is not on the volume's grid ({:?})",
                    m.geometry.dims, volume.geometry.dims
                )));
            }
        }
        let select = mask.as_ref().map(|m| m.nonzero());
        if select.as_ref().is_some_and(|s| !s.iter().any(|&v| v)) {
            return Err(PluginError::bad_input(
                "the mask is empty: no voxels to take statistics from",
            ));
        }
        let values = volume.data.to_f32();
        let select = select.as_deref();
        let empty = || PluginError::bad_input("the volume has no finite values");
        let (out, stats) = match params["method"].as_str().unwrap_or("zscore") {
            "zscore" => {
                let (mean, std) = mean_std(&values, select).ok_or_else(empty)?;
                (
                    zscore(&values, mean, std),
                    serde_json::json!({"method": "zscore", "mean": mean, "std": std}),
                )
            }
            "percentile" => {
                let pl = params["lower_percentile"].as_f64().unwrap_or(0.5);
                let pu = params["upper_percentile"].as_f64().unwrap_or(99.5);
                if pl >= pu {
                    return Err(PluginError::bad_params(format!(
                        "lower_percentile {pl} must be below upper_percentile {pu}"
                    )));
                }
                let counted = match &volume.data {
                    VoxelData::U8(v) => percentiles_counted(v, select, &[pl, pu]),
                    VoxelData::I16(v) => percentiles_counted(v, select, &[pl, pu]),
                    VoxelData::U16(v) => percentiles_counted(v, select, &[pl, pu]),
                    VoxelData::I32(v) => percentiles_counted(v, select, &[pl, pu]),
                    VoxelData::F32(_) | VoxelData::F64(_) => None,
                };
                let (lo, hi) = match counted {
                    Some(p) => (p[0], p[1]),
                    None => (
                        percentile(&values, select, pl).ok_or_else(empty)?,
                        percentile(&values, select, pu).ok_or_else(empty)?,
                    ),
                };
                (
                    clip_scale(&values, lo, hi),
                    serde_json::json!({"method": "percentile", "lower": lo, "upper": hi}),
                )
            }
            other => {
                return Err(PluginError::bad_params(format!(
                    "method `{other}`: use zscore or percentile"
                )))
            }
        };
        Ok(Outputs::new()
            .volume("volume", volume.with_f32(out))
            .json("stats", stats))
    }
}

export_plugin!(IntensityNormalize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zscore_within_a_mask() {
        let v = [1.0, 2.0, 3.0, 100.0];
        let inside = [true, true, true, false];
        let (mean, std) = mean_std(&v, Some(&inside)).unwrap();
        assert!((mean - 2.0).abs() < 1e-12);
        assert!((std - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let z = zscore(&v, mean, std);
        assert!((z[1]).abs() < 1e-6);
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 5], [10, 50, 95]) == [1.4, 3.0, 4.8]
        let v = [5.0, 1.0, 4.0, 2.0, 3.0, f32::NAN];
        for (p, want) in [(10.0, 1.4), (50.0, 3.0), (95.0, 4.8)] {
            assert!(
                (percentile(&v, None, p).unwrap() - want).abs() < 1e-9,
                "{p}"
            );
        }
        let ints: [i16; 5] = [5, 1, 4, 2, 3];
        let counted = percentiles_counted(&ints, None, &[10.0, 50.0, 95.0]).unwrap();
        for (got, want) in counted.iter().zip([1.4, 3.0, 4.8]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        let s = clip_scale(&[0.0, 1.4, 3.1, 9.0], 1.4, 4.8);
        assert_eq!(s[0], 0.0);
        assert_eq!(s[3], 1.0);
    }

    #[test]
    fn counting_agrees_with_sorting() {
        // A pseudo-random int16 scan with a mask: both ways give the same percentiles.
        let mut x = 12345u32;
        let mut next = || {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            x >> 8
        };
        let ints: Vec<i16> = (0..5000).map(|_| (next() % 3000) as i16 - 500).collect();
        let select: Vec<bool> = (0..5000).map(|_| next() % 3 != 0).collect();
        let floats: Vec<f32> = ints.iter().map(|&v| f32::from(v)).collect();
        let ps = [0.0, 0.5, 12.3, 50.0, 99.5, 100.0];
        let counted = percentiles_counted(&ints, Some(&select), &ps).unwrap();
        for (p, got) in ps.iter().zip(counted) {
            let sorted = percentile(&floats, Some(&select), *p).unwrap();
            assert!((got - sorted).abs() < 1e-9, "p{p}: {got} vs {sorted}");
        }
        assert!(percentiles_counted(&[0i32, 1 << 30], None, &[50.0]).is_none());
        assert!(percentiles_counted(&ints, Some(&[false; 5000]), &[50.0]).is_none());
    }
}
