//! mask-cleanup: connected components of a binary mask (6- or 26-connectivity), removal of small ones (by
//! physical size), the largest kept, and holes filled slice-wise and in 3D. The functions are plain Rust
//! on flat masks (i fastest); the plugin wraps them for voxflow.

use voxflow_plugin_sdk::{export_plugin, Description, Inputs, Outputs, Plugin, PluginError, Port};

/// Neighbour offsets of a voxel: the 6 face neighbours, or all 26.
fn offsets(connectivity: u8) -> Vec<[i64; 3]> {
    let mut out = Vec::new();
    for dz in -1i64..=1 {
        for dy in -1i64..=1 {
            for dx in -1i64..=1 {
                let n = dx.abs() + dy.abs() + dz.abs();
                if n == 0 || (connectivity == 6 && n > 1) {
                    continue;
                }
                out.push([dx, dy, dz]);
            }
        }
    }
    out
}

/// Visits every voxel reachable from the seeds on `stack` through the neighbour offsets that `admit`
/// accepts (`admit` marks a voxel and says whether it is new); returns how many were visited. Voxels away
/// from the border take their neighbours by flat offsets with no bounds checks: most of a mask is interior,
/// and in WebAssembly every loop iteration also pays the host's interruption check.
fn flood(
    dims: [usize; 3],
    neighbours: &[[i64; 3]],
    stack: &mut Vec<usize>,
    mut admit: impl FnMut(usize) -> bool,
) -> usize {
    let [nx, ny, nz] = dims;
    let flat: Vec<isize> = neighbours
        .iter()
        .map(|&[dx, dy, dz]| (dx + nx as i64 * (dy + ny as i64 * dz)) as isize)
        .collect();
    let through_slices = neighbours.iter().any(|o| o[2] != 0);
    let mut visited = 0;
    while let Some(v) = stack.pop() {
        visited += 1;
        let (x, y, z) = (v % nx, (v / nx) % ny, v / (nx * ny));
        let interior = x > 0
            && x + 1 < nx
            && y > 0
            && y + 1 < ny
            && (!through_slices || (z > 0 && z + 1 < nz));
        if interior {
            for &d in &flat {
                let n = v.wrapping_add_signed(d);
                if admit(n) {
                    stack.push(n);
                }
            }
            continue;
        }
        let (x, y, z) = (x as i64, y as i64, z as i64);
        for [dx, dy, dz] in neighbours {
            let (a, b, c) = (x + dx, y + dy, z + dz);
            if a < 0 || b < 0 || c < 0 || a >= nx as i64 || b >= ny as i64 || c >= nz as i64 {
                continue;
            }
            let n = a as usize + nx * (b as usize + ny * c as usize);
            if admit(n) {
                stack.push(n);
            }
        }
    }
    visited
}

/// Labels the `true` voxels by connected component (0 = background, components 1..=n, numbered in scan
/// order) and returns the labels and each component's size (index 0 unused).
pub fn label_components(
    mask: &[bool],
    dims: [usize; 3],
    connectivity: u8,
) -> (Vec<u32>, Vec<usize>) {
    let mut labels = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    let neighbours = offsets(connectivity);
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32;
        labels[start] = label;
        stack.push(start);
        let size = flood(dims, &neighbours, &mut stack, |n| {
            let new = mask[n] && labels[n] == 0;
            if new {
                labels[n] = label;
            }
            new
        });
        sizes.push(size);
    }
    (labels, sizes)
}

/// From a labelling: the components with at least `min_voxels` voxels, and of those only the largest if
/// asked.
pub fn select_labels(
    labels: &[u32],
    sizes: &[usize],
    min_voxels: usize,
    keep_largest: bool,
) -> Vec<bool> {
    let largest = (1..sizes.len()).max_by_key(|&l| sizes[l]);
    let keep: Vec<bool> = (0..sizes.len())
        .map(|l| l != 0 && sizes[l] >= min_voxels && (!keep_largest || Some(l) == largest))
        .collect();
    labels.iter().map(|&l| keep[l as usize]).collect()
}

/// Keeps the components with at least `min_voxels` voxels, and of those only the largest if asked.
pub fn select_components(
    mask: &[bool],
    dims: [usize; 3],
    connectivity: u8,
    min_voxels: usize,
    keep_largest: bool,
) -> Vec<bool> {
    let (labels, sizes) = label_components(mask, dims, connectivity);
    select_labels(&labels, &sizes, min_voxels, keep_largest)
}

/// Fills background regions not connected (6-connectivity) to the volume's border.
pub fn fill_holes_3d(mask: &[bool], dims: [usize; 3]) -> Vec<bool> {
    fill_enclosed(mask, dims, &offsets(6))
}

/// Fills, in each k-slice, background regions not connected (4-connectivity) to the slice's border.
pub fn fill_holes_slices(mask: &[bool], dims: [usize; 3]) -> Vec<bool> {
    let in_plane: Vec<[i64; 3]> = offsets(6).into_iter().filter(|o| o[2] == 0).collect();
    fill_enclosed(mask, dims, &in_plane)
}

fn fill_enclosed(mask: &[bool], dims: [usize; 3], neighbours: &[[i64; 3]]) -> Vec<bool> {
    let [nx, ny, nz] = dims;
    let planar = neighbours.iter().all(|o| o[2] == 0);
    let mut outside = vec![false; mask.len()];
    let mut stack = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let border = x == 0
                    || y == 0
                    || x == nx - 1
                    || y == ny - 1
                    || (!planar && (z == 0 || z == nz - 1));
                let v = x + nx * (y + ny * z);
                if border && !mask[v] {
                    outside[v] = true;
                    stack.push(v);
                }
            }
        }
    }
    flood(dims, neighbours, &mut stack, |n| {
        let new = !mask[n] && !outside[n];
        if new {
            outside[n] = true;
        }
        new
    });
    outside.iter().map(|&o| !o).collect()
}

pub struct MaskCleanup;

impl Plugin for MaskCleanup {
    fn describe() -> Description {
        Description::new("mask-cleanup", env!("CARGO_PKG_VERSION"))
            .input(Port::new("mask", "mask"))
            .output(Port::new("mask", "mask"))
            .output(Port::new("report", "json"))
            .params(serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "connectivity": {"type": "integer", "enum": [6, 26]},
                    "keep_largest": {"type": "boolean"},
                    "min_size_mm3": {"type": "number", "minimum": 0},
                    "fill_holes": {"type": "string", "enum": ["none", "slice", "3d", "both"]}
                }
            }))
    }

    fn run(mut inputs: Inputs, params: serde_json::Value) -> Result<Outputs, PluginError> {
        let volume = inputs.volume("mask")?;
        let connectivity = match params["connectivity"].as_u64().unwrap_or(26) {
            6 => 6,
            26 => 26,
            other => {
                return Err(PluginError::bad_params(format!(
                    "connectivity {other}: use 6 or 26"
                )))
            }
        };
        let keep_largest = params["keep_largest"].as_bool().unwrap_or(true);
        let min_mm3 = params["min_size_mm3"].as_f64().unwrap_or(0.0);
        let fill = params["fill_holes"].as_str().unwrap_or("both").to_string();
        let g = &volume.geometry;
        let voxel_mm3 = g.voxel_volume().max(f64::MIN_POSITIVE);
        let min_voxels = (min_mm3 / voxel_mm3).ceil() as usize;
        let before = volume.nonzero();
        let (labels, sizes) = label_components(&before, g.dims, connectivity);
        let mut mask = select_labels(&labels, &sizes, min_voxels, keep_largest);
        drop(labels);
        if fill == "slice" || fill == "both" {
            mask = fill_holes_slices(&mask, g.dims);
        }
        if fill == "3d" || fill == "both" {
            mask = fill_holes_3d(&mask, g.dims);
        }
        let count = |m: &[bool]| m.iter().filter(|&&v| v).count();
        let report = serde_json::json!({
            "components_before": sizes.len() - 1,
            "voxels_before": count(&before),
            "voxels_after": count(&mask),
            "volume_after_mm3": count(&mask) as f64 * voxel_mm3,
            "volume_after_ml": count(&mask) as f64 * voxel_mm3 / 1000.0,
            "min_size_voxels": min_voxels,
        });
        voxflow_plugin_sdk::log::info(&format!(
            "{} components; {} voxels after cleanup, {} before",
            sizes.len() - 1,
            count(&mask),
            count(&before)
        ));
        Ok(Outputs::new()
            .volume("mask", volume.with_mask(mask))
            .json("report", report))
    }
}

export_plugin!(MaskCleanup);

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5x5x3 mask from three 5x5 slices written as rows of '#' and '.'.
    fn grid(slices: [&str; 3]) -> Vec<bool> {
        slices
            .iter()
            .flat_map(|s| {
                s.split_whitespace()
                    .flat_map(|row| row.chars().map(|c| c == '#'))
            })
            .collect()
    }

    /// Components by union-find over every in-bounds neighbour pair: slow, obviously right.
    fn reference_partition(mask: &[bool], dims: [usize; 3], connectivity: u8) -> Vec<usize> {
        let mut parent: Vec<usize> = (0..mask.len()).collect();
        fn root(p: &mut [usize], mut v: usize) -> usize {
            while p[v] != v {
                v = p[v];
            }
            v
        }
        let [nx, ny, nz] = dims;
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let v = x + nx * (y + ny * z);
                    for [dx, dy, dz] in offsets(connectivity) {
                        let (a, b, c) = (x as i64 + dx, y as i64 + dy, z as i64 + dz);
                        if a < 0
                            || b < 0
                            || c < 0
                            || a >= nx as i64
                            || b >= ny as i64
                            || c >= nz as i64
                        {
                            continue;
                        }
                        let n = a as usize + nx * (b as usize + ny * c as usize);
                        if mask[v] && mask[n] {
                            let (r, q) = (root(&mut parent, v), root(&mut parent, n));
                            parent[r] = q;
                        }
                    }
                }
            }
        }
        (0..mask.len()).map(|v| root(&mut parent, v)).collect()
    }

    #[test]
    fn labelling_matches_a_reference_on_a_random_mask() {
        let dims = [13, 11, 7];
        let mut x = 7u32;
        let mask: Vec<bool> = (0..dims.iter().product::<usize>())
            .map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                (x >> 24) < 40
            })
            .collect();
        for connectivity in [6, 26] {
            let (labels, sizes) = label_components(&mask, dims, connectivity);
            let roots = reference_partition(&mask, dims, connectivity);
            for v in 0..mask.len() {
                for w in 0..mask.len() {
                    if mask[v] && mask[w] {
                        assert_eq!(labels[v] == labels[w], roots[v] == roots[w], "{v} {w}");
                    }
                }
            }
            let counted: usize = sizes.iter().sum();
            assert_eq!(counted, mask.iter().filter(|&&m| m).count());
            assert!(
                sizes.len() > 3,
                "the random mask should have several components"
            );
        }
    }

    #[test]
    fn connectivity_decides_what_touches() {
        // Two voxels touching only at a corner: one component with 26, two with 6.
        let m = grid([
            "#.... ..... ..... ..... .....",
            ".#... ..... ..... ..... .....",
            "..... ..... ..... ..... .....",
        ]);
        assert_eq!(label_components(&m, [5, 5, 3], 26).1.len() - 1, 1);
        assert_eq!(label_components(&m, [5, 5, 3], 6).1.len() - 1, 2);
    }

    #[test]
    fn keeps_largest_and_drops_small() {
        let m = grid([
            "##... ##... ..... ....# .....",
            "..... ..... ..... ..... .....",
            "..... ..... ..... ..... .....",
        ]);
        let largest = select_components(&m, [5, 5, 3], 26, 0, true);
        assert_eq!(largest.iter().filter(|&&v| v).count(), 4);
        let no_singletons = select_components(&m, [5, 5, 3], 26, 2, false);
        assert_eq!(no_singletons.iter().filter(|&&v| v).count(), 4);
    }

    #[test]
    fn fills_enclosed_holes_only() {
        let ring = "..... .###. .#.#. .###. .....";
        let m = grid([ring, ring, ring]);
        // Each slice's hole is enclosed in-plane, but open through the top and bottom slices in 3D.
        assert_eq!(
            fill_holes_slices(&m, [5, 5, 3])
                .iter()
                .filter(|&&v| v)
                .count(),
            27
        );
        assert_eq!(
            fill_holes_3d(&m, [5, 5, 3]).iter().filter(|&&v| v).count(),
            24
        );
        let closed = grid([
            "..... .###. .###. .###. .....",
            ring,
            "..... .###. .###. .###. .....",
        ]);
        assert_eq!(
            fill_holes_3d(&closed, [5, 5, 3])
                .iter()
                .filter(|&&v| v)
                .count(),
            27
        );
    }
}
