//! `builtin/file-info`: a JSON summary of a file artifact (size, hash, and the format its signature bytes
//! reveal: DICOM Part 10, NIfTI-1/2, PNG, JPEG, gzip), used to inventory incoming folders.

use std::io::Read;

use voxflow_spec::types::{ArtifactKind, DataType};
use voxflow_spec::{PortSpec, Value};

use super::{Builtin, Ports};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

pub fn step() -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "file",
            DataType::Artifact(ArtifactKind::File),
            "the file",
        )],
        params: vec![],
        outputs: vec![PortSpec::required(
            "info",
            DataType::Artifact(ArtifactKind::Json),
            "the description",
        )],
    };
    Builtin::new(
        "file-info",
        "Describes a file: size, sha256 and detected format",
        ports,
        run,
    )
}

/// The format named by a file's first bytes.
pub fn detect_format(head: &[u8]) -> &'static str {
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        "dicom"
    } else if head.len() >= 348 && (&head[344..348] == b"n+1\0" || &head[344..348] == b"ni1\0") {
        "nifti1"
    } else if head.len() >= 8 && &head[4..8] == b"n+2\0" {
        "nifti2"
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "png"
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpeg"
    } else if head.starts_with(&[0x1F, 0x8B]) {
        "gzip"
    } else {
        "unknown"
    }
}

fn run(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let file = args.input_artifact("file")?;
    let path = ctx.artifacts.path_of(&file.hash)?;
    let mut head = Vec::with_capacity(1024);
    std::fs::File::open(&path)
        .and_then(|f| f.take(1024).read_to_end(&mut head))
        .map_err(|e| {
            StepError::Failed(format!("cannot read artifact sha256:{}: {e}", file.hash))
        })?;
    let info = serde_json::json!({
        "name": file.name,
        "size": file.size,
        "sha256": file.hash,
        "format": detect_format(&head),
    });
    let bytes = serde_json::to_vec_pretty(&info).map_err(|e| StepError::Failed(e.to_string()))?;
    let out = ctx
        .artifacts
        .put_bytes(&bytes, ArtifactKind::Json, None, Some("info.json"))?;
    Ok(StepOutputs::from([(
        "info".to_string(),
        Value::artifact(out),
    )]))
}

#[cfg(test)]
mod tests {
    use super::detect_format;

    #[test]
    fn formats_by_signature() {
        let mut dicom = vec![0u8; 132];
        dicom[128..].copy_from_slice(b"DICM");
        assert_eq!(detect_format(&dicom), "dicom");
        assert_eq!(detect_format(b"\x89PNG\r\n\x1a\nrest"), "png");
        assert_eq!(detect_format(b"short"), "unknown");
    }
}
