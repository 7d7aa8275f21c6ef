//! The third-party TAPS prostate model (plugins/taps-prostate, fetched by scripts/fetch-taps-model.sh) on a real
//! ProstateX T2 series: RAS orientation, resampling to 0.8 x 0.8 x 3 mm, cropping, 3D sliding window with
//! Gaussian blending, smoothing, and the mask mapped back onto the series' own grid. Agreement with `taps
//! segment` itself is measured by bench/taps_vs_voxflow.py (it needs torch and MONAI); here the mask must be a
//! plausible prostate on the right grid.

use std::collections::BTreeMap;
use std::path::Path;

use voxflow_imaging::dicom::SeriesRule;
use voxflow_imaging::source::load_source;
use voxflow_onnx::{OnnxPlugin, Produced, RuntimeConfig};
use voxflow_testkit::testdata;

#[test]
fn taps_segments_a_plausible_prostate_on_the_series_grid() {
    let plugin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/taps-prostate");
    if !plugin_dir.join("model_v1.onnx").is_file() {
        eprintln!("SKIPPED: the TAPS model is absent (scripts/fetch-taps-model.sh)");
        return;
    }
    if let Err(e) = voxflow_onnx::runtime::locate(None) {
        eprintln!("SKIPPED: {e}");
        return;
    }
    let Some(series) = testdata("prostate/prostatex/ProstateX-0000_t2_tse_tra") else {
        return;
    };
    let volume = load_source(&series, &SeriesRule::default()).unwrap().volume;
    let taps = OnnxPlugin::load(&plugin_dir, RuntimeConfig::default()).unwrap();
    let (produced, provenance) = taps
        .call(&volume, &BTreeMap::new(), None, &|| Ok(()))
        .unwrap();
    // 9 patches of 128 x 128 x 32 cover the cropped, resampled series.
    assert!(provenance.runs >= 4, "{provenance:?}");
    let Produced::Volume(mask) = &produced.iter().find(|(n, _)| n == "mask").unwrap().1 else {
        panic!("the mask is a volume");
    };
    assert_eq!(mask.geometry.dims, volume.geometry.dims);
    let g = &mask.geometry;
    let voxels: Vec<[usize; 3]> = (0..g.dims[2])
        .flat_map(|k| (0..g.dims[1]).flat_map(move |j| (0..g.dims[0]).map(move |i| [i, j, k])))
        .filter(|&[i, j, k]| mask.get_f64(i, j, k) != 0.0)
        .collect();
    let millilitres = voxels.len() as f64 * g.spacing.iter().product::<f64>() / 1000.0;
    // `taps segment` gives 40.1 mL on this series; prostates are typically 20-100 mL.
    assert!((30.0..=50.0).contains(&millilitres), "{millilitres} mL");
    // Near the middle of the field of view, behind the pubic bone: not at an edge.
    let centre: Vec<f64> = (0..3)
        .map(|a| voxels.iter().map(|v| v[a] as f64).sum::<f64>() / voxels.len() as f64)
        .collect();
    for a in 0..2 {
        let fraction = centre[a] / g.dims[a] as f64;
        assert!(
            (0.3..0.7).contains(&fraction),
            "centre {centre:?} of {:?}",
            g.dims
        );
    }
}
