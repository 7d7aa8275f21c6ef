//! Times voxflow's readers in-process, for `bench/imaging_vs_peers.py`: each argument is `NAME=PATH`
//! (a DICOM folder or file, or a NIfTI file); each is loaded into a float32 volume REPEAT times (after a
//! warm-up) and the median milliseconds are printed as JSON.

use std::path::Path;

// The allocator the voxflow binary uses: it keeps freed pages for reuse, where glibc's malloc would hand
// them back and fault fresh ones in on the next load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

use voxflow_imaging::dicom::SeriesRule;
use voxflow_imaging::source::load_source;

fn load_f32(path: &Path) -> Result<Vec<f32>, String> {
    load_source(path, &SeriesRule::default())
        .map(|l| l.volume.data.to_f32())
        .map_err(|e| e.to_string())
}

fn main() {
    let repeat: usize = std::env::var("REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let mut results = serde_json::Map::new();
    for arg in std::env::args().skip(1) {
        let Some((name, path)) = arg.split_once('=') else {
            eprintln!("usage: load_timings NAME=PATH...");
            std::process::exit(2);
        };
        let path = Path::new(path);
        let voxels = match load_f32(path) {
            Ok(v) => v.len(),
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        };
        let mut times: Vec<f64> = (0..repeat)
            .map(|_| {
                let start = Instant::now();
                let v = load_f32(path).expect("loaded once already");
                std::hint::black_box(v);
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        results.insert(
            name.to_string(),
            serde_json::json!({ "median_ms": times[times.len() / 2], "voxels": voxels }),
        );
    }
    println!("{}", serde_json::Value::Object(results));
}
