//! voxflow's DICOM and NIfTI readers against independent readers (pydicom with pylibjpeg, nibabel) on the
//! shared real data. `scripts/reference_values.py` writes the reference file (`.ci/run` does it); this test
//! skips with a message when the file or the data is absent.

use std::path::{Path, PathBuf};

use voxflow_imaging::dicom::{load_series, scan, SeriesRule};
use voxflow_imaging::nifti::read_nifti;
use voxflow_imaging::Volume;
use voxflow_testkit::testdata_dir;

fn reference_file() -> PathBuf {
    std::env::var_os("VOXFLOW_REFERENCE_VALUES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/reference-values.json")
        })
}

fn load(kind: &str, path: &Path) -> Result<(Volume, [[f64; 4]; 4]), String> {
    if kind == "nifti" {
        let (v, _) = read_nifti(path).map_err(|e| e.to_string())?;
        let a = v.geometry.affine_ras();
        return Ok((v, a));
    }
    let found = scan(path).map_err(|e| e.to_string())?;
    let series = found
        .select(&SeriesRule::default(), path)
        .map_err(|e| e.to_string())?;
    let loaded = load_series(series).map_err(|e| e.to_string())?;
    let a = loaded.volume.geometry.affine_lps();
    Ok((loaded.volume, a))
}

/// Cases voxflow cannot read yet, with the reason; each must fail with a message that names the file and
/// the transfer syntax. Remove an entry when its support lands (the test then fails until you do).
/// Cases no reader of voxflow decodes yet, with the reason (none at present).
const KNOWN_GAPS: &[(&str, &str)] = &[];

#[test]
fn readers_agree_with_pydicom_and_nibabel() {
    let file = reference_file();
    let Ok(text) = std::fs::read_to_string(&file) else {
        eprintln!(
            "SKIPPED: no reference values at {} (run scripts/reference_values.py)",
            file.display()
        );
        return;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_object().unwrap();
    assert!(cases.len() >= 20, "expected the full reference set");
    let mut failures = Vec::new();
    for (name, case) in cases {
        // Cases derived by the reference script (or shipped inside nibabel) carry an absolute path.
        let path = match case.get("abs_path").and_then(|p| p.as_str()) {
            Some(abs) => std::path::PathBuf::from(abs),
            None => testdata_dir().join(case["path"].as_str().unwrap()),
        };
        if !path.exists() {
            eprintln!("SKIPPED: {name}: {} is absent", path.display());
            continue;
        }
        let loaded = load(case["kind"].as_str().unwrap(), &path);
        if let Some((_, why)) = KNOWN_GAPS.iter().find(|(n, _)| n == name) {
            match &loaded {
                Err(e) => {
                    let file = path.file_name().unwrap().to_string_lossy();
                    assert!(
                        e.contains(file.as_ref()) && e.contains("1.2.840.10008.1.2.4.51"),
                        "{name}: {e}"
                    );
                    eprintln!("KNOWN GAP: {name}: {why}");
                }
                Ok(_) => failures.push(format!("{name} now loads: remove it from KNOWN_GAPS")),
            }
            continue;
        }
        if let Some(expected_error) = case.get("error").and_then(|e| e.as_str()) {
            match loaded {
                Err(e) => assert!(
                    e.contains(expected_error),
                    "{name}: {e} (reference: {expected_error})"
                ),
                Ok(_) => failures.push(format!("{name}: loaded, but it is {expected_error}")),
            }
            continue;
        }
        let (vol, affine) = match loaded {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        match compare(&vol, &affine, case) {
            Ok(()) => eprintln!("agrees: {name} ({})", path.display()),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn compare(vol: &Volume, affine: &[[f64; 4]; 4], case: &serde_json::Value) -> Result<(), String> {
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let shape: Vec<usize> = case["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    if vol.dims().to_vec() != shape {
        return Err(format!("shape {:?}, reference {shape:?}", vol.dims()));
    }
    for (a, s) in case["spacing"].as_array().unwrap().iter().enumerate() {
        if (vol.geometry.spacing[a] - f(s)).abs() > 1e-4 {
            return Err(format!(
                "spacing {:?}, reference {}",
                vol.geometry.spacing, case["spacing"]
            ));
        }
    }
    for (r, row) in case["affine"].as_array().unwrap().iter().enumerate() {
        for (c, v) in row.as_array().unwrap().iter().enumerate() {
            if (affine[r][c] - f(v)).abs() > 1e-3 {
                return Err(format!("affine {affine:?}, reference {}", case["affine"]));
            }
        }
    }
    let values = vol.data.to_f64();
    let (min, max) = (f(&case["min"]), f(&case["max"]));
    let range = (max - min).max(1.0);
    let lossy = case["lossy"].as_bool().unwrap_or(false);
    let finite: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let nan_count = (values.len() - finite.len()) as u64;
    if nan_count != case["nan_count"].as_u64().unwrap_or(0) {
        return Err(format!(
            "{nan_count} NaN voxels, reference {}",
            case["nan_count"]
        ));
    }
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    let mean_tolerance = if lossy {
        0.01 * range
    } else {
        1e-9 * range.max(mean.abs())
    };
    if (mean - f(&case["mean"])).abs() > mean_tolerance {
        return Err(format!("mean {mean}, reference {}", case["mean"]));
    }
    for (key, expected) in case["probes"].as_object().unwrap() {
        let ijk: Vec<usize> = key.split(',').map(|x| x.parse().unwrap()).collect();
        let got = vol.get_f64(ijk[0], ijk[1], ijk[2]);
        if expected.is_null() {
            if !got.is_nan() {
                return Err(format!("voxel {key} is {got}, reference NaN"));
            }
            continue;
        }
        let tolerance = if lossy { 0.05 * range } else { 1e-6 * range };
        if (got - f(expected)).abs() > tolerance {
            return Err(format!("voxel {key} is {got}, reference {expected}"));
        }
    }
    Ok(())
}
