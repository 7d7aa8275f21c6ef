//! The plan of a run: the validated workflow turned into scopes of steps with their implementations
//! resolved and their dependencies computed, plus the checked inputs and parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use voxflow_spec::graph::{read_outputs, sibling_dependencies};
use voxflow_spec::model::{Step, StepAction, Workflow};
use voxflow_spec::Value;
use voxflow_steps::StepRegistry;

use crate::request::{resolve_inputs, resolve_params, RunRequest};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{}", .0.join("\n"))]
    Request(Vec<String>),
    #[error("step `{step}`: {message}")]
    Plugin { step: String, message: String },
}

/// One step of a scope, ready to execute.
pub struct PlanStep {
    pub step: Step,
    /// The step's id prefixed with the ids of the groups holding it (`per_study/segment`).
    pub path: String,
    pub kind: PlanStepKind,
    /// The names of this step's outputs that the workflow reads (see `graph::read_outputs`).
    pub read_outputs: BTreeSet<String>,
}

pub enum PlanStepKind {
    Uses(Arc<dyn voxflow_steps::Step>),
    Group(Arc<PlanScope>),
}

/// The steps of the workflow's top level or of one group, with each step's sibling dependencies.
pub struct PlanScope {
    pub steps: Vec<Arc<PlanStep>>,
    pub deps: Vec<BTreeSet<usize>>,
}

impl PlanScope {
    /// How many plugin steps the scope holds, groups counted through (fan-out not expanded).
    pub fn step_count(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match &s.kind {
                PlanStepKind::Uses(_) => 1,
                PlanStepKind::Group(g) => g.step_count(),
            })
            .sum()
    }
}

pub struct Plan {
    pub workflow: Arc<Workflow>,
    pub inputs: BTreeMap<String, Value>,
    pub params: BTreeMap<String, Value>,
    pub root: Arc<PlanScope>,
}

impl Plan {
    /// Plans a validated workflow. Every problem with the request is reported at once.
    pub fn new(
        workflow: Arc<Workflow>,
        registry: &StepRegistry,
        request: &RunRequest,
    ) -> Result<Plan, PlanError> {
        let inputs = resolve_inputs(&workflow, &request.inputs);
        let params = resolve_params(&workflow, &request.params);
        let (inputs, params) = match (inputs, params) {
            (Ok(i), Ok(p)) => (i, p),
            (i, p) => {
                let mut all = Vec::new();
                for r in [i.err(), p.err()].into_iter().flatten() {
                    if let PlanError::Request(v) = r {
                        all.extend(v);
                    }
                }
                return Err(PlanError::Request(all));
            }
        };
        let read = read_outputs(&workflow);
        let root = plan_scope(&workflow.steps, "", registry, &read)?;
        Ok(Plan {
            workflow,
            inputs,
            params,
            root,
        })
    }
}

fn plan_scope(
    steps: &[Step],
    prefix: &str,
    registry: &StepRegistry,
    read: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Arc<PlanScope>, PlanError> {
    let mut planned = Vec::with_capacity(steps.len());
    for step in steps {
        let path = format!("{prefix}{}", step.id.value);
        let kind = match &step.action {
            StepAction::Uses { plugin, .. } => {
                PlanStepKind::Uses(registry.resolve(&plugin.value).map_err(|message| {
                    PlanError::Plugin {
                        step: path.clone(),
                        message,
                    }
                })?)
            }
            StepAction::Group { steps, .. } => {
                PlanStepKind::Group(plan_scope(steps, &format!("{path}/"), registry, read)?)
            }
        };
        planned.push(Arc::new(PlanStep {
            step: step.clone(),
            path,
            kind,
            read_outputs: read.get(&step.id.value).cloned().unwrap_or_default(),
        }));
    }
    Ok(Arc::new(PlanScope {
        steps: planned,
        deps: sibling_dependencies(steps),
    }))
}
