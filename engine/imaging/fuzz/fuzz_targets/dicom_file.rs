//! Any bytes written as a DICOM file and scanned, selected and loaded as a series give a volume or an
//! error, never a panic that escapes or an allocation the file does not justify. (The readers take paths,
//! as the engine does, so each input goes through one reused file in a private temporary folder.)
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use voxflow_imaging::dicom::{load_series, scan, SeriesRule};

fn target() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("VOXFLOW_FUZZ_TMP").map_or_else(std::env::temp_dir, PathBuf::from);
        let dir = base.join(format!("voxflow-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder for fuzz inputs");
        dir.join("input.dcm")
    })
}

fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys aborts on any panic through its hook, even one voxflow catches (dicom-rs' RLE decoder
    // panics on truncated data; the reader turns that into the file's error). A panic that escapes the
    // reader still reaches libfuzzer-sys' catch_unwind and aborts, so crashes are still found.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let path = target();
    if std::fs::write(path, data).is_err() {
        return;
    }
    if let Ok(found) = scan(path) {
        let _ = found.select(&SeriesRule::default(), path).and_then(load_series);
    }
});
