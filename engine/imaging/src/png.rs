//! PNG pictures of volumes for people to look at: one slice or a mosaic of all slices, windowed, with an
//! optional mask overlay. Slices are shown in radiological convention (patient left on the image right,
//! anterior and superior up) whatever the volume's voxel order.

use crate::ops::{extract_slice, percentile, resample_onto, AxisMap, Interpolation};
use crate::volume::{Volume, SAME_GRID_TOLERANCE_MM};

/// Which picture to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct PngOptions {
    /// 0 = sagittal, 1 = coronal, 2 = axial (in the patient's LPS frame).
    pub axis: usize,
    /// The slice to draw; default the middle one. Ignored for a mosaic.
    pub slice: Option<usize>,
    /// Draw every slice in a grid.
    pub mosaic: bool,
    /// Display window (center, width); default the 1st to 99th percentile.
    pub window: Option<(f64, f64)>,
}

impl Default for PngOptions {
    fn default() -> Self {
        PngOptions {
            axis: 2,
            slice: None,
            mosaic: false,
            window: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("slice {slice} is outside the volume ({count} slices along axis {axis})")]
    SliceOutOfRange {
        slice: usize,
        count: usize,
        axis: usize,
    },
    #[error("axis must be 0, 1 or 2, not {0}")]
    BadAxis(usize),
    #[error("cannot encode PNG: {0}")]
    Encode(String),
}

/// Renders the picture as PNG bytes (greyscale, or RGB with the mask in red).
pub fn render_png(
    volume: &Volume,
    mask: Option<&Volume>,
    options: &PngOptions,
) -> Result<Vec<u8>, PngError> {
    if options.axis > 2 {
        return Err(PngError::BadAxis(options.axis));
    }
    let to_lps = AxisMap::to_closest_lps(&volume.geometry);
    let image = to_lps.apply(volume);
    // A mask made on another grid (resampled, reoriented) is brought onto this one first.
    let mask = mask.map(|m| {
        let on_grid = if m
            .geometry
            .same_grid(&volume.geometry, SAME_GRID_TOLERANCE_MM)
        {
            m.clone()
        } else {
            resample_onto(m, &volume.geometry, Interpolation::Nearest)
        };
        to_lps.apply(&on_grid)
    });
    let count = image.dims()[options.axis];
    let slices: Vec<usize> = if options.mosaic {
        (0..count).collect()
    } else {
        let s = options.slice.unwrap_or(count / 2);
        if s >= count {
            return Err(PngError::SliceOutOfRange {
                slice: s,
                count,
                axis: options.axis,
            });
        }
        vec![s]
    };
    let (lo, hi) = match options.window {
        Some((c, w)) => (c - w / 2.0, c + w / 2.0),
        None => (percentile(&image, 1.0), percentile(&image, 99.0)),
    };
    let range = if hi > lo { hi - lo } else { 1.0 };
    let columns = (slices.len() as f64).sqrt().ceil() as usize;
    let rows = slices.len().div_ceil(columns);
    let (w, h, _) =
        extract_slice(&image, options.axis, 0).ok_or(PngError::BadAxis(options.axis))?;
    let (width, height) = (w * columns, h * rows);
    let mut rgb = vec![0u8; width * height * 3];
    for (n, &s) in slices.iter().enumerate() {
        let (_, _, values) =
            extract_slice(&image, options.axis, s).ok_or(PngError::BadAxis(options.axis))?;
        let labels = mask
            .as_ref()
            .and_then(|m| extract_slice(m, options.axis, s))
            .map(|(_, _, v)| v);
        let (ox, oy) = ((n % columns) * w, (n / columns) * h);
        for y in 0..h {
            // Sagittal and coronal slices have superior at high k: draw it at the top.
            let src_y = if options.axis == 2 { y } else { h - 1 - y };
            for x in 0..w {
                let idx = src_y * w + x;
                let grey = (((values[idx] - lo) / range).clamp(0.0, 1.0) * 255.0).round() as u8;
                let on = labels.as_ref().is_some_and(|l| l[idx] > 0.0);
                let px = ((oy + y) * width + ox + x) * 3;
                rgb[px..px + 3].copy_from_slice(&if on {
                    [
                        ((grey as f64) * 0.5 + 127.5) as u8,
                        (grey as f64 * 0.5) as u8,
                        (grey as f64 * 0.5) as u8,
                    ]
                } else {
                    [grey, grey, grey]
                });
            }
        }
    }
    encode(width, height, &rgb, mask.is_some())
}

fn encode(width: usize, height: usize, rgb: &[u8], colour: bool) -> Result<Vec<u8>, PngError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_depth(png::BitDepth::Eight);
    let data: Vec<u8> = if colour {
        encoder.set_color(png::ColorType::Rgb);
        rgb.to_vec()
    } else {
        encoder.set_color(png::ColorType::Grayscale);
        rgb.chunks_exact(3).map(|p| p[0]).collect()
    };
    let mut writer = encoder
        .write_header()
        .map_err(|e| PngError::Encode(e.to_string()))?;
    writer
        .write_image_data(&data)
        .map_err(|e| PngError::Encode(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| PngError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{Geometry, VoxelData};

    #[test]
    fn renders_slices_mosaics_and_overlays() {
        let g = Geometry::new([4, 3, 5], [1.0; 3]);
        let v = Volume::new(g.clone(), VoxelData::I16((0..60).collect())).unwrap();
        let png = render_png(&v, None, &PngOptions::default()).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (4, 3));
        let mosaic = render_png(
            &v,
            None,
            &PngOptions {
                mosaic: true,
                ..Default::default()
            },
        )
        .unwrap();
        let reader = png::Decoder::new(std::io::Cursor::new(&mosaic))
            .read_info()
            .unwrap();
        assert_eq!((reader.info().width, reader.info().height), (12, 6));
        let mask = Volume::new(g, VoxelData::U8(vec![1; 60])).unwrap();
        let overlay = render_png(&v, Some(&mask), &PngOptions::default()).unwrap();
        let reader = png::Decoder::new(std::io::Cursor::new(&overlay))
            .read_info()
            .unwrap();
        assert_eq!(reader.info().color_type, png::ColorType::Rgb);
        let err = render_png(
            &v,
            None,
            &PngOptions {
                slice: Some(9),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "slice 9 is outside the volume (5 slices along axis 2)"
        );
    }
}
