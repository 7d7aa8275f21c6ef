//! NIfTI in: single files (`.nii`, `.nii.gz`) and `.hdr`/`.img` pairs, NIfTI-1 and NIfTI-2, either byte
//! order; scl_slope/scl_inter applied. Files are streamed: voxels are decoded in chunks straight into the
//! volume's vector, and gzip is inflated only as far as the header says the image goes, so a damaged or
//! hostile file cannot make the reader inflate more than it declared.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use super::header::{Header, MAX_HEADER_BYTES};
use super::{NiftiError, NiftiInfo};
use crate::volume::{Geometry, Volume, VoxelData};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Set aside at most this many bytes of voxels per byte of gzip before they arrive.
const TRUSTED_GZIP_RATIO: u64 = 16;

/// Reads a NIfTI image into a volume (3D, or 4D with a single volume): a `.nii`/`.nii.gz` file, or either
/// file of a `.hdr`/`.img` pair (each possibly gzipped).
pub fn read_nifti(path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    let read_err = |p: &Path, message: String| NiftiError::Read {
        path: p.to_path_buf(),
        message,
    };
    if let Some((hdr, img)) = pair_paths(path) {
        let header_bytes = read_maybe_gz(&hdr, MAX_HEADER_BYTES as u64)
            .map_err(|e| read_err(&hdr, e.to_string()))?;
        let header = Header::parse(&header_bytes).map_err(|m| read_err(&hdr, m))?;
        if header.single_file {
            return Err(read_err(
                &hdr,
                "the header says it is a single .nii file (magic n+1/n+2), not half of a .hdr/.img pair"
                    .to_string(),
            ));
        }
        let file = std::fs::File::open(&img).map_err(|e| read_err(&img, e.to_string()))?;
        let stored_len = file.metadata().ok().map(|m| m.len());
        let (stream, most, context) = maybe_gunzip(std::io::BufReader::new(file), stored_len)
            .map_err(|e| read_err(&img, e.to_string()))?;
        return volume_from(&header, &[], stream, most, context, &img);
    }
    let file = std::fs::File::open(path).map_err(|e| read_err(path, e.to_string()))?;
    let stored_len = file.metadata().ok().map(|m| m.len());
    decode_nifti_from(std::io::BufReader::new(file), stored_len, path)
}

/// Decodes the bytes of a single-file NIfTI image, gzip-compressed or not (told by the gzip magic, not a
/// file name). `path` names the source in messages.
pub fn decode_nifti(bytes: &[u8], path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    decode_nifti_from(bytes, Some(bytes.len() as u64), path)
}

/// [`decode_nifti`] from a stream (a file, an artifact) without holding its stored bytes: only the voxels
/// are kept. `stored_len`, the stream's length when known, bounds what is set aside for the voxels before
/// they arrive, so a header that claims more than the stream can hold reserves nothing it will not fill.
pub fn decode_nifti_from(
    input: impl BufRead,
    stored_len: Option<u64>,
    path: &Path,
) -> Result<(Volume, NiftiInfo), NiftiError> {
    let (stream, most, context) =
        maybe_gunzip(input, stored_len).map_err(|e| NiftiError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    decode_stream(stream, context, most, path)
}

/// The stream inflated when it starts with the gzip magic; with it, how many bytes of voxels it can be
/// trusted to hold (its length, or for gzip a ratio medical images rarely pass: masks do, and their vector
/// then grows as the voxels come), and the prefix for its read errors.
fn maybe_gunzip<'a>(
    mut input: impl BufRead + 'a,
    stored_len: Option<u64>,
) -> std::io::Result<(Box<dyn Read + 'a>, Option<u64>, &'static str)> {
    if input.fill_buf()?.starts_with(&GZIP_MAGIC) {
        let most = stored_len.map(|n| n.saturating_mul(TRUSTED_GZIP_RATIO));
        let stream = flate2::bufread::MultiGzDecoder::new(input);
        Ok((Box::new(stream), most, "gzip: "))
    } else {
        Ok((Box::new(input), stored_len, ""))
    }
}

/// The header, then the voxels of the first volume, read from an uncompressed stream.
fn decode_stream(
    mut stream: impl Read,
    context: &str,
    most: Option<u64>,
    path: &Path,
) -> Result<(Volume, NiftiInfo), NiftiError> {
    let read_err = |message: String| NiftiError::Read {
        path: path.to_path_buf(),
        message,
    };
    let mut head = Vec::with_capacity(MAX_HEADER_BYTES);
    (&mut stream)
        .take(MAX_HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| read_err(format!("{context}{e}")))?;
    let header = Header::parse(&head).map_err(read_err)?;
    check_single_file(&header, path)?;
    volume_from(&header, &head, stream, most, context, path)
}

/// The volume from the rest of a stream whose first bytes, `head`, were already read (the header's, and
/// perhaps some voxels): bytes up to vox_offset skipped, then the first volume's voxels.
fn volume_from(
    header: &Header,
    head: &[u8],
    mut stream: impl Read,
    most: Option<u64>,
    context: &str,
    path: &Path,
) -> Result<(Volume, NiftiInfo), NiftiError> {
    let shape = shape_of(header, path)?;
    let offset = usize::try_from(header.vox_offset).unwrap_or(usize::MAX);
    let skip = (offset as u64).saturating_sub(head.len() as u64);
    let skipped =
        std::io::copy(&mut (&mut stream).take(skip), &mut std::io::sink()).map_err(|e| {
            NiftiError::Read {
                path: path.to_path_buf(),
                message: format!("{context}{e}"),
            }
        })?;
    if skipped < skip {
        return Err(NiftiError::Read {
            path: path.to_path_buf(),
            message: format!("the file ends before vox_offset {}", header.vox_offset),
        });
    }
    let first = head.get(offset..).unwrap_or_default();
    let trusted = most.map(|m| m.saturating_sub(header.vox_offset));
    let (data, stored) = read_voxels(header, first.chain(stream), shape.count, trusted, context)
        .map_err(|e| e.into_error(path))?;
    finish(header, shape.dims, data, stored, path)
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

/// The first `limit` bytes of a file, inflated when it is gzipped.
fn read_maybe_gz(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let (stream, _, _) = maybe_gunzip(std::io::BufReader::new(file), None)?;
    let mut out = Vec::new();
    stream.take(limit).read_to_end(&mut out)?;
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

/// How many voxels the first volume holds and its dimensions; a 4D file of several volumes is refused
/// before any voxel is read.
struct Shape {
    count: usize,
    dims: [usize; 3],
}

fn shape_of(h: &Header, path: &Path) -> Result<Shape, NiftiError> {
    let (count, _) = voxel_count_and_size(h).map_err(|message| NiftiError::Read {
        path: path.to_path_buf(),
        message,
    })?;
    let ndim = h.dim[0] as usize;
    let extra: i64 = (4..=ndim).map(|a| h.dim[a].max(1)).product();
    if extra > 1 {
        return Err(NiftiError::Unsupported {
            path: path.to_path_buf(),
            message: format!(
                "{ndim}D image with {extra} volumes; voxflow volumes are 3D (split the series first)"
            ),
        });
    }
    let dims = std::array::from_fn(|a| if a < ndim { h.dim[a + 1] as usize } else { 1 });
    Ok(Shape { count, dims })
}

/// Why the voxels could not be read: the stream failed or ended early, or the type is not one voxflow reads.
enum VoxelError {
    Read(String),
    Unsupported(String),
}

impl VoxelError {
    fn into_error(self, path: &Path) -> NiftiError {
        let path = path.to_path_buf();
        match self {
            VoxelError::Read(message) => NiftiError::Read { path, message },
            VoxelError::Unsupported(message) => NiftiError::Unsupported { path, message },
        }
    }
}

/// Voxels decoded this many at a time, straight into the volume's vector: the stored bytes are never held
/// whole beside it.
const VOXELS_PER_CHUNK: usize = 1 << 16;

/// `count` voxels of the header's type from `input`. `trusted_bytes`, what the source is known to hold,
/// bounds what is set aside before the voxels arrive.
fn read_voxels(
    h: &Header,
    mut input: impl Read,
    count: usize,
    trusted_bytes: Option<u64>,
    context: &str,
) -> Result<(VoxelData, &'static str), VoxelError> {
    let (name, size) = stored_type(h.datatype).map_err(VoxelError::Unsupported)?;
    let trusted =
        trusted_bytes.map_or(count, |b| usize::try_from(b / size as u64).unwrap_or(count));
    let mut buffer = vec![0u8; VOXELS_PER_CHUNK.min(count) * size];
    let mut data: Option<VoxelData> = None;
    let mut done = 0;
    while done < count {
        let n = (count - done).min(VOXELS_PER_CHUNK);
        let bytes = &mut buffer[..n * size];
        let filled =
            fill(&mut input, bytes).map_err(|e| VoxelError::Read(format!("{context}{e}")))?;
        if filled < bytes.len() {
            return Err(VoxelError::Read(format!(
                "the image data is truncated: {} bytes for {count} voxels of {name}",
                done * size + filled
            )));
        }
        let chunk = decode_voxels(h.datatype, bytes, h.big_endian);
        match data.as_mut() {
            None => {
                let mut first = chunk;
                first.try_reserve(count.min(trusted).saturating_sub(n));
                data = Some(first);
            }
            Some(all) => all.append(chunk),
        }
        done += n;
    }
    Ok((data.unwrap_or(VoxelData::U8(Vec::new())), name))
}

/// Reads until `buffer` is full or the input ends; how many bytes came.
fn fill(input: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The volume and what the reader found, from the decoded voxels: scaling applied, geometry from the
/// header's transform.
fn finish(
    h: &Header,
    dims: [usize; 3],
    data: VoxelData,
    stored: &'static str,
    path: &Path,
) -> Result<(Volume, NiftiInfo), NiftiError> {
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
        .map_err(|e| NiftiError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// The voxels of `raw` (whole voxels of a type `stored_type` accepts), as the volume's value type.
fn decode_voxels(datatype: i16, raw: &[u8], big: bool) -> VoxelData {
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
    match datatype {
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
    }
}
