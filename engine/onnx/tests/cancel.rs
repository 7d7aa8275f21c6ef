//! A cancelled ONNX step on a real volume and a real network: the call ends with the step's cancellation
//! (never as a failure of the model), whether the cancellation lands between two runs or terminates one in
//! flight (the watcher asks every 10 ms; a run of the sagittal network on train01 takes longer).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use voxflow_imaging::dicom::SeriesRule;
use voxflow_imaging::source::load_source;
use voxflow_onnx::{OnnxPlugin, RuntimeConfig};
use voxflow_steps::StepError;
use voxflow_testkit::testdata;

#[test]
fn a_cancelled_call_ends_as_cancelled_and_the_next_call_runs_whole() {
    let Some(train01) = testdata("prostate/promise12/labelled/image_train01.npy.gz") else {
        return;
    };
    if let Err(e) = voxflow_onnx::runtime::locate(None) {
        eprintln!("SKIPPED: {e}");
        return;
    }
    let volume = load_source(&train01, &SeriesRule::default())
        .unwrap()
        .volume;
    let plugin_dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/prostate-seg-sagittal");
    let plugin = OnnxPlugin::load(&plugin_dir, RuntimeConfig::default()).unwrap();
    // Cancelled once `after` questions were asked: the watcher's and the runs' own questions count alike.
    for after in [0, 3, 6] {
        let asked = AtomicUsize::new(0);
        let cancel = || {
            if asked.fetch_add(1, Ordering::SeqCst) >= after {
                Err(StepError::Cancelled)
            } else {
                Ok(())
            }
        };
        match plugin.call(&volume, &BTreeMap::new(), None, &cancel) {
            Err(StepError::Cancelled) => {}
            Err(other) => {
                panic!("cancelled after {after} questions, the call failed instead: {other}")
            }
            Ok(_) => panic!("cancelled after {after} questions, the call ran to its end"),
        }
    }
    // The shared session is not left terminated: a call that is not cancelled runs every run.
    let (_, provenance) = plugin
        .call(&volume, &BTreeMap::new(), None, &|| Ok(()))
        .unwrap();
    assert!(provenance.runs > 0, "{provenance:?}");
}
