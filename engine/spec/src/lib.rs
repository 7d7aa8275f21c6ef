//! voxflow's workflow language: the YAML file format, its typed model, the `${{ }}` expression language,
//! and validation that reports every problem with file, line and column.
//!
//! This crate is plain data plus checks: it knows nothing about databases, WebAssembly or ONNX Runtime.
//! Plugins are known only through the [`StepCatalog`] trait that the engine implements.
//!
//! ```
//! use voxflow_spec::{parse_workflow, catalog::*, model::PluginRef};
//! struct NoPlugins;
//! impl StepCatalog for NoPlugins {
//!     fn signature(&self, p: &PluginRef) -> Result<StepSignature, String> { Err(format!("unknown plugin {p}")) }
//! }
//! let text = "apiVersion: voxflow/v1\nname: demo\nsteps:\n  - id: a\n    uses: builtin/echo\n";
//! let errors = voxflow_spec::check_workflow(std::path::Path::new("demo.yaml"), text, &NoPlugins).unwrap_err();
//! assert_eq!(errors[0].to_string(), "demo.yaml:5:11: step `a`: unknown plugin builtin/echo");
//! ```

pub mod catalog;
mod decode;
pub mod diagnostic;
pub mod expr;
pub mod graph;
pub mod model;
pub mod template;
pub mod types;
mod validate;
pub mod value;
pub mod yaml;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use catalog::{PortSpec, StepCatalog, StepSignature};
pub use diagnostic::{Diagnostic, Span, Spanned};
pub use model::Workflow;
pub use validate::check_param_value;
pub use value::{ArtifactRef, Value};

/// Parses a workflow's text into the model, reporting syntax and shape errors (not references or types).
pub fn parse_workflow(file: &Path, text: &str) -> Result<Workflow, Vec<Diagnostic>> {
    let (workflow, _, d) = decode_partial(file, text);
    match workflow {
        Some(wf) if d.is_empty() => Ok(wf),
        _ => Err(d.into_sorted()),
    }
}

/// Decodes as much of the file as is well-formed, with the shape errors and the names that did not decode.
fn decode_partial(
    file: &Path,
    text: &str,
) -> (
    Option<Workflow>,
    decode::BrokenNames,
    diagnostic::Diagnostics,
) {
    let mut d = diagnostic::Diagnostics::new(file);
    let (root, duplicates) = match yaml::parse_document(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            d.error(e.span, e.message);
            return (None, Default::default(), d);
        }
    };
    for dup in duplicates {
        d.error(dup.span, dup.message);
    }
    let mut decoder = decode::Decoder {
        source: text,
        d,
        broken: Default::default(),
    };
    let parts = decoder.workflow(&root);
    let workflow = parts.map(|p| Workflow {
        file: file.to_path_buf(),
        source: text.to_string(),
        source_hash: hex::encode(Sha256::digest(text.as_bytes())),
        name: p.name,
        description: p.description,
        inputs: p.inputs,
        params: p.params,
        steps: p.steps,
        outputs: p.outputs,
    });
    (workflow, decoder.broken, decoder.d)
}

/// Checks references, the step graph, plugins and types of a parsed workflow; returns every problem.
pub fn validate(workflow: &Workflow, catalog: &dyn StepCatalog) -> Vec<Diagnostic> {
    let mut d = diagnostic::Diagnostics::new(&workflow.file);
    validate::Checker::new(workflow, catalog, &Default::default(), &mut d).run();
    d.into_sorted()
}

/// Parses and validates in one go. Shape errors do not stop the semantic checks of the parts that did
/// decode, so one pass reports every problem.
pub fn check_workflow(
    file: &Path,
    text: &str,
    catalog: &dyn StepCatalog,
) -> Result<Workflow, Vec<Diagnostic>> {
    let (workflow, broken, mut d) = decode_partial(file, text);
    let Some(wf) = workflow else {
        return Err(d.into_sorted());
    };
    validate::Checker::new(&wf, catalog, &broken, &mut d).run();
    if d.is_empty() {
        Ok(wf)
    } else {
        Err(d.into_sorted())
    }
}

/// Reads a workflow file from disk and checks it. Unreadable or non-UTF-8 files become diagnostics too.
pub fn load_workflow(file: &Path, catalog: &dyn StepCatalog) -> Result<Workflow, Vec<Diagnostic>> {
    let bytes = std::fs::read(file).map_err(|e| {
        vec![Diagnostic::new(
            file,
            Span::new(1, 1),
            format!("cannot read the workflow file: {e}"),
        )]
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = String::from_utf8_lossy(valid);
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        vec![Diagnostic::new(
            file,
            Span::new(line, column),
            "the file is not UTF-8 text",
        )]
    })?;
    check_workflow(file, &text, catalog)
}
