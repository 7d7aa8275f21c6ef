//! `builtin/load-file`, `builtin/load-text`, `builtin/load-json`: bring a file named by a workflow input into
//! the artifact store, checking that text is UTF-8 and JSON parses.

use std::path::Path;

use voxflow_spec::types::{ArtifactKind, DataType};
use voxflow_spec::{PortSpec, Value};

use super::{Builtin, Ports, RunFn};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

#[derive(Debug, Clone, Copy)]
pub enum Format {
    Bytes,
    Text,
    Json,
}

impl Format {
    fn step_name(self) -> &'static str {
        match self {
            Format::Bytes => "load-file",
            Format::Text => "load-text",
            Format::Json => "load-json",
        }
    }

    fn kind(self) -> ArtifactKind {
        match self {
            Format::Bytes => ArtifactKind::File,
            Format::Text => ArtifactKind::Text,
            Format::Json => ArtifactKind::Json,
        }
    }

    fn output(self) -> &'static str {
        match self {
            Format::Bytes => "file",
            Format::Text => "text",
            Format::Json => "json",
        }
    }
}

pub fn step(format: Format) -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "path",
            DataType::Path,
            "the file to load",
        )],
        params: vec![PortSpec::optional(
            "media_type",
            DataType::String,
            None,
            "media type to record",
        )],
        outputs: vec![PortSpec::required(
            format.output(),
            DataType::Artifact(format.kind()),
            "the file's content",
        )],
    };
    let run: RunFn = match format {
        Format::Bytes => |ctx, args| load(Format::Bytes, ctx, args),
        Format::Text => |ctx, args| load(Format::Text, ctx, args),
        Format::Json => |ctx, args| load(Format::Json, ctx, args),
    };
    Builtin::new(
        format.step_name(),
        "Stores a file as an artifact",
        ports,
        run,
    )
}

fn check_content(format: Format, path: &Path) -> Result<(), StepError> {
    let fail = |what: String| StepError::Failed(format!("{}: {what}", path.display()));
    match format {
        Format::Bytes => Ok(()),
        Format::Text | Format::Json => {
            let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
            let text = std::str::from_utf8(&bytes).map_err(|e| {
                fail(format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.valid_up_to()
                ))
            })?;
            if let Format::Json = format {
                serde_json::from_str::<serde_json::Value>(text)
                    .map_err(|e| fail(format!("not valid JSON: {e}")))?;
            }
            Ok(())
        }
    }
}

fn load(format: Format, ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let path = args.input_path("path")?;
    if !path.is_file() {
        return Err(StepError::Failed(format!(
            "{}: not a readable file",
            path.display()
        )));
    }
    check_content(format, &path)?;
    let media = args.param_str("media_type")?;
    let artifact = ctx.artifacts.put_file(&path, format.kind(), media)?;
    ctx.log(format!(
        "loaded {} ({} bytes)",
        path.display(),
        artifact.size
    ));
    Ok(StepOutputs::from([(
        format.output().to_string(),
        Value::artifact(artifact),
    )]))
}
