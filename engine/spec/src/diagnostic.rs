//! Positions in a workflow file and the diagnostics that point at them.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based line and column in the workflow source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub line: usize,
    pub column: usize,
}

impl Span {
    pub fn new(line: usize, column: usize) -> Self {
        Span { line, column }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// One problem found in a workflow file: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub span: Span,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &Path, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            span,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.span.line,
            self.span.column,
            self.message
        )
    }
}

/// Collects diagnostics for one file while a pass walks it.
#[derive(Debug)]
pub struct Diagnostics {
    file: PathBuf,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: &Path) -> Self {
        Diagnostics {
            file: file.to_path_buf(),
            items: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.items.push(Diagnostic::new(&self.file, span, message));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The diagnostics in source order, without exact duplicates.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| d.span);
        self.items.dedup();
        self.items
    }
}
