//! mask-cleanup: connected components of a binary mask (6- or 26-connectivity), removal of small ones (by
//! physical size), the largest kept, and holes filled slice-wise and in 3D. The functions are plain Rust
//! on flat masks (i fastest); the plugin wraps them for voxflow.

use std::collections::VecDeque;

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

/// Labels the `true` voxels by connected component (0 = background, components 1..=n) and returns the
/// labels and each component's size (index 0 unused).
pub fn label_components(
    mask: &[bool],
    dims: [usize; 3],
    connectivity: u8,
) -> (Vec<u32>, Vec<usize>) {
    let [nx, ny, nz] = dims;
    let mut labels = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    let neighbours = offsets(connectivity);
    let mut queue = VecDeque::new();
    for start in 0..mask.len() {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32;
        let mut size = 0;
        labels[start] = label;
        queue.push_back(start);
        while let Some(v) = queue.pop_front() {
            size += 1;
            let (x, y, z) = (
                (v % nx) as i64,
                ((v / nx) % ny) as i64,
                (v / (nx * ny)) as i64,
            );
            for [dx, dy, dz] in &neighbours {
                let (a, b, c) = (x + dx, y + dy, z + dz);
                if a < 0 || b < 0 || c < 0 || a >= nx as i64 || b >= ny as i64 || c >= nz as i64 {
                    continue;
                }
                let n = a as usize + nx * (b as usize + ny * c as usize);
                if mask[n] && labels[n] == 0 {
                    labels[n] = label;
                    queue.push_back(n);
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
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
    let largest = (1..sizes.len()).max_by_key(|&l| sizes[l]);
    labels
        .iter()
        .map(|&l| {
            l != 0
                && sizes[l as usize] >= min_voxels
                && (!keep_largest || Some(l as usize) == largest)
        })
        .collect()
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
    let mut queue = VecDeque::new();
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
                    queue.push_back(v);
                }
            }
        }
    }
    while let Some(v) = queue.pop_front() {
        let (x, y, z) = (
            (v % nx) as i64,
            ((v / nx) % ny) as i64,
            (v / (nx * ny)) as i64,
        );
        for [dx, dy, dz] in neighbours {
            let (a, b, c) = (x + dx, y + dy, z + dz);
            if a < 0 || b < 0 || c < 0 || a >= nx as i64 || b >= ny as i64 || c >= nz as i64 {
                continue;
            }
            let n = a as usize + nx * (b as usize + ny * c as usize);
            if !mask[n] && !outside[n] {
                outside[n] = true;
                queue.push_back(n);
            }
        }
    }
    outside.iter().map(|&o| !o).collect()
}

pub struct MaskCleanup;

impl Plugin for MaskCleanup {
    fn describe() -> Description {
        Description::new("mask-cleanup", env!("CARGO_PKG_VERSION"))
            .input(Port::new("mask", "mask"))
            .output(Port::new("mask", "mask"))
            .output(Port::new("report", "json"))
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
        let (_, sizes) = label_components(&before, g.dims, connectivity);
        let mut mask = select_components(&before, g.dims, connectivity, min_voxels, keep_largest);
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
            "min_size_voxels": min_voxels,
        });
        voxflow_plugin_sdk::log::info(&format!(
            "{} components; {} voxels kept of {}",
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
