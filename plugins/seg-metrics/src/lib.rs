//! seg-metrics: how well a predicted mask agrees with a reference on the same grid. Overlap (Dice,
//! Jaccard), surface distances in millimetres (HD95 as MedPy computes it: the 95th percentile of the
//! distances from each mask's surface voxels to the other's surface, both directions pooled; the mean of
//! those distances; their maximum, the Hausdorff distance), and volumes. Distances come from an exact
//! Euclidean distance transform with the voxel spacing (Felzenszwalb and Huttenlocher's separable lower
//! envelope of parabolas).

use voxflow_plugin_sdk::{export_plugin, Description, Inputs, Outputs, Plugin, PluginError, Port};

/// The surface of a mask: its voxels with at least one of the 6 face neighbours outside the mask (voxels
/// on the volume's border count as surface), as SciPy's binary erosion with a 6-connected structure.
pub fn surface(mask: &[bool], dims: [usize; 3]) -> Vec<bool> {
    let [nx, ny, nz] = dims;
    let at = |x: usize, y: usize, z: usize| mask[x + nx * (y + ny * z)];
    let mut out = vec![false; mask.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if !at(x, y, z) {
                    continue;
                }
                let border =
                    x == 0 || y == 0 || z == 0 || x + 1 == nx || y + 1 == ny || z + 1 == nz;
                out[x + nx * (y + ny * z)] = border
                    || !at(x - 1, y, z)
                    || !at(x + 1, y, z)
                    || !at(x, y - 1, z)
                    || !at(x, y + 1, z)
                    || !at(x, y, z - 1)
                    || !at(x, y, z + 1);
            }
        }
    }
    out
}

/// One line of the squared distance transform: `f` holds squared distances (infinite where unknown) at
/// positions `step * n`; on return, each holds the smallest `f[q] + (step * (n - q))^2`.
fn transform_line(
    f: &mut [f64],
    step: f64,
    v: &mut Vec<usize>,
    z: &mut Vec<f64>,
    d: &mut Vec<f64>,
) {
    let n = f.len();
    v.clear();
    z.clear();
    d.clear();
    d.extend_from_slice(f);
    let pos = |q: usize| q as f64 * step;
    for q in 0..n {
        if d[q].is_infinite() {
            continue;
        }
        loop {
            match v.last() {
                None => {
                    v.push(q);
                    z.push(f64::NEG_INFINITY);
                    break;
                }
                Some(&p) => {
                    let s = ((d[q] + pos(q) * pos(q)) - (d[p] + pos(p) * pos(p)))
                        / (2.0 * (pos(q) - pos(p)));
                    if s <= *z.last().unwrap_or(&f64::NEG_INFINITY) {
                        v.pop();
                        z.pop();
                        continue;
                    }
                    v.push(q);
                    z.push(s);
                    break;
                }
            }
        }
    }
    if v.is_empty() {
        return;
    }
    let mut k = 0;
    for (q, out) in f.iter_mut().enumerate() {
        while k + 1 < v.len() && z[k + 1] < pos(q) {
            k += 1;
        }
        let p = v[k];
        *out = d[p] + (pos(q) - pos(p)).powi(2);
    }
}

/// Squared Euclidean distance (mm²) from every voxel to the nearest `true` voxel of `seeds`; infinite
/// everywhere when there is none.
pub fn squared_distance_to(seeds: &[bool], dims: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
    let mut dist: Vec<f64> = seeds
        .iter()
        .map(|&s| if s { 0.0 } else { f64::INFINITY })
        .collect();
    let [nx, ny, nz] = dims;
    let (mut v, mut z, mut d) = (Vec::new(), Vec::new(), Vec::new());
    let mut line = Vec::new();
    for (axis, step) in spacing.iter().enumerate() {
        let (len, stride) = match axis {
            0 => (nx, 1),
            1 => (ny, nx),
            _ => (nz, nx * ny),
        };
        for start in 0..dist.len() {
            // Each line once: from the voxels whose coordinate along `axis` is 0.
            let coord = (start / stride) % len;
            if coord != 0 {
                continue;
            }
            line.clear();
            line.extend((0..len).map(|n| dist[start + n * stride]));
            transform_line(&mut line, *step, &mut v, &mut z, &mut d);
            for (n, &value) in line.iter().enumerate() {
                dist[start + n * stride] = value;
            }
        }
    }
    dist
}

/// The metrics of `prediction` against `reference` (same grid).
pub fn compare(
    prediction: &[bool],
    reference: &[bool],
    dims: [usize; 3],
    spacing: [f64; 3],
) -> serde_json::Value {
    let count = |m: &[bool]| m.iter().filter(|&&v| v).count();
    let (p, r) = (count(prediction), count(reference));
    let both = prediction
        .iter()
        .zip(reference)
        .filter(|(&a, &b)| a && b)
        .count();
    let dice = if p + r == 0 {
        1.0
    } else {
        2.0 * both as f64 / (p + r) as f64
    };
    let jaccard = if p + r == 0 {
        1.0
    } else {
        both as f64 / (p + r - both) as f64
    };
    let voxel_ml = spacing.iter().product::<f64>() / 1000.0;
    let mut report = serde_json::json!({
        "dice": dice,
        "jaccard": jaccard,
        "volume_prediction_ml": p as f64 * voxel_ml,
        "volume_reference_ml": r as f64 * voxel_ml,
        "volume_difference_ml": (p as f64 - r as f64) * voxel_ml,
        "volume_difference_percent": if r > 0 { Some(100.0 * (p as f64 - r as f64) / r as f64) } else { None },
        "hd95_mm": null,
        "assd_mm": null,
        "hausdorff_mm": null,
    });
    if p > 0 && r > 0 {
        let (sp, sr) = (surface(prediction, dims), surface(reference, dims));
        let to_r = squared_distance_to(&sr, dims, spacing);
        let to_p = squared_distance_to(&sp, dims, spacing);
        let mut distances: Vec<f64> = sp
            .iter()
            .zip(&to_r)
            .filter(|(&s, _)| s)
            .map(|(_, d)| d.sqrt())
            .chain(
                sr.iter()
                    .zip(&to_p)
                    .filter(|(&s, _)| s)
                    .map(|(_, d)| d.sqrt()),
            )
            .collect();
        distances.sort_by(f64::total_cmp);
        report["hd95_mm"] = percentile(&distances, 95.0).into();
        report["assd_mm"] = (distances.iter().sum::<f64>() / distances.len() as f64).into();
        report["hausdorff_mm"] = distances.last().copied().unwrap_or(0.0).into();
    }
    report
}

/// NumPy's default (linear) percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// The plugin (its `Plugin` implementation is what the component exports).
pub struct SegMetrics;

impl Plugin for SegMetrics {
    fn describe() -> Description {
        Description::new("seg-metrics", env!("CARGO_PKG_VERSION"))
            .input(Port::new("prediction", "mask"))
            .input(Port::new("reference", "mask"))
            .output(Port::new("report", "json"))
            .params(serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "properties": { "case": {"type": "string"} }
            }))
    }

    fn run(mut inputs: Inputs, params: serde_json::Value) -> Result<Outputs, PluginError> {
        let prediction = inputs.volume("prediction")?;
        let reference = inputs.volume("reference")?;
        if !prediction.same_grid(&reference) {
            return Err(PluginError::bad_input(format!(
                "prediction ({:?} voxels, spacing {:?}) and reference ({:?}, {:?}) are not on the same grid",
                prediction.geometry.dims,
                prediction.geometry.spacing,
                reference.geometry.dims,
                reference.geometry.spacing
            )));
        }
        let g = &reference.geometry;
        let mut report = compare(
            &prediction.nonzero(),
            &reference.nonzero(),
            g.dims,
            g.spacing,
        );
        report["case"] = params["case"].as_str().unwrap_or_default().into();
        report["spacing_mm"] = serde_json::json!(g.spacing);
        voxflow_plugin_sdk::log::info(&format!(
            "{}: Dice {:.4}, HD95 {} mm",
            report["case"], report["dice"], report["hd95_mm"]
        ));
        Ok(Outputs::new().json("report", report))
    }
}

export_plugin!(SegMetrics);

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the squared distance to the nearest seed, over all pairs.
    fn brute_force(seeds: &[bool], dims: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
        let pos = |v: usize| {
            [
                (v % dims[0]) as f64 * spacing[0],
                ((v / dims[0]) % dims[1]) as f64 * spacing[1],
                (v / (dims[0] * dims[1])) as f64 * spacing[2],
            ]
        };
        (0..seeds.len())
            .map(|v| {
                let a = pos(v);
                (0..seeds.len())
                    .filter(|&s| seeds[s])
                    .map(|s| {
                        let b = pos(s);
                        (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>()
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    #[test]
    fn distance_transform_is_exact_with_anisotropic_spacing() {
        let dims = [7, 5, 4];
        let mut state = 12345u64;
        let seeds: Vec<bool> = (0..140)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33).is_multiple_of(11)
            })
            .collect();
        let spacing = [0.7, 1.3, 3.0];
        let ours = squared_distance_to(&seeds, dims, spacing);
        let theirs = brute_force(&seeds, dims, spacing);
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        assert!(squared_distance_to(&[false; 8], [2, 2, 2], [1.0; 3])
            .iter()
            .all(|d| d.is_infinite()));
    }

    /// A box of voxels [x0, x1) x [y0, y1) x [z0, z1) in a volume of `dims`.
    fn cube(dims: [usize; 3], lo: [usize; 3], hi: [usize; 3]) -> Vec<bool> {
        let mut m = vec![false; dims.iter().product()];
        for z in lo[2]..hi[2] {
            for y in lo[1]..hi[1] {
                for x in lo[0]..hi[0] {
                    m[x + dims[0] * (y + dims[1] * z)] = true;
                }
            }
        }
        m
    }

    #[test]
    fn identical_masks_agree_perfectly_and_a_shift_gives_its_distance() {
        let dims = [20, 20, 10];
        let a = cube(dims, [5, 5, 2], [15, 15, 8]);
        let same = compare(&a, &a, dims, [1.0, 1.0, 2.0]);
        assert_eq!(same["dice"], 1.0);
        assert_eq!(same["hd95_mm"], 0.0);
        // Shifted by 2 voxels along x at 0.5 mm: every distance is at most 1 mm, the far faces exactly 1.
        let b = cube(dims, [7, 5, 2], [17, 15, 8]);
        let shifted = compare(&a, &b, dims, [0.5, 1.0, 2.0]);
        assert!((shifted["dice"].as_f64().unwrap() - 0.8).abs() < 1e-12);
        assert!((shifted["hausdorff_mm"].as_f64().unwrap() - 1.0).abs() < 1e-12);
        assert!(shifted["hd95_mm"].as_f64().unwrap() <= 1.0);
        assert_eq!(shifted["volume_difference_ml"], 0.0);
        let empty = compare(&vec![false; a.len()], &a, dims, [1.0; 3]);
        assert_eq!(empty["dice"], 0.0);
        assert!(empty["hd95_mm"].is_null());
        assert_eq!(empty["volume_difference_percent"], -100.0);
    }
}
