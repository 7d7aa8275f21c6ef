//! Decodes the positioned YAML tree into the workflow model, reporting every shape error (unknown fields,
//! wrong types, bad durations, bad expressions) with its line and column instead of stopping at the first.

mod fields;

pub(crate) use fields::suggestion;

use self::fields::{literal, Fields};
use crate::diagnostic::{Diagnostics, Spanned};
use crate::model::*;
use crate::types::{DataType, InputType};
use crate::yaml::{Node, NodeKind};

/// Decodes one workflow file, collecting every error it finds in `d`.
pub(crate) struct Decoder<'s> {
    pub source: &'s str,
    pub d: Diagnostics,
    /// Names declared in the file whose definitions did not decode; later checks stay quiet about them.
    pub broken: BrokenNames,
}

/// Declared names whose definitions had errors (already reported).
#[derive(Debug, Default, Clone)]
pub struct BrokenNames {
    pub steps: Vec<String>,
    pub inputs: Vec<String>,
    pub params: Vec<String>,
}

impl Decoder<'_> {
    pub fn workflow(&mut self, root: &Node) -> Option<WorkflowParts> {
        let mut f = Fields::new(root, "the workflow", &mut self.d)?;
        if let Some(v) = f.required("apiVersion", &mut self.d) {
            if let Some(s) = self.string(v, "apiVersion") {
                if s.value != API_VERSION {
                    self.d.error(
                        v.span,
                        format!(
                            "unsupported apiVersion `{}`: this engine reads `{API_VERSION}`",
                            s.value
                        ),
                    );
                }
            }
        }
        let name = f
            .required("name", &mut self.d)
            .and_then(|n| self.string(n, "name"));
        let description = f
            .get("description")
            .and_then(|n| self.string(n, "description"))
            .map(|s| s.value);
        let inputs = f.get("inputs").map(|n| self.inputs(n)).unwrap_or_default();
        let params = f.get("params").map(|n| self.params(n)).unwrap_or_default();
        let steps = match f.required("steps", &mut self.d) {
            Some(n) => self.steps(n, "the workflow"),
            None => Vec::new(),
        };
        let outputs = f
            .get("outputs")
            .map(|n| self.outputs(n, "workflow outputs"))
            .unwrap_or_default();
        f.finish(
            &[
                "apiVersion",
                "name",
                "description",
                "inputs",
                "params",
                "steps",
                "outputs",
            ],
            &mut self.d,
        );
        Some(WorkflowParts {
            name: name.unwrap_or_else(|| Spanned::new(String::new(), root.span)),
            description,
            inputs,
            params,
            steps,
            outputs,
        })
    }

    fn named_entries<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
    ) -> Vec<(Spanned<String>, &'n Node)> {
        let Some(pairs) = node.as_mapping() else {
            self.d.error(
                node.span,
                format!(
                    "{what} must be a mapping of names to definitions, found {}",
                    node.describe()
                ),
            );
            return Vec::new();
        };
        pairs
            .iter()
            .filter_map(|(k, v)| {
                let name = self.string(k, &format!("a name in {what}"))?;
                self.check_identifier(&name, what);
                Some((name, v))
            })
            .collect()
    }

    fn check_identifier(&mut self, name: &Spanned<String>, what: &str) {
        let ok = name
            .value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            self.d.error(
                name.span,
                format!(
                    "`{}` is not a valid name in {what}: use letters, digits, `_` and `-`, starting with a letter",
                    name.value
                ),
            );
        }
    }

    fn inputs(&mut self, node: &Node) -> Vec<InputDecl> {
        let mut out = Vec::new();
        for (name, def) in self.named_entries(node, "inputs") {
            let what = format!("input `{}`", name.value);
            let Some(mut f) = Fields::new(def, &what, &mut self.d) else {
                continue;
            };
            let ty = f.required("type", &mut self.d).and_then(|t| {
                let s = self.string(t, "type")?;
                let parsed = InputType::parse(&s.value);
                if parsed.is_none() {
                    let names: Vec<&str> = InputType::ALL.iter().map(|t| t.name()).collect();
                    self.d.error(
                        t.span,
                        format!(
                            "unknown input type `{}`; expected one of: {}",
                            s.value,
                            names.join(", ")
                        ),
                    );
                }
                parsed
            });
            let required = f
                .get("required")
                .and_then(|n| self.boolean(n, "required"))
                .unwrap_or(true);
            let description = f
                .get("description")
                .and_then(|n| self.string(n, "description"))
                .map(|s| s.value);
            f.finish(&["type", "required", "description"], &mut self.d);
            if ty.is_none() {
                self.broken.inputs.push(name.value.clone());
            }
            if let Some(ty) = ty {
                out.push(InputDecl {
                    name,
                    ty,
                    required,
                    description,
                });
            }
        }
        out
    }

    fn params(&mut self, node: &Node) -> Vec<ParamDecl> {
        let mut out = Vec::new();
        for (name, def) in self.named_entries(node, "params") {
            let what = format!("parameter `{}`", name.value);
            let Some(mut f) = Fields::new(def, &what, &mut self.d) else {
                continue;
            };
            let ty = f.required("type", &mut self.d).and_then(|t| {
                let s = self.string(t, "type")?;
                let parsed = DataType::parse_param(&s.value);
                if parsed.is_none() {
                    self.d.error(
                        t.span,
                        format!("unknown parameter type `{}`; expected one of: number, integer, string, boolean", s.value),
                    );
                }
                parsed
            });
            let default = f.get("default").map(|n| Spanned::new(literal(n), n.span));
            let min = f.get("min").and_then(|n| self.number(n, "min"));
            let max = f.get("max").and_then(|n| self.number(n, "max"));
            let choices = f.get("enum").and_then(|n| match n.as_sequence() {
                Some(items) => Some(items.iter().map(literal).collect()),
                None => {
                    self.d.error(
                        n.span,
                        format!("enum must be a list, found {}", n.describe()),
                    );
                    None
                }
            });
            let description = f
                .get("description")
                .and_then(|n| self.string(n, "description"))
                .map(|s| s.value);
            f.finish(
                &["type", "default", "min", "max", "enum", "description"],
                &mut self.d,
            );
            if ty.is_none() {
                self.broken.params.push(name.value.clone());
            }
            if let Some(ty) = ty {
                out.push(ParamDecl {
                    span: name.span,
                    name,
                    ty,
                    default,
                    min,
                    max,
                    choices,
                    description,
                });
            }
        }
        out
    }

    fn outputs(&mut self, node: &Node, what: &str) -> Vec<OutputDecl> {
        let mut out = Vec::new();
        for (name, value) in self.named_entries(node, what) {
            if let Some(value) = self.template(value) {
                out.push(OutputDecl { name, value });
            }
        }
        out
    }

    fn arguments(&mut self, node: &Node, what: &str) -> Vec<Argument> {
        let mut out = Vec::new();
        for (name, value) in self.named_entries(node, what) {
            if let Some(value) = self.template(value) {
                out.push(Argument { name, value });
            }
        }
        out
    }

    pub fn steps(&mut self, node: &Node, owner: &str) -> Vec<Step> {
        let Some(items) = node.as_sequence() else {
            self.d.error(
                node.span,
                format!("steps of {owner} must be a list, found {}", node.describe()),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.d.error(node.span, format!("{owner} has no steps"));
        }
        items.iter().filter_map(|n| self.step(n)).collect()
    }

    fn step(&mut self, node: &Node) -> Option<Step> {
        let mut f = Fields::new(node, "a step", &mut self.d)?;
        let id = f
            .required("id", &mut self.d)
            .and_then(|n| self.string(n, "id"));
        if let Some(id) = &id {
            self.check_identifier(id, "step ids");
        }
        let label = id
            .as_ref()
            .map(|i| format!("step `{}`", i.value))
            .unwrap_or("a step".into());
        let uses = f.get("uses");
        let nested = f.get("steps");
        let action = match (uses, nested) {
            (Some(_), Some(n)) => {
                self.d.error(n.span, format!("{label} has both `uses` and `steps`; a step runs a plugin or a group of steps, not both"));
                None
            }
            (None, None) => {
                self.d.error(
                    node.span,
                    format!("{label} needs `uses: PLUGIN` or a list of `steps`"),
                );
                None
            }
            (Some(u), None) => {
                let plugin =
                    self.string(u, "uses")
                        .and_then(|s| match PluginRef::parse(&s.value) {
                            Ok(p) => Some(Spanned::new(p, s.span)),
                            Err(e) => {
                                self.d.error(s.span, e);
                                None
                            }
                        });
                let inputs = f
                    .get("inputs")
                    .map(|n| self.arguments(n, "inputs"))
                    .unwrap_or_default();
                let with = f
                    .get("with")
                    .map(|n| self.arguments(n, "with"))
                    .unwrap_or_default();
                plugin.map(|plugin| StepAction::Uses {
                    plugin,
                    inputs,
                    with,
                })
            }
            (None, Some(n)) => {
                let steps = self.steps(n, &label);
                let outputs = f
                    .get("outputs")
                    .map(|o| self.outputs(o, "group outputs"))
                    .unwrap_or_default();
                Some(StepAction::Group { steps, outputs })
            }
        };
        let needs = match f.get("needs") {
            None => Vec::new(),
            Some(n) => match (&n.kind, n.as_sequence()) {
                (_, Some(items)) => items
                    .iter()
                    .filter_map(|i| self.string(i, "an entry of needs"))
                    .collect(),
                (NodeKind::Scalar { .. }, None) => self.string(n, "needs").into_iter().collect(),
                _ => {
                    self.d.error(
                        n.span,
                        format!(
                            "needs must be a step id or a list of step ids, found {}",
                            n.describe()
                        ),
                    );
                    Vec::new()
                }
            },
        };
        let when = f.get("when").and_then(|n| self.expression(n, "when"));
        let foreach = f.get("foreach").and_then(|n| self.expression(n, "foreach"));
        let max_parallel = f
            .get("max_parallel")
            .and_then(|n| self.positive_int(n, "max_parallel"))
            .map(|n| n as usize);
        let retry = f
            .get("retry")
            .and_then(|n| self.retry(n))
            .unwrap_or_default();
        let timeout = f.get("timeout").and_then(|n| self.duration(n, "timeout"));
        let memory_mb = f
            .get("memory_mb")
            .and_then(|n| self.positive_int(n, "memory_mb"));
        let cache = f
            .get("cache")
            .and_then(|n| self.boolean(n, "cache"))
            .unwrap_or(false);
        let continue_on_error = f
            .get("continue_on_error")
            .and_then(|n| self.boolean(n, "continue_on_error"))
            .unwrap_or(false);
        let is_group = nested.is_some();
        let mut allowed = vec![
            "id",
            "needs",
            "when",
            "foreach",
            "max_parallel",
            "retry",
            "timeout",
            "cache",
            "continue_on_error",
        ];
        if is_group {
            allowed.extend(["steps", "outputs"]);
        } else {
            allowed.extend(["uses", "inputs", "with", "memory_mb"]);
        }
        f.finish(&allowed, &mut self.d);
        let (Some(id), Some(action)) = (id.clone(), action) else {
            if let Some(id) = id {
                self.broken.steps.push(id.value);
            }
            return None;
        };
        Some(Step {
            id,
            action,
            needs,
            when,
            foreach,
            max_parallel,
            retry,
            timeout,
            memory_mb,
            cache,
            continue_on_error,
            span: node.span,
        })
    }

    fn retry(&mut self, node: &Node) -> Option<RetryPolicy> {
        let mut f = Fields::new(node, "retry", &mut self.d)?;
        let mut policy = RetryPolicy::default();
        if let Some(n) = f.get("max_attempts") {
            policy.max_attempts = self.positive_int(n, "max_attempts")?.min(u32::MAX as u64) as u32;
        }
        if let Some(n) = f.get("backoff") {
            let s = self.string(n, "backoff")?;
            policy.backoff = match s.value.as_str() {
                "fixed" => Backoff::Fixed,
                "exponential" => Backoff::Exponential,
                other => {
                    self.d.error(
                        n.span,
                        format!("unknown backoff `{other}`; expected fixed or exponential"),
                    );
                    return None;
                }
            };
        }
        if let Some(n) = f.get("initial_delay") {
            policy.initial_delay = self.duration(n, "initial_delay")?;
        }
        if let Some(n) = f.get("max_delay") {
            policy.max_delay = self.duration(n, "max_delay")?;
        }
        f.finish(
            &["max_attempts", "backoff", "initial_delay", "max_delay"],
            &mut self.d,
        );
        Some(policy)
    }
}

/// The decoded parts of a workflow before the file facts are attached.
pub(crate) struct WorkflowParts {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub inputs: Vec<InputDecl>,
    pub params: Vec<ParamDecl>,
    pub steps: Vec<Step>,
    pub outputs: Vec<OutputDecl>,
}
