//! NIfTI in: single files (`.nii`, `.nii.gz`) and `.hdr`/`.img` pairs, NIfTI-1 and NIfTI-2, either byte
//! order; scl_slope/scl_inter applied. Files are streamed: voxels are decoded in chunks straight into the
//! volume's vector, and gzip is inflated only as far as the header says the image goes, so a damaged or
//! hostile file cannot make the reader inflate more than it declared.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use super::header::{Header, MAX_HEADER_BYTES};
use super::{NiftiError, NiftiInfo};
use crate::stream::read_up_to;
use crate::volume::{Geometry, Volume, VoxelData};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Set aside at most this many bytes of voxels per byte of gzip before they arrive.
const TRUSTED_GZIP_RATIO: u64 = 16;

/// Deflate expands at most about 1032 to 1: a gzip stream cannot hold more than this many bytes per byte.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Bytes set aside before the voxels arrive when the stream's length is unknown.
const UNKNOWN_LENGTH_RESERVE: u64 = 256 << 20;

fn read_error(path: &Path, message: impl Into<String>) -> NiftiError {
    NiftiError::Read {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a NIfTI image into a volume (3D, or 4D with a single volume): a `.nii`/`.nii.gz` file, or either
/// file of a `.hdr`/`.img` pair (each possibly gzipped).
pub fn read_nifti(path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| read_error(p, e.to_string()));
    if let Some((hdr, img)) = pair_paths(path) {
        let header_bytes = read_maybe_gz(&hdr, MAX_HEADER_BYTES as u64)
            .map_err(|e| read_error(&hdr, e.to_string()))?;
        let header = Header::parse(&header_bytes).map_err(|m| read_error(&hdr, m))?;
        if header.single_file {
            return Err(read_error(
                &hdr,
                "the header says it is a single .nii file (magic n+1/n+2), not half of a .hdr/.img pair",
            ));
        }
        let image = stored(open(&img)?).map_err(|e| read_error(&img, e.to_string()))?;
        return volume_from(&header, &[], image, &img);
    }
    decode_nifti_file(open(path)?, path)
}

/// Decodes the bytes of a single-file NIfTI image, gzip-compressed or not (told by the gzip magic, not a
/// file name). `path` names the source in messages.
pub fn decode_nifti(bytes: &[u8], path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    decode_nifti_from(bytes, Some(bytes.len() as u64), path)
}

/// [`decode_nifti`] from an open file (a `.nii`, an artifact), streamed: only the voxels are kept.
pub fn decode_nifti_file(
    file: std::fs::File,
    path: &Path,
) -> Result<(Volume, NiftiInfo), NiftiError> {
    let image = stored(file).map_err(|e| read_error(path, e.to_string()))?;
    single_file_from(image, path)
}

/// [`decode_nifti`] from a stream without holding its stored bytes: only the voxels are kept.
/// `stored_len`, the stream's length when known, bounds what is set aside for the voxels before they
/// arrive, so a header that claims more than the stream can hold reserves nothing it will not fill.
pub fn decode_nifti_from(
    input: impl BufRead,
    stored_len: Option<u64>,
    path: &Path,
) -> Result<(Volume, NiftiInfo), NiftiError> {
    let image = Stored::new(input, stored_len).map_err(|e| read_error(path, e.to_string()))?;
    single_file_from(image, path)
}

/// A file's stored bytes, inflated when they are gzip.
fn stored<'a>(file: std::fs::File) -> std::io::Result<Stored<'a>> {
    let stored_len = file.metadata().ok().map(|m| m.len());
    Stored::new(std::io::BufReader::with_capacity(1 << 16, file), stored_len)
}

/// A stream of image bytes (inflated when it was gzip) and what its stored length says about it.
struct Stored<'a> {
    stream: Box<dyn Read + 'a>,
    /// Bytes the stream may be trusted to hold, for setting aside room before they arrive.
    trusted: u64,
    /// Bytes the stream cannot exceed (its length, or deflate's bound); `None` when its length is unknown.
    at_most: Option<u64>,
    /// The prefix of its read errors (`gzip: `).
    context: &'static str,
}

impl<'a> Stored<'a> {
    /// Tells gzip by its magic: a ratio medical images rarely pass is trusted (masks do, and their vector
    /// then grows as the voxels come).
    fn new(mut input: impl BufRead + 'a, stored_len: Option<u64>) -> std::io::Result<Self> {
        // The first two bytes, however the input hands them out.
        let mut magic = Vec::with_capacity(2);
        while magic.len() < 2 {
            let available = input.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let take = available.len().min(2 - magic.len());
            magic.extend_from_slice(&available[..take]);
            input.consume(take);
        }
        let gz = magic == GZIP_MAGIC;
        let input = std::io::Cursor::new(magic).chain(input);
        let bound = |ratio: u64| stored_len.map(|n| n.saturating_mul(ratio));
        Ok(if gz {
            Stored {
                stream: Box::new(flate2::bufread::MultiGzDecoder::new(input)),
                trusted: bound(TRUSTED_GZIP_RATIO).unwrap_or(UNKNOWN_LENGTH_RESERVE),
                at_most: bound(DEFLATE_MAX_RATIO),
                context: "gzip: ",
            }
        } else {
            Stored {
                stream: Box::new(input),
                trusted: stored_len.unwrap_or(UNKNOWN_LENGTH_RESERVE),
                at_most: stored_len,
                context: "",
            }
        })
    }
}

/// A single file: the header, then the voxels of the first volume.
fn single_file_from(mut image: Stored<'_>, path: &Path) -> Result<(Volume, NiftiInfo), NiftiError> {
    let mut head = Vec::with_capacity(MAX_HEADER_BYTES);
    (&mut image.stream)
        .take(MAX_HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| read_error(path, format!("{}{e}", image.context)))?;
    let header = Header::parse(&head).map_err(|m| read_error(path, m))?;
    check_single_file(&header, path)?;
    volume_from(&header, &head, image, path)
}

/// The volume from the rest of a stream whose first bytes, `head`, were already read (the header's, and
/// perhaps some voxels): bytes up to vox_offset skipped, then the first volume's voxels.
fn volume_from(
    header: &Header,
    head: &[u8],
    mut image: Stored<'_>,
    path: &Path,
) -> Result<(Volume, NiftiInfo), NiftiError> {
    let shape = shape_of(header, path)?;
    let ends_early = || {
        read_error(
            path,
            format!("the file ends before vox_offset {}", header.vox_offset),
        )
    };
    if image.at_most.is_some_and(|most| header.vox_offset > most) {
        return Err(ends_early());
    }
    let offset = usize::try_from(header.vox_offset).unwrap_or(usize::MAX);
    let skip = header.vox_offset.saturating_sub(head.len() as u64);
    let skipped = std::io::copy(&mut (&mut image.stream).take(skip), &mut std::io::sink())
        .map_err(|e| read_error(path, format!("{}{e}", image.context)))?;
    if skipped < skip {
        return Err(ends_early());
    }
    let first = head.get(offset..).unwrap_or_default();
    let trusted = image.trusted.saturating_sub(header.vox_offset);
    let data = read_voxels(header, &shape, first.chain(image.stream), trusted)
        .map_err(|e| read_error(path, format!("{}{e}", image.context)))?;
    finish(header, shape.dims, data, shape.stored, path)
}

fn check_single_file(header: &Header, path: &Path) -> Result<(), NiftiError> {
    if header.single_file {
        return Ok(());
    }
    Err(read_error(
        path,
        "this is the header of a .hdr/.img pair (magic ni1/ni2): open it as a .hdr file next to its .img",
    ))
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
    let header = stored(std::fs::File::open(path)?)?;
    let mut out = Vec::new();
    header.stream.take(limit).read_to_end(&mut out)?;
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

/// The first volume's voxel count, dimensions and stored type; a 4D file of several volumes is refused
/// before any voxel is read.
struct Shape {
    count: usize,
    dims: [usize; 3],
    /// The stored type's name and bytes per voxel.
    stored: &'static str,
    size: usize,
}

fn shape_of(h: &Header, path: &Path) -> Result<Shape, NiftiError> {
    let (count, size) = voxel_count_and_size(h).map_err(|m| read_error(path, m))?;
    let (stored, _) = stored_type(h.datatype).map_err(|m| read_error(path, m))?;
    let ndim = h.dim[0] as usize;
    let volumes = (4..=ndim).try_fold(1i64, |n, a| n.checked_mul(h.dim[a].max(1)));
    if volumes != Some(1) {
        let count = volumes.map_or("more than 2^63".to_string(), |n| n.to_string());
        return Err(NiftiError::Unsupported {
            path: path.to_path_buf(),
            message: format!(
                "{ndim}D image with {count} volumes; voxflow volumes are 3D (split the series first)"
            ),
        });
    }
    let dims = std::array::from_fn(|a| if a < ndim { h.dim[a + 1] as usize } else { 1 });
    Ok(Shape {
        count,
        dims,
        stored,
        size,
    })
}

/// Voxels decoded this many at a time, straight into the volume's vector: the stored bytes are never held
/// whole beside it.
const VOXELS_PER_DECODE: usize = 1 << 16;

/// The first volume's voxels from `input`. `trusted_bytes`, what the source may be trusted to hold, bounds
/// what is set aside before the voxels arrive; beyond it the vector grows with them, never past the
/// header's count.
fn read_voxels(
    h: &Header,
    shape: &Shape,
    mut input: impl Read,
    trusted_bytes: u64,
) -> Result<VoxelData, String> {
    let (count, size) = (shape.count, shape.size);
    let trusted = usize::try_from(trusted_bytes / size as u64).unwrap_or(count);
    let mut buffer = vec![0u8; VOXELS_PER_DECODE.min(count) * size];
    let mut data: Option<VoxelData> = None;
    let mut done = 0;
    while done < count {
        let n = (count - done).min(VOXELS_PER_DECODE);
        let bytes = &mut buffer[..n * size];
        let filled = read_up_to(&mut input, bytes)?;
        if filled < bytes.len() {
            return Err(format!(
                "the image data is truncated: {} bytes for {count} voxels of {}",
                done * size + filled,
                shape.stored
            ));
        }
        let chunk = decode_voxels(h.datatype, bytes, h.big_endian);
        match data.as_mut() {
            None => {
                let mut first = chunk;
                first.try_reserve(count.min(trusted).saturating_sub(n));
                data = Some(first);
            }
            Some(all) => {
                // Room for as many again as have come, at most the rest: exact growth ends at `count`.
                all.try_reserve(done.min(count - done));
                all.append(chunk);
            }
        }
        done += n;
    }
    Ok(data.unwrap_or(VoxelData::U8(Vec::new())))
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
        .map_err(|e| read_error(path, e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti::encode_nifti;
    use crate::volume::Geometry;

    fn small_file() -> Vec<u8> {
        let geometry = Geometry::new([4, 4, 4], [1.0; 3]);
        encode_nifti(
            &Volume::new(geometry, VoxelData::I16(vec![7; 64])).unwrap(),
            "",
        )
    }

    #[test]
    fn a_vox_offset_past_the_file_is_refused_without_reading_on() {
        let mut bytes = small_file();
        bytes[108..112].copy_from_slice(&1.0e9f32.to_le_bytes());
        let err = decode_nifti(&bytes, Path::new("far.nii")).unwrap_err();
        assert!(matches!(err, NiftiError::Read { .. }), "{err}");
        assert!(err.to_string().contains("ends before vox_offset"), "{err}");
    }

    #[test]
    fn truncated_voxels_are_a_read_error_that_counts_them() {
        let mut bytes = small_file();
        bytes.truncate(352 + 100);
        let err = decode_nifti(&bytes, Path::new("short.nii")).unwrap_err();
        assert!(matches!(err, NiftiError::Read { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("short.nii") && text.contains("100 bytes for 64 voxels of int16"),
            "{text}"
        );
    }

    #[test]
    fn several_volumes_are_refused_before_their_voxels_are_read() {
        let mut bytes = small_file();
        bytes[40..42].copy_from_slice(&4i16.to_le_bytes()); // dim[0]: 4D
        bytes[48..50].copy_from_slice(&3i16.to_le_bytes()); // dim[4]: three volumes
        bytes.truncate(352); // no voxels at all: the refusal must not need them
        let err = decode_nifti(&bytes, Path::new("4d.nii")).unwrap_err();
        assert!(matches!(err, NiftiError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("4D image with 3 volumes"), "{err}");
    }
}
