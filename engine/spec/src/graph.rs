//! Dependencies between the steps of one scope (the workflow's top level or a group), from the references
//! in their values and from `needs:`. Shared by the validator (cycle errors) and the planner (ordering and
//! which outputs of each step anything reads).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::diagnostic::Span;
use crate::expr::{Reference, Root};
use crate::model::{Step, StepAction, Workflow};

/// Every reference written anywhere in a step, nested steps included, with the span of the value holding it.
pub fn step_references(step: &Step) -> Vec<(&Reference, Span)> {
    let mut out = Vec::new();
    collect_step_references(step, &mut out);
    out
}

fn collect_step_references<'a>(step: &'a Step, out: &mut Vec<(&'a Reference, Span)>) {
    if let Some(w) = &step.when {
        out.extend(w.value.references().into_iter().map(|r| (r, w.span)));
    }
    if let Some(f) = &step.foreach {
        out.extend(f.value.references().into_iter().map(|r| (r, f.span)));
    }
    match &step.action {
        StepAction::Uses { inputs, with, .. } => {
            for a in inputs.iter().chain(with) {
                out.extend(a.value.references());
            }
        }
        StepAction::Group { steps, outputs } => {
            for s in steps {
                collect_step_references(s, out);
            }
            for o in outputs {
                out.extend(o.value.references());
            }
        }
    }
}

/// For each step id, the names of its outputs that something in the workflow reads: another step's inputs,
/// parameters, `when:` or `foreach:`, a group's outputs, or the workflow's outputs. Steps in different groups
/// that share an id share one set (it can only grow, so nothing read is ever left out).
pub fn read_outputs(workflow: &Workflow) -> BTreeMap<String, BTreeSet<String>> {
    let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut note = |r: &Reference| {
        if let Root::StepOutput { step, output } = &r.root {
            read.entry(step.clone()).or_default().insert(output.clone());
        }
    };
    for step in &workflow.steps {
        step_references(step).into_iter().for_each(|(r, _)| note(r));
    }
    for output in &workflow.outputs {
        output
            .value
            .references()
            .into_iter()
            .for_each(|(r, _)| note(r));
    }
    read
}

/// For each step of `steps`, the indexes of the sibling steps it depends on. References to steps outside
/// this scope, and unknown names, are ignored here (the validator reports the latter).
pub fn sibling_dependencies(steps: &[Step]) -> Vec<BTreeSet<usize>> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.value.as_str(), i))
        .collect();
    steps
        .iter()
        .map(|s| {
            let mut deps = BTreeSet::new();
            for (r, _) in step_references(s) {
                if let Root::StepOutput { step, .. } = &r.root {
                    if let Some(&i) = index.get(step.as_str()) {
                        deps.insert(i);
                    }
                }
            }
            for n in &s.needs {
                if let Some(&i) = index.get(n.value.as_str()) {
                    deps.insert(i);
                }
            }
            deps
        })
        .collect()
}

/// One cycle among the steps, as indexes in order, if there is any.
pub fn find_cycle(deps: &[BTreeSet<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; deps.len()];
    let mut path = Vec::new();
    fn visit(
        n: usize,
        deps: &[BTreeSet<usize>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[n] = Mark::Active;
        path.push(n);
        for &d in &deps[n] {
            match marks[d] {
                Mark::Active => {
                    let start = path.iter().position(|&p| p == d).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(d);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(d, deps, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[n] = Mark::Done;
        None
    }
    for n in 0..deps.len() {
        if marks[n] == Mark::New {
            if let Some(c) = visit(n, deps, &mut marks, &mut path) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cycles() {
        let deps = vec![
            BTreeSet::from([1]),
            BTreeSet::from([2]),
            BTreeSet::from([0]),
        ];
        assert_eq!(find_cycle(&deps), Some(vec![0, 1, 2, 0]));
        let deps = vec![BTreeSet::new(), BTreeSet::from([0]), BTreeSet::from([0, 1])];
        assert_eq!(find_cycle(&deps), None);
    }

    #[test]
    fn read_outputs_come_from_steps_groups_and_the_workflow() {
        let text = r#"
apiVersion: voxflow/v1
name: t
inputs: { d: { type: path } }
steps:
  - id: a
    uses: builtin/echo
    inputs: { x: "${{ inputs.d }}" }
  - id: g
    foreach: "${{ steps.a.outputs.list }}"
    steps:
      - id: b
        uses: builtin/echo
        when: "${{ steps.a.outputs.flag }}"
        inputs: { x: "${{ item }}" }
      - id: c
        uses: builtin/echo
        inputs: { x: "${{ steps.b.outputs.mask }}" }
    outputs: { r: "${{ steps.c.outputs.report }}" }
outputs:
  o: "p-${{ steps.g.outputs.r }}"
  q: "${{ steps.b.outputs.probability }}"
"#;
        let workflow = crate::parse_workflow(std::path::Path::new("t.yaml"), text).expect("parses");
        let read = read_outputs(&workflow);
        let names = |id: &str| read[id].iter().map(String::as_str).collect::<Vec<_>>();
        assert_eq!(names("a"), ["flag", "list"]);
        assert_eq!(names("b"), ["mask", "probability"]);
        assert_eq!(names("c"), ["report"]);
        assert_eq!(names("g"), ["r"]);
        assert!(!read.contains_key("d"));
    }
}
