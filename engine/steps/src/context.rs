//! What a step receives: its arguments, typed accessors that name the field on error, and the context of
//! the attempt (artifact store, cancellation, log lines for the run's events).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;
use voxflow_artifact::ArtifactStore;
use voxflow_spec::{ArtifactRef, Value};

use crate::StepError;

/// The environment of one step attempt.
pub struct StepContext<'a> {
    pub run_id: &'a str,
    pub step_id: &'a str,
    pub fanout_key: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub artifacts: &'a ArtifactStore,
    /// Cancelled when the run is cancelled or the step's timeout expires.
    pub cancel: CancellationToken,
    /// The workflow's memory cap for this step (MiB), for plugins that enforce one; `None`: theirs.
    pub memory_limit_mb: Option<u64>,
    log: Mutex<Vec<String>>,
}

impl<'a> StepContext<'a> {
    pub fn new(
        run_id: &'a str,
        step_id: &'a str,
        fanout_key: &'a str,
        attempt: u32,
        artifacts: &'a ArtifactStore,
        cancel: CancellationToken,
    ) -> Self {
        StepContext {
            run_id,
            step_id,
            fanout_key,
            attempt,
            artifacts,
            cancel,
            memory_limit_mb: None,
            log: Mutex::new(Vec::new()),
        }
    }

    /// Adds a line to the run's events for this attempt.
    pub fn log(&self, line: impl Into<String>) {
        if let Ok(mut l) = self.log.lock() {
            l.push(line.into());
        }
    }

    pub fn take_log(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    pub fn check_cancelled(&self) -> Result<(), StepError> {
        if self.cancel.is_cancelled() {
            Err(StepError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The evaluated `inputs:` and `with:` of a step, defaults filled in, and which outputs are wanted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepArgs {
    pub inputs: BTreeMap<String, Value>,
    pub params: BTreeMap<String, Value>,
    /// The outputs the workflow reads, when that is some but not all of the step's declared outputs; a step
    /// may then skip computing and storing the others. `None`: every output.
    pub wanted_outputs: Option<BTreeSet<String>>,
}

fn bad(field: &str, message: String) -> StepError {
    StepError::BadArgument {
        field: field.to_string(),
        message,
    }
}

impl StepArgs {
    /// Whether the output `name` is wanted (see [`StepArgs::wanted_outputs`]).
    pub fn wants(&self, name: &str) -> bool {
        self.wanted_outputs
            .as_ref()
            .is_none_or(|wanted| wanted.contains(name))
    }

    pub fn input(&self, name: &str) -> Result<&Value, StepError> {
        match self.inputs.get(name) {
            Some(Value::Null) | None => Err(bad(&format!("input `{name}`"), "is missing".into())),
            Some(v) => Ok(v),
        }
    }

    pub fn input_artifact(&self, name: &str) -> Result<&ArtifactRef, StepError> {
        let v = self.input(name)?;
        v.as_artifact().ok_or_else(|| {
            bad(
                &format!("input `{name}`"),
                format!("expected an artifact, got a {}", v.type_name()),
            )
        })
    }

    pub fn input_path(&self, name: &str) -> Result<PathBuf, StepError> {
        let v = self.input(name)?;
        v.as_str().map(PathBuf::from).ok_or_else(|| {
            bad(
                &format!("input `{name}`"),
                format!("expected a path, got a {}", v.type_name()),
            )
        })
    }

    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name).filter(|v| !matches!(v, Value::Null))
    }

    pub fn param_str(&self, name: &str) -> Result<Option<&str>, StepError> {
        match self.param(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(bad(
                &format!("parameter `{name}`"),
                format!("expected a string, got a {}", v.type_name()),
            )),
        }
    }

    pub fn param_f64(&self, name: &str) -> Result<Option<f64>, StepError> {
        match self.param(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(*n)),
            Some(v) => Err(bad(
                &format!("parameter `{name}`"),
                format!("expected a number, got a {}", v.type_name()),
            )),
        }
    }

    pub fn param_u64(&self, name: &str) -> Result<Option<u64>, StepError> {
        match self.param_f64(name)? {
            None => Ok(None),
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as u64)),
            Some(n) => Err(bad(
                &format!("parameter `{name}`"),
                format!("expected a whole number ≥ 0, got {n}"),
            )),
        }
    }

    /// A duration parameter written like `500ms`, `2s` or `1m`.
    pub fn param_duration(&self, name: &str) -> Result<Option<std::time::Duration>, StepError> {
        match self.param_str(name)? {
            None => Ok(None),
            Some(s) => humantime_like(s).map(Some).ok_or_else(|| {
                bad(
                    &format!("parameter `{name}`"),
                    format!("`{s}` is not a duration such as 500ms, 2s or 1m"),
                )
            }),
        }
    }
}

/// Parses `N` + unit (`ms`, `s`, `m`, `h`); enough for step parameters without another dependency here.
fn humantime_like(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    std::time::Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_name_the_field() {
        let mut args = StepArgs::default();
        args.params.insert("n".into(), Value::String("x".into()));
        let err = args.param_f64("n").unwrap_err().to_string();
        assert_eq!(err, "parameter `n`: expected a number, got a string");
        let err = args.input_path("path").unwrap_err().to_string();
        assert_eq!(err, "input `path`: is missing");
        args.params
            .insert("d".into(), Value::String("250ms".into()));
        assert_eq!(
            args.param_duration("d").unwrap(),
            Some(std::time::Duration::from_millis(250))
        );
    }
}
