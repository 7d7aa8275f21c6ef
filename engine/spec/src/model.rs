//! The typed workflow model that the YAML decodes into: inputs, parameters, steps and outputs.

use std::path::PathBuf;
use std::time::Duration;

use crate::diagnostic::{Span, Spanned};
use crate::expr::Expr;
use crate::template::Template;
use crate::types::{DataType, InputType};
use crate::value::Value;

/// The only workflow format version this engine reads.
pub const API_VERSION: &str = "voxflow/v1";

#[derive(Debug, Clone)]
pub struct Workflow {
    pub file: PathBuf,
    /// The file's text as read, kept so that a run records exactly what it ran.
    pub source: String,
    /// sha256 of `source`, lower-case hex.
    pub source_hash: String,
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub inputs: Vec<InputDecl>,
    pub params: Vec<ParamDecl>,
    pub steps: Vec<Step>,
    pub outputs: Vec<OutputDecl>,
}

#[derive(Debug, Clone)]
pub struct InputDecl {
    pub name: Spanned<String>,
    pub ty: InputType,
    pub required: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ParamDecl {
    pub name: Spanned<String>,
    pub ty: DataType,
    pub default: Option<Spanned<Value>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Allowed values (`enum:` in the file).
    pub choices: Option<Vec<Value>>,
    pub description: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct OutputDecl {
    pub name: Spanned<String>,
    pub value: Template,
}

/// The plugin a step uses: `builtin/echo`, `onnx/prostate-unet@1.0.0`, optionally pinned by hash
/// (`name@version#sha256:HEX`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginRef {
    pub name: String,
    pub version: Option<String>,
    pub sha256: Option<String>,
}

impl std::fmt::Display for PluginRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        if let Some(h) = &self.sha256 {
            write!(f, "#sha256:{h}")?;
        }
        Ok(())
    }
}

impl PluginRef {
    pub fn parse(text: &str) -> Result<PluginRef, String> {
        let (rest, sha256) = match text.split_once('#') {
            Some((r, pin)) => {
                let hex = pin.strip_prefix("sha256:").ok_or_else(|| {
                    format!("a plugin pin is written `#sha256:HEX`, found `#{pin}`")
                })?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("`{hex}` is not a sha256 (64 hex digits)"));
                }
                (r, Some(hex.to_ascii_lowercase()))
            }
            None => (text, None),
        };
        let (name, version) = match rest.split_once('@') {
            Some((n, v)) if !v.is_empty() => (n, Some(v.to_string())),
            Some(_) => return Err(format!("`{text}` has an empty version after `@`")),
            None => (rest, None),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        match name.split_once('/') {
            Some((ns, n)) if valid(ns) && valid(n) => Ok(PluginRef {
                name: name.to_string(),
                version,
                sha256,
            }),
            _ => Err(format!(
                "`{text}` is not a plugin reference: write NAMESPACE/NAME[@VERSION], e.g. builtin/echo"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: Spanned<String>,
    pub action: StepAction,
    pub needs: Vec<Spanned<String>>,
    pub when: Option<Spanned<Expr>>,
    pub foreach: Option<Spanned<Expr>>,
    /// Upper bound on fan-out items running at once (the run's `--jobs` bounds it too).
    pub max_parallel: Option<usize>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    /// Tightens a plugin's memory cap for this step (MiB); it never loosens the plugin's own limit.
    pub memory_mb: Option<u64>,
    pub cache: bool,
    /// A failed fan-out item or step does not fail the run; its outputs are null.
    pub continue_on_error: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum StepAction {
    /// Run a plugin.
    Uses {
        plugin: Spanned<PluginRef>,
        inputs: Vec<Argument>,
        with: Vec<Argument>,
    },
    /// Run a list of steps (usually once per `foreach` item) and publish some of their outputs.
    Group {
        steps: Vec<Step>,
        outputs: Vec<OutputDecl>,
    },
}

#[derive(Debug, Clone)]
pub struct Argument {
    pub name: Spanned<String>,
    pub value: Template,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    Fixed,
    Exponential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::Exponential,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `next_attempt` (2 for the first retry).
    pub fn delay_before(&self, next_attempt: u32) -> Duration {
        let retries_done = next_attempt.saturating_sub(2);
        let d = match self.backoff {
            Backoff::Fixed => self.initial_delay,
            Backoff::Exponential => self
                .initial_delay
                .saturating_mul(2u32.saturating_pow(retries_done.min(30))),
        };
        d.min(self.max_delay)
    }
}

impl Step {
    pub fn nested_steps(&self) -> &[Step] {
        match &self.action {
            StepAction::Group { steps, .. } => steps,
            StepAction::Uses { .. } => &[],
        }
    }
}

impl Workflow {
    pub fn input(&self, name: &str) -> Option<&InputDecl> {
        self.inputs.iter().find(|i| i.name.value == name)
    }

    pub fn param(&self, name: &str) -> Option<&ParamDecl> {
        self.params.iter().find(|p| p.name.value == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_refs() {
        let p = PluginRef::parse("onnx/prostate-unet@1.0.0").unwrap();
        assert_eq!(p.name, "onnx/prostate-unet");
        assert_eq!(p.version.as_deref(), Some("1.0.0"));
        assert!(PluginRef::parse("echo").is_err());
        assert!(PluginRef::parse("a/b@").is_err());
        assert!(PluginRef::parse("a/b#sha256:12").is_err());
        let pinned = format!("a/b@1#sha256:{}", "A".repeat(64));
        assert_eq!(
            PluginRef::parse(&pinned).unwrap().sha256.unwrap(),
            "a".repeat(64)
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            backoff: Backoff::Exponential,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(p.delay_before(2), Duration::from_millis(100));
        assert_eq!(p.delay_before(3), Duration::from_millis(200));
        assert_eq!(p.delay_before(4), Duration::from_millis(350));
    }
}
