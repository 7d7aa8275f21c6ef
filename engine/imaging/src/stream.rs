//! Reading helpers shared by the file readers (DICOM, NIfTI).

use std::io::{ErrorKind, Read};

/// Reads until `buf` is full or the input ends; how many bytes came. An interrupted read is retried.
pub(crate) fn read_up_to<R: Read>(src: &mut R, buf: &mut [u8]) -> Result<usize, String> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(got)
}
