//! Times each first plugin through the WebAssembly host (fresh sandboxed store, volumes copied in and out,
//! parameters checked) against the same plugin's `Plugin::run` called natively on the same volumes, and the
//! per-call overhead on a tiny input. Used by bench/plugins_vs_native.sh; prints medians and ratios.
//!
//! usage: plugins_vs_native PLUGINS_DIR SERIES_DIR [REPEAT]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use voxflow_imaging::dicom::SeriesRule;
use voxflow_imaging::source::load_source;
use voxflow_imaging::{Geometry, Volume, VoxelData};
use voxflow_plugin::{WasmHost, WasmPlugin};
use voxflow_plugin_sdk as sdk;
use voxflow_plugin_sdk::Plugin;
use voxflow_spec::Value;

fn median_ms(repeat: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..repeat)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn mask_of(v: &Volume, threshold: f64) -> Volume {
    let data = v
        .data
        .to_f64()
        .iter()
        .map(|&x| u8::from(x > threshold))
        .collect();
    Volume::new(v.geometry.clone(), VoxelData::U8(data)).expect("same grid")
}

/// The engine's volume as the plugin SDK's (a copy, as the host's call copies it into the sandbox).
fn sdk_volume(v: &Volume) -> sdk::Volume {
    let g = &v.geometry;
    let data = match &v.data {
        VoxelData::U8(x) => sdk::VoxelData::U8(x.clone()),
        VoxelData::I16(x) => sdk::VoxelData::I16(x.clone()),
        VoxelData::U16(x) => sdk::VoxelData::U16(x.clone()),
        VoxelData::I32(x) => sdk::VoxelData::I32(x.clone()),
        VoxelData::F32(x) => sdk::VoxelData::F32(x.clone()),
        VoxelData::F64(x) => sdk::VoxelData::F64(x.clone()),
    };
    sdk::Volume {
        geometry: sdk::Geometry {
            dims: g.dims,
            spacing: g.spacing,
            origin: g.origin,
            direction: g.direction,
        },
        data,
    }
}

fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: plugins_vs_native PLUGINS_DIR SERIES_DIR [REPEAT]");
        std::process::exit(2);
    }
    let plugins = Path::new(&args[1]);
    let repeat: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(11);
    let series_dir = Path::new(&args[2]);
    let volume = load_source(series_dir, &SeriesRule::default())
        .unwrap_or_else(|e| panic!("{}: {e}", series_dir.display()))
        .volume;
    let host = WasmHost::shared(None).expect("wasm host");
    let load =
        |name: &str| WasmPlugin::load(host.clone(), &plugins.join(name)).expect("built plugin");
    let (fusion, cleanup, normalize) = (
        load("label-fusion"),
        load("mask-cleanup"),
        load("intensity-normalize"),
    );
    let bright = mask_of(&volume, 300.0);
    let brighter = mask_of(&volume, 600.0);
    let dims = volume.geometry.dims;
    println!(
        "volume {}x{}x{} ({} voxels, {}), median of {repeat} runs",
        dims[0],
        dims[1],
        dims[2],
        dims.iter().product::<usize>(),
        volume.data.dtype()
    );
    println!(
        "{:28} {:>12} {:>12} {:>8}",
        "plugin", "wasm ms", "native ms", "ratio"
    );
    let row = |name: &str, wasm: f64, native: f64| {
        println!("{name:28} {wasm:12.2} {native:12.2} {:7.2}x", wasm / native);
    };

    let wasm = median_ms(repeat, || {
        fusion
            .call_volumes(
                &[("masks".into(), vec![bright.clone(), brighter.clone()])],
                &params(&[("operation", Value::String("majority".into()))]),
            )
            .expect("fusion runs");
    });
    let native = median_ms(repeat, || {
        let masks = sdk::Value::Volumes(vec![sdk_volume(&bright), sdk_volume(&brighter)]);
        let out = label_fusion::LabelFusion::run(
            sdk::Inputs(vec![("masks".into(), masks)]),
            serde_json::json!({"operation": "majority"}),
        );
        std::hint::black_box(out.expect("fusion runs natively"));
    });
    row("label-fusion (majority)", wasm, native);

    let wasm = median_ms(repeat, || {
        cleanup
            .call_volumes(&[("mask".into(), vec![bright.clone()])], &params(&[]))
            .expect("cleanup runs");
    });
    let native = median_ms(repeat, || {
        let out = mask_cleanup::MaskCleanup::run(
            sdk::Inputs(vec![(
                "mask".into(),
                sdk::Value::Volume(sdk_volume(&bright)),
            )]),
            serde_json::json!({"connectivity": 26, "keep_largest": true, "min_size_mm3": 0, "fill_holes": "both"}),
        );
        std::hint::black_box(out.expect("cleanup runs natively"));
    });
    row("mask-cleanup (26, fill both)", wasm, native);

    let wasm = median_ms(repeat, || {
        normalize
            .call_volumes(
                &[("volume".into(), vec![volume.clone()])],
                &params(&[("method", Value::String("percentile".into()))]),
            )
            .expect("normalize runs");
    });
    let native = median_ms(repeat, || {
        let out = intensity_normalize::IntensityNormalize::run(
            sdk::Inputs(vec![(
                "volume".into(),
                sdk::Value::Volume(sdk_volume(&volume)),
            )]),
            serde_json::json!({"method": "percentile", "lower_percentile": 0.5, "upper_percentile": 99.5}),
        );
        std::hint::black_box(out.expect("normalize runs natively"));
    });
    row("intensity-normalize (pct)", wasm, native);

    let tiny =
        Volume::new(Geometry::new([1, 1, 1], [1.0; 3]), VoxelData::U8(vec![1])).expect("1 voxel");
    let per_call = median_ms(repeat.max(101), || {
        fusion
            .call_volumes(
                &[("masks".into(), vec![tiny.clone(), tiny.clone()])],
                &params(&[]),
            )
            .expect("tiny call");
    });
    println!(
        "per-call overhead on a 1-voxel input (fresh store, instantiate, call): {:.3} ms",
        per_call
    );
}
