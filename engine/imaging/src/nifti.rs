//! NIfTI-1 in and out. Reading goes through the `nifti` crate (header parsing, byte order, gzip); the
//! affine is chosen as the standard says (sform when its code is set, else qform, else pixdim only) and
//! scl_slope/scl_inter are applied. Writing is done here: the crate's writer needs ndarray arrays and
//! nalgebra affines, while a NIfTI-1 header is a fixed 348-byte record we can fill directly.

use std::io::Write;
use std::path::{Path, PathBuf};

use nifti::{Endianness, InMemNiftiObject, NiftiObject, NiftiType};

use crate::volume::{Geometry, Volume, VoxelData};

#[derive(Debug, thiserror::Error)]
pub enum NiftiError {
    #[error("{path}: cannot read NIfTI: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
    #[error("{path}: cannot write NIfTI: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the reader found besides the voxels.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiInfo {
    /// The stored datatype, before scaling (e.g. `int16`).
    pub stored_dtype: &'static str,
    pub endianness: &'static str,
    pub sform_code: i16,
    pub qform_code: i16,
    /// Which transform gave the geometry: `sform`, `qform` or `pixdim`.
    pub affine_source: &'static str,
    pub scaled: bool,
}

/// Reads a `.nii` or `.nii.gz` file into a volume (3D, or 4D with a single volume).
pub fn read_nifti(path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    let bytes = std::fs::read(path).map_err(|e| NiftiError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    decode_nifti(&bytes, path)
}

/// Decodes NIfTI-1 bytes, gzip-compressed or not (told by the gzip magic, not a file name). `path` names
/// the source in messages.
pub fn decode_nifti(bytes: &[u8], path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    let read_err = |message: String| NiftiError::Read {
        path: path.to_path_buf(),
        message,
    };
    let unsupported = |message: String| NiftiError::Unsupported {
        path: path.to_path_buf(),
        message,
    };
    let obj = if bytes.starts_with(&[0x1f, 0x8b]) {
        InMemNiftiObject::from_reader(flate2::read::GzDecoder::new(bytes))
    } else {
        InMemNiftiObject::from_reader(bytes)
    }
    .map_err(|e| read_err(e.to_string()))?;
    let h = obj.header().clone();
    let ndim = h.dim[0] as usize;
    if !(1..=7).contains(&ndim) {
        return Err(read_err(format!("dim[0] is {ndim}; it must be 1 to 7")));
    }
    let extra: usize = (4..=ndim).map(|a| h.dim[a].max(1) as usize).product();
    if extra > 1 {
        return Err(unsupported(format!(
            "{ndim}D image with {extra} volumes; voxflow volumes are 3D (split the series first)"
        )));
    }
    let dims = [
        h.dim[1].max(1) as usize,
        if ndim >= 2 {
            h.dim[2].max(1) as usize
        } else {
            1
        },
        if ndim >= 3 {
            h.dim[3].max(1) as usize
        } else {
            1
        },
    ];
    let datatype = h.data_type().map_err(|e| read_err(e.to_string()))?;
    let big = h.endianness == Endianness::Big;
    let raw = obj.into_volume().into_raw_data();
    let count: usize = dims.iter().product();
    let (data, stored) = decode(datatype, &raw, count, big).map_err(&unsupported)?;
    let slope = h.scl_slope as f64;
    let inter = h.scl_inter as f64;
    let scaled = slope != 0.0 && slope.is_finite() && (slope != 1.0 || inter != 0.0);
    let data = if scaled {
        let values: Vec<f64> = data
            .to_f64()
            .into_iter()
            .map(|v| v * slope + inter)
            .collect();
        match data {
            VoxelData::F64(_) => VoxelData::F64(values),
            _ => VoxelData::F32(values.into_iter().map(|v| v as f32).collect()),
        }
    } else {
        data
    };
    let (affine, source) = if h.sform_code > 0 {
        (sform(&h), "sform")
    } else if h.qform_code > 0 {
        (qform(&h), "qform")
    } else {
        let mut a = [[0.0; 4]; 4];
        for (axis, row) in a.iter_mut().enumerate().take(3) {
            row[axis] = h.pixdim[axis + 1] as f64;
        }
        a[3][3] = 1.0;
        (a, "pixdim")
    };
    let geometry = Geometry::from_affine_ras(dims, &affine);
    let info = NiftiInfo {
        stored_dtype: stored,
        endianness: if big { "big" } else { "little" },
        sform_code: h.sform_code,
        qform_code: h.qform_code,
        affine_source: source,
        scaled,
    };
    Volume::new(geometry, data)
        .map(|v| (v, info))
        .map_err(|e| read_err(e.to_string()))
}

fn decode(
    datatype: NiftiType,
    raw: &[u8],
    count: usize,
    big: bool,
) -> Result<(VoxelData, &'static str), String> {
    macro_rules! take {
        ($t:ty, $n:expr) => {{
            let size = std::mem::size_of::<$t>();
            if raw.len() < count * size {
                return Err(format!(
                    "the image data is truncated: {} bytes for {} voxels of {}",
                    raw.len(),
                    count,
                    $n
                ));
            }
            raw[..count * size]
                .chunks_exact(size)
                .map(|c| {
                    let arr: [u8; std::mem::size_of::<$t>()] = c.try_into().unwrap_or_default();
                    if big {
                        <$t>::from_be_bytes(arr)
                    } else {
                        <$t>::from_le_bytes(arr)
                    }
                })
                .collect::<Vec<$t>>()
        }};
    }
    Ok(match datatype {
        NiftiType::Uint8 => (VoxelData::U8(take!(u8, "uint8")), "uint8"),
        NiftiType::Int8 => (
            VoxelData::I16(take!(i8, "int8").into_iter().map(i16::from).collect()),
            "int8",
        ),
        NiftiType::Int16 => (VoxelData::I16(take!(i16, "int16")), "int16"),
        NiftiType::Uint16 => (VoxelData::U16(take!(u16, "uint16")), "uint16"),
        NiftiType::Int32 => (VoxelData::I32(take!(i32, "int32")), "int32"),
        NiftiType::Uint32 => (
            VoxelData::F64(take!(u32, "uint32").into_iter().map(f64::from).collect()),
            "uint32",
        ),
        NiftiType::Int64 => (
            VoxelData::F64(take!(i64, "int64").into_iter().map(|v| v as f64).collect()),
            "int64",
        ),
        NiftiType::Uint64 => (
            VoxelData::F64(take!(u64, "uint64").into_iter().map(|v| v as f64).collect()),
            "uint64",
        ),
        NiftiType::Float32 => (VoxelData::F32(take!(f32, "float32")), "float32"),
        NiftiType::Float64 => (VoxelData::F64(take!(f64, "float64")), "float64"),
        other => {
            return Err(format!(
                "NIfTI datatype {other:?} is not a scalar image type voxflow reads"
            ))
        }
    })
}

fn sform(h: &nifti::NiftiHeader) -> [[f64; 4]; 4] {
    let row = |r: &[f32; 4]| [r[0] as f64, r[1] as f64, r[2] as f64, r[3] as f64];
    [
        row(&h.srow_x),
        row(&h.srow_y),
        row(&h.srow_z),
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// The qform affine (method 2 of the NIfTI-1 standard).
fn qform(h: &nifti::NiftiHeader) -> [[f64; 4]; 4] {
    let (mut b, mut c, mut d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
    // As nifti1_io's quatern_to_mat44: a nearly-zero `a` is a 180-degree turn; renormalize (b, c, d).
    let mut a = 1.0 - (b * b + c * c + d * d);
    if a < 1e-7 {
        let norm = 1.0 / (b * b + c * c + d * d).sqrt();
        (b, c, d) = (b * norm, c * norm, d * norm);
        a = 0.0;
    } else {
        a = a.sqrt();
    }
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let s = [
        h.pixdim[1] as f64,
        h.pixdim[2] as f64,
        h.pixdim[3] as f64 * qfac,
    ];
    let t = [h.quatern_x as f64, h.quatern_y as f64, h.quatern_z as f64];
    let mut m = [[0.0; 4]; 4];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = r[i][j] * s[j];
        }
        m[i][3] = t[i];
    }
    m[3][3] = 1.0;
    m
}

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

/// The bytes of a NIfTI-1 single file (`.nii`): header, empty extension flag, little-endian voxels.
pub fn encode_nifti(volume: &Volume, description: &str) -> Vec<u8> {
    let g = &volume.geometry;
    let (code, bitpix): (i16, i16) = match &volume.data {
        VoxelData::U8(_) => (2, 8),
        VoxelData::I16(_) => (4, 16),
        VoxelData::U16(_) => (512, 16),
        VoxelData::I32(_) => (8, 32),
        VoxelData::F32(_) => (16, 32),
        VoxelData::F64(_) => (64, 64),
    };
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
    let mut out = h;
    out.extend_from_slice(&[0, 0, 0, 0]);
    match &volume.data {
        VoxelData::U8(v) => out.extend_from_slice(v),
        VoxelData::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        VoxelData::U16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        VoxelData::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        VoxelData::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        VoxelData::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    out
}

/// `encode_nifti`, gzip-compressed (`.nii.gz`).
pub fn encode_nifti_gz(volume: &Volume, description: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(4));
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&encode_nifti(volume, description));
    gz.finish().unwrap_or_default()
}

/// Writes `.nii` or `.nii.gz` (by extension) through a temporary file and a rename.
pub fn write_nifti(volume: &Volume, path: &Path, description: &str) -> Result<(), NiftiError> {
    let gz = path.extension().is_some_and(|e| e == "gz");
    let bytes = if gz {
        encode_nifti_gz(volume, description)
    } else {
        encode_nifti(volume, description)
    };
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
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    tmp.write_all(&bytes).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
