//! Reorientation: permutations and flips of the voxel axes that bring a volume to the closest RAS+ or LPS+
//! orientation and back, every voxel keeping its physical position.

use crate::volume::{Geometry, Volume, VoxelData};

/// A permutation and flips of the voxel axes: output axis `a` is input axis `perm[a]`, reversed if `flip[a]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisMap {
    pub perm: [usize; 3],
    pub flip: [bool; 3],
}

impl AxisMap {
    /// The map that brings a volume to the closest RAS+ orientation (as nibabel's `as_closest_canonical`).
    pub fn to_closest_ras(geometry: &Geometry) -> AxisMap {
        let mut perm = [0usize; 3];
        let mut flip = [false; 3];
        let mut used = [false; 3];
        // For each RAS output axis, pick the input axis whose direction is most aligned with it.
        for out_axis in 0..3 {
            let (best, _) = (0..3)
                .filter(|a| !used[*a])
                .map(|a| (a, geometry.direction[a][out_axis].abs()))
                .fold(
                    (usize::MAX, -1.0),
                    |acc, x| if x.1 > acc.1 { x } else { acc },
                );
            used[best] = true;
            perm[out_axis] = best;
            // LPS x+ is Left and y+ Posterior; RAS wants Right and Anterior, i.e. negative LPS x and y.
            let component = geometry.direction[best][out_axis];
            flip[out_axis] = if out_axis < 2 {
                component > 0.0
            } else {
                component < 0.0
            };
        }
        AxisMap { perm, flip }
    }

    /// The map that brings a volume to the closest LPS+ orientation (DICOM's patient axes).
    pub fn to_closest_lps(geometry: &Geometry) -> AxisMap {
        let mut map = AxisMap::to_closest_ras(geometry);
        map.flip[0] = !map.flip[0];
        map.flip[1] = !map.flip[1];
        map
    }

    pub fn inverse(&self) -> AxisMap {
        let mut perm = [0usize; 3];
        let mut flip = [false; 3];
        for out_axis in 0..3 {
            perm[self.perm[out_axis]] = out_axis;
            flip[self.perm[out_axis]] = self.flip[out_axis];
        }
        AxisMap { perm, flip }
    }

    /// Applies the map to voxels and geometry; every voxel keeps its physical position.
    pub fn apply(&self, volume: &Volume) -> Volume {
        let g = &volume.geometry;
        let dims = [
            g.dims[self.perm[0]],
            g.dims[self.perm[1]],
            g.dims[self.perm[2]],
        ];
        let data = match &volume.data {
            VoxelData::U8(v) => VoxelData::U8(self.rearranged(v, g.dims)),
            VoxelData::I16(v) => VoxelData::I16(self.rearranged(v, g.dims)),
            VoxelData::U16(v) => VoxelData::U16(self.rearranged(v, g.dims)),
            VoxelData::I32(v) => VoxelData::I32(self.rearranged(v, g.dims)),
            VoxelData::F32(v) => VoxelData::F32(self.rearranged(v, g.dims)),
            VoxelData::F64(v) => VoxelData::F64(self.rearranged(v, g.dims)),
        };
        let mut origin_index = [0.0; 3];
        let mut spacing = [0.0; 3];
        let mut direction = [[0.0; 3]; 3];
        for a in 0..3 {
            let p = self.perm[a];
            spacing[a] = g.spacing[p];
            let sign = if self.flip[a] { -1.0 } else { 1.0 };
            direction[a] = [
                g.direction[p][0] * sign,
                g.direction[p][1] * sign,
                g.direction[p][2] * sign,
            ];
            if self.flip[a] {
                origin_index[p] = (dims[a] - 1) as f64;
            }
        }
        Volume {
            geometry: Geometry {
                dims,
                spacing,
                origin: g.voxel_to_lps(origin_index),
                direction,
            },
            data,
        }
    }

    /// The voxels of a volume of `from` dims in this map's order, row by row of the output: each output row
    /// runs along one source axis, a plain copy where that axis is i unflipped.
    fn rearranged<T: Copy>(&self, values: &[T], from: [usize; 3]) -> Vec<T> {
        let source_stride = [1, from[0], from[0] * from[1]];
        let dims = [from[self.perm[0]], from[self.perm[1]], from[self.perm[2]]];
        // Where output voxel (0, 0, 0) is in the source, and how far one step along each output axis goes.
        let mut start = 0isize;
        let mut step = [0isize; 3];
        for a in 0..3 {
            let stride = source_stride[self.perm[a]] as isize;
            if self.flip[a] {
                start += (dims[a] as isize - 1) * stride;
                step[a] = -stride;
            } else {
                step[a] = stride;
            }
        }
        let mut out = Vec::with_capacity(values.len());
        for k in 0..dims[2] as isize {
            for j in 0..dims[1] as isize {
                let row = start + k * step[2] + j * step[1];
                if step[0] == 1 {
                    let row = row as usize;
                    out.extend_from_slice(&values[row..row + dims[0]]);
                } else {
                    out.extend((0..dims[0] as isize).map(|i| values[(row + i * step[0]) as usize]));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::extract_slice;
    use crate::ops::tests::ramp;

    #[test]
    fn every_axis_map_moves_each_voxel_where_the_map_says() {
        // All 48 permutations and flips against the definition, voxel by voxel, on a volume of three
        // different extents (and as i16, to check that the type is kept).
        let from = [4, 3, 2];
        let volume = ramp(from);
        let perms = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for perm in perms {
            for f in 0..8 {
                let map = AxisMap {
                    perm,
                    flip: [f & 1 != 0, f & 2 != 0, f & 4 != 0],
                };
                let out = map.apply(&volume);
                let dims = out.geometry.dims;
                assert_eq!(dims, [from[perm[0]], from[perm[1]], from[perm[2]]]);
                for k in 0..dims[2] {
                    for j in 0..dims[1] {
                        for i in 0..dims[0] {
                            let at = [i, j, k];
                            let mut src = [0; 3];
                            for a in 0..3 {
                                src[perm[a]] = if map.flip[a] {
                                    dims[a] - 1 - at[a]
                                } else {
                                    at[a]
                                };
                            }
                            assert_eq!(
                                out.get_f64(i, j, k),
                                volume.get_f64(src[0], src[1], src[2]),
                                "{map:?} at {at:?}"
                            );
                        }
                    }
                }
                let back = map.inverse().apply(&out);
                assert_eq!(back.data, volume.data, "{map:?} and back");
                assert_eq!(back.geometry.dims, from);
            }
        }
        let ints = Volume::new(
            Geometry::new([2, 2, 1], [1.0; 3]),
            VoxelData::I16(vec![1, -2, 3, -4]),
        )
        .unwrap();
        let flipped = AxisMap {
            perm: [0, 1, 2],
            flip: [true, false, false],
        }
        .apply(&ints);
        assert_eq!(flipped.data, VoxelData::I16(vec![-2, 1, -4, 3]));
    }

    #[test]
    fn reorientation_round_trips_and_keeps_positions() {
        let mut v = ramp([3, 4, 5]);
        // An LPS-aligned volume (DICOM axial): RAS canonical flips i and j.
        v.geometry.origin = [10.0, -5.0, 2.0];
        let map = AxisMap::to_closest_ras(&v.geometry);
        let canon = map.apply(&v);
        assert_eq!(canon.geometry.orientation_ras(), "RAS");
        // The same physical point holds the same value.
        let p = v.geometry.voxel_to_lps([0.0, 0.0, 0.0]);
        let q = canon.geometry.voxel_to_lps([2.0, 3.0, 0.0]);
        assert_eq!(p, q);
        assert_eq!(canon.get_f64(2, 3, 0), v.get_f64(0, 0, 0));
        let back = map.inverse().apply(&canon);
        assert_eq!(back, v);
        // A sagittal-like permutation.
        v.geometry.direction = [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]];
        let map = AxisMap::to_closest_ras(&v.geometry);
        let canon = map.apply(&v);
        assert_eq!(canon.geometry.orientation_ras(), "RAS");
        assert_eq!(map.inverse().apply(&canon), v);
        assert_eq!(
            AxisMap::to_closest_lps(&v.geometry)
                .apply(&v)
                .geometry
                .orientation_ras(),
            "LPS"
        );
        let (w, h, s) = extract_slice(&v, 2, 1).unwrap();
        assert_eq!((w, h, s[0]), (3, 4, 12.0));
    }
}
