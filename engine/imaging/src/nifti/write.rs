//! NIfTI-1 out: a fixed 348-byte header filled here (the crate's writer needs ndarray arrays and nalgebra
//! affines), sform and qform both set to the scanner frame, little-endian voxels streamed in chunks to any
//! writer (a file, an artifact), optionally through gzip.

use std::io::{self, Write};
use std::path::Path;

use super::NiftiError;
use crate::volume::{Geometry, Volume, VoxelData};

/// Quaternion (b, c, d) and qfac of the rotation part of a voxel-to-RAS affine (nifti_mat44_to_quatern).
fn quaternion(geometry: &Geometry) -> ([f64; 3], f64) {
    let a = geometry.affine_ras();
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = a[i][j] / geometry.spacing[j].max(f64::MIN_POSITIVE);
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 { -1.0 } else { 1.0 };
    if qfac < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
    }
    let trace = r[0][0] + r[1][1] + r[2][2] + 1.0;
    let (qa, qb, qc, qd);
    if trace > 0.5 {
        qa = 0.5 * trace.sqrt();
        qb = 0.25 * (r[2][1] - r[1][2]) / qa;
        qc = 0.25 * (r[0][2] - r[2][0]) / qa;
        qd = 0.25 * (r[1][0] - r[0][1]) / qa;
    } else {
        let xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
        let yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
        let zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
        if xd > 1.0 {
            qb = 0.5 * xd.sqrt();
            qc = 0.25 * (r[0][1] + r[1][0]) / qb;
            qd = 0.25 * (r[0][2] + r[2][0]) / qb;
            qa = 0.25 * (r[2][1] - r[1][2]) / qb;
        } else if yd > 1.0 {
            qc = 0.5 * yd.sqrt();
            qb = 0.25 * (r[0][1] + r[1][0]) / qc;
            qd = 0.25 * (r[1][2] + r[2][1]) / qc;
            qa = 0.25 * (r[0][2] - r[2][0]) / qc;
        } else {
            qd = 0.5 * zd.sqrt();
            qb = 0.25 * (r[0][2] + r[2][0]) / qd;
            qc = 0.25 * (r[1][2] + r[2][1]) / qd;
            qa = 0.25 * (r[1][0] - r[0][1]) / qd;
        }
    }
    let sign = if qa < 0.0 { -1.0 } else { 1.0 };
    ([qb * sign, qc * sign, qd * sign], qfac)
}

/// The 352 bytes before the voxels of a NIfTI-1 single file: the header and an empty extension flag.
fn header_bytes(volume: &Volume, description: &str) -> Vec<u8> {
    let g = &volume.geometry;
    let code: i16 = match &volume.data {
        VoxelData::U8(_) => 2,
        VoxelData::I16(_) => 4,
        VoxelData::U16(_) => 512,
        VoxelData::I32(_) => 8,
        VoxelData::F32(_) => 16,
        VoxelData::F64(_) => 64,
    };
    let bitpix = 8 * volume.data.bytes_per_voxel() as i16;
    let mut h = vec![0u8; 348];
    let put_i32 =
        |h: &mut Vec<u8>, at: usize, v: i32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put_i16 =
        |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |h: &mut Vec<u8>, at: usize, v: f64| {
        h[at..at + 4].copy_from_slice(&(v as f32).to_le_bytes())
    };
    put_i32(&mut h, 0, 348);
    h[39] = 0; // dim_info
    let dims = [
        3i16,
        g.dims[0] as i16,
        g.dims[1] as i16,
        g.dims[2] as i16,
        1,
        1,
        1,
        1,
    ];
    for (n, d) in dims.iter().enumerate() {
        put_i16(&mut h, 40 + 2 * n, *d);
    }
    put_i16(&mut h, 70, code);
    put_i16(&mut h, 72, bitpix);
    let (quat, qfac) = quaternion(g);
    let pixdim = [
        qfac,
        g.spacing[0],
        g.spacing[1],
        g.spacing[2],
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for (n, p) in pixdim.iter().enumerate() {
        put_f32(&mut h, 76 + 4 * n, *p);
    }
    put_f32(&mut h, 108, 352.0); // vox_offset
    put_f32(&mut h, 112, 1.0); // scl_slope
    put_f32(&mut h, 116, 0.0); // scl_inter
    h[123] = 2 | 8; // xyzt_units: mm, s
    let desc = description.as_bytes();
    let n = desc.len().min(79);
    h[148..148 + n].copy_from_slice(&desc[..n]);
    put_i16(&mut h, 252, 1); // qform_code: scanner anatomical
    put_i16(&mut h, 254, 1); // sform_code: scanner anatomical
    let a = g.affine_ras();
    put_f32(&mut h, 256, quat[0]);
    put_f32(&mut h, 260, quat[1]);
    put_f32(&mut h, 264, quat[2]);
    put_f32(&mut h, 268, a[0][3]);
    put_f32(&mut h, 272, a[1][3]);
    put_f32(&mut h, 276, a[2][3]);
    for (row, at) in [(0usize, 280usize), (1, 296), (2, 312)] {
        for col in 0..4 {
            put_f32(&mut h, at + 4 * col, a[row][col]);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// Voxels converted to little-endian bytes this many at a time: the whole volume is never copied at once.
const VOXELS_PER_WRITE: usize = 16 * 1024;

/// Writes a NIfTI-1 single file (`.nii`) to `out`: header, empty extension flag, little-endian voxels,
/// streamed in chunks so no second copy of the volume is made.
pub fn write_nifti_to(volume: &Volume, description: &str, out: &mut impl Write) -> io::Result<()> {
    out.write_all(&header_bytes(volume, description))?;
    let mut buffer = Vec::with_capacity(VOXELS_PER_WRITE * 8);
    macro_rules! voxels {
        ($values:expr) => {
            for chunk in $values.chunks(VOXELS_PER_WRITE) {
                buffer.clear();
                chunk
                    .iter()
                    .for_each(|x| buffer.extend_from_slice(&x.to_le_bytes()));
                out.write_all(&buffer)?;
            }
        };
    }
    match &volume.data {
        VoxelData::U8(v) => out.write_all(v)?,
        VoxelData::I16(v) => voxels!(v),
        VoxelData::U16(v) => voxels!(v),
        VoxelData::I32(v) => voxels!(v),
        VoxelData::F32(v) => voxels!(v),
        VoxelData::F64(v) => voxels!(v),
    }
    Ok(())
}

/// [`write_nifti_to`] through gzip (`.nii.gz`); returns `out` once the gzip stream is complete.
pub fn write_nifti_gz_to<W: Write>(volume: &Volume, description: &str, out: W) -> io::Result<W> {
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
    write_nifti_to(volume, description, &mut gz)?;
    gz.finish()
}

/// Gzip level of written `.nii.gz` files: zlib's 4 compresses medical images and masks within ~2 % of its
/// default 6 at about half the time.
const GZIP_LEVEL: u32 = 4;

/// The bytes of a NIfTI-1 single file (`.nii`).
pub fn encode_nifti(volume: &Volume, description: &str) -> Vec<u8> {
    let size = 352 + volume.data.len() * volume.data.bytes_per_voxel();
    let mut out = Vec::with_capacity(size);
    // Writing into a Vec cannot fail.
    let _ = write_nifti_to(volume, description, &mut out);
    out
}

/// Writes `.nii` or `.nii.gz` (by extension) through a temporary file and a rename.
pub fn write_nifti(volume: &Volume, path: &Path, description: &str) -> Result<(), NiftiError> {
    let gz = path.extension().is_some_and(|e| e == "gz");
    let io = |source| NiftiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".voxflow-partial-");
    // Outputs get the permissions any new file gets (0666 less the umask), not tempfile's private 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(dir).map_err(io)?;
    let mut file = std::io::BufWriter::new(tmp);
    if gz {
        file = write_nifti_gz_to(volume, description, file).map_err(io)?;
    } else {
        write_nifti_to(volume, description, &mut file).map_err(io)?;
    }
    let tmp = file.into_inner().map_err(|e| io(e.into_error()))?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti::read_nifti;

    #[test]
    fn written_files_read_back_with_the_same_geometry_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let geometry = Geometry {
            dims: [3, 4, 2],
            spacing: [0.8, 0.9, 3.5],
            origin: [12.5, -40.0, 7.25],
            direction: [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]],
        };
        for data in [
            VoxelData::I16((0..24).map(|v| v * 100 - 1000).collect()),
            VoxelData::F32((0..24).map(|v| v as f32 * 0.25).collect()),
            VoxelData::U8((0..24).map(|v| v as u8).collect()),
        ] {
            let v = Volume::new(geometry.clone(), data).unwrap();
            for name in ["x.nii", "x.nii.gz"] {
                let path = dir.path().join(name);
                write_nifti(&v, &path, "voxflow test").unwrap();
                let (back, info) = read_nifti(&path).unwrap();
                assert_eq!(back.data, v.data);
                assert_eq!(info.affine_source, "sform");
                let (a, b) = (back.geometry.affine_lps(), v.geometry.affine_lps());
                for r in 0..4 {
                    for c in 0..4 {
                        assert!((a[r][c] - b[r][c]).abs() < 1e-4, "{a:?} vs {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn streamed_files_hold_every_chunk_and_read_back_from_a_stream() {
        // 64 x 64 x 41 voxels: several chunks of the writer and of the reader, each run ending in a
        // partial one.
        let geometry = Geometry::new([64, 64, 41], [0.5, 0.5, 3.0]);
        let n = geometry.voxel_count();
        let read_chunk = 1 << 16;
        for chunk in [VOXELS_PER_WRITE, read_chunk] {
            assert!(n > 2 * chunk && !n.is_multiple_of(chunk));
        }
        let dir = tempfile::tempdir().unwrap();
        for data in [
            VoxelData::I16((0..n).map(|v| (v % 3000) as i16 - 1000).collect()),
            VoxelData::F32((0..n).map(|v| (v as f32).sin()).collect()),
            VoxelData::F64((0..n).map(|v| v as f64 * 1e-3).collect()),
            VoxelData::U8((0..n).map(|v| (v % 251) as u8).collect()),
            // A mask compresses far beyond the ratio the reader reserves for: its vector grows as it reads.
            VoxelData::U8((0..n).map(|v| u8::from(v % 4096 < 64)).collect()),
        ] {
            let v = Volume::new(geometry.clone(), data).unwrap();
            let bytes = encode_nifti(&v, "streamed");
            assert_eq!(bytes.len(), 352 + n * v.data.bytes_per_voxel());
            let path = dir.path().join("streamed.nii.gz");
            let file = std::fs::File::create(&path).unwrap();
            write_nifti_gz_to(&v, "streamed", file).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let (back, _) = crate::nifti::decode_nifti_file(file, &path).unwrap();
            assert_eq!(back.data, v.data);
            let (raw, _) = crate::nifti::decode_nifti(&bytes, &path).unwrap();
            assert_eq!(raw, back);
            // A reader that hands out one byte at a time still finds the gzip magic.
            let gz = std::fs::read(&path).unwrap();
            let trickle = std::io::BufReader::with_capacity(1, &gz[..]);
            let (trickled, _) = crate::nifti::decode_nifti_from(trickle, None, &path).unwrap();
            assert_eq!(trickled, back);
        }
    }

    #[test]
    fn qform_matches_sform_for_rotations() {
        let geometry = Geometry {
            dims: [2, 2, 2],
            spacing: [1.0, 2.0, 3.0],
            origin: [1.0, 2.0, 3.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]],
        };
        let v = Volume::new(geometry, VoxelData::U8(vec![0; 8])).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.nii");
        let mut bytes = encode_nifti(&v, "");
        bytes[254..256].copy_from_slice(&0i16.to_le_bytes()); // drop the sform: the qform must agree
        std::fs::write(&path, bytes).unwrap();
        let (back, info) = read_nifti(&path).unwrap();
        assert_eq!(info.affine_source, "qform");
        let (a, b) = (back.geometry.affine_lps(), v.geometry.affine_lps());
        for r in 0..3 {
            for c in 0..4 {
                assert!((a[r][c] - b[r][c]).abs() < 1e-5, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.nii");
        std::fs::write(&path, b"not a nifti file at all").unwrap();
        let err = read_nifti(&path).unwrap_err().to_string();
        assert!(err.contains("bad.nii"), "{err}");
        let mut bytes = encode_nifti(
            &Volume::new(
                Geometry::new([4, 4, 4], [1.0; 3]),
                VoxelData::I16(vec![1; 64]),
            )
            .unwrap(),
            "",
        );
        bytes.truncate(400);
        std::fs::write(&path, bytes).unwrap();
        assert!(read_nifti(&path).is_err());
    }
}
