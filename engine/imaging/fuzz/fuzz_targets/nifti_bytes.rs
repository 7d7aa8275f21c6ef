//! Any bytes handed to the NIfTI reader (plain or gzip) give a volume or an error, never a panic or an
//! allocation the bytes do not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = voxflow_imaging::nifti::decode_nifti(data, std::path::Path::new("fuzz.nii"));
});
