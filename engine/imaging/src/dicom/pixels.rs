//! The stored sample values of one file's frames, before rescale. Every file is first walked by
//! [`raw::check_bytes`]; native little-endian pixel data is then read straight from the bytes, 12-bit JPEG
//! Extended goes through libjpeg-turbo, and every other transfer syntax through dicom-pixeldata.

use std::ops::Range;

use dicom_object::{file::ReadPreamble, OpenFileOptions};
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};

use super::header::DicomHeader;
use super::{jpeg_turbo, raw};

/// JPEG Extended (process 2 & 4): 8- or 12-bit lossy JPEG.
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

/// Stored sample values: integers as stored (the common case, kept exact and small), or floats.
pub(crate) enum Samples {
    Int(Vec<i32>),
    Float(Vec<f64>),
}

impl Samples {
    pub fn len(&self) -> usize {
        match self {
            Samples::Int(v) => v.len(),
            Samples::Float(v) => v.len(),
        }
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
            return native(&bytes[range.clone()], file)
                .map(Samples::Int)
                .map_err(at);
        }
    }
    if file.transfer_syntax == JPEG_EXTENDED && file.samples_per_pixel == 1 {
        return jpeg_extended(&bytes, &layout, file)
            .map(Samples::Int)
            .map_err(|e| {
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

fn native(pixels: &[u8], file: &DicomHeader) -> Result<Vec<i32>, String> {
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
        pixels.iter().map(|&b| value(u32::from(b))).collect()
    } else {
        pixels
            .chunks_exact(2)
            .map(|c| value(u32::from(u16::from_le_bytes([c[0], c[1]]))))
            .collect()
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
) -> Result<Vec<i32>, String> {
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
    Ok(out)
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
            Samples::Int(
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
