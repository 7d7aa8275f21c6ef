//! A DICOM file walked element by element before anything is decoded: every declared length is checked
//! against what the file holds (dicom-parser allocates and zero-fills a value's declared length before
//! reading it, so one damaged length would cost gigabytes), and the walk notes where the pixel data lies so
//! native pixel data can be read straight from the bytes.

use std::io::{Cursor, Read, Seek};
use std::ops::Range;
use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::{Codec, Endianness, TransferSyntaxIndex};
use dicom_object::FileMetaTable;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::StatefulDecode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::stream::read_up_to;

/// Where a file's parts lie, in bytes from the start of the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FileLayout {
    /// Start of the file meta group (the `DICM` marker).
    pub meta_start: usize,
    /// Native (uncompressed, little-endian) pixel data of the top-level data set.
    pub native_pixels: Option<Range<usize>>,
    /// Fragments of encapsulated pixel data (after the basic offset table item).
    pub fragments: Vec<Range<usize>>,
    /// Offsets from the basic offset table item (empty when absent).
    pub offset_table: Vec<u32>,
}

/// Checks a whole file held in memory and returns its layout; `Err` says what is wrong and where.
pub(crate) fn check_bytes(bytes: &[u8]) -> Result<FileLayout, String> {
    walk(Cursor::new(bytes), bytes.len() as u64, false)
}

/// Checks a file's declared lengths up to its pixel data, reading only the header part.
pub(crate) fn check_header(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let total = file.metadata().map_err(|e| e.to_string())?.len();
    walk(std::io::BufReader::new(file), total, true).map(|_| ())
}

fn walk<R: Read + Seek>(
    mut src: R,
    total: u64,
    stop_at_pixels: bool,
) -> Result<FileLayout, String> {
    let mut marker = [0u8; 132];
    let got = read_up_to(&mut src, &mut marker)?;
    let meta_start = if got >= 132 && &marker[128..132] == b"DICM" {
        128
    } else if got >= 4 && &marker[..4] == b"DICM" {
        0
    } else {
        return Err("not a DICOM file: no DICM marker at byte 128 (or 0)".to_string());
    };
    check_meta_lengths(&mut src, meta_start as u64, total)?;
    src.seek(std::io::SeekFrom::Start(meta_start as u64))
        .map_err(|e| e.to_string())?;
    let meta = FileMetaTable::from_reader(&mut src).map_err(|e| format!("file meta group: {e}"))?;
    let ts_uid = meta.transfer_syntax();
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    let layout = FileLayout {
        meta_start,
        ..FileLayout::default()
    };
    if matches!(ts.codec(), Codec::Dataset(_)) {
        // Deflated: inflate (bounded by deflate's largest ratio) and check the inflated data set instead.
        let mut compressed = Vec::new();
        src.read_to_end(&mut compressed)
            .map_err(|e| e.to_string())?;
        let cap = (compressed.len() as u64).saturating_mul(1100).min(4 << 30);
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(&compressed[..])
            .take(cap)
            .read_to_end(&mut inflated)
            .map_err(|e| format!("deflated data set: {e}"))?;
        let total = inflated.len() as u64;
        // Positions in the inflated stream do not address the file: pixel data is decoded the slow way.
        walk_data_set(Cursor::new(inflated), total, ts, false, stop_at_pixels)?;
        return Ok(layout);
    }
    walk_data_set(src, total, ts, true, stop_at_pixels).map(|found| {
        let found = found.unwrap_or_default();
        FileLayout {
            meta_start,
            ..found
        }
    })
}

/// The meta group is explicit VR little endian; its lengths are checked by hand because dicom-object's
/// meta reader, too, allocates a declared length before reading. Only element headers are read; values
/// are skipped by seeking.
fn check_meta_lengths<R: Read + Seek>(
    src: &mut R,
    meta_start: u64,
    total: u64,
) -> Result<(), String> {
    let mut at = meta_start + 4;
    loop {
        src.seek(std::io::SeekFrom::Start(at))
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 12];
        let got = read_up_to(src, &mut head)?;
        if got < 8 || u16::from_le_bytes([head[0], head[1]]) != 0x0002 {
            return Ok(());
        }
        // The VRs with a 2-byte length; any other (or unknown, as dicom-parser reads it) has a 4-byte one.
        let short = matches!(
            &head[4..6],
            b"AE"
                | b"AS"
                | b"AT"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"FL"
                | b"FD"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"SL"
                | b"SS"
                | b"ST"
                | b"TM"
                | b"UI"
                | b"UL"
                | b"US"
        );
        let (header, len) = if short {
            (8, u64::from(u16::from_le_bytes([head[6], head[7]])))
        } else if got == 12 {
            (
                12,
                u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
            )
        } else {
            return Ok(());
        };
        let value_at = at + header;
        if value_at.saturating_add(len) > total {
            return Err(format!(
                "file meta group: element (0002,{:04X}) declares {len} bytes at byte {value_at} but the file has {} left: \
                 the file is truncated or damaged",
                u16::from_le_bytes([head[2], head[3]]),
                total.saturating_sub(value_at)
            ));
        }
        at = value_at + len;
    }
}

/// Walks a data set from the source's current position; `None` when it stopped at the pixel data header.
fn walk_data_set<R: Read + Seek>(
    src: R,
    total: u64,
    ts: &dicom_encoding::TransferSyntax,
    positions_are_file_offsets: bool,
    stop_at_pixels: bool,
) -> Result<Option<FileLayout>, String> {
    let mut layout = FileLayout::default();
    let native =
        positions_are_file_offsets && ts.is_codec_free() && ts.endianness() == Endianness::Little;
    let mut reader = LazyDataSetReader::new_with_ts(src, ts).map_err(|e| e.to_string())?;
    let mut depth = 0usize;
    let mut in_pixel_sequence = false;
    // Items of the pixel sequence seen so far: the first is the basic offset table (often empty).
    let mut pixel_items = 0usize;
    // Decoder positions are absolute offsets in the file (the reader starts where the meta group ended).
    let too_long = |what: &str, len: u64, at: u64| {
        format!(
            "{what} declares {len} bytes at byte {at} but the file has {} left: the file is truncated or damaged",
            total.saturating_sub(at)
        )
    };
    while let Some(token) = reader.advance() {
        let token = token.map_err(|e| e.to_string())?;
        match token {
            LazyDataToken::SequenceStart { .. } => depth += 1,
            LazyDataToken::ItemStart { .. } => {
                if in_pixel_sequence && depth == 1 {
                    pixel_items += 1;
                }
                depth += 1;
            }
            LazyDataToken::PixelSequenceStart => {
                if stop_at_pixels {
                    return Ok(None);
                }
                depth += 1;
                in_pixel_sequence = depth == 1;
            }
            LazyDataToken::SequenceEnd | LazyDataToken::ItemEnd => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_pixel_sequence = false;
                }
            }
            LazyDataToken::LazyValue { header, decoder } => {
                if header.tag == tags::PIXEL_DATA && depth == 0 && stop_at_pixels {
                    // Header reads stop here; the pixel data's length is checked when it is decoded.
                    return Ok(None);
                }
                let at = decoder.position();
                let len = header.len.get().map_or(0, u64::from);
                if at.saturating_add(len) > total {
                    return Err(too_long(&format!("element {}", header.tag), len, at));
                }
                // dicom-parser reads whole numbers of binary values and leaves a remainder unread, which
                // misaligns everything after it; the lazy walk would not notice, so refuse it here.
                let unit = match header.vr {
                    VR::US | VR::SS => 2,
                    VR::UL | VR::SL | VR::FL | VR::AT => 4,
                    VR::FD | VR::SV | VR::UV => 8,
                    _ => 1,
                };
                if len % unit != 0 {
                    return Err(format!(
                        "element {} ({:?}) at byte {at} has length {len}, not a multiple of {unit}: the file is damaged",
                        header.tag, header.vr
                    ));
                }
                if header.tag == tags::PIXEL_DATA && depth == 0 && native {
                    let from = at as usize;
                    layout.native_pixels = Some(from..from + len as usize);
                }
                LazyDataToken::LazyValue { header, decoder }
                    .skip()
                    .map_err(|e| e.to_string())?;
            }
            LazyDataToken::LazyItemValue { len, decoder } => {
                let at = decoder.position();
                if at.saturating_add(u64::from(len)) > total {
                    return Err(too_long("an item", u64::from(len), at));
                }
                if in_pixel_sequence {
                    let from = at as usize;
                    if pixel_items > 1 {
                        layout.fragments.push(from..from + len as usize);
                    } else {
                        let mut table = Vec::with_capacity(len as usize);
                        decoder
                            .read_to_vec(len, &mut table)
                            .map_err(|e| e.to_string())?;
                        layout.offset_table = table
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                        continue;
                    }
                }
                LazyDataToken::LazyItemValue { len, decoder }
                    .skip()
                    .map_err(|e| e.to_string())?;
            }
            LazyDataToken::ElementHeader(_) => {}
            _ => {}
        }
    }
    Ok(Some(layout))
}
