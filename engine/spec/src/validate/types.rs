//! The types of values in a workflow: what each template, reference and step output yields, checked against
//! the ports and parameters they feed, and a parameter value against its type, range and choices.

use super::{Checker, Scope};
use crate::decode::suggestion;
use crate::diagnostic::Span;
use crate::expr::{Reference, Root, Segment};
use crate::model::StepAction;
use crate::template::{Part, Template};
use crate::types::DataType;
use crate::value::Value;

/// Type inference of templates and references.
impl Checker<'_> {
    pub(super) fn infer_template(&mut self, t: &Template, scope: &Scope<'_>) -> DataType {
        match t {
            Template::Literal(v) => literal_type(v),
            Template::Expr { expr, span } => {
                let refs = expr.references();
                let is_single_ref = matches!(expr, crate::expr::Expr::Ref(_));
                let mut ty = DataType::Any;
                for r in refs {
                    ty = self
                        .infer_reference(r, *span, scope)
                        .unwrap_or(DataType::Any);
                }
                if is_single_ref {
                    ty
                } else if matches!(expr, crate::expr::Expr::Literal(_)) {
                    DataType::Any
                } else {
                    DataType::Boolean
                }
            }
            Template::Interpolated { parts, span } => {
                for p in parts {
                    if let Part::Expr(e) = p {
                        for r in e.references() {
                            self.infer_reference(r, *span, scope);
                        }
                    }
                }
                DataType::String
            }
            Template::List(items) => {
                for i in items {
                    self.infer_template(i, scope);
                }
                DataType::List(Box::new(DataType::Any))
            }
            Template::Map(pairs) => {
                for (_, v) in pairs {
                    self.infer_template(v, scope);
                }
                DataType::Any
            }
        }
    }

    /// The type of a reference, or None after reporting why it is wrong.
    pub(super) fn infer_reference(
        &mut self,
        r: &Reference,
        span: Span,
        scope: &Scope<'_>,
    ) -> Option<DataType> {
        let base = match &r.root {
            Root::Input(name) if self.broken.inputs.contains(name) => return None,
            Root::Param(name) if self.broken.params.contains(name) => return None,
            Root::StepOutput { step, .. } if self.broken.steps.contains(step) => return None,
            Root::Input(name) => match self.wf.input(name) {
                Some(decl) => {
                    if let Some(Segment::Field(f)) = r.rest.first() {
                        if f == "files" && decl.ty.is_folder() {
                            return Some(follow(
                                DataType::List(Box::new(DataType::Path)),
                                &r.rest[1..],
                            ));
                        }
                        self.d.error(
                            span,
                            format!(
                                "`{r}`: input `{name}` ({}) has no field `{f}`{}",
                                decl.ty.name(),
                                if decl.ty.is_folder() {
                                    "; it has `files`"
                                } else {
                                    ""
                                }
                            ),
                        );
                        return None;
                    }
                    DataType::Input(decl.ty)
                }
                None => {
                    let names: Vec<&str> = self
                        .wf
                        .inputs
                        .iter()
                        .map(|i| i.name.value.as_str())
                        .collect();
                    let hint = suggestion(name, &names)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    self.d.error(span, format!("`{r}` refers to an input `{name}` that the workflow does not declare{hint}"));
                    return None;
                }
            },
            Root::Param(name) => match self.wf.param(name) {
                Some(decl) => decl.ty.clone(),
                None => {
                    let names: Vec<&str> = self
                        .wf
                        .params
                        .iter()
                        .map(|p| p.name.value.as_str())
                        .collect();
                    let hint = suggestion(name, &names)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    self.d.error(span, format!("`{r}` refers to a parameter `{name}` that the workflow does not declare{hint}"));
                    return None;
                }
            },
            Root::Item => match scope.item() {
                Some(t) => t.clone(),
                None => {
                    self.d.error(
                        span,
                        format!("`{r}` is only defined inside a step with `foreach`"),
                    );
                    return None;
                }
            },
            Root::Index => match scope.item() {
                Some(_) => DataType::Integer,
                None => {
                    self.d
                        .error(span, "`index` is only defined inside a step with `foreach`");
                    return None;
                }
            },
            Root::StepOutput { step, output } => {
                self.step_output_type(r, step, output, span, scope)?
            }
        };
        Some(follow(base, &r.rest))
    }

    fn step_output_type(
        &mut self,
        r: &Reference,
        step: &str,
        output: &str,
        span: Span,
        scope: &Scope<'_>,
    ) -> Option<DataType> {
        let Some(target) = scope.find(step) else {
            match self.all_steps.get(step) {
                Some(Some(group)) => self.d.error(span, format!(
                    "`{r}`: step `{step}` is inside group `{group}` and cannot be seen from here; publish it in the outputs of `{group}`")),
                _ => {
                    let names: Vec<&str> = self.all_steps.keys().map(String::as_str).collect();
                    let hint = suggestion(step, &names).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                    self.d.error(span, format!("`{r}` refers to a step `{step}` that does not exist{hint}"));
                }
            }
            return None;
        };
        let ty = match &target.action {
            StepAction::Uses { plugin, .. } => {
                let sig = self.signatures.get(step)?;
                match sig.output(output) {
                    Some(p) => p.ty.clone(),
                    None => {
                        let names: Vec<&str> =
                            sig.outputs.iter().map(|p| p.name.as_str()).collect();
                        self.d.error(span, format!(
                            "`{r}`: step `{step}` ({}) has no output `{output}`; its outputs are: {}",
                            plugin.value.name, names.join(", ")));
                        return None;
                    }
                }
            }
            StepAction::Group { outputs, .. } => {
                if !outputs.iter().any(|o| o.name.value == output) {
                    let names: Vec<&str> = outputs.iter().map(|o| o.name.value.as_str()).collect();
                    self.d.error(
                        span,
                        format!(
                            "`{r}`: group `{step}` has no output `{output}`; its outputs are: {}",
                            if names.is_empty() {
                                "(none)".to_string()
                            } else {
                                names.join(", ")
                            }
                        ),
                    );
                    return None;
                }
                self.group_outputs
                    .get(&(step.to_string(), output.to_string()))
                    .cloned()
                    .unwrap_or(DataType::Any)
            }
        };
        Some(if target.foreach.is_some() {
            DataType::List(Box::new(ty))
        } else {
            ty
        })
    }
}

/// The type reached by indexing `ty` with `rest`.
fn follow(mut ty: DataType, rest: &[Segment]) -> DataType {
    for seg in rest {
        ty = match (ty, seg) {
            (DataType::List(inner), Segment::Index(_)) => *inner,
            _ => DataType::Any,
        };
    }
    ty
}

/// The type's name with its article, for messages ("an integer", "a volume").
pub(super) fn article(ty: &DataType) -> String {
    let s = ty.to_string();
    let vowel = s.starts_with(['a', 'e', 'i', 'o', 'u']);
    match ty {
        DataType::List(_) | DataType::Any => s,
        _ if vowel => format!("an {s}"),
        _ => format!("a {s}"),
    }
}

/// The type of a literal value.
fn literal_type(v: &Value) -> DataType {
    match v {
        Value::Null => DataType::Any,
        Value::Bool(_) => DataType::Boolean,
        Value::Number(n) if n.fract() == 0.0 => DataType::Integer,
        Value::Number(_) => DataType::Number,
        Value::String(_) => DataType::String,
        Value::List(_) => DataType::List(Box::new(DataType::Any)),
        Value::Map(_) => DataType::Any,
        Value::Artifact(a) => DataType::Artifact(a.artifact.kind),
    }
}

/// Whether `value` is allowed for a parameter of this type, range and choices. Used for defaults here and
/// for `--param` values at run time.
pub fn check_param_value(
    ty: &DataType,
    min: Option<f64>,
    max: Option<f64>,
    choices: Option<&[Value]>,
    value: &Value,
) -> Result<(), String> {
    if !ty.accepts(&literal_type(value)) {
        return Err(format!(
            "expected {}, found {} `{value}`",
            article(ty),
            value.type_name()
        ));
    }
    if let Value::Number(n) = value {
        if let Some(min) = min.filter(|m| n < m) {
            return Err(format!("{n} is below the minimum {min}"));
        }
        if let Some(max) = max.filter(|m| n > m) {
            return Err(format!("{n} is above the maximum {max}"));
        }
    }
    if let Some(choices) = choices {
        if !choices.contains(value) {
            let names: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
            return Err(format!("`{value}` is not one of: {}", names.join(", ")));
        }
    }
    Ok(())
}
