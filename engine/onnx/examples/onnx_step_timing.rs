//! Times an ONNX plugin's whole call (preprocessing, tiling, every network run, assembly, postprocessing) on
//! one input, in process, for bench/onnx_vs_python.py to set beside ONNX Runtime's Python API on the same
//! tensors. Prints one JSON line: the median and all call times in milliseconds, and how the calls ran.
//!
//! usage: onnx_step_timing PLUGIN_DIR INPUT(.nii.gz or DICOM folder) REPEAT THREADS

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use voxflow_imaging::dicom::SeriesRule;
use voxflow_imaging::source::load_source;
use voxflow_onnx::{OnnxPlugin, RuntimeConfig};
use voxflow_spec::Value;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: onnx_step_timing PLUGIN_DIR INPUT REPEAT THREADS");
        std::process::exit(2);
    }
    let repeat: usize = args[3].parse().expect("REPEAT is a number");
    let threads: usize = args[4].parse().expect("THREADS is a number");
    let volume = load_source(Path::new(&args[2]), &SeriesRule::default())
        .unwrap_or_else(|e| panic!("{}: {e}", args[2]))
        .volume;
    let plugin = OnnxPlugin::load(
        Path::new(&args[1]),
        RuntimeConfig {
            intra_threads: threads,
            ..RuntimeConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    let params = BTreeMap::from([("threads".to_string(), Value::Number(threads as f64))]);
    // The first call opens the session (and is not timed), as the Python side creates its session first.
    let (_, provenance) = plugin
        .call(&volume, &params, None, &|| Ok(()))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut times: Vec<f64> = (0..repeat)
        .map(|_| {
            let started = Instant::now();
            plugin
                .call(&volume, &params, None, &|| Ok(()))
                .unwrap_or_else(|e| panic!("{e}"));
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let all = times.clone();
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "median_ms": times[times.len() / 2],
            "times_ms": all,
            "runs_per_call": provenance.runs,
            "threads": provenance.intra_threads,
            "dims": volume.geometry.dims,
        })
    );
}
