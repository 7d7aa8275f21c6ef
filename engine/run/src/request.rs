//! What a user asks to run: a workflow plus `--input NAME=VALUE` and `--param NAME=VALUE` strings, checked
//! against the workflow's declarations and turned into typed values.

use std::collections::BTreeMap;
use std::path::Path;

use voxflow_spec::model::Workflow;
use voxflow_spec::types::{DataType, InputType};
use voxflow_spec::{check_param_value, Value};

use crate::plan::PlanError;

/// A run request with values still as the user typed them.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub inputs: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
}

/// Splits `NAME=VALUE`.
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// Checks the inputs against the workflow: all required given, none unknown, paths present and of the right
/// sort. Paths become absolute so that the run record means the same from anywhere.
pub(crate) fn resolve_inputs(
    wf: &Workflow,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Value>, PlanError> {
    let mut problems = Vec::new();
    for name in given.keys() {
        if wf.input(name).is_none() {
            let declared: Vec<&str> = wf.inputs.iter().map(|i| i.name.value.as_str()).collect();
            problems.push(format!(
                "input `{name}` is not declared by workflow `{}` (it declares: {})",
                wf.name.value,
                if declared.is_empty() {
                    "nothing".to_string()
                } else {
                    declared.join(", ")
                }
            ));
        }
    }
    let mut values = BTreeMap::new();
    for decl in &wf.inputs {
        let name = &decl.name.value;
        let Some(raw) = given.get(name) else {
            if decl.required {
                problems.push(format!(
                    "input `{name}` ({}) is required: pass --input {name}=PATH",
                    decl.ty.name()
                ));
            }
            values.insert(name.clone(), Value::Null);
            continue;
        };
        match check_input_path(decl.ty, Path::new(raw)) {
            Ok(abs) => {
                values.insert(name.clone(), Value::String(abs));
            }
            Err(e) => problems.push(format!("input `{name}`: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(PlanError::Request(problems))
    }
}

fn check_input_path(ty: InputType, path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let wants_dir = matches!(ty, InputType::DicomFolder | InputType::DicomSeries);
    let wants_file = matches!(
        ty,
        InputType::Nifti | InputType::Image | InputType::Text | InputType::Json
    );
    if wants_dir && !meta.is_dir() {
        return Err(format!(
            "{} is not a folder (a {} is a folder of files)",
            path.display(),
            ty.name()
        ));
    }
    if wants_file && !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let abs = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(abs.display().to_string())
}

/// Parses `--param` strings by the declared type, fills defaults, checks ranges and choices.
pub(crate) fn resolve_params(
    wf: &Workflow,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Value>, PlanError> {
    let mut problems = Vec::new();
    for name in given.keys() {
        if wf.param(name).is_none() {
            problems.push(format!(
                "parameter `{name}` is not declared by workflow `{}`",
                wf.name.value
            ));
        }
    }
    let mut values = BTreeMap::new();
    for decl in &wf.params {
        let name = &decl.name.value;
        let value = match given.get(name) {
            Some(raw) => match parse_typed(&decl.ty, raw) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("parameter `{name}`: {e}"));
                    continue;
                }
            },
            None => match &decl.default {
                Some(d) => d.value.clone(),
                None => {
                    problems.push(format!(
                        "parameter `{name}` has no default: pass --param {name}=VALUE"
                    ));
                    continue;
                }
            },
        };
        if let Err(e) = check_param_value(
            &decl.ty,
            decl.min,
            decl.max,
            decl.choices.as_deref(),
            &value,
        ) {
            problems.push(format!("parameter `{name}`: {e}"));
            continue;
        }
        values.insert(name.clone(), value);
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(PlanError::Request(problems))
    }
}

fn parse_typed(ty: &DataType, raw: &str) -> Result<Value, String> {
    match ty {
        DataType::Number | DataType::Integer => {
            let n: f64 = raw
                .trim()
                .parse()
                .map_err(|_| format!("`{raw}` is not a number"))?;
            if !n.is_finite() {
                return Err(format!("`{raw}` is not a finite number"));
            }
            if *ty == DataType::Integer && n.fract() != 0.0 {
                return Err(format!("`{raw}` is not a whole number"));
            }
            Ok(Value::Number(n))
        }
        DataType::Boolean => match raw.trim() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not true or false")),
        },
        _ => Ok(Value::String(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_parsing() {
        assert_eq!(
            parse_typed(&DataType::Integer, "3").unwrap(),
            Value::Number(3.0)
        );
        assert!(parse_typed(&DataType::Integer, "3.5").is_err());
        assert!(parse_typed(&DataType::Number, "NaN").is_err());
        assert_eq!(
            parse_typed(&DataType::Boolean, "yes").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            parse_assignment("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_assignment("=x").is_err());
    }
}
