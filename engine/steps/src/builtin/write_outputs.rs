//! `builtin/write-outputs`: copies artifacts to a folder (each through a temporary name and a rename), named
//! by the artifact's suggested name or its hash.

use std::path::{Component, Path, PathBuf};

use voxflow_spec::types::DataType;
use voxflow_spec::{PortSpec, Value};

use super::{Builtin, Ports};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

pub fn step() -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "artifacts",
            DataType::Any,
            "what to write",
        )],
        params: vec![
            PortSpec::required(
                "dir",
                DataType::String,
                "the destination folder (created if missing)",
            ),
            PortSpec::optional("prefix", DataType::String, None, "a file name prefix"),
        ],
        outputs: vec![PortSpec::required(
            "files",
            DataType::List(Box::new(DataType::Path)),
            "the written paths",
        )],
    };
    Builtin::new(
        "write-outputs",
        "Writes artifacts (one, a list, or a mapping of them) to a folder",
        ports,
        run,
    )
}

/// A file name that cannot escape the destination folder.
pub fn safe_file_name(name: &str) -> Option<String> {
    let p = Path::new(name);
    let mut comps = p.components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(n)), None) => n.to_str().map(str::to_string),
        _ => None,
    }
}

fn run(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let dir = PathBuf::from(args.param_str("dir")?.unwrap_or("."));
    let prefix = args.param_str("prefix")?.unwrap_or_default();
    let value = args.input("artifacts")?;
    let mut written = Vec::new();
    for (i, a) in value.artifacts().into_iter().enumerate() {
        ctx.check_cancelled()?;
        let base = a
            .name
            .as_deref()
            .and_then(safe_file_name)
            .unwrap_or_else(|| a.hash[..16].to_string());
        let dest = dir.join(format!("{prefix}{i:04}-{base}"));
        ctx.artifacts.export(a, &dest)?;
        written.push(Value::String(dest.display().to_string()));
    }
    ctx.log(format!(
        "wrote {} files to {}",
        written.len(),
        dir.display()
    ));
    Ok(StepOutputs::from([(
        "files".to_string(),
        Value::List(written),
    )]))
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn names_cannot_escape() {
        assert_eq!(safe_file_name("a.json").as_deref(), Some("a.json"));
        assert_eq!(safe_file_name("../etc/passwd"), None);
        assert_eq!(safe_file_name("/abs"), None);
        assert_eq!(safe_file_name("x/y"), None);
    }
}
