//! Resampling: a volume onto another grid (any geometry) or to a new spacing over the same extent, nearest
//! or trilinear, in physical (LPS) coordinates.

use crate::volume::{Geometry, Volume, VoxelData};

/// How to sample between voxel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// For label maps and masks.
    Nearest,
    /// Trilinear, for images; points past the volume's edge read as 0.
    Linear,
    /// Trilinear; points past the edge take the value at the edge (MONAI's and ITK's "border" padding),
    /// for resampling an image onto a grid that reaches slightly past it.
    LinearBorder,
}

/// Resamples to a new spacing over the same physical extent (same origin and direction). Linear results
/// are f32; nearest keeps the voxel type.
pub fn resample_to_spacing(
    volume: &Volume,
    spacing: [f64; 3],
    interpolation: Interpolation,
) -> Volume {
    let g = &volume.geometry;
    let mut dims = [0usize; 3];
    for a in 0..3 {
        let extent = g.dims[a] as f64 * g.spacing[a];
        dims[a] = ((extent / spacing[a]).round() as usize).max(1);
    }
    let target = Geometry {
        dims,
        spacing,
        origin: g.origin,
        direction: g.direction,
    };
    resample_onto(volume, &target, interpolation)
}

/// Samples `volume` on the grid of `target` (any geometry, e.g. the source series of a mask). Points
/// outside the volume read as 0.
pub fn resample_onto(volume: &Volume, target: &Geometry, interpolation: Interpolation) -> Volume {
    let src = &volume.geometry;
    // LPS -> source voxel index: inverse of (direction * spacing), applied to (p - origin).
    let inv = inverse3(&[
        [
            src.direction[0][0] * src.spacing[0],
            src.direction[1][0] * src.spacing[1],
            src.direction[2][0] * src.spacing[2],
        ],
        [
            src.direction[0][1] * src.spacing[0],
            src.direction[1][1] * src.spacing[1],
            src.direction[2][1] * src.spacing[2],
        ],
        [
            src.direction[0][2] * src.spacing[0],
            src.direction[1][2] * src.spacing[1],
            src.direction[2][2] * src.spacing[2],
        ],
    ]);
    let [nx, ny, nz] = target.dims;
    let mut out = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let p = target.voxel_to_lps([i as f64, j as f64, k as f64]);
                let d = [
                    p[0] - src.origin[0],
                    p[1] - src.origin[1],
                    p[2] - src.origin[2],
                ];
                let c = [
                    inv[0][0] * d[0] + inv[0][1] * d[1] + inv[0][2] * d[2],
                    inv[1][0] * d[0] + inv[1][1] * d[1] + inv[1][2] * d[2],
                    inv[2][0] * d[0] + inv[2][1] * d[1] + inv[2][2] * d[2],
                ];
                out.push(match interpolation {
                    Interpolation::Nearest => sample_nearest(volume, c),
                    Interpolation::Linear => sample_linear(volume, c, false),
                    Interpolation::LinearBorder => sample_linear(volume, c, true),
                });
            }
        }
    }
    let data = match (interpolation, &volume.data) {
        (Interpolation::Linear | Interpolation::LinearBorder, _) => {
            VoxelData::F32(out.iter().map(|&v| v as f32).collect())
        }
        (Interpolation::Nearest, VoxelData::U8(_)) => {
            VoxelData::U8(out.iter().map(|&v| v as u8).collect())
        }
        (Interpolation::Nearest, VoxelData::I16(_)) => {
            VoxelData::I16(out.iter().map(|&v| v as i16).collect())
        }
        (Interpolation::Nearest, VoxelData::U16(_)) => {
            VoxelData::U16(out.iter().map(|&v| v as u16).collect())
        }
        (Interpolation::Nearest, VoxelData::I32(_)) => {
            VoxelData::I32(out.iter().map(|&v| v as i32).collect())
        }
        (Interpolation::Nearest, VoxelData::F32(_)) => {
            VoxelData::F32(out.iter().map(|&v| v as f32).collect())
        }
        (Interpolation::Nearest, VoxelData::F64(_)) => VoxelData::F64(out),
    };
    Volume {
        geometry: target.clone(),
        data,
    }
}

fn sample_nearest(v: &Volume, c: [f64; 3]) -> f64 {
    let d = v.geometry.dims;
    let idx: Vec<i64> = c.iter().map(|x| x.round() as i64).collect();
    if (0..3).any(|a| idx[a] < 0 || idx[a] >= d[a] as i64) {
        return 0.0;
    }
    v.get_f64(idx[0] as usize, idx[1] as usize, idx[2] as usize)
}

fn sample_linear(v: &Volume, c: [f64; 3], border: bool) -> f64 {
    let d = v.geometry.dims;
    let eps = 1e-6;
    if !border && (0..3).any(|a| c[a] < -eps || c[a] > (d[a] - 1) as f64 + eps) {
        return 0.0;
    }
    let c: [f64; 3] = std::array::from_fn(|a| c[a].clamp(0.0, (d[a] - 1) as f64));
    let base: Vec<usize> = (0..3)
        .map(|a| (c[a].max(0.0).floor() as usize).min(d[a].saturating_sub(1)))
        .collect();
    let frac: Vec<f64> = (0..3)
        .map(|a| (c[a] - base[a] as f64).clamp(0.0, 1.0))
        .collect();
    let mut acc = 0.0;
    for corner in 0..8usize {
        let mut w = 1.0;
        let mut idx = [0usize; 3];
        for a in 0..3 {
            let up = (corner >> a) & 1 == 1;
            idx[a] = if up {
                (base[a] + 1).min(d[a] - 1)
            } else {
                base[a]
            };
            w *= if up { frac[a] } else { 1.0 - frac[a] };
        }
        if w > 0.0 {
            acc += w * v.get_f64(idx[0], idx[1], idx[2]);
        }
    }
    acc
}

fn inverse3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let inv_det = if det.abs() > 0.0 { 1.0 / det } else { 0.0 };
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let (a, b) = ((j + 1) % 3, (j + 2) % 3);
            let (c, d) = ((i + 1) % 3, (i + 2) % 3);
            r[i][j] = (m[a][c] * m[b][d] - m[a][d] * m[b][c]) * inv_det;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::ramp;

    #[test]
    fn resampling_keeps_values_and_extent() {
        let v = ramp([4, 4, 4]);
        let same = resample_to_spacing(&v, [1.0, 2.0, 3.0], Interpolation::Linear);
        assert_eq!(same.data.to_f64(), v.data.to_f64());
        let fine = resample_to_spacing(&v, [0.5, 2.0, 3.0], Interpolation::Linear);
        assert_eq!(fine.dims(), [8, 4, 4]);
        assert!(
            (fine.get_f64(1, 0, 0) - 0.5).abs() < 1e-6,
            "halfway between voxel 0 and 1"
        );
        let labels = Volume::new(
            v.geometry.clone(),
            VoxelData::U8((0..64).map(|i| (i % 3) as u8).collect()),
        )
        .unwrap();
        let coarse = resample_to_spacing(&labels, [2.0, 4.0, 6.0], Interpolation::Nearest);
        assert!(matches!(coarse.data, VoxelData::U8(_)));
        assert_eq!(coarse.dims(), [2, 2, 2]);
        // A finer grid's last sample lies past the last voxel centre: 0 plain, the edge value with border.
        let past = resample_to_spacing(&v, [0.5, 2.0, 3.0], Interpolation::Linear);
        let border = resample_to_spacing(&v, [0.5, 2.0, 3.0], Interpolation::LinearBorder);
        assert_eq!(past.get_f64(7, 1, 1), 0.0);
        assert_eq!(border.get_f64(7, 1, 1), v.get_f64(3, 1, 1));
        assert_eq!(border.get_f64(1, 1, 1), past.get_f64(1, 1, 1));
    }
}
