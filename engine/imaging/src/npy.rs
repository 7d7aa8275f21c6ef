//! NumPy arrays (`.npy`, and `.npy.gz` as research datasets ship them) as volumes: axis order (z, y, x)
//! for 3D (a 2D array is one slice), read with the `npyz` crate. An array records no geometry, so the
//! volume gets the spacing its caller states (nominally 1 mm) on an axis-aligned grid at the origin, and the
//! caller is told so.

use std::io::{BufReader, Read};
use std::path::Path;

use npyz::{NpyFile, Order};

use crate::{Geometry, Volume, VoxelData};

#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a NumPy array file: {message}")]
    Format { path: String, message: String },
    #[error("{path}: a {shape:?} array is not a volume: give a 2D (y, x) or 3D (z, y, x) array")]
    Shape { path: String, shape: Vec<u64> },
    #[error(
        "{path}: element type `{dtype}` is not supported (integers, booleans, float32, float64)"
    )]
    DType { path: String, dtype: String },
}

/// Whether `path` names a NumPy array file (`.npy` or `.npy.gz`).
pub fn is_npy_path(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.ends_with(".npy") || name.ends_with(".npy.gz")
}

/// Reads the array at `path` as a volume with `spacing` (mm along x, y, z = i, j, k).
pub fn read_npy(path: &Path, spacing: [f64; 3]) -> Result<Volume, NpyError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| NpyError::Io {
        path: shown.clone(),
        source,
    })?;
    let gzipped = path.to_string_lossy().to_lowercase().ends_with(".gz");
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    read_npy_from(reader, &shown, spacing)
}

/// The array in `reader`; errors name `path`.
fn read_npy_from(reader: impl Read, path: &str, spacing: [f64; 3]) -> Result<Volume, NpyError> {
    let named = || path.to_string();
    let malformed = |message: String| NpyError::Format {
        path: named(),
        message,
    };
    let array = NpyFile::new(reader).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            malformed(e.to_string())
        }
        _ => NpyError::Io {
            path: named(),
            source: e,
        },
    })?;
    let shape = array.shape().to_vec();
    // Leading axes of length 1 (a batch or channel of one) are dropped.
    let squeezed: Vec<usize> = {
        let mut s: Vec<u64> = shape.clone();
        while s.len() > 3 && s[0] == 1 {
            s.remove(0);
        }
        s.iter().map(|&d| d as usize).collect()
    };
    let [z, y, x] = match squeezed[..] {
        [y, x] => [1, y, x],
        [z, y, x] => [z, y, x],
        _ => {
            return Err(NpyError::Shape {
                path: named(),
                shape,
            })
        }
    };
    if z * y * x == 0 {
        return Err(NpyError::Shape {
            path: named(),
            shape,
        });
    }
    let fortran = array.order() == Order::Fortran;
    // descr() is the header's Python literal, quotes included: '<i2'.
    let descr = array.dtype().descr().trim_matches('\'').to_string();
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    let data_error = |e: std::io::Error| malformed(format!("reading the {descr} elements: {e}"));
    let data = match code {
        "b1" => VoxelData::U8(
            array
                .into_vec::<bool>()
                .map_err(data_error)?
                .into_iter()
                .map(u8::from)
                .collect(),
        ),
        "u1" => VoxelData::U8(array.into_vec::<u8>().map_err(data_error)?),
        "i1" => {
            let v = array.into_vec::<i8>().map_err(data_error)?;
            if v.iter().all(|&a| a >= 0) {
                VoxelData::U8(v.into_iter().map(|a| a as u8).collect())
            } else {
                VoxelData::I16(v.into_iter().map(i16::from).collect())
            }
        }
        "i2" => VoxelData::I16(array.into_vec::<i16>().map_err(data_error)?),
        "u2" => VoxelData::U16(array.into_vec::<u16>().map_err(data_error)?),
        "i4" => VoxelData::I32(array.into_vec::<i32>().map_err(data_error)?),
        "u4" => narrow(array.into_vec::<u32>().map_err(data_error)?),
        "i8" => narrow(array.into_vec::<i64>().map_err(data_error)?),
        "u8" => narrow(array.into_vec::<u64>().map_err(data_error)?),
        "f4" => VoxelData::F32(array.into_vec::<f32>().map_err(data_error)?),
        "f8" => VoxelData::F64(array.into_vec::<f64>().map_err(data_error)?),
        _ => {
            return Err(NpyError::DType {
                path: named(),
                dtype: descr,
            })
        }
    };
    let data = if fortran {
        c_order(data, [z, y, x])
    } else {
        data
    };
    Volume::new(Geometry::new([x, y, z], spacing), data).map_err(|e| malformed(e.to_string()))
}

/// Wide integers as i32 where they all fit, else as f64 (exact up to 2^53).
fn narrow<T: Copy + Into<i128>>(values: Vec<T>) -> VoxelData {
    match values
        .iter()
        .map(|&v| i32::try_from(v.into()).ok())
        .collect::<Option<Vec<i32>>>()
    {
        Some(fits) => VoxelData::I32(fits),
        None => VoxelData::F64(values.into_iter().map(|v| v.into() as f64).collect()),
    }
}

/// Column-major (Fortran) elements of a (z, y, x) array in voxflow's order (x fastest).
fn c_order(data: VoxelData, [z, y, x]: [usize; 3]) -> VoxelData {
    let index = |k: usize, j: usize, i: usize| k + z * (j + y * i);
    macro_rules! reorder {
        ($v:expr, $variant:ident) => {{
            let mut out = Vec::with_capacity($v.len());
            for k in 0..z {
                for j in 0..y {
                    for i in 0..x {
                        out.push($v[index(k, j, i)]);
                    }
                }
            }
            VoxelData::$variant(out)
        }};
    }
    match data {
        VoxelData::U8(v) => reorder!(v, U8),
        VoxelData::I16(v) => reorder!(v, I16),
        VoxelData::U16(v) => reorder!(v, U16),
        VoxelData::I32(v) => reorder!(v, I32),
        VoxelData::F32(v) => reorder!(v, F32),
        VoxelData::F64(v) => reorder!(v, F64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1.0 .npy file: magic, header dict padded to 64 bytes, then the elements.
    fn npy(descr: &str, fortran: bool, shape: &[usize], body: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn reads_c_and_fortran_order_int16_as_z_y_x() {
        // values 0..24 in C order over (z=2, y=3, x=4).
        let c: Vec<u8> = (0..24i16).flat_map(|v| v.to_le_bytes()).collect();
        let v = read_npy_from(&npy("<i2", false, &[2, 3, 4], &c)[..], "x.npy", [1.0; 3])
            .ok()
            .unwrap();
        assert_eq!(v.geometry.dims, [4, 3, 2]);
        assert_eq!(v.data, VoxelData::I16((0..24).collect()));
        // The same array stored column-major.
        let mut f = Vec::new();
        for i in 0..4 {
            for j in 0..3 {
                for k in 0..2 {
                    f.extend_from_slice(&((k * 12 + j * 4 + i) as i16).to_le_bytes());
                }
            }
        }
        let v = read_npy_from(
            &npy("<i2", true, &[2, 3, 4], &f)[..],
            "x.npy",
            [0.5, 0.5, 3.0],
        )
        .ok()
        .unwrap();
        assert_eq!(v.data, VoxelData::I16((0..24).collect()));
        assert_eq!(v.geometry.spacing, [0.5, 0.5, 3.0]);
    }

    #[test]
    fn masks_bools_and_wide_integers_get_voxflow_types() {
        let v = read_npy_from(
            &npy("|i1", false, &[1, 2, 2], &[0, 1, 1, 0])[..],
            "x.npy",
            [1.0; 3],
        )
        .ok()
        .unwrap();
        assert_eq!(v.data, VoxelData::U8(vec![0, 1, 1, 0]));
        let v = read_npy_from(
            &npy("|b1", false, &[2, 2], &[1, 0, 0, 1])[..],
            "x.npy",
            [1.0; 3],
        )
        .ok()
        .unwrap();
        assert_eq!(
            (v.geometry.dims, v.data),
            ([2, 2, 1], VoxelData::U8(vec![1, 0, 0, 1]))
        );
        let wide: Vec<u8> = [5i64, -7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let v = read_npy_from(&npy("<i8", false, &[1, 1, 2], &wide)[..], "x.npy", [1.0; 3])
            .ok()
            .unwrap();
        assert_eq!(v.data, VoxelData::I32(vec![5, -7]));
    }

    #[test]
    fn bad_files_name_what_is_wrong() {
        let message = |bytes: &[u8]| {
            read_npy_from(bytes, "x.npy", [1.0; 3])
                .err()
                .unwrap()
                .to_string()
        };
        assert!(message(b"not numpy at all").contains("not a NumPy array file"));
        let m = message(&npy("<i2", false, &[4], &[0; 8]));
        assert!(m.contains("[4] array is not a volume"), "{m}");
        let m = message(&npy("<c8", false, &[1, 1, 1], &[0; 8]));
        assert!(m.contains("`<c8` is not supported"), "{m}");
        let m = message(&npy("<i2", false, &[2, 3, 4], &[0; 10]));
        assert!(m.contains("x.npy"), "{m}");
    }
}
