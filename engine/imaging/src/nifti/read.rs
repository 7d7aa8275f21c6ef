//! NIfTI in: single files (`.nii`, `.nii.gz`) and `.hdr`/`.img` pairs, NIfTI-1 and NIfTI-2, either byte
//! order; scl_slope/scl_inter applied. Gzip streams are read only as far as the header says the image
//! goes, so a damaged or hostile file cannot make the reader inflate more than it declared.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::header::{Header, MAX_HEADER_BYTES};
use super::{NiftiError, NiftiInfo};
use crate::volume::{Geometry, Volume, VoxelData};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a NIfTI image into a volume (3D, or 4D with a single volume): a `.nii`/`.nii.gz` file, or either
/// file of a `.hdr`/`.img` pair (each possibly gzipped).
pub fn read_nifti(path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    let read_err = |p: &Path, message: String| NiftiError::Read {
        path: p.to_path_buf(),
        message,
    };
    if let Some((hdr, img)) = pair_paths(path) {
        let header_bytes = read_maybe_gz(&hdr, Some(MAX_HEADER_BYTES as u64))
            .map_err(|e| read_err(&hdr, e.to_string()))?;
        let header = Header::parse(&header_bytes).map_err(|m| read_err(&hdr, m))?;
        if header.single_file {
            return Err(read_err(
                &hdr,
                "the header says it is a single .nii file (magic n+1/n+2), not half of a .hdr/.img pair"
                    .to_string(),
            ));
        }
        let image = read_maybe_gz(&img, None).map_err(|e| read_err(&img, e.to_string()))?;
        let raw = image.get(header.vox_offset as usize..).ok_or_else(|| {
            read_err(
                &img,
                format!("shorter than vox_offset {}", header.vox_offset),
            )
        })?;
        return build(&header, raw, path);
    }
    let bytes = std::fs::read(path).map_err(|e| read_err(path, e.to_string()))?;
    decode_nifti(&bytes, path)
}

/// Decodes the bytes of a single-file NIfTI image, gzip-compressed or not (told by the gzip magic, not a
/// file name). `path` names the source in messages.
pub fn decode_nifti(bytes: &[u8], path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    let read_err = |message: String| NiftiError::Read {
        path: path.to_path_buf(),
        message,
    };
    if !bytes.starts_with(&GZIP_MAGIC) {
        let header = Header::parse(bytes).map_err(read_err)?;
        check_single_file(&header, path)?;
        let raw = bytes.get(header.vox_offset as usize..).ok_or_else(|| {
            read_err(format!(
                "the file ends before vox_offset {}",
                header.vox_offset
            ))
        })?;
        return build(&header, raw, path);
    }
    let mut stream = flate2::read::MultiGzDecoder::new(bytes);
    let mut head = Vec::with_capacity(MAX_HEADER_BYTES);
    (&mut stream)
        .take(MAX_HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| read_err(format!("gzip: {e}")))?;
    let header = Header::parse(&head).map_err(read_err)?;
    check_single_file(&header, path)?;
    let (count, size) = voxel_count_and_size(&header).map_err(read_err)?;
    let end = header
        .vox_offset
        .saturating_add((count as u64).saturating_mul(size as u64));
    let mut all = head;
    stream
        .take(end.saturating_sub(all.len() as u64))
        .read_to_end(&mut all)
        .map_err(|e| read_err(format!("gzip: {e}")))?;
    let raw = all.get(header.vox_offset as usize..).ok_or_else(|| {
        read_err(format!(
            "the file ends before vox_offset {}",
            header.vox_offset
        ))
    })?;
    build(&header, raw, path)
}

fn check_single_file(header: &Header, path: &Path) -> Result<(), NiftiError> {
    if header.single_file {
        return Ok(());
    }
    Err(NiftiError::Read {
        path: path.to_path_buf(),
        message: "this is the header of a .hdr/.img pair (magic ni1/ni2): open it as a .hdr file next to its .img"
            .to_string(),
    })
}

/// For a `.hdr`/`.img` path (each possibly `.gz`), the header and image files of the pair.
fn pair_paths(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let name = path.file_name()?.to_str()?;
    let lower = name.to_lowercase();
    let (stem_len, _) = [".hdr.gz", ".img.gz", ".hdr", ".img"]
        .iter()
        .find(|ext| lower.ends_with(*ext))
        .map(|ext| (name.len() - ext.len(), ext))?;
    let stem = &name[..stem_len];
    let dir = path.parent().unwrap_or(Path::new(""));
    let existing = |exts: [&str; 4]| {
        exts.iter()
            .map(|e| dir.join(format!("{stem}{e}")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| dir.join(format!("{stem}{}", exts[0])))
    };
    Some((
        existing([".hdr", ".hdr.gz", ".HDR", ".HDR.GZ"]),
        existing([".img", ".img.gz", ".IMG", ".IMG.GZ"]),
    ))
}

/// A whole file, inflated when it is gzipped; at most `limit` bytes of it when given.
fn read_maybe_gz(path: &Path, limit: Option<u64>) -> std::io::Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    let limit = limit.unwrap_or(u64::MAX);
    if !bytes.starts_with(&GZIP_MAGIC) {
        let end = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        return Ok(bytes[..end].to_vec());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(limit)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Number of voxels of the first volume, and bytes per voxel of the stored type.
fn voxel_count_and_size(h: &Header) -> Result<(usize, usize), String> {
    let ndim = h.dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(format!("dim[0] is {ndim}; it must be 1 to 7"));
    }
    let (_, size) = stored_type(h.datatype)?;
    let mut count: usize = 1;
    for axis in 1..=3usize.min(ndim as usize) {
        let d = h.dim[axis];
        if d < 1 {
            return Err(format!("dim[{axis}] is {d}; sizes must be at least 1"));
        }
        count = count
            .checked_mul(usize::try_from(d).map_err(|_| format!("dim[{axis}] {d} is too large"))?)
            .filter(|&c| c <= 1 << 34)
            .ok_or_else(|| "the image is larger than 2^34 voxels".to_string())?;
    }
    Ok((count, size))
}

/// Name and byte size of a NIfTI datatype code voxflow reads.
fn stored_type(code: i16) -> Result<(&'static str, usize), String> {
    Ok(match code {
        2 => ("uint8", 1),
        4 => ("int16", 2),
        8 => ("int32", 4),
        16 => ("float32", 4),
        64 => ("float64", 8),
        256 => ("int8", 1),
        512 => ("uint16", 2),
        768 => ("uint32", 4),
        1024 => ("int64", 8),
        1280 => ("uint64", 8),
        other => {
            return Err(format!(
                "NIfTI datatype {other} is not a scalar image type voxflow reads \
                 (complex and RGB images are not volumes)"
            ))
        }
    })
}

/// The volume from a parsed header and the image bytes that start at its first voxel.
fn build(h: &Header, raw: &[u8], path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    let read_err = |message: String| NiftiError::Read {
        path: path.to_path_buf(),
        message,
    };
    let unsupported = |message: String| NiftiError::Unsupported {
        path: path.to_path_buf(),
        message,
    };
    let (count, _) = voxel_count_and_size(h).map_err(read_err)?;
    let ndim = h.dim[0] as usize;
    let extra: i64 = (4..=ndim).map(|a| h.dim[a].max(1)).product();
    if extra > 1 {
        return Err(unsupported(format!(
            "{ndim}D image with {extra} volumes; voxflow volumes are 3D (split the series first)"
        )));
    }
    let dims = std::array::from_fn(|a| if a < ndim { h.dim[a + 1] as usize } else { 1 });
    let (data, stored) =
        decode_voxels(h.datatype, raw, count, h.big_endian).map_err(&unsupported)?;
    let (slope, inter) = (h.scl_slope, h.scl_inter);
    let scaled = slope != 0.0 && slope.is_finite() && (slope != 1.0 || inter != 0.0);
    let data = if scaled {
        match data {
            VoxelData::F64(values) => {
                VoxelData::F64(values.into_iter().map(|v| v * slope + inter).collect())
            }
            other => VoxelData::F32(
                other
                    .to_f64()
                    .into_iter()
                    .map(|v| (v * slope + inter) as f32)
                    .collect(),
            ),
        }
    } else {
        data
    };
    let (affine, source) = h.affine();
    let geometry = Geometry::from_affine_ras(dims, &affine);
    let info = NiftiInfo {
        version: h.version,
        stored_dtype: stored,
        endianness: if h.big_endian { "big" } else { "little" },
        sform_code: h.sform_code,
        qform_code: h.qform_code,
        affine_source: source,
        scaled,
    };
    Volume::new(geometry, data)
        .map(|v| (v, info))
        .map_err(|e| read_err(e.to_string()))
}

fn decode_voxels(
    datatype: i16,
    raw: &[u8],
    count: usize,
    big: bool,
) -> Result<(VoxelData, &'static str), String> {
    let (name, size) = stored_type(datatype)?;
    let needed = count * size;
    if raw.len() < needed {
        return Err(format!(
            "the image data is truncated: {} bytes for {count} voxels of {name}",
            raw.len()
        ));
    }
    let raw = &raw[..needed];
    macro_rules! take {
        ($t:ty) => {{
            raw.chunks_exact(std::mem::size_of::<$t>())
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
    let data = match datatype {
        2 => VoxelData::U8(raw.to_vec()),
        256 => VoxelData::I16(take!(i8).into_iter().map(i16::from).collect()),
        4 => VoxelData::I16(take!(i16)),
        512 => VoxelData::U16(take!(u16)),
        8 => VoxelData::I32(take!(i32)),
        768 => VoxelData::F64(take!(u32).into_iter().map(f64::from).collect()),
        1024 => VoxelData::F64(take!(i64).into_iter().map(|v| v as f64).collect()),
        1280 => VoxelData::F64(take!(u64).into_iter().map(|v| v as f64).collect()),
        16 => VoxelData::F32(take!(f32)),
        _ => VoxelData::F64(take!(f64)),
    };
    Ok((data, name))
}
