//! Semantic checks of a decoded workflow: names, references, the DAG, plugin signatures and types. Every
//! problem is reported (with its position), not just the first.

mod types;

pub use types::check_param_value;

use self::types::article;

use std::collections::{HashMap, HashSet};

use crate::catalog::{PortSpec, StepCatalog, StepSignature};
use crate::decode::{suggestion, BrokenNames};
use crate::diagnostic::{Diagnostics, Span};
use crate::graph::{find_cycle, sibling_dependencies};
use crate::model::{Argument, Step, StepAction, Workflow};
use crate::types::DataType;

/// The steps visible from a point in the workflow: this scope's steps, then the enclosing scopes'.
struct Scope<'a> {
    steps: &'a [Step],
    parent: Option<&'a Scope<'a>>,
    /// The type of `item` where a `foreach` is in effect.
    item: Option<DataType>,
}

impl<'a> Scope<'a> {
    fn find(&self, id: &str) -> Option<&'a Step> {
        self.steps
            .iter()
            .find(|s| s.id.value == id)
            .or_else(|| self.parent.and_then(|p| p.find(id)))
    }

    fn item(&self) -> Option<&DataType> {
        self.item
            .as_ref()
            .or_else(|| self.parent.and_then(|p| p.item()))
    }
}

pub(crate) struct Checker<'w> {
    wf: &'w Workflow,
    catalog: &'w dyn StepCatalog,
    d: &'w mut Diagnostics,
    signatures: HashMap<String, StepSignature>,
    /// Every step id in the file, with the group holding it (None at top level).
    all_steps: HashMap<String, Option<String>>,
    group_outputs: HashMap<(String, String), DataType>,
    broken: &'w BrokenNames,
}

impl<'w> Checker<'w> {
    pub fn new(
        wf: &'w Workflow,
        catalog: &'w dyn StepCatalog,
        broken: &'w BrokenNames,
        d: &'w mut Diagnostics,
    ) -> Self {
        Checker {
            wf,
            catalog,
            d,
            signatures: HashMap::new(),
            all_steps: HashMap::new(),
            group_outputs: HashMap::new(),
            broken,
        }
    }

    pub fn run(mut self) {
        self.check_declarations();
        self.register_steps(&self.wf.steps, None);
        let top = Scope {
            steps: &self.wf.steps,
            parent: None,
            item: None,
        };
        self.check_scope(&top);
        let mut seen = HashSet::new();
        for out in &self.wf.outputs {
            if !seen.insert(out.name.value.as_str()) {
                self.d.error(
                    out.name.span,
                    format!("output `{}` is declared twice", out.name.value),
                );
            }
            self.infer_template(&out.value, &top);
        }
    }

    fn check_declarations(&mut self) {
        let wf = self.wf;
        if wf.name.value.is_empty() {
            return;
        }
        let mut names = HashSet::new();
        for i in &wf.inputs {
            if !names.insert(i.name.value.as_str()) {
                self.d.error(
                    i.name.span,
                    format!("input `{}` is declared twice", i.name.value),
                );
            }
        }
        let mut names = HashSet::new();
        for p in &wf.params {
            if !names.insert(p.name.value.as_str()) {
                self.d.error(
                    p.name.span,
                    format!("parameter `{}` is declared twice", p.name.value),
                );
            }
            if let (Some(min), Some(max)) = (p.min, p.max) {
                if min > max {
                    self.d.error(
                        p.span,
                        format!(
                            "parameter `{}` has min {min} greater than max {max}",
                            p.name.value
                        ),
                    );
                }
            }
            if let Some(default) = &p.default {
                if let Err(msg) =
                    check_param_value(&p.ty, p.min, p.max, p.choices.as_deref(), &default.value)
                {
                    self.d.error(
                        default.span,
                        format!("default of parameter `{}`: {msg}", p.name.value),
                    );
                }
            }
        }
    }

    fn register_steps(&mut self, steps: &'w [Step], group: Option<&str>) {
        for s in steps {
            let id = &s.id.value;
            if self.all_steps.contains_key(id) {
                let first = find_step_span(&self.wf.steps, id).unwrap_or(s.id.span);
                if first != s.id.span {
                    self.d.error(
                        s.id.span,
                        format!("step id `{id}` is already used at line {}", first.line),
                    );
                }
                continue;
            }
            self.all_steps.insert(id.clone(), group.map(str::to_string));
            if let StepAction::Uses { plugin, .. } = &s.action {
                match self.catalog.signature(&plugin.value) {
                    Ok(sig) => {
                        self.signatures.insert(id.clone(), sig);
                    }
                    Err(msg) => self.d.error(plugin.span, format!("step `{id}`: {msg}")),
                }
            }
            self.register_steps(s.nested_steps(), Some(id));
        }
    }

    fn check_scope(&mut self, scope: &Scope<'_>) {
        let deps = sibling_dependencies(scope.steps);
        let order: Vec<usize> = match find_cycle(&deps) {
            Some(cycle) => {
                let names: Vec<&str> = cycle
                    .iter()
                    .map(|&i| scope.steps[i].id.value.as_str())
                    .collect();
                let first = &scope.steps[cycle[0]];
                if cycle.len() == 2 {
                    self.d.error(
                        first.id.span,
                        format!("step `{}` depends on itself", names[0]),
                    );
                } else {
                    self.d.error(
                        first.id.span,
                        format!("steps form a cycle: {}", names.join(" -> ")),
                    );
                }
                (0..scope.steps.len()).collect()
            }
            None => topological(&deps),
        };
        for i in order {
            self.check_step(&scope.steps[i], scope);
        }
    }

    fn check_step(&mut self, step: &Step, scope: &Scope<'_>) {
        let id = step.id.value.as_str();
        for n in &step.needs {
            if n.value == id {
                self.d.error(n.span, format!("step `{id}` needs itself"));
            } else if !scope.steps.iter().any(|s| s.id.value == n.value)
                && !self.broken.steps.contains(&n.value)
            {
                let names: Vec<&str> = scope.steps.iter().map(|s| s.id.value.as_str()).collect();
                let hint = suggestion(&n.value, &names)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                self.d.error(
                    n.span,
                    format!(
                        "step `{id}` needs `{}`, which is not a step here{hint}",
                        n.value
                    ),
                );
            }
        }
        let item = match &step.foreach {
            Some(f) => {
                let mut ty = DataType::Any;
                for r in f.value.references() {
                    ty = self
                        .infer_reference(r, f.span, scope)
                        .unwrap_or(DataType::Any);
                }
                match ty {
                    DataType::List(inner) => Some(*inner),
                    DataType::Any => Some(DataType::Any),
                    other => {
                        self.d.error(f.span, format!("foreach of step `{id}` needs a list, but the expression is a {other}"));
                        Some(DataType::Any)
                    }
                }
            }
            None => None,
        };
        let inner = Scope {
            steps: &[],
            parent: Some(scope),
            item,
        };
        if let Some(w) = &step.when {
            for r in w.value.references() {
                self.infer_reference(r, w.span, &inner);
            }
        }
        match &step.action {
            StepAction::Uses { inputs, with, .. } => {
                let sig = self.signatures.get(id).cloned();
                self.check_arguments(
                    id,
                    inputs,
                    sig.as_ref().map(|s| &s.inputs[..]),
                    sig.as_ref().map(|s| &s.params[..]),
                    "input",
                    &inner,
                );
                self.check_arguments(
                    id,
                    with,
                    sig.as_ref().map(|s| &s.params[..]),
                    sig.as_ref().map(|s| &s.inputs[..]),
                    "parameter",
                    &inner,
                );
                if let Some(sig) = &sig {
                    for port in sig.inputs.iter().filter(|p| p.required) {
                        if !inputs.iter().any(|a| a.name.value == port.name) {
                            self.d.error(
                                step.span,
                                format!(
                                    "step `{id}` is missing the input `{}` ({}) of {}",
                                    port.name, port.ty, sig.plugin
                                ),
                            );
                        }
                    }
                    for port in sig.params.iter().filter(|p| p.required) {
                        if !with.iter().any(|a| a.name.value == port.name) {
                            self.d.error(step.span, format!("step `{id}` is missing the parameter `{}` ({}) of {} under `with`", port.name, port.ty, sig.plugin));
                        }
                    }
                }
            }
            StepAction::Group { steps, outputs } => {
                let group = Scope {
                    steps,
                    parent: Some(&inner),
                    item: None,
                };
                self.check_scope(&group);
                let mut seen = HashSet::new();
                for o in outputs {
                    if !seen.insert(o.name.value.as_str()) {
                        self.d.error(
                            o.name.span,
                            format!(
                                "output `{}` of group `{id}` is declared twice",
                                o.name.value
                            ),
                        );
                    }
                    let ty = self.infer_template(&o.value, &group);
                    self.group_outputs
                        .insert((id.to_string(), o.name.value.clone()), ty);
                }
            }
        }
    }

    fn check_arguments(
        &mut self,
        step: &str,
        args: &[Argument],
        ports: Option<&[PortSpec]>,
        other_ports: Option<&[PortSpec]>,
        kind: &str,
        scope: &Scope<'_>,
    ) {
        let mut seen = HashSet::new();
        for a in args {
            let name = a.name.value.as_str();
            if !seen.insert(name) {
                self.d.error(
                    a.name.span,
                    format!("{kind} `{name}` of step `{step}` is given twice"),
                );
            }
            let actual = self.infer_template(&a.value, scope);
            let Some(ports) = ports else { continue };
            match ports.iter().find(|p| p.name == name) {
                Some(port) => {
                    if !port.ty.accepts(&actual) {
                        self.d.error(
                            a.name.span,
                            format!(
                                "{kind} `{name}` of step `{step}` expects {}, but it is given {}",
                                article(&port.ty),
                                article(&actual)
                            ),
                        );
                    }
                }
                None => {
                    let in_other = other_ports.is_some_and(|o| o.iter().any(|p| p.name == name));
                    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
                    let hint = if in_other {
                        let section = if kind == "input" { "with" } else { "inputs" };
                        format!("; `{name}` belongs under `{section}:`")
                    } else if let Some(s) = suggestion(name, &names) {
                        format!("; did you mean `{s}`?")
                    } else if names.is_empty() {
                        format!("; it takes no {kind}s")
                    } else {
                        format!("; expected one of: {}", names.join(", "))
                    };
                    self.d.error(
                        a.name.span,
                        format!("step `{step}` has no {kind} `{name}`{hint}"),
                    );
                }
            }
        }
    }
}

fn topological(deps: &[std::collections::BTreeSet<usize>]) -> Vec<usize> {
    let mut done = vec![false; deps.len()];
    let mut order = Vec::with_capacity(deps.len());
    while order.len() < deps.len() {
        let before = order.len();
        for i in 0..deps.len() {
            if !done[i] && deps[i].iter().all(|&d| done[d]) {
                done[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            break;
        }
    }
    order
}

fn find_step_span(steps: &[Step], id: &str) -> Option<Span> {
    for s in steps {
        if s.id.value == id {
            return Some(s.id.span);
        }
        if let Some(span) = find_step_span(s.nested_steps(), id) {
            return Some(span);
        }
    }
    None
}
