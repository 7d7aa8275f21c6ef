//! Writing a run's declared outputs to a folder (`voxflow run --out DIR`): artifacts as files named after the
//! output (a list in a folder named after the output, each file by its artifact's name where those are
//! distinct, else by position), plain values in `outputs.json`. Every file goes through a temporary name
//! and a rename.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use voxflow_artifact::{ArtifactError, ArtifactStore};
use voxflow_spec::{ArtifactRef, Value};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("output `{output}`: {source}")]
    Artifact {
        output: String,
        #[source]
        source: ArtifactError,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn extension(a: &ArtifactRef) -> String {
    let from_name = a
        .name
        .as_deref()
        .and_then(|n| n.split_once('.').map(|(_, ext)| ext.to_string()))
        .filter(|e| e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
    from_name.unwrap_or_else(|| match a.kind {
        voxflow_spec::types::ArtifactKind::Json => "json".into(),
        voxflow_spec::types::ArtifactKind::Text => "txt".into(),
        _ => "bin".into(),
    })
}

/// An artifact's own file name, when it is a plain one (no folders, nothing hidden).
fn plain_name(a: &ArtifactRef) -> Option<&str> {
    a.name.as_deref().filter(|n| {
        !n.is_empty()
            && !n.starts_with('.')
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    })
}

/// Writes the outputs; returns the paths written.
pub fn export_outputs(
    store: &ArtifactStore,
    outputs: &BTreeMap<String, Value>,
    dir: &Path,
) -> Result<Vec<PathBuf>, ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (name, value) in outputs {
        let artifacts = value.artifacts();
        let single = matches!(value, Value::Artifact(_));
        let names: Vec<Option<&str>> = artifacts.iter().map(|a| plain_name(a)).collect();
        let by_name = names.iter().all(Option::is_some)
            && (1..names.len()).all(|i| !names[..i].contains(&names[i]));
        for (i, a) in artifacts.iter().enumerate() {
            let dest = if single {
                dir.join(format!("{name}.{}", extension(a)))
            } else if by_name {
                dir.join(name).join(names[i].unwrap_or_default())
            } else {
                dir.join(name).join(format!("{i:04}.{}", extension(a)))
            };
            store
                .export(a, &dest)
                .map_err(|source| ExportError::Artifact {
                    output: name.clone(),
                    source,
                })?;
            written.push(dest);
        }
    }
    let summary = dir.join("outputs.json");
    let json =
        serde_json::to_vec_pretty(&Value::Map(outputs.clone()).to_json()).unwrap_or_default();
    let mut tmp = voxflow_artifact::output_tempfile(dir).map_err(io(dir))?;
    std::io::Write::write_all(&mut tmp, &json).map_err(io(&summary))?;
    tmp.persist(&summary).map_err(|e| ExportError::Io {
        path: summary.clone(),
        source: e.error,
    })?;
    written.push(summary);
    Ok(written)
}
