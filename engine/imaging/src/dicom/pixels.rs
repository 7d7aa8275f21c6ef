//! The stored sample values of one file's frames, before rescale. Every file is first walked by
//! [`raw::check_bytes`]; native little-endian pixel data is then read straight from the bytes, 12-bit JPEG
//! Extended goes through libjpeg-turbo, and every other transfer syntax through dicom-pixeldata.

use std::ops::Range;

use dicom_object::{file::ReadPreamble, OpenFileOptions};
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};

use super::header::DicomHeader;
use super::{jpeg_turbo, raw};
use crate::volume::VoxelData;

/// JPEG Extended (process 2 & 4): 8- or 12-bit lossy JPEG.
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

/// Stored sample values: integers as stored (the common case, kept exact and as small as they were
/// stored), or floats.
pub(crate) enum Samples {
    /// Samples of up to 16 bits that fit an `i16`: signed ones, or unsigned of at most 15 bits.
    I16(Vec<i16>),
    /// Unsigned 16-bit samples.
    U16(Vec<u16>),
    /// 32-bit integer grids (RT Dose, some parametric maps).
    I32(Vec<i32>),
    Float(Vec<f64>),
}

// One body for each integer variant of `Samples`.
macro_rules! each_integer {
    ($samples:expr, $v:ident => $body:expr, $float:ident => $otherwise:expr) => {
        match $samples {
            Samples::I16($v) => $body,
            Samples::U16($v) => $body,
            Samples::I32($v) => $body,
            Samples::Float($float) => $otherwise,
        }
    };
}

impl Samples {
    pub fn len(&self) -> usize {
        each_integer!(self, v => v.len(), v => v.len())
    }

    pub fn is_integer(&self) -> bool {
        !matches!(self, Samples::Float(_))
    }

    /// The least and greatest of the samples in `range` plus `intercept` (saturating); `None` for floats.
    #[allow(clippy::useless_conversion)] // the I32 arm converts i32 to i32
    pub fn integer_range(&self, range: Range<usize>, intercept: i32) -> Option<(i32, i32)> {
        each_integer!(self, v => Some(v[range].iter().fold((i32::MAX, i32::MIN), |(lo, hi), &x| {
            let value = i32::from(x).saturating_add(intercept);
            (lo.min(value), hi.max(value))
        })), _f => None)
    }

    /// Appends the samples in `range` plus `intercept` (saturating) to `out`; floats append nothing.
    #[allow(clippy::useless_conversion)] // the I32 arm converts i32 to i32
    pub fn extend_integers(&self, range: Range<usize>, intercept: i32, out: &mut VoxelData) {
        each_integer!(self, v => out.extend_from_i32(
            v[range].iter().map(|&x| i32::from(x).saturating_add(intercept))
        ), _f => {})
    }

    /// Appends the samples in `range` times `slope` plus `intercept` to `out`.
    pub fn extend_rescaled(
        &self,
        range: Range<usize>,
        slope: f64,
        intercept: f64,
        out: &mut Vec<f64>,
    ) {
        each_integer!(self, v => out.extend(
            v[range].iter().map(|&x| f64::from(x) * slope + intercept)
        ), f => out.extend(f[range].iter().map(|&x| x * slope + intercept)))
    }
}

/// 8- to 16-bit stored samples, masked and sign-extended, in the smallest variant that holds them exactly.
fn narrow(values: impl Iterator<Item = i32>, file: &DicomHeader) -> Samples {
    if file.pixel_representation == 1 || file.bits_stored.clamp(1, 16) < 16 {
        Samples::I16(values.map(|x| x as i16).collect())
    } else {
        Samples::U16(values.map(|x| x as u16).collect())
    }
}

/// Decodes every frame of a file into one vector (frame after frame, rows of columns).
pub(crate) fn decode_file(file: &DicomHeader) -> Result<Samples, String> {
    let path = file.path.as_path();
    let at = |e: String| format!("{}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| at(format!("cannot read: {e}")))?;
    let layout = raw::check_bytes(&bytes).map_err(|e| at(format!("cannot read: {e}")))?;
    if let Some(range) = &layout.native_pixels {
        if file.samples_per_pixel == 1 && matches!(file.bits_allocated, 8 | 16) {
            return native(&bytes[range.clone()], file).map_err(at);
        }
    }
    if file.transfer_syntax == JPEG_EXTENDED && file.samples_per_pixel == 1 {
        return jpeg_extended(&bytes, &layout, file).map_err(|e| {
            at(format!(
                "cannot decode pixel data ({}): {e}",
                file.transfer_syntax
            ))
        });
    }
    through_dicom_pixeldata(&bytes[layout.meta_start..], file).map_err(at)
}

fn samples_expected(file: &DicomHeader) -> usize {
    file.rows as usize * file.columns as usize * file.samples_per_pixel as usize * file.frames.len()
}

/// A stored sample as the value it means: masked to BitsStored, sign-extended when PixelRepresentation is 1.
/// Only for 8- to 16-bit samples, so every value fits an `i32`.
fn sample_reader(file: &DicomHeader) -> impl Fn(u32) -> i32 {
    let bits = u32::from(file.bits_stored.clamp(1, 16));
    let mask = (1u32 << bits) - 1;
    let signed = file.pixel_representation == 1;
    move |v: u32| {
        let v = v & mask;
        if signed && v >> (bits - 1) & 1 == 1 {
            v as i32 - (1i32 << bits)
        } else {
            v as i32
        }
    }
}

fn native(pixels: &[u8], file: &DicomHeader) -> Result<Samples, String> {
    let count = samples_expected(file);
    let size = usize::from(file.bits_allocated / 8);
    let pixels = pixels.get(..count * size).ok_or_else(|| {
        format!(
            "the pixel data holds {} bytes; {} frame(s) of {}x{} at {} bits need {}",
            pixels.len(),
            file.frames.len(),
            file.columns,
            file.rows,
            file.bits_allocated,
            count * size
        )
    })?;
    let value = sample_reader(file);
    Ok(if size == 1 {
        narrow(pixels.iter().map(|&b| value(u32::from(b))), file)
    } else {
        let words = pixels.chunks_exact(2);
        narrow(
            words.map(|c| value(u32::from(u16::from_le_bytes([c[0], c[1]])))),
            file,
        )
    })
}

/// Which fragments make up each frame: one each, all for a single frame, or as the offset table groups them.
fn frame_fragments(
    layout: &raw::FileLayout,
    frames: usize,
) -> Result<Vec<Vec<Range<usize>>>, String> {
    let fragments = &layout.fragments;
    if fragments.is_empty() {
        return Err("no encapsulated pixel data fragments".to_string());
    }
    if fragments.len() == frames {
        return Ok(fragments.iter().map(|f| vec![f.clone()]).collect());
    }
    if frames == 1 {
        return Ok(vec![fragments.clone()]);
    }
    if layout.offset_table.len() != frames {
        return Err(format!(
            "{} fragments for {frames} frames and no usable basic offset table",
            fragments.len()
        ));
    }
    // Offsets count from the first fragment item's tag; each item has an 8-byte header.
    let base = fragments[0].start - 8;
    let mut grouped = vec![Vec::new(); frames];
    for fragment in fragments {
        let offset = (fragment.start - 8 - base) as u64;
        let frame = layout
            .offset_table
            .iter()
            .rposition(|&o| u64::from(o) <= offset)
            .unwrap_or(0);
        grouped[frame].push(fragment.clone());
    }
    Ok(grouped)
}

fn jpeg_extended(
    bytes: &[u8],
    layout: &raw::FileLayout,
    file: &DicomHeader,
) -> Result<Samples, String> {
    let value = sample_reader(file);
    let mut out = Vec::with_capacity(samples_expected(file));
    for (n, parts) in frame_fragments(layout, file.frames.len())?
        .into_iter()
        .enumerate()
    {
        let joined: Vec<u8>;
        let jpeg = if let [one] = parts.as_slice() {
            &bytes[one.clone()]
        } else {
            joined = parts
                .iter()
                .flat_map(|r| bytes[r.clone()].iter().copied())
                .collect();
            &joined[..]
        };
        let samples = jpeg_turbo::decode_gray(jpeg, file.columns as usize, file.rows as usize)
            .map_err(|e| format!("frame {}: {e}", n + 1))?;
        out.extend(samples.into_iter().map(|v| value(u32::from(v))));
    }
    // 8 or 12 bits: every value fits an i16.
    Ok(narrow(out.into_iter(), file))
}

fn through_dicom_pixeldata(from_meta: &[u8], file: &DicomHeader) -> Result<Samples, String> {
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(from_meta)
        .map_err(|e| format!("cannot read: {e}"))?;
    let decoded = obj
        .decode_pixel_data()
        .map_err(|e| format!("cannot decode pixel data ({}): {e}", file.transfer_syntax))?;
    if decoded.bits_allocated() == 32 {
        // dicom-pixeldata converts 1, 8 and 16-bit samples; 32-bit grids (RT Dose, some parametric maps)
        // are native little-endian after decoding, so read them directly.
        let signed = decoded.pixel_representation() == dicom_pixeldata::PixelRepresentation::Signed;
        let words = decoded.data().chunks_exact(4);
        return Ok(if signed {
            Samples::I32(
                words
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        } else {
            Samples::Float(
                words
                    .map(|c| f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            )
        });
    }
    let raw_samples = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
    decoded
        .to_vec_with_options(&raw_samples)
        .map(Samples::Float)
        .map_err(|e| format!("cannot convert pixel data: {e}"))
}
