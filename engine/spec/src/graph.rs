//! Dependencies between the steps of one scope (the workflow's top level or a group), from the references
//! in their values and from `needs:`. Shared by the validator (cycle errors) and the planner (ordering).

use std::collections::{BTreeSet, HashMap};

use crate::diagnostic::Span;
use crate::expr::{Reference, Root};
use crate::model::{Step, StepAction};

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
}
