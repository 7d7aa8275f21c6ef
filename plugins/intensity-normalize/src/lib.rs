//! intensity-normalize: z-score, or percentile clipping and scaling, with statistics from the voxels inside
//! an optional mask. The functions are plain Rust over `f32` slices; the plugin wraps them for voxflow.

use voxflow_plugin_sdk::{export_plugin, Description, Inputs, Outputs, Plugin, PluginError, Port};

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
                let lo = percentile(&values, select, pl).ok_or_else(empty)?;
                let hi = percentile(&values, select, pu).ok_or_else(empty)?;
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
        let s = clip_scale(&[0.0, 1.4, 3.1, 9.0], 1.4, 4.8);
        assert_eq!(s[0], 0.0);
        assert_eq!(s[3], 1.0);
    }
}
