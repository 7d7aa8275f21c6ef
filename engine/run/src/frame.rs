//! The values visible while a scope runs: the run's inputs and parameters, the results of steps that have
//! finished (in this scope and enclosing ones), and the current `foreach` item.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use voxflow_spec::expr::{follow_segments, EvalError, Reference, Root, Scope, Segment};
use voxflow_spec::Value;

/// How a step ended, as later steps see it.
#[derive(Debug, Clone)]
pub(crate) enum StepResult {
    Done(BTreeMap<String, Value>),
    Skipped,
    /// Failed; `tolerated` when the step has `continue_on_error` (its outputs read as null).
    Failed {
        message: String,
        tolerated: bool,
    },
    Cancelled,
}

/// Inputs and parameters of the run, shared by every frame.
pub(crate) struct RunValues {
    pub inputs: BTreeMap<String, Value>,
    pub params: BTreeMap<String, Value>,
    listings: Mutex<HashMap<String, Value>>,
}

impl RunValues {
    pub fn new(inputs: BTreeMap<String, Value>, params: BTreeMap<String, Value>) -> Self {
        RunValues {
            inputs,
            params,
            listings: Mutex::new(HashMap::new()),
        }
    }

    /// The sorted regular files below a folder input, listed once per run.
    fn files(&self, input: &str, root: &str) -> Result<Value, EvalError> {
        if let Some(v) = self
            .listings
            .lock()
            .ok()
            .and_then(|l| l.get(input).cloned())
        {
            return Ok(v);
        }
        let mut files = Vec::new();
        list_files(Path::new(root), &mut files, 0)
            .map_err(|e| EvalError(format!("inputs.{input}.files: cannot list {root}: {e}")))?;
        files.sort();
        let v = Value::List(files.into_iter().map(Value::String).collect());
        if let Ok(mut l) = self.listings.lock() {
            l.insert(input.to_string(), v.clone());
        }
        Ok(v)
    }
}

const MAX_LISTING_DEPTH: usize = 32;

fn list_files(dir: &Path, out: &mut Vec<String>, depth: usize) -> std::io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    if meta.is_file() {
        out.push(dir.display().to_string());
        return Ok(());
    }
    if depth > MAX_LISTING_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // symlinked folders are not followed, so a link loop cannot make the listing endless.
        let ty = entry.file_type()?;
        if ty.is_dir() {
            list_files(&entry.path(), out, depth + 1)?;
        } else if ty.is_file() || (ty.is_symlink() && entry.path().is_file()) {
            out.push(entry.path().display().to_string());
        }
    }
    Ok(())
}

/// One level of step results: the top level of a run, or one execution of a group (one fan-out item).
pub(crate) struct Frame {
    results: Mutex<HashMap<String, StepResult>>,
    pub item: Option<(Value, usize)>,
    pub parent: Option<Arc<Frame>>,
    /// The fan-out key of this frame (`""` at top level, `"3"` for item 3, `"3/1"` nested).
    pub key: String,
}

impl Frame {
    pub fn root() -> Arc<Frame> {
        Arc::new(Frame {
            results: Mutex::new(HashMap::new()),
            item: None,
            parent: None,
            key: String::new(),
        })
    }

    pub fn child(parent: &Arc<Frame>, item: Option<(Value, usize)>, key: String) -> Arc<Frame> {
        Arc::new(Frame {
            results: Mutex::new(HashMap::new()),
            item,
            parent: Some(parent.clone()),
            key,
        })
    }

    pub fn set(&self, step: &str, result: StepResult) {
        if let Ok(mut r) = self.results.lock() {
            r.insert(step.to_string(), result);
        }
    }

    pub fn get(&self, step: &str) -> Option<StepResult> {
        let own = self.results.lock().ok().and_then(|r| r.get(step).cloned());
        own.or_else(|| self.parent.as_ref().and_then(|p| p.get(step)))
    }

    fn item(&self) -> Option<&(Value, usize)> {
        self.item
            .as_ref()
            .or_else(|| self.parent.as_ref().and_then(|p| p.item()))
    }
}

/// Resolves references for expression evaluation in a frame.
pub(crate) struct FrameScope<'a> {
    pub values: &'a RunValues,
    pub frame: &'a Frame,
}

impl Scope for FrameScope<'_> {
    fn resolve(&self, r: &Reference) -> Result<Value, EvalError> {
        let (base, rest): (Value, &[Segment]) = match &r.root {
            Root::Input(name) => {
                let v = self.values.inputs.get(name).cloned().unwrap_or(Value::Null);
                match (r.rest.first(), &v) {
                    (Some(Segment::Field(f)), Value::String(path)) if f == "files" => {
                        (self.values.files(name, path)?, &r.rest[1..])
                    }
                    _ => (v, &r.rest[..]),
                }
            }
            Root::Param(name) => (
                self.values.params.get(name).cloned().unwrap_or(Value::Null),
                &r.rest[..],
            ),
            Root::Item => match self.frame.item() {
                Some((v, _)) => (v.clone(), &r.rest[..]),
                None => return Err(EvalError(format!("`{r}` is used outside a foreach"))),
            },
            Root::Index => match self.frame.item() {
                Some((_, i)) => (Value::Number(*i as f64), &r.rest[..]),
                None => return Err(EvalError(format!("`{r}` is used outside a foreach"))),
            },
            Root::StepOutput { step, output } => match self.frame.get(step) {
                Some(StepResult::Done(outputs)) => (
                    outputs.get(output).cloned().unwrap_or(Value::Null),
                    &r.rest[..],
                ),
                Some(StepResult::Failed {
                    tolerated: true, ..
                })
                | Some(StepResult::Skipped) => (Value::Null, &[][..]),
                Some(_) | None => {
                    return Err(EvalError(format!(
                        "`{r}`: step `{step}` has not produced its outputs"
                    )))
                }
            },
        };
        follow_segments(base, rest, r)
    }
}
