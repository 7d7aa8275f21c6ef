//! JPEG frames decoded by libjpeg-turbo 3 (vendored and built by `turbojpeg-sys`): 12-bit JPEG Extended
//! (process 2 & 4, transfer syntax 1.2.840.10008.1.2.4.51), which dicom-rs' pure-Rust JPEG decoder
//! (`jpeg-decoder`) cannot read. The safe `turbojpeg` crate exposes only 8-bit images, hence this thin
//! wrapper over the raw TurboJPEG 3 API.

use std::ffi::CStr;

use turbojpeg_sys as tj;

/// A TurboJPEG decompressor, destroyed on drop.
struct Decompressor(tj::tjhandle);

impl Decompressor {
    fn new() -> Result<Self, String> {
        // SAFETY: tj3Init has no preconditions; a null handle is its error.
        let handle = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as i32) };
        if handle.is_null() {
            return Err("libjpeg-turbo could not create a decompressor".to_string());
        }
        Ok(Self(handle))
    }

    fn error(&self) -> String {
        // SAFETY: the handle is live; the returned string is owned by the handle and NUL-terminated.
        unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    fn get(&self, param: tj::TJPARAM) -> i32 {
        // SAFETY: the handle is live; unknown parameters return -1.
        unsafe { tj::tj3Get(self.0, param as i32) }
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

/// Decodes one single-component JPEG frame of 8- or 12-bit precision into its samples (unsigned, as
/// stored), after checking that its size is the `columns` x `rows` the DICOM header says: nothing is
/// allocated for a size the header does not vouch for.
pub(crate) fn decode_gray(jpeg: &[u8], columns: usize, rows: usize) -> Result<Vec<u16>, String> {
    let d = Decompressor::new()?;
    // SAFETY: the buffer is valid for its length for the duration of the call.
    let rc = unsafe { tj::tj3DecompressHeader(d.0, jpeg.as_ptr(), jpeg.len() as _) };
    if rc != 0 {
        return Err(format!("JPEG header: {}", d.error()));
    }
    let width = d.get(tj::TJPARAM_TJPARAM_JPEGWIDTH);
    let height = d.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT);
    let precision = d.get(tj::TJPARAM_TJPARAM_PRECISION);
    let colorspace = d.get(tj::TJPARAM_TJPARAM_COLORSPACE);
    if width <= 0 || height <= 0 {
        return Err(format!("JPEG frame has size {width}x{height}"));
    }
    if colorspace != tj::TJCS_TJCS_GRAY as i32 {
        return Err("only single-component (grayscale) JPEG frames are read here".to_string());
    }
    let (w, h) = (width as usize, height as usize);
    if (w, h) != (columns, rows) {
        return Err(format!(
            "the JPEG frame is {w}x{h} but the header says {columns}x{rows}"
        ));
    }
    Ok(match precision {
        8 => {
            let mut out = vec![0u8; w * h];
            // SAFETY: `out` holds width*height bytes, the size of a GRAY frame with pitch = width.
            let rc = unsafe {
                tj::tj3Decompress8(
                    d.0,
                    jpeg.as_ptr(),
                    jpeg.len() as _,
                    out.as_mut_ptr(),
                    width,
                    tj::TJPF_TJPF_GRAY,
                )
            };
            if rc != 0 {
                return Err(format!("JPEG 8-bit decode: {}", d.error()));
            }
            out.into_iter().map(u16::from).collect()
        }
        12 => {
            let mut out = vec![0i16; w * h];
            // SAFETY: `out` holds width*height samples, the size of a GRAY frame with pitch = width.
            let rc = unsafe {
                tj::tj3Decompress12(
                    d.0,
                    jpeg.as_ptr(),
                    jpeg.len() as _,
                    out.as_mut_ptr(),
                    width,
                    tj::TJPF_TJPF_GRAY,
                )
            };
            if rc != 0 {
                return Err(format!("JPEG 12-bit decode: {}", d.error()));
            }
            out.into_iter().map(|v| v as u16 & 0x0fff).collect()
        }
        other => return Err(format!("JPEG precision {other} bits is not 8 or 12")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        assert!(decode_gray(b"definitely not a JPEG", 1, 1).is_err());
        assert!(decode_gray(&[], 1, 1).is_err());
        assert!(decode_gray(&[0xff, 0xd8, 0xff, 0xc1, 0x00, 0x0b, 0x0c], 1, 1).is_err());
    }
}
